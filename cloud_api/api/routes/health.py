from __future__ import annotations

from fastapi import APIRouter

from cloud_api.api.deps import HubDep, StoreDep, WorkerDep
from cloud_api.api.schemas import HealthOut, IngestCountersOut, LiveCountersOut, MqttHealthOut

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthOut, summary="Liveness, database and MQTT state, ingest counters")
def health(store: StoreDep, worker: WorkerDep, hub: HubDep) -> HealthOut:
    db_ok = store.ping()
    ingest = None
    mqtt = MqttHealthOut(enabled=worker is not None, connected=False, topic_filter=None)
    if worker is not None:
        c = worker.counters()
        ingest = IngestCountersOut(
            received=c.received, stored=c.stored, duplicates=c.duplicates, dead_letters=c.dead_letters,
            ignored=c.ignored, store_errors=c.store_errors, queue_depth=worker.queue_depth,
            last_ingest_ms=c.last_ingest_ms,
        )
        mqtt = MqttHealthOut(enabled=True, connected=worker.connected, topic_filter=worker.topic_filter)
    healthy = db_ok and (worker is None or worker.connected)
    lc = hub.counters()
    live = LiveCountersOut(subscribers=lc.subscribers, published=lc.published, dropped=lc.dropped)
    return HealthOut(status="ok" if healthy else "degraded", db_ok=db_ok, mqtt=mqtt, ingest=ingest, live=live)
