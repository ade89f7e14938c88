"""Time partitions of ``events`` and ``count_points`` (native range partitioning on ``ts_ms``).

Both tables get the same partitions: ``<table>_p<YYYYMMDD>`` covers ``partition_days`` days from that UTC date
(weeks start on Monday by default). Partitions are created ahead (this week and the next ones) and on
demand for the timestamps of a batch (a spool replayed from months ago), under an advisory lock so workers
do not race on the catalog. Retention drops whole partitions (``postgres_retention``).
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass

import psycopg

DAY_MS = 86_400_000
MONDAY_MS = 4 * DAY_MS  # 1970-01-05 was a Monday: 7-day partitions start on Mondays
PARTITION_LOCK = 0x46_4C_50_54  # "FLPT": pg_advisory_xact_lock key while creating or dropping partitions
TABLES = ("events", "count_points")
_NAME = re.compile(r"^events_p(\d{8})$")


@dataclass(frozen=True)
class Partition:
    start_ms: int
    end_ms: int

    def name(self, table: str) -> str:
        day = dt.datetime.fromtimestamp(self.start_ms / 1000, tz=dt.timezone.utc).strftime("%Y%m%d")
        return f"{table}_p{day}"


class Partitions:
    """Which partitions exist (cached per process) and creating the missing ones."""

    def __init__(self, days: int = 7) -> None:
        if days < 1:
            raise ValueError(f"partition_days must be >= 1, not {days}")
        self.span_ms = days * DAY_MS
        self._offset = MONDAY_MS if days == 7 else 0
        self._known: set[int] = set()
        self._lock = threading.Lock()

    def partition_of(self, ts_ms: int) -> Partition:
        start = ((ts_ms - self._offset) // self.span_ms) * self.span_ms + self._offset
        return Partition(start, start + self.span_ms)

    def load(self, conn: psycopg.Connection) -> list[Partition]:
        """Read the existing event partitions (bounds from the catalog), oldest first; refreshes the cache."""
        rows = conn.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
            " JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent"
            " WHERE p.relname = 'events' AND p.relnamespace = (SELECT oid FROM pg_namespace"
            " WHERE nspname = current_schema())").fetchall()
        found = []
        for _name, bound in rows:
            numbers = re.findall(r"'?(-?\d+)'?", bound or "")
            if len(numbers) >= 2:
                found.append(Partition(int(numbers[0]), int(numbers[1])))
        found.sort(key=lambda p: p.start_ms)
        with self._lock:
            self._known = {p.start_ms for p in found}
        return found

    def forget(self) -> None:
        with self._lock:
            self._known.clear()

    def all_known(self, timestamps: Iterable[int]) -> bool:
        """True when every timestamp falls in a partition known to exist (no catalog work, no connection)."""
        span, offset, known = self.span_ms, self._offset, self._known
        return all(((ts - offset) // span) * span + offset in known for ts in timestamps)

    def ensure(self, conn: psycopg.Connection, timestamps: Iterable[int]) -> int:
        """Create the partitions these timestamps fall in, if missing; returns how many were created.

        ``conn`` is an autocommit connection; the work is one transaction under the partition lock.
        """
        needed = {self.partition_of(ts) for ts in timestamps}
        with self._lock:
            missing = sorted((p for p in needed if p.start_ms not in self._known), key=lambda p: p.start_ms)
        if not missing:
            return 0
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITION_LOCK,))
            existing = {r[0] for r in conn.execute(
                "SELECT c.relname FROM pg_class c WHERE c.relname = ANY(%s)"
                " AND c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema())",
                ([p.name("events") for p in missing],))}
            created = 0
            for part in missing:
                if part.name("events") in existing:
                    continue
                for table in TABLES:
                    conn.execute(f"CREATE TABLE IF NOT EXISTS {part.name(table)} PARTITION OF {table}"  # type: ignore[arg-type]
                                 f" FOR VALUES FROM ({part.start_ms}) TO ({part.end_ms})")
                created += 1
        with self._lock:
            self._known.update(p.start_ms for p in missing)
        return created

    def ensure_ahead(self, conn: psycopg.Connection, now_ms: int, ahead: int = 2) -> int:
        """This partition and the next ``ahead`` ones."""
        return self.ensure(conn, [now_ms + i * self.span_ms for i in range(ahead + 1)])
