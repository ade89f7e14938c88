"""Security headers on every HTTP response, CORS only for the origins a deployer lists, capped request bodies.

Pages (``/``, ``/qa``, ``/fleet``, ``/docs``) send their own Content-Security-Policy; every other response
(JSON, files, errors) gets ``DEFAULT_CSP``, which allows nothing, so an API response opened in a browser
cannot run anything or be framed. A header a route already set is left alone, except ``X-Frame-Options``
and ``X-Content-Type-Options``, which are always these values, and the ``frame-ancestors`` directive of a
route's own policy, which is always ``'none'`` (no page of this server may be framed, not even by itself). ``Strict-Transport-Security`` is added only
on requests that came over TLS (uvicorn ``--proxy-headers`` behind a TLS proxy).
"""

from __future__ import annotations

import re

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cloud_api.api.body_limit import BodyLimit

DEFAULT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DEFAULTS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", DEFAULT_CSP.encode()),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)
ALWAYS: tuple[tuple[bytes, bytes], ...] = ((b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"))
HSTS = (b"strict-transport-security", b"max-age=31536000")
# model uploads stream into their own cap (cloud_api.fleet.registry.MAX_MODEL_BYTES, 413 past it)
BODY_LIMIT_EXEMPT = ("/api/v1/models",)
# dataset zip imports (POST /api/v1/datasets/{name}/import) stream into cloud_api.services.datasets.MAX_IMPORT_BYTES
BODY_LIMIT_EXEMPT_SUFFIXES = ("/import",)
_FRAME_ANCESTORS = re.compile(rb"frame-ancestors[^;]*")


def no_framing(policy: bytes) -> bytes:
    """The policy with ``frame-ancestors 'none'`` (replacing any other value, or added)."""
    if _FRAME_ANCESTORS.search(policy):
        return _FRAME_ANCESTORS.sub(b"frame-ancestors 'none'", policy)
    return policy.rstrip(b"; ") + b"; frame-ancestors 'none'"


class SecurityHeaders:
    """Pure ASGI middleware (streams and WebSockets pass untouched)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tls = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                always = {name for name, _ in ALWAYS}
                headers = [(k, no_framing(v) if k.lower() == b"content-security-policy" else v)
                           for k, v in message.get("headers", []) if k.lower() not in always]
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in DEFAULTS if k not in present]
                headers += list(ALWAYS)
                if tls and HSTS[0] not in present:
                    headers.append(HSTS)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def install(app: FastAPI, cors_allow_origins: list[str], max_request_bytes: int,
            exempt_from_body_limit: tuple[str, ...] = BODY_LIMIT_EXEMPT) -> None:
    """Add the body cap, the headers middleware, and CORS for ``cors_allow_origins`` (none: no CORS headers).

    CORS never allows credentials: a listed origin's page calls with ``Authorization: Bearer``, never with
    this server's session cookie.
    """
    app.add_middleware(BodyLimit, limit=max_request_bytes, exempt=exempt_from_body_limit,
                       exempt_suffixes=BODY_LIMIT_EXEMPT_SUFFIXES)
    if cors_allow_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(cors_allow_origins), allow_credentials=False,
                           allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"], max_age=600)
    app.add_middleware(SecurityHeaders)  # added last: outermost, so CORS answers carry the headers too
