"""Delivery guarantees: persistent sessions keep messages across API restarts; MQTT 5 shared groups split load."""

from __future__ import annotations

from pathlib import Path

from cloud_api.ingest.worker import IngestWorker
from cloud_api.storage.records import EventQuery
from cloud_api.storage.sqlite_store import SqliteStore
from tests.cloud_api.cloudapi_builders import ApiServer, Publisher, event_payload, settings_for, wait_until
from tests.support.mosquitto import MosquittoBroker


def test_events_published_while_the_api_is_down_arrive_after_restart(tmp_path: Path, broker: MosquittoBroker) -> None:
    settings = settings_for(tmp_path, broker, mqtt_client_id="api-persistent")
    with ApiServer(settings) as api:
        assert api.worker.wait_connected(10)  # the broker now holds a persistent session for this client id
    with Publisher(broker) as edge:
        for seq in range(1, 6):
            edge.event(event_payload(seq=seq))
    with ApiServer(settings) as api:
        wait_until(lambda: api.worker.counters().stored == 5, 10, "the queued events")
        assert len(api.get("/events")) == 5


def test_shared_subscription_splits_messages_between_workers(tmp_path: Path, broker: MosquittoBroker) -> None:
    store = SqliteStore(tmp_path / "shared.db")
    store.open()
    workers = [
        IngestWorker(settings_for(tmp_path, broker, mqtt_protocol="5", shared_group="fieldline-api",
                                  mqtt_client_id=f"api-shared-{i}"), store)
        for i in range(2)
    ]
    try:
        for worker in workers:
            worker.start()
            assert worker.wait_connected(10)
            assert worker.topic_filter == "$share/fieldline-api/fieldline/v1/+/+/#"
        with Publisher(broker, v5=True) as edge:
            for seq in range(1, 41):
                edge.event(event_payload(seq=seq))
        wait_until(lambda: sum(w.counters().received for w in workers) >= 40, 10, "40 messages")
        for worker in workers:
            worker.flush(10)
        received = [w.counters().received for w in workers]
        assert sum(received) == 40 and min(received) > 0, received  # each message went to exactly one worker
        assert sum(w.counters().stored for w in workers) == 40
        assert len(store.list_events(EventQuery(limit=1000))) == 40
    finally:
        for worker in workers:
            worker.stop()
        store.close()
