"""BatchWriter without a broker: outcomes are counted, acks follow the commit, a failing database never stops it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cloud_api.ingest.counters import IngestCounters
from cloud_api.ingest.messages import DeadLetterItem, EventItem, MessageClassifier
from cloud_api.ingest.writer import BatchWriter
from cloud_api.storage.records import EventQuery
from cloud_api.storage.sqlite_store import SqliteStore
from fieldline.contract import Event
from tests.cloud_api.cloudapi_builders import T0, count_event


class EventsDownStore(SqliteStore):
    """A real SqliteStore whose event writes fail, as with a full disk."""

    def write_events(self, events: list[Event], received_ms: int) -> int:
        raise sqlite3.OperationalError("database or disk is full")


def test_acks_run_after_the_batch_is_committed(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "w.db")
    store.open()
    counters = IngestCounters()
    writer = BatchWriter(store, counters)
    seen_at_ack: list[int] = []
    writer.start()
    for seq in (1, 2, 1):
        writer.submit(EventItem(count_event("shed-1", T0, {"ripe": 1}, seq=seq)), T0,
                      ack=lambda: seen_at_ack.append(len(store.list_events(EventQuery()))))
    assert writer.wait_idle(5)
    writer.stop()
    assert seen_at_ack and all(n >= 1 for n in seen_at_ack) and seen_at_ack[-1] == 2
    snap = counters.snapshot()
    assert (snap.stored, snap.duplicates, snap.processed) == (2, 1, 3)
    store.close()


def test_database_errors_are_counted_and_writing_goes_on(tmp_path: Path) -> None:
    store = EventsDownStore(tmp_path / "w.db")
    store.open()
    counters = IngestCounters()
    writer = BatchWriter(store, counters, retry_delay_s=0.0)
    acked: list[str] = []
    writer.start()
    writer.submit(EventItem(count_event("shed-1", T0, {"ripe": 1})), T0, ack=lambda: acked.append("event"))
    assert writer.wait_idle(5)
    letter = MessageClassifier(snapshot_max_bytes=10).classify("fieldline/v1/s/d/events", b"nope")
    assert isinstance(letter, DeadLetterItem)
    writer.submit(letter, T0, ack=lambda: acked.append("letter"))
    assert writer.wait_idle(5)
    writer.stop()
    snap = counters.snapshot()
    assert (snap.store_errors, snap.dead_letters, snap.stored) == (1, 1, 0)
    assert acked == ["event", "letter"]
    assert store.list_dead_letters(5)[0].reason.startswith("payload is not JSON")
    store.close()
