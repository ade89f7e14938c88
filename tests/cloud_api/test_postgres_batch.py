"""The PostgreSQL ingest path writes exactly the rows the SQLite store writes, batch by batch: on the fast path
(every id of the batch new: one claim, array inserts, pipelined) and on the resolving path (repeats, an id
collision, an id twice in one batch), with inspections and a new install's alert on the way."""

from __future__ import annotations

from typing import Any

from cloud_api.storage.postgres_store import PostgresStore
from cloud_api.storage.sqlite_store import SqliteStore
from fieldline.contract import Event
from tests.cloud_api.cloudapi_builders import T0, count_event
from tests.cloud_api.qa_builders import inspection

INSTANCE_A, INSTANCE_B = "a1" * 8, "b2" * 8
MIN = 60_000

TABLES = {
    "events": "SELECT id, device, site, instance, camera, kind, zone_kind, zone_id, row, ts_ms, boot, seq,"
              " historical, payload, received_ms FROM events ORDER BY id",
    "count_points": "SELECT event_id, zone_kind, zone_id, row, device, camera, ts_ms, label, n FROM count_points"
                    " ORDER BY event_id, label",
    "latest_counts": "SELECT zone_kind, zone_id, site, device, camera, row_key, event_id, ts_ms, boot, seq"
                     " FROM latest_counts ORDER BY zone_kind, zone_id, site, device, camera, row_key",
    **{name: f"SELECT zone_kind, zone_id, bucket_ms, site, device, camera, row_key, ts_ms, boot, seq, event_id,"
             f" counts FROM {name} ORDER BY zone_kind, zone_id, bucket_ms, site, device, camera, row_key"
       for name in ("count_rollup_minute", "count_rollup_hour")},
    "devices": "SELECT site, device, state, last_seen_ms, first_seen_ms FROM devices ORDER BY site, device",
    "device_instances": "SELECT site, device, instance, first_seen_ms, last_seen_ms, repeats FROM device_instances"
                        " ORDER BY site, device, instance",
    "inspections": "SELECT event_id, line, site, device, camera, ts_ms, reject, snapshot FROM inspections"
                   " ORDER BY event_id",
    "reject_defects": "SELECT event_id, idx, line, ts_ms, label, score FROM reject_defects ORDER BY event_id, idx",
    "alerts": "SELECT id, device, site, severity, code, dedup_key FROM alerts ORDER BY id",
    "id_collisions": "SELECT event_id, stored_as, site, device FROM id_collisions ORDER BY event_id",
}


def counts(seq: int, ts_ms: int, ripe: int, *, device: str = "box", instance: str | None = None,
           camera: str = "cam-1", row: str | None = "r1") -> Event:
    base = count_event("shed-1", ts_ms, {"ripe": ripe, "green": seq % 3}, seq=seq, device=device, camera=camera,
                       row=row, boot=1)
    prefix = f"{device}-{instance}" if instance else device
    return base.model_copy(update={"id": f"{prefix}-1-{seq}", "instance": instance})


def batches() -> list[list[Event]]:
    first = [counts(s, T0 + s * 20 * MIN, s, camera=f"cam-{s % 2 + 1}", row=None if s % 3 else "r2")
             for s in range(1, 9)]
    first += [counts(s, T0 + s * MIN, s, device="hut", instance=INSTANCE_A) for s in range(1, 4)]
    first.append(inspection("line-1", T0 + 5, "reject", seq=1,
                            defects=[("scratch", 0.8, (0.1, 0.1, 0.3, 0.3)), ("dent", 0.6, (0.5, 0.5, 0.6, 0.7))]))
    wiped = [counts(s, T0 + 90 * MIN + s, 10 + s, device="hut", instance=INSTANCE_B) for s in (1, 2)]
    late = [counts(20, T0 + 30 * MIN, 40)]  # older than the latest count of its key: the rollup, not the latest
    again = [first[2], first[9], counts(3, T0 + 3 * MIN, 77, device="hut", instance=INSTANCE_A),  # a collision
             counts(21, T0 + 200 * MIN, 5), inspection("line-1", T0 + 9, "pass", seq=2)]
    twice = [counts(22, T0 + 201 * MIN, 6), counts(22, T0 + 201 * MIN, 6), counts(23, T0 + 202 * MIN, 1)]
    return [first, wiped + late, again, twice]


def rows(store: Any) -> dict[str, list[tuple[Any, ...]]]:
    return {name: [tuple(r) for r in store._conn().execute(sql).fetchall()] for name, sql in TABLES.items()}  # noqa: SLF001


def test_each_batch_leaves_the_same_rows_as_on_sqlite(tmp_path: Any, postgres_dsn: str) -> None:
    sqlite = SqliteStore(tmp_path / "fieldline.db")
    postgres = PostgresStore(postgres_dsn)
    sqlite.open()
    postgres.open()
    changes: list[tuple[str, str]] = []
    postgres.add_change_listener(lambda c: changes.append((c.kind, c.change)))
    outcomes = []
    for i, batch in enumerate(batches()):
        received = T0 + 1000 * i
        on_sqlite = sqlite.write_events(batch, received)
        on_postgres = postgres.write_events(batch, received)
        outcomes.append((int(on_postgres), on_postgres.collisions, on_postgres.repeats))
        assert (int(on_sqlite), on_sqlite.collisions, on_sqlite.repeats) == outcomes[-1], f"batch {i}"
        assert rows(postgres) == rows(sqlite), f"after batch {i}"
    assert outcomes == [(12, 0, 0), (3, 0, 0), (3, 1, 2), (2, 0, 1)]
    tables = rows(postgres)
    assert [a[4] for a in tables["alerts"]] == ["id_collision", "instance_changed"]
    assert len(tables["reject_defects"]) == 2 and len(tables["inspections"]) == 2
    assert changes.count(("count", "stored")) == 18 and changes.count(("inspection", "stored")) == 2
    assert ("alert", "opened") in changes
    sqlite.close()
    postgres.close()
