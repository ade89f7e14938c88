"""``GET /``: the home page, linking the QA dashboard, the API docs, health and the phone app command.

One static page (``static/index.html``, styled by the dashboard's ``qa.css``): no script, nothing from a CDN.
The server fills in its own address, for the ``fieldline app --api ...`` command.
"""

from __future__ import annotations

import html

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from cloud_api.web import STATIC_DIR

# the page loads only its own style sheets: no script at all
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'none'"
)

router = APIRouter(tags=["home"])


def render_home(origin: str) -> str:
    """The page with this server's address (HTML-escaped: it comes from the request's Host header)."""
    return (STATIC_DIR / "index.html").read_text(encoding="utf-8").replace("{{origin}}", html.escape(origin))


@router.get("/", response_class=HTMLResponse, summary="Home page: links to the QA dashboard, API docs and health",
            responses={200: {"content": {"text/html": {}}, "description": "The home page"}})
def home(request: Request) -> HTMLResponse:
    return HTMLResponse(render_home(str(request.base_url).rstrip("/")), headers={
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    })
