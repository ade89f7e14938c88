"""What only the PostgreSQL store has: migration under a lock, exact dedup between concurrent workers,
time partitions, the cross-worker change feed, waiting out a server restart, clear connection errors."""

from __future__ import annotations

import multiprocessing
import threading
import time
from typing import Any

import psycopg
import pytest

from cloud_api.storage.factory import StoreUnavailable
from cloud_api.storage.postgres_schema import SCHEMA_VERSION
from cloud_api.storage.postgres_store import PostgresStore
from cloud_api.storage.records import AlertQuery, EventQuery, StoreChange
from cloud_api.storage.sqlite_retention import RetentionPolicy
from tests.cloud_api.cloudapi_builders import T0, alert, count_event, device_status, wait_until
from tests.support.postgres import PostgresServer

DAY = 86_400_000


def _open_at_once(dsn: str, barrier: Any, errors: Any) -> None:
    barrier.wait()
    try:
        store = PostgresStore(dsn)
        store.open()
        store.close()
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        errors.put(f"{type(exc).__name__}: {exc}")


def test_workers_starting_together_on_an_empty_database_migrate_it_once(fresh_postgres_dsn: str) -> None:
    context = multiprocessing.get_context("fork")
    errors, barrier = context.Queue(), context.Barrier(3)
    processes = [context.Process(target=_open_at_once, args=(fresh_postgres_dsn, barrier, errors)) for _ in range(3)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
    reported = []
    while not errors.empty():
        reported.append(errors.get())
    assert [p.exitcode for p in processes] == [0, 0, 0] and reported == []
    with psycopg.connect(fresh_postgres_dsn) as conn:
        assert conn.execute("SELECT version FROM fieldline_schema").fetchall() == [(SCHEMA_VERSION,)]
    store = PostgresStore(fresh_postgres_dsn)
    store.open()
    assert store.schema_version_found == SCHEMA_VERSION
    store.close()


def _event(seq: int, ripe: int = 1, device: str = "edge-1") -> Any:
    return count_event("shed-1", T0 + seq, {"ripe": ripe}, seq=seq, device=device)


def test_concurrent_workers_store_each_event_once_and_a_collision_once(postgres_dsn: str) -> None:
    """Four stores (four pools, as four API workers) write overlapping batches at the same moment: every id
    is stored once, the same id with other content once under its derived id, and the counts add up."""
    events = [_event(seq) for seq in range(1, 301)]
    other = _event(7, ripe=99)  # id edge-1-0-7 with other content: an id collision
    stores = [PostgresStore(postgres_dsn) for _ in range(4)]
    for store in stores:
        store.open()
    barrier = threading.Barrier(len(stores))
    results: list[Any] = [None] * len(stores)

    def work(i: int) -> None:
        batch = events[i * 50:i * 50 + 150] + ([other] if i % 2 else [])  # overlapping slices
        barrier.wait()
        results[i] = [stores[i].write_events(batch[j:j + 25], T0) for j in range(0, len(batch), 25)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    check = stores[0]
    stored = sum(int(w) for per_store in results for w in per_store)
    collisions = sum(w.collisions for per_store in results for w in per_store)
    ids = [row[0] for row in check._conn().execute("SELECT id FROM events")]  # noqa: SLF001
    assert len(ids) == len(set(ids)) == stored == 300 + 1
    assert collisions == 1 and check.count_id_collisions() == 1
    assert [a.code for a in check.list_alerts(AlertQuery(limit=10))] == ["id_collision"]
    audit = check.device_audit("site-a", "edge-1")
    assert audit is not None and audit.installs[0].missing == 0 and audit.installs[0].last_seq == 300
    for store in stores:
        store.close()


def partitions(store: PostgresStore) -> list[str]:
    rows = store._conn().execute(  # noqa: SLF001
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'events' ORDER BY c.relname").fetchall()
    return [r[0] for r in rows]


def test_partitions_are_made_on_demand_and_dropped_by_retention(postgres_dsn: str) -> None:
    store = PostgresStore(postgres_dsn)
    store.open()
    now = 1_767_571_200_000  # Monday 2026-01-05 00:00 UTC
    old = [count_event("shed-1", now - 40 * DAY + i, {"ripe": 1}, seq=i) for i in range(1, 4)]
    latest_elsewhere = count_event("shed-2", now - 40 * DAY, {"ripe": 5}, device="edge-2", seq=1)
    new = [count_event("shed-1", now - DAY + i, {"ripe": 2}, seq=10 + i) for i in range(1, 4)]
    assert store.write_events([*old, latest_elsewhere, *new], now) == 7
    assert {"events_p20251124", "events_p20251229"} <= set(partitions(store))  # the Mondays of both weeks

    result = store.apply_retention(RetentionPolicy(events_days=30, minute_rollups_days=None,
                                                   hour_rollups_days=None), now)

    assert (result.events, result.count_points) == (3, 3)
    kept = {e["id"] for e in store.list_events(EventQuery(limit=100))}
    assert kept == {latest_elsewhere.id, *(e.id for e in new)}  # shed-2's latest count outlives its partition
    assert "events_p20251124" in partitions(store)  # carried into a fresh partition with just that event
    (count,) = store._conn().execute("SELECT count(*) FROM events_p20251124").fetchone()  # noqa: SLF001
    assert count == 1
    assert store.write_events([old[0]], now) == 1  # its id was released with it: stored again, as on SQLite
    store.close()


def test_other_workers_changes_reach_the_remote_listeners(postgres_dsn: str) -> None:
    writer, reader = PostgresStore(postgres_dsn), PostgresStore(postgres_dsn)
    writer.open()
    reader.open()
    own: list[StoreChange] = []
    remote: list[StoreChange] = []
    writer.add_remote_change_listener(own.append)  # a worker never replays its own changes
    reader.add_remote_change_listener(remote.append)
    assert reader.wait_listening(10) and writer.wait_listening(10)
    writer.write_events([_event(1, ripe=3)], T0)
    writer.write_alerts([alert("k1")], T0)
    writer.write_status(device_status("online", boot=2), T0)
    wait_until(lambda: len(remote) >= 3, 10, "three changes replayed")
    assert [(c.kind, c.change) for c in remote] == [("count", "stored"), ("alert", "opened"), ("device", "status")]
    assert remote[0].subject.counts == {"ripe": 3} and remote[1].subject.dedup_key == "k1"
    assert remote[2].subject.boot == 2
    time.sleep(0.3)
    assert own == []
    writer.close()
    reader.close()


def test_a_write_waits_for_a_restarted_server(postgres_server: PostgresServer, postgres_dsn: str) -> None:
    store = PostgresStore(postgres_dsn, reconnect_timeout_s=30)
    store.open()
    assert store.write_events([_event(1)], T0) == 1
    postgres_server.stop()
    outcome: list[Any] = []
    writer = threading.Thread(target=lambda: outcome.append(store.write_events([_event(2), _event(1)], T0)))
    writer.start()
    time.sleep(1.0)
    assert outcome == []  # still waiting for the server, not failed (the ingest writer would ack a failure)
    postgres_server.start()
    writer.join(30)
    assert outcome == [1]
    assert [e["seq"] for e in store.list_events(EventQuery(limit=10))] == [2, 1]
    assert store.ping()
    store.close()


def test_unreachable_server_and_bad_dsn_are_named_without_the_password(postgres_server: PostgresServer) -> None:
    with pytest.raises(StoreUnavailable) as unreachable:
        PostgresStore("postgresql://fieldline:hunter2@127.0.0.1:1/db", connect_timeout_s=2).open()
    assert "postgresql://fieldline@127.0.0.1:1/db" in str(unreachable.value)
    assert "hunter2" not in str(unreachable.value)
    with pytest.raises(ValueError, match="not a number") as bad:
        PostgresStore("postgresql://fieldline:hunter2@db:port/fieldline")
    assert "hunter2" not in str(bad.value)
    with pytest.raises(StoreUnavailable, match="does not exist"):
        PostgresStore(postgres_server.dsn("no_such_db"), connect_timeout_s=2).open()


def test_reads_and_request_writes_after_a_restart_take_a_fresh_connection(postgres_server: PostgresServer,
                                                                          postgres_dsn: str) -> None:
    """Pooled connections die with a server restart: the next read, or a write of an API request (which is
    not retried as a whole), must not fail on one of them."""
    from cloud_api.storage.records import UserRecord

    store = PostgresStore(postgres_dsn)
    store.open()
    assert store.list_users() == [] and store.write_events([_event(1)], T0) == 1
    postgres_server.restart()
    assert [e["seq"] for e in store.list_events(EventQuery(limit=5))] == [1]
    postgres_server.restart()
    store.create_user(UserRecord("olga", "viewer", "hash", T0))
    assert [u.username for u in store.list_users()] == ["olga"]
    store.close()
