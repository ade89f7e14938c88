"""The batch writer: messages are held as they arrive and written to the store in transactions.

It runs on the MQTT network thread: the ingest client reads every packet already received, then calls
``write_held`` (see ``IngestClient.after_read``), so a batch is whatever arrived since the last write, up to
``batch_max`` per transaction. Under load the socket fills while a batch is written and the next batch is
larger (group commit, no timer); a lone message is written at once. One thread also means no hand-over of
the interpreter lock between a network thread and a writer thread: with two threads, the hand-overs and
the queue between them cost ~20 % of the CPU per message on two cores.

Messages are validated here too, a whole batch at a time, rather than one by one as they arrive: each stage
(receive, validate, write) then runs over many messages in a row with its code and data in the CPU caches.

Acknowledgements run only after the batch is committed, so a QoS1 message the broker considers delivered
is always in the database (at-least-once end to end; duplicates are removed by event id).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cloud_api.ingest.counters import IngestCounters
from cloud_api.ingest.messages import (
    AlertItem,
    Classify,
    CommandReplyItem,
    DeadLetterItem,
    EventItem,
    IgnoredItem,
    IngestItem,
    SampleItem,
    SnapshotItem,
    StatsItem,
    StatusItem,
    TelemetryItem,
)
from fieldline.contract import Alert, Telemetry

from cloud_api.storage.base import Store
from cloud_api.storage.records import NewDeadLetter

log = logging.getLogger(__name__)

Ack = Callable[[], None]
TelemetryAlerts = Callable[[Sequence[Telemetry]], list[Alert]]  # e.g. services.climate.ThresholdAlerts.check


@dataclass(frozen=True)
class _Pending:
    item: IngestItem
    received_ms: int
    ack: Ack | None


@dataclass(frozen=True)
class _Raw:
    """A message as received: classified when its batch is written."""

    topic: str
    payload: bytes
    received_ms: int
    ack: Ack | None


class BatchWriter:
    """Held messages in, batched store writes out; counts one outcome per item.

    ``hold``/``hold_raw`` and ``write_held`` are called from one thread (the MQTT network thread);
    ``wait_idle`` and ``queue_depth`` from any.
    """

    def __init__(
        self,
        store: Store,
        counters: IngestCounters,
        classify: Classify | None = None,
        batch_max: int = 500,
        retry_delay_s: float = 0.5,
        telemetry_alerts: TelemetryAlerts | None = None,
    ) -> None:
        self._telemetry_alerts = telemetry_alerts
        self._store = store
        self._counters = counters
        self._classify = classify
        self._batch_max = batch_max
        self._retry_delay_s = retry_delay_s
        self._held: list[_Pending | _Raw] = []
        self._pending = 0  # held or being written
        self._idle = threading.Condition(threading.Lock())

    def hold(self, item: IngestItem, received_ms: int, ack: Ack | None = None) -> None:
        with self._idle:
            self._pending += 1
        self._held.append(_Pending(item, received_ms, ack))

    def hold_raw(self, topic: str, payload: bytes, received_ms: int, ack: Ack | None = None) -> None:
        """Hold a message as received; ``write_held`` classifies it (needs ``classify``)."""
        if self._classify is None:
            raise RuntimeError("BatchWriter.hold_raw needs the classify function given at construction")
        with self._idle:
            self._pending += 1
        self._held.append(_Raw(topic, payload, received_ms, ack))

    def write_held(self) -> int:
        """Write everything held, ``batch_max`` messages per transaction; returns how many."""
        held, self._held = self._held, []
        for start in range(0, len(held), self._batch_max):
            chunk = held[start:start + self._batch_max]
            self._process([self._classified(p) if isinstance(p, _Raw) else p for p in chunk])
        return len(held)

    def wait_idle(self, timeout: float) -> bool:
        """Block until every held item is written (or the timeout passes); True when idle."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    @property
    def queue_depth(self) -> int:
        with self._idle:
            return self._pending

    def _classified(self, raw: _Raw) -> _Pending:
        assert self._classify is not None
        try:
            item = self._classify(raw.topic, raw.payload)
        except Exception as exc:  # noqa: BLE001 - one bad message must not stop the batch
            log.exception("unexpected error classifying a message on %s", raw.topic)
            item = DeadLetterItem(topic=raw.topic, reason=f"internal error: {type(exc).__name__}: {exc}",
                                  raw=raw.payload)
        return _Pending(item, raw.received_ms, raw.ack)

    def _process(self, batch: list[_Pending]) -> None:
        try:
            self._write_grouped(batch)
        except Exception:  # noqa: BLE001 - a writer that dies stops ingestion; count and go on instead
            log.exception("ingest writer failed on a batch of %d messages", len(batch))
            self._counters.add_outcomes(store_errors=len(batch))
        for pending in batch:
            if pending.ack is not None:
                try:
                    pending.ack()
                except Exception:  # noqa: BLE001 - the broker will redeliver; dedup takes care of it
                    log.warning("could not acknowledge a message", exc_info=True)
        with self._idle:
            self._pending -= len(batch)
            self._idle.notify_all()

    def _write_grouped(self, batch: list[_Pending]) -> None:
        newest = max(p.received_ms for p in batch)
        event_items = [p.item for p in batch if isinstance(p.item, EventItem)]
        events = [item.event for item in event_items]
        payloads = [item.payload for item in event_items]
        alerts = [p.item.alert for p in batch if isinstance(p.item, AlertItem)]
        letters = [
            NewDeadLetter(topic=p.item.topic, reason=p.item.reason, raw=p.item.raw)
            for p in batch
            if isinstance(p.item, DeadLetterItem)
        ]
        ignored = sum(1 for p in batch if isinstance(p.item, IgnoredItem))
        if events:
            stored = self._with_retry(len(events), newest, lambda: self._store.write_events(events, newest, payloads), dedup=True)
            if stored:
                self._counters.set_last_event_ts(events[-1].ts_ms)
        if alerts:
            self._with_retry(len(alerts), newest, lambda: self._store.write_alerts(alerts, newest), dedup=True)
        if letters:
            self._counters.add_dead_letter_reasons([d.reason for d in letters])
            self._with_retry(len(letters), newest, lambda: self._store.write_dead_letters(letters, newest),
                             outcome="dead_letters")
        for pending in batch:
            self._write_single(pending)
        if ignored:
            self._counters.add_outcomes(ignored=ignored)

    def _write_single(self, pending: _Pending) -> None:
        item, at = pending.item, pending.received_ms
        if isinstance(item, StatusItem):
            applied = self._with_retry(1, at, lambda: self._store.write_status(item.status, at), outcome="none")
            if applied is True:
                self._counters.add_outcomes(stored=1, ingest_ms=at)
            elif applied is False:
                self._counters.add_outcomes(ignored=1)  # stale: from an older boot than the stored one
        elif isinstance(item, StatsItem):
            self._with_retry(1, at, lambda: self._store.write_stats(item.stats, at))
        elif isinstance(item, CommandReplyItem):
            matched = self._with_retry(1, at, lambda: self._store.write_command_reply(
                item.site, item.device, item.name, item.reply, at), outcome="none")
            if matched is True:
                self._counters.add_outcomes(stored=1, ingest_ms=at)
            elif matched is False:
                self._counters.add_outcomes(ignored=1)  # not a command of this API, or its reply already stored
        elif isinstance(item, TelemetryItem):
            self._with_retry(1, at, lambda: self._store.write_telemetry(item.readings, at))
            alerts = self._telemetry_alerts(item.readings) if self._telemetry_alerts is not None else []
            if alerts:
                self._with_retry(len(alerts), at, lambda: self._store.write_alerts(alerts, at), dedup=True)
        elif isinstance(item, SnapshotItem):
            self._with_retry(
                1, at, lambda: self._store.write_snapshot(item.site, item.device, item.event_id, item.jpeg, at)
            )
        elif isinstance(item, SampleItem):  # a frame for the datasets; a repeated sample id is a duplicate
            self._with_retry(1, at, lambda: int(self._store.write_sample(  # type: ignore[attr-defined]
                item.sample, item.jpeg, at)), dedup=True)

    def _with_retry(
        self, n: int, at: int, write: Callable[[], object], *, dedup: bool = False, outcome: str = "stored"
    ) -> object:
        """Run one store write, retrying once; count its outcome. Returns the write's result or None."""
        for attempt in (1, 2):
            try:
                started = time.perf_counter()
                result = write()
                self._counters.observe_write(time.perf_counter() - started)
                break
            except Exception:  # noqa: BLE001 - counted as store_errors below, never stops ingestion
                log.exception("store write of %d messages failed (attempt %d)", n, attempt)
                if attempt == 2:
                    self._counters.add_outcomes(store_errors=n)
                    return None
                time.sleep(self._retry_delay_s)
        if dedup:
            inserted = int(result)  # type: ignore[call-overload]
            collisions = int(getattr(result, "collisions", 0))  # events: see storage.sqlite_identity
            self._counters.add_outcomes(stored=inserted, duplicates=n - inserted, id_collisions=collisions,
                                        ingest_ms=at)
        elif outcome == "stored":
            self._counters.add_outcomes(stored=n, ingest_ms=at)
        elif outcome == "dead_letters":
            self._counters.add_outcomes(dead_letters=n)
        return result
