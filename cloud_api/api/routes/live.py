"""``/api/v1/ws``: live JSON messages ``{"type": "count" | "inspection" | "alert" | "device", "data": {...},
"dropped": n}`` (``dropped`` = messages this client lost so far because it lagged).

Authentication, never in the URL: an ``Authorization: Bearer`` header (scripts); a page's session cookie
(``session_auth``; only with an ``Origin`` of this site, against cross-site WebSocket hijacking); or, for
clients that cannot set headers (the phone app), a first message ``{"type": "auth", "token": "..."}`` within
``AUTH_TIMEOUT_S``, answered ``{"type": "auth", "ok": true, "username": ..., "role": ...}``. A missing or
wrong token is accepted then closed with code 4401, so every client can read the reason. A ``?token=`` query
is refused the same way (tokens in URLs end up in logs and histories). Any role may listen. Other messages
from the client are ignored. The token is checked again every ``Settings.ws_auth_recheck_s``: once it is
revoked (sign-out, ``DELETE /auth/tokens/{id}``) or expired, the socket closes with 4401.
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from cloud_api.api import session_auth
from cloud_api.api.deps import authenticate_token
from cloud_api.services.live import LiveHub, Subscription

router = APIRouter(tags=["live"])

CLOSE_UNAUTHORIZED = 4401


AUTH_TIMEOUT_S = 10.0


def _presented_token(websocket: WebSocket) -> tuple[str | None, str]:
    """(token or None, how): from the Authorization header, else the session cookie of a same-site page."""
    header = session_auth.bearer_token(websocket)
    if header is not None:
        return header, "header"
    cookie = session_auth.cookie_token(websocket)
    if cookie is not None and session_auth.same_origin(websocket):
        return cookie, "cookie"
    return None, "message"


async def _first_message_token(websocket: WebSocket) -> str | None:
    """The token of a first ``{"type": "auth", "token": ...}`` message, or None (timeout, other message)."""
    try:
        message = await asyncio.wait_for(websocket.receive_json(), AUTH_TIMEOUT_S)
    except (asyncio.TimeoutError, ValueError, KeyError, WebSocketDisconnect, RuntimeError):
        return None
    if isinstance(message, dict) and message.get("type") == "auth" and isinstance(message.get("token"), str):
        return message["token"]
    return None


async def _recheck(websocket: WebSocket, subscription: Subscription, token: str) -> None:
    """Close the socket (4401) once its token no longer authenticates."""
    app = websocket.app
    while True:
        await asyncio.sleep(app.state.settings.ws_auth_recheck_s)
        if await run_in_threadpool(authenticate_token, app.state.settings, app.state.store, token) is None:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
                await websocket.close(code=CLOSE_UNAUTHORIZED, reason="token revoked or expired")
            subscription.close()  # wakes the sender loop
            return


async def _until_disconnect(websocket: WebSocket, subscription: Subscription) -> None:
    try:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass
    finally:
        subscription.close()  # wakes the sender loop


@router.websocket("/ws")
async def live(websocket: WebSocket) -> None:
    app = websocket.app
    hub: LiveHub = app.state.live
    if "token" in websocket.query_params:
        await websocket.accept()
        await websocket.close(code=CLOSE_UNAUTHORIZED, reason="tokens in the URL are refused; send a first auth message")
        return
    token, how = _presented_token(websocket)
    if how == "message":
        await websocket.accept()
        token = await _first_message_token(websocket)
    principal = await run_in_threadpool(authenticate_token, app.state.settings, app.state.store, token) if token else None
    if principal is None:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):  # the client may be gone already
            if how != "message":
                await websocket.accept()
            await websocket.close(code=CLOSE_UNAUTHORIZED, reason="missing or invalid token")
        return
    subscription = hub.subscribe()  # before accept / the auth answer: nothing published after it is missed
    try:
        if how == "message":
            await websocket.send_json({"type": "auth", "ok": True, "username": principal.username, "role": principal.role})
        else:
            await websocket.accept()
        reader = asyncio.create_task(_until_disconnect(websocket, subscription))
        assert token is not None  # principal is not None
        recheck = asyncio.create_task(_recheck(websocket, subscription, token))
        try:
            while (message := await subscription.get()) is not None:
                await websocket.send_json(message)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the client went away while we were sending
        finally:
            reader.cancel()
            recheck.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await reader
            with contextlib.suppress(asyncio.CancelledError):
                await recheck
    finally:
        hub.unsubscribe(subscription)
    with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
        await websocket.close()  # fails harmlessly when the client or the server already closed it
