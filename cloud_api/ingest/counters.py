"""Thread-safe ingest counters: every message received ends in exactly one outcome counter."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class IngestCountersSnapshot:
    received: int  # messages delivered by the broker
    stored: int  # messages persisted (new events, alerts, statuses, stats, snapshots)
    duplicates: int  # events / alerts whose id was already stored
    dead_letters: int  # messages that failed validation, stored in dead_letters
    ignored: int  # messages that are not for the cloud (cmd topics) or stale statuses
    store_errors: int  # messages lost because the database write failed twice
    last_ingest_ms: int | None  # receive time of the last message persisted

    @property
    def processed(self) -> int:
        return self.stored + self.duplicates + self.dead_letters + self.ignored + self.store_errors


class IngestCounters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received = self._stored = self._duplicates = 0
        self._dead_letters = self._ignored = self._store_errors = 0
        self._last_ingest_ms: int | None = None

    def add_received(self, n: int = 1) -> None:
        with self._lock:
            self._received += n

    def add_outcomes(
        self,
        *,
        stored: int = 0,
        duplicates: int = 0,
        dead_letters: int = 0,
        ignored: int = 0,
        store_errors: int = 0,
        ingest_ms: int | None = None,
    ) -> None:
        with self._lock:
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
            )
