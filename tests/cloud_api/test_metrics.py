"""GET /metrics: Prometheus text with the ingest, store, time-series and WebSocket numbers; optional auth."""

from __future__ import annotations

import time
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from cloud_api.ingest.reasons import reason_class
from tests.cloud_api.cloudapi_builders import ApiServer, Publisher, event_payload, settings_for, wait_until
from tests.support.mosquitto import MosquittoBroker


def scrape(api: ApiServer, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = api.anon.get(f"{api.root}/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text) for s in family.samples
    }


def test_metrics_follow_ingest(tmp_path: Path, broker: MosquittoBroker) -> None:
    with ApiServer(settings_for(tmp_path, broker)) as api, Publisher(broker) as edge:
        assert api.worker.wait_connected(10)
        ts = time.time_ns() // 1_000_000 - 5_000
        edge.event(event_payload(seq=1, ts_ms=ts))
        edge.event(event_payload(seq=1, ts_ms=ts))  # duplicate
        edge.event(event_payload(seq=2, ts_ms=ts + 1000))
        edge.publish("fieldline/v1/site-a/edge-1/events", b"{not json")
        edge.publish("fieldline/v1/site-a/edge-1/events", b'{"schema": "fieldline.event/1"}')
        wait_until(lambda: api.worker.counters().received == 5, 10, "5 messages")
        api.worker.flush(10)
        with connect(f"ws://127.0.0.1:{api.port}/api/v1/ws", additional_headers={"Authorization": "Bearer test-token"}):
            wait_until(lambda: scrape(api)[("fieldline_ws_clients", ())] == 1, 5, "a WebSocket client")
        m = wait_until(lambda: (s := scrape(api))[("fieldline_ws_clients", ())] == 0 and s, 5, "client gone")

    assert m[("fieldline_ingest_received_total", ())] == 5
    assert m[("fieldline_ingest_stored_total", ())] == 2
    assert m[("fieldline_ingest_duplicates_total", ())] == 1
    assert m[("fieldline_ingest_dead_letters_total", (("reason_class", "not_json"),))] == 1
    assert m[("fieldline_ingest_dead_letters_total", (("reason_class", "validation"),))] == 1
    assert m[("fieldline_ingest_dead_letters_total", (("reason_class", "too_large"),))] == 0
    assert m[("fieldline_ingest_queue_depth", ())] == 0
    assert m[("fieldline_ingest_mqtt_connected", ())] == 1
    assert 3.0 < m[("fieldline_ingest_lag_seconds", ())] < 60  # now - ts of the last stored event (ts + 1 s)
    assert m[("fieldline_ingest_last_event_timestamp_seconds", ())] == (ts + 1000) / 1000
    writes = m[("fieldline_store_write_seconds_count", ())]
    assert writes >= 2 and m[("fieldline_store_write_seconds_bucket", (("le", "+Inf"),))] == writes
    assert m[("fieldline_store_write_seconds_sum", ())] > 0
    assert m[("fieldline_timeseries_points_written_total", (("backend", "sqlite"),))] == 0
    assert m[("fieldline_timeseries_write_failures_total", (("backend", "sqlite"),))] == 0


def test_metrics_can_require_a_token(tmp_path: Path) -> None:
    with ApiServer(settings_for(tmp_path, metrics_public=False)) as api:
        assert api.anon.get(f"{api.root}/metrics").status_code == 401
        m = scrape(api, Authorization="Bearer test-token")
        assert m[("fieldline_ingest_enabled", ())] == 0


def test_metrics_can_be_switched_off(tmp_path: Path) -> None:
    with ApiServer(settings_for(tmp_path, metrics_enabled=False)) as api:
        assert api.anon.get(f"{api.root}/metrics").status_code == 404


def test_reason_classes() -> None:
    assert reason_class("payload is 300000 bytes, the limit is 262144") == "too_large"
    assert reason_class("snapshot is 5000 bytes, the limit is 1024") == "too_large"
    assert reason_class("payload is not UTF-8 (byte 0)") == "not_utf8"
    assert reason_class("payload must be a JSON object, got list") == "not_json"
    assert reason_class("schema_: Value error, unsupported schema 'fieldline.event/2'") == "schema_version"
    assert reason_class("device: payload says 'edge-9' but the topic is for 'edge-1'") == "origin"
    assert reason_class("topic 'x' is not under fieldline/v1/{site}/{device}/") == "topic"
    assert reason_class("snapshot is not a JPEG (no FF D8 FF start of image marker)") == "snapshot"
    assert reason_class("internal error: KeyError: 'x'") == "internal"
    assert reason_class("ts_ms: Field required") == "validation"
