"""A cap on request bodies, so no route reads an unbounded upload into memory.

Every HTTP request may send at most ``limit`` bytes, except under the prefixes in ``exempt`` (model uploads,
which cap themselves at the registry's larger limit while streaming). A declared ``Content-Length`` over the
limit is refused before anything is read (paths ending in ``exempt_suffixes``, e.g. dataset imports, are exempt too and
cap themselves); a chunked body is counted as it arrives and refused when it passes
the limit (the route then sees a client that went away). Both answer ``413`` with a JSON ``detail`` naming the
size and the limit.
"""

from __future__ import annotations

import json

from fastapi import HTTPException, Request, status
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int, exempt: tuple[str, ...] = (),
                 exempt_suffixes: tuple[str, ...] = ()) -> None:
        self.app, self.limit, self.exempt, self.exempt_suffixes = app, limit, exempt, exempt_suffixes

    async def _refuse(self, send: Send, detail: str) -> None:
        body = json.dumps({"detail": detail}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if scope["type"] != "http" or path.startswith(self.exempt) or path.endswith(self.exempt_suffixes):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send, f"request body is {int(declared)} bytes, the limit is {self.limit}")
            return
        received, started, refused = 0, False, False

        async def counting_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit and not started:
                    # answer now; the app sees the client gone, and whatever it answers is dropped
                    refused = True
                    await self._refuse(send, f"request body is larger than the limit of {self.limit} bytes")
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counting_receive, tracking_send)


async def read_capped(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to pass ``limit`` bytes (routes that skip the
    middleware's cap, such as uploads, call this)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"upload is {declared} bytes, the limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"upload is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
