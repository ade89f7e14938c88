"""Run the API with uvicorn (used by ``fieldline api serve`` and the demo)."""

from __future__ import annotations

import uvicorn

from cloud_api.core.config import Settings
from cloud_api.core.gc_tuning import tune_for_server
from cloud_api.main import create_app


def build_server(settings: Settings, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> uvicorn.Server:
    """A uvicorn server for this app; call ``.run()`` (blocking) or set ``.should_exit`` to stop it."""
    config = uvicorn.Config(create_app(settings), host=host, port=port, log_level=log_level, lifespan="on")
    return uvicorn.Server(config)


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info") -> None:
    """Serve until interrupted (Ctrl-C / SIGTERM); the lifespan stops ingest and closes the store."""
    server = build_server(settings, host, port, log_level)
    tune_for_server()
    server.run()
