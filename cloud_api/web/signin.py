"""``GET /signin/{code}``: exchange a one-time sign-in link for the session cookie, then go to the page.

The link (``POST /api/v1/auth/signin-links``, printed by ``fieldline demo``) works once, for minutes; after
the exchange the code is gone from the address bar (303 to the page) and from the server. ``next`` may only
name one of this server's pages, so the link cannot send anyone elsewhere. A fragment on the link
(``/signin/CODE#window=1h``) is kept by the browser across the redirect.

Also the sign-in form every page shares: a page's HTML holds ``<!-- signin title="QA" lead="..." -->`` where the
form goes, :func:`with_signin` puts the form there, and ``static/signin.js`` runs it.
"""

from __future__ import annotations

import html
import re
from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from cloud_api.api import session_auth
from cloud_api.services.sessions import exchange_signin_code

router = APIRouter(tags=["home"])

_MARK = re.compile(r'<!--\s*signin\s+title="([^"<>]*)"\s+lead="([^"<>]*)"\s*-->')
SIGNIN_FORM = """<section id="login-view" class="login-view" hidden>
    <form id="login-form" class="login-card" autocomplete="on">
      <h1>FieldLine <span>{title}</span></h1>
      <p class="muted">{lead}</p>
      <label for="login-user">User name</label>
      <input id="login-user" name="username" autocomplete="username" required>
      <label for="login-pass">Password</label>
      <input id="login-pass" name="password" type="password" autocomplete="current-password" required>
      <button id="login-submit" type="submit">Sign in</button>
      <p id="login-error" class="error" role="alert"></p>
    </form>
  </section>"""


def with_signin(page: str, name: str = "page") -> str:
    """``page`` with its one ``<!-- signin title=".." lead=".." -->`` mark replaced by the shared sign-in form."""
    marks = _MARK.findall(page)
    if len(marks) != 1:
        raise ValueError(f"{name}: needs exactly one <!-- signin title=\"..\" lead=\"..\" --> mark, found {len(marks)}")
    title, lead = marks[0]
    form = SIGNIN_FORM.format(title=html.escape(title), lead=html.escape(lead))
    return _MARK.sub(lambda _: form, page, count=1)

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
                 next: Literal["/qa", "/fleet", "/label", "/training", "/"] = Query(  # noqa: A002
                     default="/qa", description="The page to open")) -> Response:
    app = request.app
    issued = await run_in_threadpool(exchange_signin_code, app.state.store, code[:256], app.state.settings.session_ttl_s)
    if issued is None:
        return HTMLResponse(EXPIRED_PAGE, status_code=400, headers={"Cache-Control": "no-store"})
    response = RedirectResponse(next, status_code=303, headers={"Cache-Control": "no-store"})
    session_auth.set_session_cookie(response, request, issued.token, app.state.settings.session_ttl_s)
    return response
