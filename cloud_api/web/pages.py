"""One HTML page of the web app as a response: the file from ``static/`` with the shared sign-in form put in
(:func:`cloud_api.web.signin.with_signin`) and the dashboard's security headers (no inline script, nothing from
another origin)."""

from __future__ import annotations

from fastapi.responses import HTMLResponse


def page_response(file_name: str) -> HTMLResponse:
    """``static/<file_name>`` with the sign-in form, served with the Content-Security-Policy of the pages."""
    from cloud_api.web import CONTENT_SECURITY_POLICY, STATIC_DIR
    from cloud_api.web.signin import with_signin

    html = with_signin((STATIC_DIR / file_name).read_text(encoding="utf-8"), file_name)
    return HTMLResponse(html, headers={
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    })
