"""The real cloud API under uvicorn in a thread, on a port that survives a stop/start (for outage tests)."""

from __future__ import annotations

import threading
import time

import uvicorn

from cloud_api.core.config import Settings
from cloud_api.main import create_app
from tests.support.live_api import free_port


class RestartableApi:
    def __init__(self, settings: Settings, port: int | None = None) -> None:
        self.settings = settings
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> RestartableApi:
        config = uvicorn.Config(create_app(self.settings), host="127.0.0.1", port=self.port,
                                log_level="warning", lifespan="on", ws_ping_interval=None)
        self._server = uvicorn.Server(config)
        self._server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
        self._thread = threading.Thread(target=self._server.run, name="api", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError(f"API did not start on port {self.port}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=15)
        self._server = self._thread = None

    def __enter__(self) -> RestartableApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
