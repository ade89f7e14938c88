"""``GET /api/v1/health``: open liveness for probes and load balancers, details for token holders.

Without a token the answer is only ``{"status": "ok" | "degraded"}``; with any valid token (any role) it
adds the database and MQTT state and the ingest and WebSocket counters. A wrong token is a 401, never a
silent fallback to the short answer, so a monitor with an expired token notices.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field

from cloud_api.api.deps import HubDep, Principal, SettingsDep, StoreDep, WorkerDep, require_token
from cloud_api.api.deps import _bearer as bearer_scheme  # the one scheme the API documents as "HTTPBearer"
from cloud_api.api.schemas import HealthOut, IngestCountersOut, LiveCountersOut, MqttHealthOut
from cloud_api.ingest.worker import IngestWorker
from cloud_api.services.live import LiveHub

router = APIRouter(tags=["health"])

STATUS_DESCRIPTION = "ok, or degraded when the database does not answer or ingest is enabled but not connected"


class LivenessOut(BaseModel):
    """What anyone may read: the process answers, and whether it is healthy."""

    status: Literal["ok", "degraded"] = Field(description=STATUS_DESCRIPTION)


def optional_principal(
    request: Request,
    settings: SettingsDep,
    store: StoreDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal | None:
    """None without an Authorization header; a checked principal (401 if wrong) with one."""
    if credentials is None:
        return None
    return require_token(request, settings, store, credentials)


def _details(db_ok: bool, status: Literal["ok", "degraded"], worker: IngestWorker | None, hub: LiveHub) -> HealthOut:
    ingest = None
    mqtt = MqttHealthOut(enabled=worker is not None, connected=False, topic_filter=None)
    if worker is not None:
        c = worker.counters()
        ingest = IngestCountersOut(
            received=c.received, stored=c.stored, duplicates=c.duplicates, id_collisions=c.id_collisions,
            dead_letters=c.dead_letters, ignored=c.ignored, store_errors=c.store_errors,
            queue_depth=worker.queue_depth, last_ingest_ms=c.last_ingest_ms,
        )
        mqtt = MqttHealthOut(enabled=True, connected=worker.connected, topic_filter=worker.topic_filter)
    lc = hub.counters()
    live = LiveCountersOut(subscribers=lc.subscribers, published=lc.published, dropped=lc.dropped)
    return HealthOut(status=status, db_ok=db_ok, mqtt=mqtt, ingest=ingest, live=live)


@router.get(
    "/health",
    response_model=HealthOut | LivenessOut,
    summary="Liveness for anyone; database, MQTT state and ingest counters with a token",
    description=(
        "No token: `{\"status\": \"ok\" | \"degraded\"}` only (for probes and load balancers; always HTTP 200 "
        "while the process runs). With any valid bearer token (any role): also `db_ok`, `mqtt` (enabled, "
        "connected, topic filter), `ingest` counters (null when ingest is off) and `live` WebSocket counters. "
        "A wrong token is 401."
    ),
    responses={200: {"description": "LivenessOut without a token, HealthOut with one"},
               401: {"description": "A bearer token was sent but is not valid"}},
    openapi_extra={"security": [{}]},  # appended to the bearer requirement: the token is optional
)
def health(
    store: StoreDep, worker: WorkerDep, hub: HubDep,
    principal: Annotated[Principal | None, Depends(optional_principal)],
) -> HealthOut | LivenessOut:
    db_ok = store.ping()
    status: Literal["ok", "degraded"] = "ok" if db_ok and (worker is None or worker.connected) else "degraded"
    if principal is None:
        return LivenessOut(status=status)
    return _details(db_ok, status, worker, hub)
