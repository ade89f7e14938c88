"""Thread-safe ingest counters: every message received ends in exactly one outcome counter."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from cloud_api.ingest.reasons import reason_class

# upper bounds (seconds) of the store write latency histogram; one observation per store write call
WRITE_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@dataclass(frozen=True)
class IngestCountersSnapshot:
    received: int  # messages delivered by the broker
    stored: int  # messages persisted (new events, alerts, statuses, stats, snapshots)
    duplicates: int  # events / alerts whose id was already stored (events: with the same content)
    dead_letters: int  # messages that failed validation, stored in dead_letters
    ignored: int  # messages that are not for the cloud (cmd topics) or stale statuses
    store_errors: int  # messages lost because the database write failed twice
    last_ingest_ms: int | None  # receive time of the last message persisted
    last_event_ts_ms: int | None = None  # capture time (ts_ms) of the newest event in the last batch that stored one
    id_collisions: int = 0  # events stored under a derived id: their id was stored with other content (in stored)
    dead_letters_by_class: dict[str, int] = field(default_factory=dict)  # see ingest.reasons
    write_latency_counts: tuple[int, ...] = ()  # per WRITE_LATENCY_BUCKETS bound (not cumulative), then +Inf
    write_latency_sum_s: float = 0.0

    @property
    def processed(self) -> int:
        return self.stored + self.duplicates + self.dead_letters + self.ignored + self.store_errors


class IngestCounters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received = self._stored = self._duplicates = 0
        self._dead_letters = self._ignored = self._store_errors = self._id_collisions = 0
        self._last_ingest_ms: int | None = None
        self._last_event_ts_ms: int | None = None
        self._dead_by_class: dict[str, int] = {}
        self._latency_counts = [0] * (len(WRITE_LATENCY_BUCKETS) + 1)
        self._latency_sum_s = 0.0

    def add_dead_letter_reasons(self, reasons: list[str]) -> None:
        """Count dead letters by reason class (the total is counted by ``add_outcomes``)."""
        with self._lock:
            for reason in reasons:
                cls = reason_class(reason)
                self._dead_by_class[cls] = self._dead_by_class.get(cls, 0) + 1

    def observe_write(self, seconds: float) -> None:
        """One store write call (a transaction) took this long."""
        index = next((i for i, bound in enumerate(WRITE_LATENCY_BUCKETS) if seconds <= bound), len(WRITE_LATENCY_BUCKETS))
        with self._lock:
            self._latency_counts[index] += 1
            self._latency_sum_s += seconds

    def set_last_event_ts(self, ts_ms: int) -> None:
        with self._lock:
            self._last_event_ts_ms = ts_ms

    def add_received(self, n: int = 1) -> None:
        """Called by the MQTT network thread only, once per message: no lock (the sole writer; an int read
        by ``snapshot`` is never torn)."""
        self._received += n

    def add_outcomes(
        self,
        *,
        stored: int = 0,
        duplicates: int = 0,
        dead_letters: int = 0,
        ignored: int = 0,
        store_errors: int = 0,
        id_collisions: int = 0,
        ingest_ms: int | None = None,
    ) -> None:
        with self._lock:
            self._id_collisions += id_collisions
            self._stored += stored
            self._duplicates += duplicates
            self._dead_letters += dead_letters
            self._ignored += ignored
            self._store_errors += store_errors
            if stored and ingest_ms is not None:
                self._last_ingest_ms = max(ingest_ms, self._last_ingest_ms or 0)

    def snapshot(self) -> IngestCountersSnapshot:
        with self._lock:
            return IngestCountersSnapshot(
                received=self._received,
                stored=self._stored,
                duplicates=self._duplicates,
                dead_letters=self._dead_letters,
                ignored=self._ignored,
                store_errors=self._store_errors,
                last_ingest_ms=self._last_ingest_ms,
                last_event_ts_ms=self._last_event_ts_ms,
                id_collisions=self._id_collisions,
                dead_letters_by_class=dict(self._dead_by_class),
                write_latency_counts=tuple(self._latency_counts),
                write_latency_sum_s=self._latency_sum_s,
            )
