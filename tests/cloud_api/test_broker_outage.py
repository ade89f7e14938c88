"""The broker goes away: the API keeps serving, the worker reconnects with backoff and ingests again."""

from __future__ import annotations

from pathlib import Path

from tests.cloud_api.cloudapi_builders import ApiServer, Publisher, event_payload, settings_for, wait_until
from tests.support.mosquitto import MosquittoBroker


def test_worker_reconnects_after_broker_restart(tmp_path: Path, broker: MosquittoBroker) -> None:
    with ApiServer(settings_for(tmp_path, broker)) as api:
        assert api.worker.wait_connected(10)
        with Publisher(broker) as edge:
            edge.event(event_payload(seq=1))
            wait_until(lambda: api.worker.counters().stored == 1, 10, "the first event")

        broker.stop()
        wait_until(lambda: not api.worker.connected, 10, "the worker to notice the outage")
        assert api.anon.get("/health").json() == {"status": "degraded"}
        health = api.get("/health")
        assert health["status"] == "degraded" and health["mqtt"]["connected"] is False and health["db_ok"]
        assert [e["id"] for e in api.get("/events")] == ["edge-1-0-1"]  # REST keeps working

        broker.start()
        assert api.worker.wait_connected(15), "the worker did not reconnect"
        with Publisher(broker) as edge:
            edge.event(event_payload(seq=2))
            wait_until(lambda: api.worker.counters().stored == 2, 10, "the event after the restart")
        assert [e["id"] for e in api.get("/events")] == ["edge-1-0-2", "edge-1-0-1"]
        assert api.anon.get("/health").json()["status"] == "ok"


def test_api_starts_while_the_broker_is_down(tmp_path: Path, broker: MosquittoBroker) -> None:
    broker.stop()
    with ApiServer(settings_for(tmp_path, broker)) as api:
        assert api.get("/health")["mqtt"]["connected"] is False
        broker.start()
        assert api.worker.wait_connected(15), "the worker did not connect once the broker came up"
        with Publisher(broker) as edge:
            edge.event(event_payload(seq=1))
            wait_until(lambda: api.worker.counters().stored == 1, 10, "the event")
