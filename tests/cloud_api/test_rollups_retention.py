"""Minute/hour rollups of the count series give the same trend as the raw events; retention cleans up.

Run on SQLite and on PostgreSQL (the ``store`` fixture), where retention drops whole partitions."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from fieldline.contract import Event
from cloud_api.services.retention import RetentionJob
from cloud_api.storage import sqlite_rollups
from cloud_api.storage.records import CountBucket
from cloud_api.storage.sqlite_retention import RetentionPolicy
from cloud_api.storage.sqlite_store import SqliteStore
from tests.cloud_api.cloudapi_builders import T0, count_event, wait_until

MIN = 60_000
HOUR = 3_600_000
DAY = 24 * HOUR
H0 = (T0 // DAY) * DAY  # midnight UTC: aligned to minutes and hours


def random_events(seed: int, n: int = 400) -> list[Event]:
    """Several keys per shed, out-of-order arrival, same-ts ties broken by boot/seq, empty counts."""
    rng = random.Random(seed)
    events = []
    for seq in range(n):
        counts = {} if rng.random() < 0.05 else {
            label: rng.randint(0, 9) for label in rng.sample(["ripe", "half_ripe", "green"], rng.randint(1, 3))}
        events.append(count_event(
            rng.choice(["shed-1", "shed-2"]), H0 + rng.randint(0, 6 * HOUR) // 1000 * 1000, counts,
            device=rng.choice(["edge-1", "edge-2"]), camera=rng.choice(["cam-1", "cam-2"]),
            row=rng.choice(["r1", "r2", None]), seq=seq, boot=rng.randint(0, 1),
        ))
    rng.shuffle(events)
    return events


def reference(events: list[Event], shed: str, start: int, end: int, bucket: int) -> list[CountBucket]:
    """Straight from the definition: per bucket, the last event per (device, camera, row), summed."""
    last: dict[tuple[int, str, str, str | None], Event] = {}
    for e in events:
        if e.zone.id != shed or not start <= e.ts_ms < end:
            continue
        key = (start + (e.ts_ms - start) // bucket * bucket, e.device, e.camera, e.zone.row)
        held = last.get(key)
        if held is None or (e.ts_ms, e.boot, e.seq, e.id) > (held.ts_ms, held.boot, held.seq, held.id):
            last[key] = e
    totals: dict[int, dict[str, int]] = {}
    for (b, *_), e in last.items():
        into = totals.setdefault(b, {})
        for label, n in e.counts.items():
            into[label] = into.get(label, 0) + n
    return [CountBucket(ts_ms=b, counts=totals[b]) for b in sorted(totals)]


def statements(store: Any) -> list[str]:
    seen: list[str] = []
    store._conn().set_trace_callback(seen.append)  # noqa: SLF001 - which table answered
    return seen


@pytest.mark.parametrize("seed", [1, 2])
def test_rollups_answer_like_the_raw_events(store: Any, seed: int) -> None:
    events = random_events(seed)
    for i in range(0, len(events), 50):  # several transactions, arrival order shuffled
        store.write_events(events[i:i + 50], received_ms=T0)
    trace = statements(store)
    cases = [
        (H0, H0 + 6 * HOUR, HOUR, "count_rollup_hour"),
        (H0, H0 + 6 * HOUR + 17_000, 2 * HOUR, "count_rollup_hour"),  # tail unit cut by `to`: raw tail
        (H0 + MIN * 7, H0 + 5 * HOUR, 5 * MIN, "count_rollup_minute"),
        (H0 + MIN * 7, H0 + 5 * HOUR + 12_345, 30 * MIN, "count_rollup_minute"),
        (H0 + 1234, H0 + 5 * HOUR, 10 * MIN, None),  # from not aligned: raw events
        (H0, H0 + 5 * HOUR, 90_000, None),  # bucket not a whole number of minutes: raw events
    ]
    for start, end, bucket, table in cases:
        for shed in ("shed-1", "shed-2"):
            trace.clear()
            got = store.shed_count_buckets(shed, start, end, bucket)
            assert got == reference(events, shed, start, end, bucket), (start, end, bucket, shed)
            used = " ".join(trace)
            if table is None:
                assert "count_rollup" not in used
            else:
                assert table in used


def test_rollups_are_backfilled_once_for_an_existing_database(tmp_path: Path) -> None:
    events = random_events(3, 200)
    first = SqliteStore(tmp_path / "fl.db")
    first.open()
    first.write_events(events, received_ms=T0)
    expected = first.shed_count_buckets("shed-1", H0, H0 + 6 * HOUR, HOUR)
    first.close()
    with sqlite3.connect(tmp_path / "fl.db") as conn:  # a database from before the rollups existed
        conn.execute("DROP TABLE count_rollup_minute")
        conn.execute("DROP TABLE count_rollup_hour")
    again = SqliteStore(tmp_path / "fl.db")
    again.open()
    try:
        assert again._conn().execute("SELECT count(*) FROM count_rollup_hour").fetchone()[0] > 0  # noqa: SLF001
        assert again.shed_count_buckets("shed-1", H0, H0 + 6 * HOUR, HOUR) == expected
        assert again.shed_count_buckets("shed-1", H0, H0 + 6 * HOUR, MIN) == reference(
            events, "shed-1", H0, H0 + 6 * HOUR, MIN)
    finally:
        again.close()


def table_count(store: Any, table: str) -> int:
    return store._conn().execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: SLF001


def test_retention_deletes_by_age_per_table_and_keeps_the_latest_counts(store: Any) -> None:
    now = H0 + 100 * DAY
    old = [count_event("shed-1", now - 50 * DAY + i * MIN, {"ripe": i}, seq=i) for i in range(5)]
    mid = [count_event("shed-1", now - 20 * DAY + i * MIN, {"ripe": i}, seq=10 + i) for i in range(5)]
    lone = count_event("shed-2", now - 60 * DAY, {"green": 7}, device="edge-2", seq=1)  # shed-2's latest
    new = [count_event("shed-1", now - HOUR + i * MIN, {"ripe": i}, seq=20 + i) for i in range(5)]
    store.write_events([*old, *mid, lone, *new], received_ms=now - 50 * DAY)
    conn = store._conn()  # noqa: SLF001
    conn.execute("INSERT INTO dead_letters (received_ms, topic, reason, raw, raw_size) VALUES (?,?,?,?,?)",
                 (now - 40 * DAY, "t", "not JSON", b"x", 1))
    conn.execute("INSERT INTO snapshots (event_id, site, device, jpeg, received_ms) VALUES (?,?,?,?,?)",
                 (old[0].id, "s", "edge-1", b"\xff\xd8\xff", now - 50 * DAY))
    sheds_before = store.list_sheds()

    result = store.apply_retention(RetentionPolicy(events_days=30, minute_rollups_days=10, hour_rollups_days=45), now)

    assert (result.events, result.count_points, result.snapshots, result.dead_letters) == (5, 5, 1, 1)
    remaining = {row[0] for row in conn.execute("SELECT id FROM events")}
    assert remaining == {e.id for e in [*mid, lone, *new]}  # lone is older but is shed-2's latest count
    assert table_count(store, "count_points") == 11
    assert store.list_sheds() == sheds_before
    minutes = {row[0] for row in conn.execute("SELECT bucket_ms FROM count_rollup_minute")}
    assert min(minutes) >= now - 10 * DAY and len(minutes) == 5  # only the last hour's minutes
    hours = {row[0] for row in conn.execute("SELECT bucket_ms FROM count_rollup_hour")}
    assert hours == {(now - 20 * DAY) // HOUR * HOUR, (now - HOUR) // HOUR * HOUR}
    # the hourly trend over the last 45 days still works from the hour rollups after the raw events went
    trend = store.shed_count_buckets("shed-1", now - 45 * DAY, now, DAY)
    assert [b.counts for b in trend] == [{"ripe": 4}, {"ripe": 4}]

    again = store.apply_retention(RetentionPolicy(30, 10, 45), now)
    assert (again.events, again.minute_rollups, again.hour_rollups) == (0, 0, 0)


def test_retention_keep_forever_and_periodic_job(store: Any) -> None:
    now = H0 + 100 * DAY
    store.write_events([count_event("shed-1", now - 99 * DAY, {"ripe": 1}, seq=1),
                        count_event("shed-1", now - HOUR, {"ripe": 2}, seq=2)], received_ms=now)
    nothing = store.apply_retention(RetentionPolicy(None, None, None), now)
    assert not any(vars(nothing).values())

    job = RetentionJob(lambda policy, _: store.apply_retention(policy, now), RetentionPolicy(30, None, None), 0.05)
    job.start()
    try:
        wait_until(lambda: job.runs >= 2, 5, "two retention runs")
    finally:
        job.stop()
    assert job.errors == 0 and table_count(store, "events") == 1
    assert not RetentionJob(store.apply_retention, RetentionPolicy(None, None, None), 1).has_work


def test_rollup_table_choice() -> None:
    assert sqlite_rollups.table_for(H0, HOUR) is sqlite_rollups.HOUR
    assert sqlite_rollups.table_for(H0 + MIN, HOUR) is sqlite_rollups.MINUTE
    assert sqlite_rollups.table_for(H0, 5 * MIN) is sqlite_rollups.MINUTE
    assert sqlite_rollups.table_for(H0 + 1, HOUR) is None
    assert sqlite_rollups.table_for(H0, 30_000) is None


def test_retention_takes_the_qa_rows_of_old_inspections_with_them(store: Any) -> None:
    from tests.cloud_api.qa_builders import inspection

    now = H0 + 100 * DAY
    old = [inspection("line-1", now - 40 * DAY + i, "reject", seq=i, defects=[("scratch", 0.9, (0.1, 0.2, 0.3, 0.4))])
           for i in range(3)]
    new = [inspection("line-1", now - DAY + i, v, seq=10 + i, defects=[("pit", 0.8, (0.5, 0.6, 0.7, 0.8))] if v == "reject"
                      else []) for i, v in enumerate(["pass", "reject"])]
    store.write_events([*old, *new], received_ms=now)
    assert table_count(store, "inspections") == 5 and table_count(store, "reject_defects") == 4

    result = store.apply_retention(RetentionPolicy(events_days=30, minute_rollups_days=None, hour_rollups_days=None),
                                   now)

    assert (result.events, result.inspections) == (3, 3)
    conn = store._conn()  # noqa: SLF001
    assert {r[0] for r in conn.execute("SELECT event_id FROM inspections")} == {e.id for e in new}
    assert {r[0] for r in conn.execute("SELECT event_id FROM reject_defects")} == {new[1].id}


def test_climate_readings_roll_up_hourly_then_go_and_forecasts_are_pruned(store: Any, tmp_path: Path) -> None:
    from cloud_api.core.config import Settings
    from cloud_api.services.retention import policy_from
    from fieldline.contract import Telemetry

    now = H0 + 100 * DAY

    def reading(ts_ms: int, value: float, sensor: str = "t1") -> Telemetry:
        return Telemetry(site="s", device="gw", sensor=sensor, shed="shed-1", quantity="temperature", value=value,
                         unit="°C", ts_ms=ts_ms)

    old = [reading(now - 50 * DAY + i * 10 * MIN, 10.0 + i) for i in range(12)]  # two hours, 50 days ago
    old.append(reading(now - 50 * DAY + 30 * MIN, 30.0, sensor="t2"))
    recent = [reading(now - HOUR + i * 10 * MIN, 20.0) for i in range(6)]
    assert store.write_telemetry([*old, *recent], now) == 19
    store.put_temperature_forecast("s", "", [(now - 40 * DAY, 15.0), (now + DAY, 22.0)], now - 40 * DAY)
    start = now - 50 * DAY
    before = store.climate_series("shed-1", "temperature", start, start + 2 * HOUR, HOUR)
    week = store.climate_series("shed-1", "temperature", now - 51 * DAY, now, DAY)

    policy = policy_from(Settings(data_dir=tmp_path, retention_climate_days=30))
    assert (policy.climate_days, policy.climate_hour_rollups_days) == (30, None)
    result = store.apply_retention(policy, now)
    assert (result.climate_points, result.temperature_forecasts, result.climate_hourly) == (13, 1, 0)
    assert table_count(store, "climate_points") == 6 and table_count(store, "climate_hourly") == 3
    # the old hours read back with the same mean, min, max and count as from the raw readings
    assert store.climate_series("shed-1", "temperature", start, start + 2 * HOUR, HOUR) == before
    assert store.climate_series("shed-1", "temperature", now - 51 * DAY, now, DAY) == week
    assert store.temperature_forecast("s", "shed-1", now - 60 * DAY, now + 2 * DAY) == [(now + DAY, 22.0)]
    assert store.apply_retention(policy, now).climate_points == 0

    late = store.apply_retention(RetentionPolicy(None, None, None, climate_days=30, climate_hour_rollups_days=45), now)
    assert late.climate_hourly == 3 and table_count(store, "climate_hourly") == 0
    assert [b.n for b in store.climate_series("shed-1", "temperature", now - 51 * DAY, now, DAY)] == [6]


def test_two_workers_folding_climate_together_count_each_reading_once(open_store: Any) -> None:
    import threading

    from fieldline.contract import Telemetry

    now = H0 + 100 * DAY
    one, two = open_store(), open_store()
    readings = [Telemetry(site="s", device="gw", sensor=f"t{i % 3}", shed="shed-1", quantity="temperature",
                          value=float(i), unit="°C", ts_ms=now - 40 * DAY + i * 7 * MIN) for i in range(600)]
    assert one.write_telemetry(readings, now) == 600
    policy = RetentionPolicy(None, None, None, climate_days=30)
    results: list[Any] = []
    workers = [threading.Thread(target=lambda s=s: results.append(s.apply_retention(policy, now))) for s in (one, two)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert sum(r.climate_points for r in results) == 600 and table_count(one, "climate_points") == 0
    n, total = one._conn().execute("SELECT sum(n), sum(total) FROM climate_hourly").fetchone()  # noqa: SLF001
    assert (n, total) == (600, sum(range(600)))
