"""Ingest through a real Mosquitto: events reach /sheds and /events, duplicates and bad payloads are handled."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from fieldline.contract import alerts_topic, command_topic, snapshot_topic, stats_topic
from tests.cloud_api.cloudapi_builders import (
    SITE,
    T0,
    ApiServer,
    Publisher,
    event_payload,
    settings_for,
    shed_v1,
    wait_until,
)
from tests.support.mosquitto import MosquittoBroker


@pytest.fixture
def api(tmp_path: Path, broker: MosquittoBroker) -> Iterator[ApiServer]:
    with ApiServer(settings_for(tmp_path, broker, snapshot_max_bytes=1024)) as server:
        assert server.worker.wait_connected(10), "ingest worker did not connect"
        yield server


@pytest.fixture
def edge(broker: MosquittoBroker) -> Iterator[Publisher]:
    with Publisher(broker) as publisher:
        yield publisher


def processed(api: ApiServer, n: int) -> None:
    """Wait until n messages were received and every one of them has an outcome."""
    wait_until(lambda: api.worker.counters().received >= n, 10, f"{n} messages to arrive")
    api.worker.flush(10)


def test_valid_events_reach_sheds_and_events(api: ApiServer, edge: Publisher) -> None:
    edge.event(event_payload(seq=1, counts={"ripe": 4, "green": 2}))
    edge.event(event_payload(seq=2, ts_ms=T0 + 1000, counts={"ripe": 5}, zone={"kind": "shed", "id": "shed-1", "row": "r2"}))
    edge.event(event_payload(seq=3, ts_ms=T0 + 2000, counts={"ripe": 1}, zone={"kind": "shed", "id": "shed-2", "row": None}))
    processed(api, 3)

    assert shed_v1(api.get("/sheds")) == [
        {"id": "shed-1", "name": "shed-1", "counts": {"ripe": 9, "green": 2}, "updated_ms": T0 + 1000},
        {"id": "shed-2", "name": "shed-2", "counts": {"ripe": 1}, "updated_ms": T0 + 2000},
    ]
    assert [e["id"] for e in api.get("/events")] == ["edge-1-0-3", "edge-1-0-2", "edge-1-0-1"]
    (device,) = api.get("/devices")
    assert device["device"] == "edge-1" and device["site"] == SITE and device["state"] == "unknown"
    health = api.get("/health")
    assert health["status"] == "ok" and health["mqtt"]["connected"] is True
    assert health["ingest"]["received"] == 3 and health["ingest"]["stored"] == 3
    assert health["ingest"]["last_ingest_ms"] is not None


def test_same_event_id_twice_is_stored_once(api: ApiServer, edge: Publisher) -> None:
    payload = event_payload(seq=7, counts={"ripe": 3})
    edge.event(payload)
    edge.event(payload)
    edge.event({**payload, "historical": True})  # a spool replay of the same event
    processed(api, 3)
    assert [e["id"] for e in api.get("/events")] == ["edge-1-0-7"]
    counters = api.worker.counters()
    assert (counters.stored, counters.duplicates, counters.dead_letters) == (1, 2, 0)
    assert api.get("/sheds")[0]["counts"] == {"ripe": 3}


BAD_EVENTS: list[tuple[str, bytes, str]] = [
    ("not json", b"{not json", "not JSON"),
    ("not utf-8", b"\xff\xfe\x00garbage", "not UTF-8"),
    ("missing field", json.dumps({k: v for k, v in event_payload(seq=11).items() if k != "ts_ms"}).encode(), "ts_ms"),
    ("bad box", json.dumps(event_payload(seq=12, detections=[{"label": "ripe", "score": 0.5, "box": [0.5, 0.5, 0.1, 1.7]}])).encode(), "detections.0.box"),
    ("unknown major", json.dumps(event_payload(seq=13, schema="fieldline.event/2")).encode(), "schema"),
    ("json array", b"[1, 2]", "JSON object"),
    ("spoofed device", json.dumps(event_payload(seq=14, device="edge-9")).encode(), "device"),
]


def test_malformed_payloads_are_dead_lettered_and_ingestion_continues(api: ApiServer, edge: Publisher) -> None:
    topic = f"fieldline/v1/{SITE}/edge-1/events"
    for _, raw, _ in BAD_EVENTS:
        edge.publish(topic, raw)
    edge.publish(f"fieldline/v1/{SITE}/Edge One/events", json.dumps(event_payload(seq=20)))  # bad device name
    edge.publish(f"fieldline/v1/{SITE}/edge-1/weather", b"{}")  # unknown topic suffix
    edge.event(event_payload(seq=21, counts={"ripe": 8}))  # a good one after all the bad ones
    processed(api, len(BAD_EVENTS) + 3)

    counters = api.worker.counters()
    assert (counters.dead_letters, counters.stored) == (len(BAD_EVENTS) + 2, 1)
    assert [e["id"] for e in api.get("/events")] == ["edge-1-0-21"]

    letters = list(reversed(api.get("/dead-letters")))  # oldest first, in publish order
    assert len(letters) == len(BAD_EVENTS) + 2
    for letter, (name, raw, needle) in zip(letters, BAD_EVENTS, strict=False):
        assert needle in letter["reason"], (name, letter["reason"])
        assert letter["raw_size"] == len(raw) and letter["topic"] == topic
    assert letters[0]["raw_text"] == "{not json"
    assert letters[1]["raw_base64"] == "//4AZ2FyYmFnZQ=="
    assert "device 'Edge One'" in letters[-2]["reason"]
    assert "unknown suffix 'weather'" in letters[-1]["reason"]
    assert api.get("/health")["ingest"]["dead_letters"] == len(BAD_EVENTS) + 2


def test_alerts_stats_snapshots_and_commands(api: ApiServer, edge: Publisher) -> None:
    alert = {"id": "a-1", "ts_ms": T0, "device": "edge-1", "site": SITE, "zone": None, "severity": "warning",
             "code": "overripe", "message": "shed-1 r2 has 12 overripe fruits", "dedup_key": "overripe/shed-1/r2"}
    stats = {"device": "edge-1", "site": SITE, "ts_ms": T0, "fps": 4.5, "latency_ms": {"p50": 30, "p95": 52},
             "spool_depth": 0, "dropped": 0, "cpu": 61.5}
    jpeg = b"\xff\xd8\xff\xe0" + b"\x00" * 100 + b"\xff\xd9"
    edge.publish(alerts_topic(SITE, "edge-1"), json.dumps(alert))
    edge.publish(alerts_topic(SITE, "edge-1"), json.dumps(alert))  # duplicate alert id
    edge.publish(stats_topic(SITE, "edge-1"), json.dumps(stats), qos=0)
    edge.publish(snapshot_topic(SITE, "edge-1", "edge-1-0-1"), jpeg)
    edge.publish(snapshot_topic(SITE, "edge-1", "edge-1-0-2"), b"GIF89a not a jpeg")
    edge.publish(snapshot_topic(SITE, "edge-1", "edge-1-0-3"), b"\xff\xd8\xff" + b"\x00" * 2000)  # > 1024 bytes
    edge.publish(command_topic(SITE, "edge-1", "restart"), b'{"anything": 1}')  # cloud->edge: ignored
    processed(api, 7)

    counters = api.worker.counters()
    assert (counters.stored, counters.duplicates, counters.dead_letters, counters.ignored) == (3, 1, 2, 1)
    reasons = [d["reason"] for d in api.get("/dead-letters")]
    assert any("limit is 1024" in r for r in reasons) and any("not a JPEG" in r for r in reasons)
    (device,) = api.get("/devices")
    assert device["stats"]["fps"] == 4.5 and device["stats"]["latency_ms"]["p95"] == 52
    assert api.server.config.app.state.store.get_snapshot("edge-1-0-1") == jpeg
