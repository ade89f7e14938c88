"""``/api/v1/ws``: live JSON messages ``{"type": "count" | "inspection" | "alert" | "device", "data": {...},
"dropped": n}`` (``dropped`` = messages this client lost so far because it lagged).

Authentication: ``?token=...`` (browsers and Kivy cannot set headers on a WebSocket) or an
``Authorization: Bearer`` header. A missing or wrong token is accepted then closed with code 4401, so every
client can read the reason. Any role may listen. Messages from the client are ignored.
"""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from cloud_api.api.deps import authenticate_token
from cloud_api.services.live import LiveHub, Subscription

router = APIRouter(tags=["live"])

CLOSE_UNAUTHORIZED = 4401


def _presented_token(websocket: WebSocket) -> str:
    token = websocket.query_params.get("token")
    if token:
        return token
    scheme, _, credentials = websocket.headers.get("authorization", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""


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
    token = _presented_token(websocket)
    principal = await run_in_threadpool(authenticate_token, app.state.settings, app.state.store, token) if token else None
    if principal is None:
        await websocket.accept()
        await websocket.close(code=CLOSE_UNAUTHORIZED, reason="missing or invalid token")
        return
    subscription = hub.subscribe()  # before accept: nothing published after the handshake is missed
    try:
        await websocket.accept()
        reader = asyncio.create_task(_until_disconnect(websocket, subscription))
        try:
            while (message := await subscription.get()) is not None:
                await websocket.send_json(message)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass  # the client went away while we were sending
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
                await reader
    finally:
        hub.unsubscribe(subscription)
    with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
        await websocket.close()  # fails harmlessly when the client or the server already closed it
