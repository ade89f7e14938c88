"""Store-and-forward outbox on SQLite (WAL): append before publish, delete on PUBACK, replay in order.

The spool also persists the agent's ``boot`` counter and the per-device event ``seq``, so that a gap in
``seq`` on the cloud side always means a lost event and a repeat always means a duplicate, and a random
``instance`` id made when the spool file is created: a wiped data folder restarts boot and seq at 1, but under
a new instance, so event ids never repeat.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fieldline.contract import new_instance_id

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS identity (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True)
class SpoolItem:
    id: int
    topic: str
    payload: bytes
    qos: int
    created_ms: int


class Spool:
    """Thread-safe outbox. When more than ``max_items`` wait, the oldest are dropped and counted."""

    def __init__(self, path: Path, max_items: int = 100_000) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_items = max_items
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    # ------------------------------------------------------------ persisted identity and counters
    def instance_id(self) -> str:
        """This install's random id, made on first use and kept for the life of the spool file."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("INSERT OR IGNORE INTO identity(key, value) VALUES ('instance', ?)", (new_instance_id(),))
            row = self._db.execute("SELECT value FROM identity WHERE key = 'instance'").fetchone()
            self._db.execute("COMMIT")
            return str(row[0])

    def _get(self, key: str) -> int:
        row = self._db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else 0

    def _set(self, key: str, value: int) -> None:
        self._db.execute("INSERT INTO state(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = ?",
                         (key, value, value))

    def next_boot(self) -> int:
        """Increment and return the boot counter (call once per agent start)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            boot = self._get("boot") + 1
            self._set("boot", boot)
            self._db.execute("COMMIT")
            return boot

    @property
    def last_seq(self) -> int:
        with self._lock:
            return self._get("seq")

    @property
    def dropped(self) -> int:
        with self._lock:
            return self._get("dropped")

    # ------------------------------------------------------------ outbox
    def append_sequenced(self, build: Callable[[int], list[tuple[str, bytes, int]]]) -> int:
        """Allocate the next ``seq`` and store the messages ``build(seq)`` returns, all in one transaction.

        ``build`` returns ``(topic, payload, qos)`` tuples in publish order (e.g. a snapshot, then its event).
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                seq = self._get("seq") + 1
                now = int(time.time() * 1000)
                self._db.executemany(
                    "INSERT INTO outbox(topic, payload, qos, created_ms) VALUES (?, ?, ?, ?)",
                    [(topic, payload, qos, now) for topic, payload, qos in build(seq)],
                )
                self._set("seq", seq)
                self._enforce_cap()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return seq

    def append(self, topic: str, payload: bytes, qos: int = 1) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("INSERT INTO outbox(topic, payload, qos, created_ms) VALUES (?, ?, ?, ?)",
                             (topic, payload, qos, int(time.time() * 1000)))
            self._enforce_cap()
            self._db.execute("COMMIT")

    def _enforce_cap(self) -> None:
        depth = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        excess = depth - self.max_items
        if excess > 0:
            self._db.execute("DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)", (excess,))
            self._set("dropped", self._get("dropped") + excess)

    def pending(self, limit: int, after_id: int = 0) -> list[SpoolItem]:
        """Oldest waiting items with ``id > after_id``, in append order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload, qos, created_ms FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
        return [SpoolItem(int(r[0]), r[1], bytes(r[2]), int(r[3]), int(r[4])) for r in rows]

    def remove(self, item_id: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM outbox WHERE id = ?", (item_id,))

    def depth(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
