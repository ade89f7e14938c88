"""BatchWriter without a broker: outcomes are counted, acks follow the commit, a failing database never stops it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from cloud_api.ingest.counters import IngestCounters
from cloud_api.ingest.messages import DeadLetterItem, EventItem, IngestItem, MessageClassifier
from cloud_api.ingest.writer import BatchWriter
from cloud_api.storage.records import EventQuery
from cloud_api.storage.sqlite_store import SqliteStore
from fieldline.contract import Event
from tests.cloud_api.cloudapi_builders import SITE, T0, count_event, event_payload


class EventsDownStore(SqliteStore):
    """A real SqliteStore whose event writes fail, as with a full disk."""

    def write_events(self, events: list[Event], received_ms: int) -> int:
        raise sqlite3.OperationalError("database or disk is full")


def test_acks_run_after_the_batch_is_committed(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "w.db")
    store.open()
    counters = IngestCounters()
    writer = BatchWriter(store, counters, batch_max=2)
    seen_at_ack: list[int] = []
    for seq in (1, 2, 1):
        writer.hold(EventItem(count_event("shed-1", T0, {"ripe": 1}, seq=seq)), T0,
                    ack=lambda: seen_at_ack.append(len(store.list_events(EventQuery()))))
    assert writer.queue_depth == 3 and not writer.wait_idle(0.01)
    assert writer.write_held() == 3  # two transactions of at most batch_max
    assert writer.wait_idle(0) and writer.queue_depth == 0
    assert seen_at_ack == [2, 2, 2]
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
    writer.hold(EventItem(count_event("shed-1", T0, {"ripe": 1})), T0, ack=lambda: acked.append("event"))
    writer.write_held()
    letter = MessageClassifier(snapshot_max_bytes=10).classify("fieldline/v1/s/d/events", b"nope")
    assert isinstance(letter, DeadLetterItem)
    writer.hold(letter, T0, ack=lambda: acked.append("letter"))
    writer.write_held()
    snap = counters.snapshot()
    assert (snap.store_errors, snap.dead_letters, snap.stored) == (1, 1, 0)
    assert acked == ["event", "letter"]
    assert store.list_dead_letters(5)[0].reason.startswith("payload is not JSON")
    store.close()


def test_raw_messages_are_classified_by_the_writer_and_kept_as_received(tmp_path: Path) -> None:
    """``hold_raw`` (the MQTT path): the writer validates; valid events are stored with their JSON as
    sent (a field from a newer minor version survives), bad ones become dead letters; acks follow the commit."""
    store = SqliteStore(tmp_path / "w.db")
    store.open()
    counters = IngestCounters()
    writer = BatchWriter(store, counters, MessageClassifier(snapshot_max_bytes=10).classify)
    topic = f"fieldline/v1/{SITE}/edge-1/events"
    sent = json.dumps(event_payload(seq=7) | {"future_field": {"added_in": "1.1"}}).encode()
    acked: list[tuple[str, int]] = []
    writer.hold_raw(topic, sent, T0, ack=lambda: acked.append(("event", len(store.list_events(EventQuery())))))
    writer.hold_raw(topic, b'{"schema": "fieldline.event/1"', T0, ack=lambda: acked.append(("letter", 0)))
    writer.write_held()
    assert acked == [("event", 1), ("letter", 0)]
    [stored] = store.list_events(EventQuery())
    assert stored == json.loads(sent)  # as received, not re-serialised
    assert Event.model_validate(stored).seq == 7  # and still a valid event for the API, which drops the extra
    snap = counters.snapshot()
    assert (snap.stored, snap.dead_letters) == (1, 1)
    assert store.list_dead_letters(5)[0].reason.startswith("payload is not JSON")
    store.close()


def test_a_classifier_crash_becomes_a_dead_letter_and_the_batch_goes_on(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "w.db")
    store.open()
    counters = IngestCounters()
    classifier = MessageClassifier(snapshot_max_bytes=10)

    def classify(topic: str, payload: bytes) -> IngestItem:
        if payload == b"boom":
            raise KeyError("bug in a classifier")
        return classifier.classify(topic, payload)

    writer = BatchWriter(store, counters, classify)
    writer.hold_raw(f"fieldline/v1/{SITE}/edge-1/events", b"boom", T0)
    writer.hold_raw(f"fieldline/v1/{SITE}/edge-1/events", json.dumps(event_payload(seq=1)).encode(), T0)
    writer.write_held()
    assert (counters.snapshot().stored, counters.snapshot().dead_letters) == (1, 1)
    assert store.list_dead_letters(5)[0].reason == "internal error: KeyError: 'bug in a classifier'"
    store.close()


def test_hold_raw_without_a_classifier_is_refused(tmp_path: Path) -> None:
    writer = BatchWriter(SqliteStore(tmp_path / "w.db"), IngestCounters())
    with pytest.raises(RuntimeError, match="classify"):
        writer.hold_raw("fieldline/v1/s/d/events", b"{}", T0)
