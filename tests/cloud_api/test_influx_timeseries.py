"""The InfluxDB write path against a real server: VictoriaMetrics speaks InfluxDB line protocol at
/api/v2/write (what influxdb-client sends); we read the samples back with its /api/v1/export.

Flux cannot be tested here (no InfluxDB 2 server is installable, VictoriaMetrics has no Flux engine), so
the Flux read is only checked as query text.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fieldline.contract import Event
from cloud_api.storage.influx_store import InfluxTimeSeries, counts_flux
from tests.cloud_api.cloudapi_builders import SITE, ApiServer, Publisher, event_payload, settings_for, wait_until
from tests.support.mosquitto import MosquittoBroker
from tests.support.victoria import VictoriaMetrics


@pytest.fixture
def vm() -> Iterator[VictoriaMetrics]:
    with VictoriaMetrics() as server:
        yield server


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def series(vm: VictoriaMetrics, name: str) -> dict[tuple[tuple[str, str], ...], list[tuple[int, float]]]:
    """{sorted labels without __name__: [(ts_ms, value), ...]} for one metric."""
    result = {}
    for line in vm.export(f'{{__name__="{name}"}}'):
        labels = tuple(sorted((k, v) for k, v in line["metric"].items() if k != "__name__"))
        result[labels] = sorted(zip(line["timestamps"], line["values"], strict=True))
    return result


def exported_points(vm: VictoriaMetrics, name: str) -> int:
    return sum(len(v) for v in series(vm, name).values())


def inspection(seq: int, ts_ms: int, verdict: str, detections: list[str]) -> Event:
    return Event.model_validate(event_payload(
        id=f"cam-line-0-{seq}", device="edge-2", seq=seq, ts_ms=ts_ms, kind="inspection", verdict=verdict,
        zone={"kind": "line", "id": "line-1", "row": None}, counts={},
        detections=[{"label": label, "score": 0.8, "box": [0.1, 0.1, 0.3, 0.3]} for label in detections],
    ))


def test_points_tags_and_values_reach_the_server(vm: VictoriaMetrics) -> None:
    t = now_ms() - 10_000
    writer = InfluxTimeSeries(url=vm.url, token="unused-by-victoria", org="fieldline", bucket="fieldline",
                              flush_interval_s=0.1)
    writer.start()
    try:
        writer.write([
            Event.model_validate(event_payload(seq=1, ts_ms=t, counts={"ripe": 4, "green": 2})),
            Event.model_validate(event_payload(seq=2, ts_ms=t + 1000, counts={"ripe": 5},
                                               zone={"kind": "shed", "id": "shed-2", "row": None})),
            inspection(3, t + 2000, "reject", ["scratches", "scratches", "pitted_surface"]),
            inspection(4, t + 3000, "pass", []),
        ])
        assert writer.flush(10), writer.stats()
    finally:
        writer.close()
    stats = writer.stats()
    assert (stats.points_written, stats.points_dropped, stats.write_failures, stats.pending) == (5, 0, 0, 0)

    counts = wait_until(lambda: exported_points(vm, "counts_n") == 3 and series(vm, "counts_n"), 10, "count points")
    base = {"site": SITE, "device": "edge-1", "camera": "cam-1"}
    assert counts == {
        tuple(sorted({**base, "zone": "shed-1", "row": "r1", "label": "ripe"}.items())): [(t, 4)],
        tuple(sorted({**base, "zone": "shed-1", "row": "r1", "label": "green"}.items())): [(t, 2)],
        tuple(sorted({**base, "zone": "shed-2", "label": "ripe"}.items())): [(t + 1000, 5)],  # no row: no tag
    }
    wait_until(lambda: exported_points(vm, "inspections_parts") == 2, 10, "inspection points")
    tags = {"site": SITE, "device": "edge-2", "line": "line-1"}
    reject = tuple(sorted({**tags, "verdict": "reject"}.items()))
    accept = tuple(sorted({**tags, "verdict": "pass"}.items()))
    assert series(vm, "inspections_parts") == {reject: [(t + 2000, 1)], accept: [(t + 3000, 1)]}
    assert series(vm, "inspections_defects") == {reject: [(t + 2000, 3)], accept: [(t + 3000, 0)]}
    assert series(vm, "inspections_defect_scratches") == {reject: [(t + 2000, 2)]}
    assert series(vm, "inspections_defect_pitted_surface") == {reject: [(t + 2000, 1)]}


def test_unreachable_server_is_retried_with_backoff_and_nothing_is_lost(vm: VictoriaMetrics) -> None:
    t = now_ms() - 60_000
    vm.stop()
    writer = InfluxTimeSeries(url=vm.url, token="x", org="o", bucket="b", batch_size=10, flush_interval_s=0.05,
                              retry_min_s=0.05, retry_max_s=0.2, timeout_s=1)
    writer.start()
    try:
        writer.write([Event.model_validate(event_payload(seq=i, ts_ms=t + i, counts={"ripe": i})) for i in range(25)])
        assert not writer.flush(0.5)
        failed = wait_until(lambda: writer.stats().write_failures >= 3 and writer.stats(), 10, "retries")
        assert failed.points_written == 0 and failed.pending == 25 - 10 and "Connection" in (failed.last_error or "")
        vm.start()
        assert writer.flush(10), writer.stats()
    finally:
        writer.close()
    assert writer.stats().points_written == 25 and writer.stats().points_dropped == 0
    wait_until(lambda: exported_points(vm, "counts_n") == 25, 10, "all 25 points after the restart")


def test_buffer_overflow_drops_oldest_and_counts_them(vm: VictoriaMetrics) -> None:
    vm.stop()
    writer = InfluxTimeSeries(url=vm.url, token="x", org="o", bucket="b", batch_size=5, buffer_max=10,
                              flush_interval_s=0.05, retry_min_s=0.05, retry_max_s=0.1, timeout_s=1)
    writer.start()
    try:
        t = now_ms() - 60_000
        for i in range(30):
            writer.write([Event.model_validate(event_payload(seq=i, ts_ms=t + i, counts={"ripe": 1}))])
        stats = writer.stats()
        assert stats.points_dropped >= 15 and stats.pending <= 10
    finally:
        writer.close(timeout=0.2)


def ingest_settings(tmp_path: Path, broker: MosquittoBroker, vm: VictoriaMetrics) -> Any:
    return settings_for(
        tmp_path, broker, timeseries="influx", influx_url=vm.url, influx_token="t", influx_org="fieldline",
        influx_bucket="fieldline", influx_flush_interval_s=0.1, influx_retry_min_s=0.05, influx_retry_max_s=0.3,
        influx_timeout_s=1,
    )


def test_ingest_mirrors_to_influx_and_keeps_storing_while_it_is_down(
    tmp_path: Path, broker: MosquittoBroker, vm: VictoriaMetrics
) -> None:
    t = now_ms() - 120_000
    with ApiServer(ingest_settings(tmp_path, broker, vm)) as api, Publisher(broker) as edge:
        assert api.worker.wait_connected(10)
        timeseries = api.server.config.app.state.timeseries
        edge.event(event_payload(seq=1, ts_ms=t, counts={"ripe": 3}))
        edge.event(event_payload(seq=1, ts_ms=t, counts={"ripe": 3}))  # duplicate: SQLite dedups, not mirrored
        wait_until(lambda: api.worker.counters().received == 2, 10, "2 messages")
        api.worker.flush(10)
        assert timeseries.flush(10)
        wait_until(lambda: exported_points(vm, "counts_n") == 1, 10, "the first point")

        vm.stop()  # InfluxDB outage: ingestion into SQLite goes on, failures are counted
        for seq in range(2, 12):
            edge.event(event_payload(seq=seq, ts_ms=t + seq * 1000, counts={"ripe": seq}))
        wait_until(lambda: api.worker.counters().received == 12, 10, "12 messages")
        api.worker.flush(10)
        assert len(api.get("/events", limit=100)) == 11
        assert api.worker.counters().stored == 11 and api.worker.counters().duplicates == 1
        wait_until(lambda: timeseries.stats().write_failures >= 2, 10, "failed influx writes")
        metrics = api.anon.get(f"{api.root}/metrics").text
        assert 'fieldline_timeseries_write_failures_total{backend="influx"}' in metrics
        assert api.get("/health")["db_ok"] is True

        vm.start()  # back: the buffered points go out, new writes resume
        edge.event(event_payload(seq=12, ts_ms=t + 12_000, counts={"ripe": 12}))
        wait_until(lambda: api.worker.counters().stored == 12, 10, "the 12th event")
        assert timeseries.flush(10), timeseries.stats()
        points = wait_until(lambda: exported_points(vm, "counts_n") == 12 and series(vm, "counts_n"), 10,
                            "all 12 points")
        (values,) = points.values()
        assert values == [(t, 3)] + [(t + s * 1000, s) for s in range(2, 13)]
        stats = timeseries.stats()
        assert stats.points_written == 12 and stats.points_dropped == 0 and stats.write_failures >= 2


def test_flux_query_text_only() -> None:
    """Flux cannot be tested here (no InfluxDB 2, no Flux engine): check the text we would send."""
    flux = counts_flux("fieldline", 'shed-"1', 1_700_000_000_000, 1_700_003_600_000, 3_600_000)
    assert flux.startswith('from(bucket: "fieldline")')
    assert "range(start: 2023-11-14T22:13:20Z, stop: 2023-11-14T23:13:20Z)" in flux
    assert 'r._measurement == "counts" and r._field == "n" and r.zone == "shed-\\"1"' in flux
    assert "aggregateWindow(every: 3600000ms, fn: last" in flux and '|> group(columns: ["_time", "label"])' in flux
