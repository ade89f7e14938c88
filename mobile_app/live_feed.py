"""Live updates over the API's WebSocket, in a background thread, reconnecting with backoff (no Kivy).

Messages (``{"type": "count"|"inspection"|"alert"|"device", "data": {...}}``) are put on a queue; the
UI drains it on its own clock so widgets are only touched from the UI thread.

Authentication: the token goes in a first message ``{"type": "auth", "token": ...}`` (Kivy cannot set
headers, and a token in the URL would end up in proxy logs); ``connected`` turns true once the server answers
``{"type": "auth", "ok": true}``. A refusal (close code 4401) is kept in ``last_error`` and retried with
backoff, since the user may sign in again meanwhile.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable
from typing import Any


class LiveFeed:
    def __init__(self, url_provider: Callable[[], str | None], *,
                 token_provider: Callable[[], str | None] = lambda: None, min_backoff_s: float = 1.0,
                 max_backoff_s: float = 15.0, open_timeout_s: float = 5.0) -> None:
        self._url_provider = url_provider
        self._token_provider = token_provider
        self._min, self._max, self._open_timeout = min_backoff_s, max_backoff_s, open_timeout_s
        self.messages: queue.Queue[dict[str, Any]] = queue.Queue(maxsize=10_000)
        self.connected = False
        self.received = 0
        self.dropped = 0  # malformed messages, or the queue was full
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._ws: Any = None
        self._thread = threading.Thread(target=self._run, name="fieldline-live", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        ws = self._ws
        if ws is not None:
            try:
                ws.close()
            except Exception:  # noqa: BLE001 - closing a broken socket may fail in many ways
                pass
        self._thread.join(timeout=3)

    def drain(self, limit: int = 500) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        while len(out) < limit:
            try:
                out.append(self.messages.get_nowait())
            except queue.Empty:
                break
        return out

    def _run(self) -> None:
        from websockets.sync.client import connect  # imported here: optional until the feed starts

        backoff = self._min
        while not self._stop.is_set():
            url = self._url_provider()
            if not url:
                self._stop.wait(backoff)
                continue
            try:
                with connect(url, open_timeout=self._open_timeout, close_timeout=1) as ws:
                    self._ws = ws
                    self._authenticate(ws)
                    self.connected = True
                    backoff = self._min
                    for raw in ws:
                        if self._stop.is_set():
                            break
                        self._accept(raw)
            except Exception as exc:  # noqa: BLE001 - any failure means: wait and reconnect
                self.last_error = f"{type(exc).__name__}: {exc}"
            finally:
                self._ws = None
                self.connected = False
            self._stop.wait(backoff)
            backoff = min(self._max, backoff * 2)

    def _authenticate(self, ws: Any) -> None:
        """Send the token as the first message and wait for the server's ``auth`` answer (raises if refused)."""
        token = self._token_provider()
        if not token:
            raise PermissionError("not signed in: no token for the live feed")
        ws.send(json.dumps({"type": "auth", "token": token}))
        answer = json.loads(ws.recv(timeout=self._open_timeout))
        if not (isinstance(answer, dict) and answer.get("type") == "auth" and answer.get("ok") is True):
            raise PermissionError(f"the server did not confirm the live feed sign-in: {str(answer)[:100]}")

    def _accept(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            self.dropped += 1
            return
        if not isinstance(message, dict) or "type" not in message:
            self.dropped += 1
            return
        try:
            self.messages.put_nowait(message)
            self.received += 1
        except queue.Full:
            self.dropped += 1
