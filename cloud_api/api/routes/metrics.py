"""GET /metrics (Prometheus text format), outside /api/v1 as scrapers expect.

Public by default (``Settings.metrics_public``): it holds only counters, no device, shed or user data, and
the API binds to loopback by default. Set ``metrics_public: false`` when the API is reachable from
untrusted networks; then a bearer token (any role, e.g. a static service token in Prometheus'
``authorization`` config) is required, like the rest of the API.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from cloud_api.api.deps import require_token
from cloud_api.api.metrics import build_registry
from cloud_api.core.config import Settings


def metrics_router(settings: Settings) -> APIRouter:
    dependencies = [] if settings.metrics_public else [Depends(require_token)]
    router = APIRouter(tags=["metrics"], dependencies=dependencies)

    @router.get(
        "/metrics", response_class=Response, summary="Prometheus metrics: ingest, store, time series, WebSocket",
        responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text exposition"}},
    )
    def metrics(request: Request) -> Response:
        registry = getattr(request.app.state, "metrics_registry", None)
        if registry is None:
            registry = request.app.state.metrics_registry = build_registry(request.app)
        return Response(content=generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router
