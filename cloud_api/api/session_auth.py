"""Browser sign-in by session cookie, shared by every page (``/qa``, ``/fleet``, ...) and the WebSocket.

The cookie holds an ordinary login token (the same table, lifetime and revocation as a bearer token), but
a page's script never sees it: ``HttpOnly``, ``SameSite=Strict``, ``Secure`` when the request came over TLS.
Scripts and the phone app keep sending ``Authorization: Bearer``; a request that carries that header is
authenticated by it and the cookie is ignored.

CSRF: a state-changing request (anything but GET/HEAD/OPTIONS) authenticated by the cookie must carry an
``Origin`` header naming this server (``same_origin``); browsers send it on every such ``fetch`` and form
post. SameSite=Strict already keeps the cookie off cross-site requests; the Origin check is the second line.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.requests import HTTPConnection
from starlette.responses import Response

COOKIE_NAME = "fieldline_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

__all__ = ["COOKIE_NAME", "bearer_token", "clear_session_cookie", "cookie_token", "same_origin",
           "served_over_tls", "set_session_cookie"]


def served_over_tls(conn: HTTPConnection) -> bool:
    """True for https/wss (uvicorn's ``--proxy-headers`` maps a trusted proxy's X-Forwarded-Proto onto this)."""
    return conn.url.scheme in ("https", "wss")


def set_session_cookie(response: Response, conn: HTTPConnection, token: str, max_age_s: int | None) -> None:
    """Put a login token into the session cookie of ``response``."""
    response.set_cookie(COOKIE_NAME, token, max_age=max_age_s, path="/", httponly=True,
                        secure=served_over_tls(conn), samesite="strict")


def clear_session_cookie(response: Response, conn: HTTPConnection) -> None:
    response.delete_cookie(COOKIE_NAME, path="/", httponly=True, secure=served_over_tls(conn), samesite="strict")


def bearer_token(conn: HTTPConnection) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or None when there is no such header."""
    scheme, _, credentials = conn.headers.get("authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None


def cookie_token(conn: HTTPConnection) -> str | None:
    return conn.cookies.get(COOKIE_NAME) or None


def same_origin(conn: HTTPConnection) -> bool:
    """True when the request's ``Origin`` header names the host it was sent to (scheme-agnostic behind a proxy).

    That host is the ``Host`` header, or ``X-Forwarded-Host`` from a reverse proxy that rewrites ``Host``
    (a cross-site page cannot add that header: it is not CORS-safelisted and CORS is off).
    """
    origin = conn.headers.get("origin")
    if not origin or origin == "null":
        return False
    parts = urlsplit(origin)
    hosts = {conn.headers.get("host", "").lower()}
    forwarded = conn.headers.get("x-forwarded-host")
    if forwarded:
        hosts.add(forwarded.split(",")[0].strip().lower())
    return parts.scheme in ("http", "https") and parts.netloc.lower() in hosts - {""}
