"""The FastAPI application factory; the lifespan opens the store, the live hub and runs the ingest worker."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from cloud_api.api import security_headers
from cloud_api.api.convert import live_message
from cloud_api.api.routes import api_router
from cloud_api.api.routes.metrics import metrics_router
from cloud_api.api.routes.training import router as training_router
from cloud_api.core import log_redaction
from cloud_api.core.config import Settings
from cloud_api.ingest.worker import IngestWorker
from cloud_api.services.login_throttle import LoginThrottle
from cloud_api.services.live import LiveHub
from cloud_api.services.retention import RetentionJob, policy_from
from cloud_api.services.users import ensure_user
from cloud_api.storage.records import StoreChange
from cloud_api.storage.factory import build_store
from cloud_api.storage.timeseries import build_timeseries, change_feeder
from cloud_api.web import mount_dashboard
from cloud_api.web.docs import mount_docs
from cloud_api.web.landing import router as landing_router
from cloud_api.web.signin import router as signin_router

log = logging.getLogger(__name__)

DESCRIPTION = """
Edge events arrive over MQTT and are stored; this API serves them to the phone app and the QA dashboard.

**Auth.** `POST /api/v1/auth/login` returns a bearer token; the static `Settings.api_tokens` are service
tokens with role admin. Roles: viewer (read only), operator (also ack/clear alerts, harvest plan and done
marks), admin (also users). Missing/wrong token: 401; role too low: 403.

**Alert ids** are the row ids of the alert lifecycle (decimal strings, e.g. `"17"`), not the payload ids:
payloads with the same `dedup_key` are grouped into one open alert (`count`, `last_ts_ms`).

**Pages** sign in with an HttpOnly session cookie (`POST /api/v1/auth/session`, or a one-time
`/signin/{code}` link from `POST /api/v1/auth/signin-links`); tokens never go in a URL.

**Live updates.** WebSocket `/api/v1/ws`, authenticated by an `Authorization: Bearer` header, a page's
session cookie, or a first message `{"type": "auth", "token": "..."}` (answered `{"type": "auth", "ok": true}`), pushes
`{"type": "count" | "inspection" | "alert" | "device", "data": {...}, "dropped": n}`: count/inspection = the
event without `detections`; alert = an alert as in `GET /alerts` plus `change`
(opened, repeated, acknowledged, cleared); device = device, site, state, boot, status_ts_ms, agent_version,
last_seen_ms. A wrong token closes the socket with code 4401.
"""


def create_app(settings: Settings) -> FastAPI:
    """Build the API for these settings; nothing starts until the app's lifespan runs."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log_redaction.install()  # no route takes a token in the query any more; old clients may still send one
        store = build_store(settings)  # storage: sqlite | postgres
        store.open()
        hub = LiveHub(queue_size=settings.ws_queue_size)
        hub.bind(asyncio.get_running_loop())

        def push(change: StoreChange) -> None:
            message = live_message(change)
            if message is not None:
                hub.publish(*message)

        store.add_change_listener(push)
        if hasattr(store, "add_remote_change_listener"):  # PostgreSQL: what other API workers stored, too
            store.add_remote_change_listener(push)
        timeseries = build_timeseries(settings)  # fed after each commit; SQLite stays the source of truth
        timeseries.start()
        store.add_change_listener(change_feeder(timeseries))
        retention = RetentionJob(store.apply_retention, policy_from(settings), settings.retention_interval_s)
        retention.start()
        admin = settings.bootstrap_admin
        if admin is not None and ensure_user(store, admin.username, admin.password.get_secret_value(), "admin"):
            log.info("created bootstrap admin user %r", admin.username)
        worker = IngestWorker(settings, store) if settings.ingest_enabled else None
        app.state.store = store
        app.state.live = hub
        app.state.ingest = worker
        app.state.timeseries = timeseries
        app.state.retention = retention
        if worker is not None:
            worker.start()
        try:
            yield
        finally:
            if worker is not None:
                worker.stop()
            retention.stop()
            timeseries.close()
            hub.close()
            store.close()

    app = FastAPI(
        title="FieldLine cloud API",
        version="1.1.0",
        summary="Ingest of edge events over MQTT, device state, shed overview, alerts, harvest plans, live updates",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # FastAPI's /docs and /redoc load a CDN; mount_docs serves them offline
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.login_throttle = LoginThrottle(settings.login_max_failures, lockout_s=settings.login_lockout_s)
    # request bodies capped; headers on every response; CORS only if configured
    security_headers.install(app, settings.cors_allow_origins, settings.max_request_bytes)
    app.include_router(api_router())
    app.include_router(training_router, prefix="/api/v1")  # training jobs (own role checks) and their runner
    if settings.metrics_enabled:
        app.include_router(metrics_router(settings))  # GET /metrics (see routes/metrics.py for auth)
    mount_dashboard(app)  # GET /qa and /qa/static
    app.include_router(landing_router)  # GET /: links to /qa, /docs, health, the phone app
    app.include_router(signin_router)  # GET /signin/{code}: a one-time link -> the session cookie
    mount_docs(app)  # GET /docs, /redoc and /docs/assets
    return app
