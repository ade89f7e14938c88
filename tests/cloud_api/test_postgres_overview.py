"""The shed overview's reads on PostgreSQL (``postgres_sheds``) give the SQLite store's answers, and schema
version 2 (the index they use) is added to a version-1 database when a worker starts."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from cloud_api.storage import postgres_schema
from cloud_api.storage.postgres_store import PostgresStore
from cloud_api.storage.sqlite_store import SqliteStore
from fieldline.contract import Event
from tests.cloud_api.cloudapi_builders import T0, count_event

HOUR = 3_600_000


def keyed(shed: str, ts_ms: int, ripe: int, *, device: str, camera: str = "cam-1", row: str | None = "r1",
          seq: int, boot: int = 1, counts: dict[str, int] | None = None) -> Event:
    return count_event(shed, ts_ms, counts if counts is not None else {"ripe": ripe, "green": 1}, device=device,
                       camera=camera, row=row, seq=seq, boot=boot)


def history() -> list[Event]:
    """Several keys per shed (devices, cameras, rows with and without a name), ties on ts_ms broken by boot and
    seq, events on both edges of the window, a key silent in the window, a key whose event counted nothing."""
    events = []
    for s, (device, camera, row) in enumerate([("edge-1", "cam-1", "r1"), ("edge-1", "cam-2", None),
                                               ("edge-1", "cam-1", "r2"), ("edge-2", "cam-1", "r1")]):
        for i in range(30):
            events.append(keyed("shed-1", T0 + i * 10 * 60_000 + s, i + s, device=device, camera=camera, row=row,
                                seq=100 * s + i))
    events.append(keyed("shed-1", T0 + 100 * 60_000, 70, device="edge-1", camera="cam-1", row="r1", seq=500, boot=2))
    events.append(keyed("shed-1", T0 + 100 * 60_000, 71, device="edge-1", camera="cam-1", row="r1", seq=501, boot=2))
    events.append(keyed("shed-2", T0 + 3 * HOUR, 9, device="edge-3", seq=1))  # after the window
    events.append(keyed("shed-2", T0 - 3 * HOUR, 8, device="edge-4", seq=1))  # before it
    events.append(keyed("shed-3", T0 + HOUR, 0, device="edge-5", seq=1, counts={}))
    return events


def both(tmp_path: Any, dsn: str, events: list[Event]) -> tuple[SqliteStore, PostgresStore]:
    sqlite, postgres = SqliteStore(tmp_path / "fieldline.db"), PostgresStore(dsn)
    for store in (sqlite, postgres):
        store.open()
        for i in range(0, len(events), 40):
            store.write_events(events[i:i + 40], T0)
    return sqlite, postgres


WINDOWS = [(T0 + 2 * HOUR, 2 * HOUR), (T0 + 100 * 60_000, HOUR), (T0 + 100 * 60_000 - 1, 30 * 60_000),
           (T0 + 10 * HOUR, 24 * HOUR), (T0 + 4 * HOUR, HOUR)]


def test_counts_at_and_latest_counts_are_the_sqlite_answers(tmp_path: Any, postgres_dsn: str) -> None:
    sqlite, postgres = both(tmp_path, postgres_dsn, history())
    for at, lookback in WINDOWS:
        expected = sqlite.shed_counts_at(at, lookback)
        assert expected  # every window finds some shed (so equal answers are not two empty ones)
        assert postgres.shed_counts_at(at, lookback) == expected, (at - T0, lookback)
    assert sorted(postgres.latest_counts(), key=repr) == sorted(sqlite.latest_counts(), key=repr)
    assert postgres.latest_counts("shed-3") == sqlite.latest_counts("shed-3") != []
    sqlite.close()
    postgres.close()


def indexes_named(dsn: str, name: str) -> int:
    """How many relations (the partitioned index and one per partition) carry an index of ``events_key_ts``."""
    with psycopg.connect(dsn) as conn:
        return int(conn.execute(
            "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE c.relname = %s OR i.indexrelid IN (SELECT inhrelid FROM pg_inherits"
            " WHERE inhparent = (SELECT oid FROM pg_class WHERE relname = %s))", (name, name)).fetchone()[0])


def test_a_version_1_database_gets_the_key_index_on_start(tmp_path: Any, fresh_postgres_dsn: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres_schema, "SCHEMA_VERSION", 1)  # a worker of the previous release
    old = PostgresStore(fresh_postgres_dsn)
    old.open()
    events = history()
    old.write_events(events, T0)
    old.close()
    assert indexes_named(fresh_postgres_dsn, "events_key_ts") == 0
    monkeypatch.undo()

    store = PostgresStore(fresh_postgres_dsn)
    store.open()
    assert store.schema_version_found == 1
    with psycopg.connect(fresh_postgres_dsn) as conn:
        assert conn.execute("SELECT version FROM fieldline_schema").fetchone() == (2,)
        partitions = conn.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass").fetchone()
    assert partitions is not None and partitions[0] >= 2
    assert indexes_named(fresh_postgres_dsn, "events_key_ts") == 1 + partitions[0]
    sqlite = SqliteStore(tmp_path / "fieldline.db")
    sqlite.open()
    sqlite.write_events(events, T0)
    assert store.shed_counts_at(T0 + 2 * HOUR, 2 * HOUR) == sqlite.shed_counts_at(T0 + 2 * HOUR, 2 * HOUR)
    store.close()
    sqlite.close()
