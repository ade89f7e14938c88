"""The FastAPI application factory; the lifespan opens the store and runs the ingest worker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from cloud_api.api.routes import api_router
from cloud_api.core.config import Settings
from cloud_api.ingest.worker import IngestWorker
from cloud_api.storage.sqlite_store import SqliteStore


def create_app(settings: Settings) -> FastAPI:
    """Build the API for these settings; nothing starts until the app's lifespan runs."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = SqliteStore(settings.database_file, dead_letter_max_bytes=settings.dead_letter_max_bytes)
        store.open()
        worker = IngestWorker(settings, store) if settings.ingest_enabled else None
        app.state.store = store
        app.state.ingest = worker
        if worker is not None:
            worker.start()
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()
            store.close()

    app = FastAPI(
        title="FieldLine cloud API",
        version="1.0.0",
        summary="Ingest of edge events over MQTT, device state and shed counts",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.include_router(api_router())
    return app
