"""Local offline cache (SQLite): last known API responses with their fetch time, settings, and an outbox.

* ``put(key, value)`` / ``get(key)`` keep the last good answer of every GET so the app can show it,
  with its age, when the network is gone.
* The outbox holds actions taken offline (acknowledge an alert, mark a shed done / not done). One row
  per (kind, target): pressing "acknowledge" twice queues one action, and "done" then "undo" on the
  same shed leaves only the last wish. Rows are deleted only after the server confirmed them, and the
  server treats every replayed action idempotently, so each action takes effect exactly once.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    fetched_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    UNIQUE (kind, target)
);
"""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Cached:
    """A cached response and when it was fetched."""

    value: Any
    fetched_ms: int

    def age_s(self, at_ms: int | None = None) -> float:
        return max(0.0, ((now_ms() if at_ms is None else at_ms) - self.fetched_ms) / 1000)


@dataclass(frozen=True)
class QueuedAction:
    id: int
    kind: str  # "ack" | "done"
    target: str  # alert id or shed id
    payload: dict[str, Any]
    created_ms: int
    attempts: int


class OfflineCache:
    """One SQLite file; safe to use from the UI thread and one worker thread (a lock serialises access)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA secure_delete=ON")  # deleted rows (a signed-out user's data) are zeroed
        self._db.executescript(_SCHEMA)

    @property
    def files_dir(self) -> Path:
        """Directory for cached binary files (snapshots)."""
        folder = self.path.parent / "files"
        folder.mkdir(exist_ok=True)
        return folder

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------ responses

    def put(self, key: str, value: Any, fetched_ms: int | None = None) -> Cached:
        stamp = now_ms() if fetched_ms is None else fetched_ms
        with self._lock:
            self._db.execute(
                "INSERT INTO responses(key, body, fetched_ms) VALUES (?, ?, ?) "
                "ON CONFLICT(key) DO UPDATE SET body = excluded.body, fetched_ms = excluded.fetched_ms",
                (key, json.dumps(value, separators=(",", ":")), stamp),
            )
        return Cached(value, stamp)

    def get(self, key: str) -> Cached | None:
        with self._lock:
            row = self._db.execute("SELECT body, fetched_ms FROM responses WHERE key = ?", (key,)).fetchone()
        return None if row is None else Cached(json.loads(row[0]), int(row[1]))

    # ------------------------------------------------------------ settings

    def setting(self, key: str, default: str | None = None) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM settings WHERE key = ?", (key,)).fetchone()
        return default if row is None else str(row[0])

    def set_setting(self, key: str, value: str | None) -> None:
        with self._lock:
            if value is None:
                self._db.execute("DELETE FROM settings WHERE key = ?", (key,))
            else:
                self._db.execute(
                    "INSERT INTO settings(key, value) VALUES (?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )

    def scrub(self) -> None:
        """Push deleted data out of the write-ahead log too (its old pages would keep it until reused)."""
        with self._lock:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def wipe(self) -> None:
        """Forget every cached response, queued action and cached file (sign-out); settings stay."""
        with self._lock:
            self._db.execute("DELETE FROM responses")
            self._db.execute("DELETE FROM outbox")
        for path in self.files_dir.iterdir():
            if path.is_file():
                path.unlink()
        self.scrub()

    # ------------------------------------------------------------ outbox

    def enqueue(self, kind: str, target: str, payload: dict[str, Any] | None = None) -> None:
        """Queue an action; a second action of the same kind on the same target replaces the payload."""
        with self._lock:
            self._db.execute(
                "INSERT INTO outbox(kind, target, payload, created_ms) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(kind, target) DO UPDATE SET payload = excluded.payload",
                (kind, target, json.dumps(payload or {}), now_ms()),
            )

    def pending(self) -> list[QueuedAction]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, kind, target, payload, created_ms, attempts FROM outbox ORDER BY id"
            ).fetchall()
        return [QueuedAction(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5]) for r in rows]

    def pending_for(self, kind: str) -> dict[str, dict[str, Any]]:
        """target -> payload of queued actions of one kind (for showing optimistic state)."""
        return {a.target: a.payload for a in self.pending() if a.kind == kind}

    def complete(self, action_id: int) -> None:
        with self._lock:
            self._db.execute("DELETE FROM outbox WHERE id = ?", (action_id,))

    def record_failure(self, action_id: int, error: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?", (error[:500], action_id)
            )
