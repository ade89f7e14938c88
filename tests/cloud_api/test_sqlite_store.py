"""The store on its own (SQLite and PostgreSQL): dedup, dead-letter truncation, status ordering by boot;
then SQLite-only file migrations and WAL set-up."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cloud_api.storage.sqlite_schema import SCHEMA_VERSION
from cloud_api.storage.records import NewDeadLetter
from cloud_api.storage.sqlite_store import SqliteStore, natural_key
from fieldline.contract import DeviceStatus, parse_payload
from tests.cloud_api.cloudapi_builders import T0, count_event, status_payload


def open_sqlite(tmp_path: Path, **kwargs: int) -> SqliteStore:
    store = SqliteStore(tmp_path / "db" / "fieldline.db", **kwargs)
    store.open()
    return store


def test_write_events_ignores_duplicates_by_id(store: Any) -> None:
    first = count_event("shed-1", T0, {"ripe": 2, "green": 1}, seq=1)
    assert store.write_events([first, first, count_event("shed-1", T0 + 1, {"ripe": 3}, seq=2)], T0) == 2
    assert store.write_events([first], T0) == 0
    assert store._conn().execute("SELECT count(*) FROM events").fetchone() == (2,)
    assert store._conn().execute("SELECT count(*) FROM count_points").fetchone() == (3,)


def test_sqlite_file_is_in_wal_mode(tmp_path: Path) -> None:
    open_sqlite(tmp_path).close()
    assert sqlite3.connect(tmp_path / "db" / "fieldline.db").execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_dead_letters_keep_bounded_raw_bytes(open_store: Callable[..., Any]) -> None:
    store = open_store(dead_letter_max_bytes=8)
    store.write_dead_letters([NewDeadLetter("t/1", "payload is not JSON", b"0123456789abcdef")], T0)
    (letter,) = store.list_dead_letters(10)
    assert (letter.raw, letter.raw_size, letter.topic, letter.received_ms) == (b"01234567", 16, "t/1", T0)


def test_status_from_an_older_boot_is_ignored(store: Any) -> None:

    def status(state: str, boot: int) -> DeviceStatus:
        return parse_payload(DeviceStatus, status_payload(state, boot=boot))

    assert store.write_status(status("online", 2), T0)
    assert not store.write_status(status("offline", 1), T0 + 1)  # a late LWT of the previous run
    assert store.list_devices()[0].state == "online"
    assert store.write_status(status("offline", 2), T0 + 2)
    (device,) = store.list_devices()
    assert (device.state, device.boot, device.last_seen_ms, device.first_seen_ms) == ("offline", 2, T0 + 2, T0)
    assert json.loads(json.dumps(device.cameras))[0]["name"] == "cam-1"


def test_natural_key_orders_numbers_by_value() -> None:
    assert sorted(["shed-10", "shed-2", "shed-1", "line-3", "shed-02b"], key=natural_key) == [
        "line-3", "shed-1", "shed-2", "shed-02b", "shed-10",
    ]


def test_count_points_of_a_schema_2_file_are_rebuilt_keyed_on_open(tmp_path: Path) -> None:
    store = open_sqlite(tmp_path)
    store.write_events([count_event("shed-1", T0, {"ripe": 2, "green": 1}, seq=1),
                        count_event("shed-2", T0 + 1, {"ripe": 5}, seq=2)], T0)
    store.close()
    conn = sqlite3.connect(tmp_path / "db" / "fieldline.db")  # turn it into a schema 2 file: rowid table + index
    conn.executescript(
        "ALTER TABLE count_points RENAME TO cp;"
        "CREATE TABLE count_points (event_id TEXT NOT NULL, zone_kind TEXT NOT NULL, zone_id TEXT NOT NULL,"
        " row TEXT, device TEXT NOT NULL, camera TEXT NOT NULL, ts_ms INTEGER NOT NULL, label TEXT NOT NULL,"
        " n INTEGER NOT NULL, PRIMARY KEY (event_id, label));"
        "CREATE INDEX count_points_zone_ts ON count_points (zone_kind, zone_id, ts_ms);"
        "INSERT INTO count_points SELECT * FROM cp; DROP TABLE cp; PRAGMA user_version = 2;"
    )
    conn.close()
    store = open_sqlite(tmp_path)
    conn = sqlite3.connect(tmp_path / "db" / "fieldline.db")
    (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'count_points'").fetchone()
    assert "WITHOUT ROWID" in sql
    assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'count_points_zone_ts'").fetchone() is None
    assert conn.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    assert sorted(conn.execute("SELECT event_id, label, n FROM count_points")) == [
        ("edge-1-0-1", "green", 1), ("edge-1-0-1", "ripe", 2), ("edge-1-0-2", "ripe", 5)]
    conn.close()
    assert {s.id: s.counts for s in store.list_sheds()} == {"shed-1": {"ripe": 2, "green": 1}, "shed-2": {"ripe": 5}}
    store.write_events([count_event("shed-1", T0 + 2, {"ripe": 4}, seq=3)], T0)  # and it takes new points
    assert {s.id: s.counts for s in store.list_sheds()}["shed-1"] == {"ripe": 4}
    store.close()


def _open_at_once(path: str, barrier: object, errors: object) -> None:
    barrier.wait()  # type: ignore[attr-defined]
    try:
        store = SqliteStore(Path(path))
        store.open()
        store.close()
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        errors.put(f"{type(exc).__name__}: {exc}")  # type: ignore[attr-defined]


def test_workers_starting_together_on_a_new_file_all_open_it(tmp_path: Path) -> None:
    """Several API processes started at once on a file that does not exist yet (without the setup lock,
    about a quarter of them failed with "database is locked" while switching the new file to WAL)."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    errors = context.Queue()
    for attempt in range(6):
        barrier = context.Barrier(3)
        path = tmp_path / f"new-{attempt}" / "fieldline.db"
        processes = [context.Process(target=_open_at_once, args=(str(path), barrier, errors)) for _ in range(3)]
        for process in processes:
            process.start()
        for process in processes:
            process.join(30)
        assert [p.exitcode for p in processes] == [0, 0, 0]
        reported = []
        while not errors.empty():
            reported.append(errors.get())
        assert reported == []
        assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone() == ("wal",)
