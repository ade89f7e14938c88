"""Store-and-forward outbox on SQLite (WAL): append before publish, delete on PUBACK, replay in order.

The spool also persists the agent's ``boot`` counter and the per-device event ``seq``, so that a gap in
``seq`` on the cloud side always means a lost event and a repeat always means a duplicate, and a random
``instance`` id made when the spool file is created: a wiped data folder restarts boot and seq at 1, but under
a new instance, so event ids never repeat.

A full data disk does not stop the agent: a message that cannot be written is refused (no ``seq`` is used up,
so it leaves no gap; counted in ``dropped``), an acknowledged row that cannot be deleted is hidden and deleted
later, and the boot counter waits for room (``DISK_FULL_RETRY_S``).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fieldline.contract import new_instance_id

log = logging.getLogger(__name__)
DISK_FULL_RETRY_S = (1.0, 30.0)  # next_boot on a full disk: first and longest wait between attempts


def _disk_full(exc: sqlite3.OperationalError) -> bool:
    """SQLITE_FULL (no space) or SQLITE_IOERR (e.g. EFBIG past a file-size limit): the write may work later."""
    text = str(exc).lower()
    return "disk is full" in text or "disk i/o error" in text

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
        self.refused = 0  # messages not spooled because the disk was full (kept in memory: the disk is full)
        self._acked_unremoved: set[int] = set()  # acknowledged rows the full disk would not let us delete
        self._full_logged = False

    def _rollback(self) -> None:
        """Roll back if a transaction is still open (SQLite ends some failed COMMITs by itself)."""
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")

    def _refuse(self, exc: sqlite3.OperationalError, what: str) -> None:
        self.refused += 1
        if not self._full_logged:
            log.error("spool %s: %s not spooled (%s); counting refusals until there is room", self.path, what, exc)
            self._full_logged = True

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
        """Increment and return the boot counter (call once per agent start).

        On a full disk it waits for room (with backoff) instead of failing: an agent that exits would be
        restarted into the same error until its service manager gives up, and then need a person.
        """
        wait = DISK_FULL_RETRY_S[0]
        while True:
            with self._lock:
                try:
                    self._db.execute("BEGIN IMMEDIATE")
                    boot = self._get("boot") + 1
                    self._set("boot", boot)
                    self._db.execute("COMMIT")
                    return boot
                except sqlite3.OperationalError as exc:
                    self._rollback()
                    if not _disk_full(exc):
                        raise
                    log.error("spool %s: cannot record the boot (%s); retrying in %.0f s", self.path, exc, wait)
            time.sleep(wait)
            wait = min(wait * 2, DISK_FULL_RETRY_S[1])

    @property
    def last_seq(self) -> int:
        with self._lock:
            return self._get("seq")

    @property
    def dropped(self) -> int:
        """Messages dropped on purpose: the oldest beyond the cap, and those refused on a full disk."""
        with self._lock:
            return self._get("dropped") + self.refused

    # ------------------------------------------------------------ outbox
    def append_sequenced(self, build: Callable[[int], list[tuple[str, bytes, int]]]) -> int | None:
        """Allocate the next ``seq`` and store the messages ``build(seq)`` returns, all in one transaction.

        ``build`` returns ``(topic, payload, qos)`` tuples in publish order (e.g. a snapshot, then its event).
        Returns the seq, or None when the disk is full (nothing stored, the seq is not used up).
        """
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                seq = self._get("seq") + 1
                now = int(time.time() * 1000)
                self._db.executemany(
                    "INSERT INTO outbox(topic, payload, qos, created_ms) VALUES (?, ?, ?, ?)",
                    [(topic, payload, qos, now) for topic, payload, qos in build(seq)],
                )
                self._set("seq", seq)
                self._enforce_cap()
                self._db.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                self._rollback()
                if not _disk_full(exc):
                    raise
                self._refuse(exc, "an event")
                return None
            except BaseException:
                self._rollback()
                raise
            self._full_logged = False
            return seq

    def append(self, topic: str, payload: bytes, qos: int = 1) -> bool:
        """Store one message; False when the disk is full (it is refused and counted)."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute("INSERT INTO outbox(topic, payload, qos, created_ms) VALUES (?, ?, ?, ?)",
                                 (topic, payload, qos, int(time.time() * 1000)))
                self._enforce_cap()
                self._db.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                self._rollback()
                if not _disk_full(exc):
                    raise
                self._refuse(exc, f"a message on {topic}")
                return False
            except BaseException:
                self._rollback()
                raise
            self._full_logged = False
            return True

    def _enforce_cap(self) -> None:
        depth = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        excess = depth - self.max_items
        if excess > 0:
            self._db.execute("DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)", (excess,))
            self._set("dropped", self._get("dropped") + excess)

    def pending(self, limit: int, after_id: int = 0) -> list[SpoolItem]:
        """Oldest waiting items with ``id > after_id``, in append order."""
        with self._lock:
            hidden = self._acked_unremoved
            rows = self._db.execute(
                "SELECT id, topic, payload, qos, created_ms FROM outbox WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit + len(hidden)),
            ).fetchall()
        items = [SpoolItem(int(r[0]), r[1], bytes(r[2]), int(r[3]), int(r[4])) for r in rows if r[0] not in hidden]
        return items[:limit]

    def remove(self, item_id: int) -> None:
        """Delete an acknowledged row. On a full disk the row is hidden (not sent again) and deleted later."""
        with self._lock:
            ids = [item_id, *self._acked_unremoved]
            try:
                self._db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])
            except sqlite3.OperationalError as exc:
                self._rollback()
                if not _disk_full(exc):
                    raise
                self._acked_unremoved.add(item_id)
                return
            self._acked_unremoved.clear()

    def depth(self) -> int:
        """Messages waiting to be sent (acknowledged rows not yet deleted are not counted)."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]) - len(self._acked_unremoved)

    def close(self) -> None:
        with self._lock:
            self._db.close()
