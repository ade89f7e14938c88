"""``GET /signin/{code}``: exchange a one-time sign-in link for the session cookie, then go to the page.

The link (``POST /api/v1/auth/signin-links``, printed by ``fieldline demo``) works once, for minutes; after
the exchange the code is gone from the address bar (303 to the page) and from the server. ``next`` may only
name one of this server's pages, so the link cannot send anyone elsewhere. A fragment on the link
(``/signin/CODE#window=1h``) is kept by the browser across the redirect.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from cloud_api.api import session_auth
from cloud_api.services.sessions import exchange_signin_code

router = APIRouter(tags=["home"])

EXPIRED_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign-in link used or expired</title>
<link rel="stylesheet" href="/qa/static/qa.css"></head><body><main class="card">
<h1>This sign-in link is used or expired</h1>
<p>Each link works once, for a few minutes. <a href="/qa">Sign in with your user name and password</a>.</p>
</main></body></html>"""


@router.get("/signin/{code}", summary="Exchange a one-time sign-in link for the session cookie",
            responses={303: {"description": "Signed in: on to the page"},
                       400: {"description": "The link was used already or has expired",
                             "content": {"text/html": {}}}})
async def signin(code: str, request: Request,
                 next: Literal["/qa", "/fleet", "/label", "/"] = Query(default="/qa", description="The page to open")) -> Response:  # noqa: A002
    app = request.app
    issued = await run_in_threadpool(exchange_signin_code, app.state.store, code[:256], app.state.settings.session_ttl_s)
    if issued is None:
        return HTMLResponse(EXPIRED_PAGE, status_code=400, headers={"Cache-Control": "no-store"})
    response = RedirectResponse(next, status_code=303, headers={"Cache-Control": "no-store"})
    session_auth.set_session_cookie(response, request, issued.token, app.state.settings.session_ttl_s)
    return response
