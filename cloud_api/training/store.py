"""The ``training_jobs`` table: one row per job, its state, progress and result (JSON columns).

Created with the rest of the SQLite schema (``sqlite_schema.DDL`` includes :data:`DDL`) and, on any store, by
:meth:`TrainingJobStore.ensure_schema` (plain SQL that PostgreSQL runs too, through the store's dialect layer).
Reads and writes go through the API store's connections (``store._conn``), one statement each.

Several API workers may share the database: a job being run records its runner (``worker``) and a lease
(``lease_until_ms``) that the runner renews while it runs. Recovery fails only jobs whose lease has expired (their
worker is gone), never the jobs of another live worker.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DDL = """
CREATE TABLE IF NOT EXISTS training_jobs (
    id TEXT PRIMARY KEY,
    dataset TEXT NOT NULL,
    base_model TEXT NOT NULL,
    params TEXT NOT NULL,
    state TEXT NOT NULL,
    progress TEXT NOT NULL DEFAULT '{}',
    result TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_by TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL,
    started_ms BIGINT,
    finished_ms BIGINT,
    worker TEXT,
    lease_until_ms BIGINT
);
CREATE INDEX IF NOT EXISTS training_jobs_state ON training_jobs (state, created_ms);
"""

STATES = ("queued", "running", "evaluating", "done", "rejected", "failed", "cancelled")
ACTIVE = ("queued", "running", "evaluating")
_COLUMNS = ("id, dataset, base_model, params, state, progress, result, error, cancel_requested, created_by, "
            "created_ms, updated_ms, started_ms, finished_ms, worker, lease_until_ms")
_LEASE_COLUMNS = (("worker", "TEXT"), ("lease_until_ms", "BIGINT"))  # added after the first release of the table


@dataclass
class TrainingJob:
    id: str
    dataset: str
    base_model: str
    params: dict[str, Any]
    state: str
    progress: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    cancel_requested: bool = False
    created_by: str = ""
    created_ms: int = 0
    updated_ms: int = 0
    started_ms: int | None = None
    finished_ms: int | None = None
    worker: str | None = None
    lease_until_ms: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The job as the REST and the WebSocket show it."""
        return {"id": self.id, "dataset": self.dataset, "base_model": self.base_model, "params": self.params,
                "state": self.state, "progress": self.progress, "result": self.result, "error": self.error,
                "cancel_requested": self.cancel_requested, "created_by": self.created_by,
                "created_ms": self.created_ms, "updated_ms": self.updated_ms, "started_ms": self.started_ms,
                "finished_ms": self.finished_ms, "worker": self.worker, "lease_until_ms": self.lease_until_ms}


def _job(row: tuple) -> TrainingJob:
    return TrainingJob(row[0], row[1], row[2], json.loads(row[3]), row[4], json.loads(row[5]), json.loads(row[6]),
                       row[7], bool(row[8]), row[9], row[10], row[11], row[12], row[13], row[14], row[15])


class TrainingJobStore:
    """CRUD and state changes of training jobs on the API's SQLite file."""

    def __init__(self, connect: Callable[[], sqlite3.Connection]) -> None:
        self._connect = connect

    def ensure_schema(self) -> None:
        conn = self._connect()
        for statement in DDL.split(";"):
            if statement.strip():
                conn.execute(statement)
        for name, kind in _LEASE_COLUMNS:  # a table from before leases: add the columns (another worker may race)
            if not self._has_column(name):
                try:
                    conn.execute(f"ALTER TABLE training_jobs ADD COLUMN {name} {kind}")
                except Exception:  # noqa: BLE001 - only a concurrent add is fine: checked again below
                    if not self._has_column(name):
                        raise

    def _has_column(self, name: str) -> bool:
        try:
            self._connect().execute(f"SELECT {name} FROM training_jobs WHERE 1 = 0").fetchall()
        except Exception:  # noqa: BLE001 - sqlite3 and psycopg raise different errors for an unknown column
            return False
        return True

    def create(self, dataset: str, base_model: str, params: dict[str, Any], by: str, now_ms: int) -> TrainingJob:
        job_id = f"tj-{now_ms:x}-{secrets.token_hex(3)}"
        self._connect().execute(
            f"INSERT INTO training_jobs ({_COLUMNS}) VALUES (?, ?, ?, ?, 'queued', '{{}}', '{{}}', NULL, 0, ?, ?, ?,"
            " NULL, NULL, NULL, NULL)", (job_id, dataset, base_model, json.dumps(params), by, now_ms, now_ms))
        job = self.get(job_id)
        assert job is not None
        return job

    def get(self, job_id: str) -> TrainingJob | None:
        row = self._connect().execute(f"SELECT {_COLUMNS} FROM training_jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(row) if row else None

    def list(self, limit: int = 100, dataset: str | None = None) -> list[TrainingJob]:
        where, args = ("WHERE dataset = ?", [dataset]) if dataset else ("", [])
        rows = self._connect().execute(f"SELECT {_COLUMNS} FROM training_jobs {where} ORDER BY created_ms DESC, id"
                                       " DESC LIMIT ?", (*args, limit)).fetchall()
        return [_job(r) for r in rows]

    def claim_next(self, now_ms: int, worker: str = "", lease_ms: int = 60_000) -> TrainingJob | None:
        """The oldest queued job, moved to ``running`` for ``worker`` with a lease until ``now_ms + lease_ms``
        (atomic: two runners never take the same job)."""
        conn = self._connect()
        row = conn.execute("SELECT id FROM training_jobs WHERE state = 'queued' AND cancel_requested = 0"
                           " ORDER BY created_ms, id LIMIT 1").fetchone()
        if row is None:
            return None
        cur = conn.execute("UPDATE training_jobs SET state = 'running', started_ms = ?, updated_ms = ?, worker = ?,"
                           " lease_until_ms = ? WHERE id = ? AND state = 'queued' AND cancel_requested = 0",
                           (now_ms, now_ms, worker, now_ms + lease_ms, row[0]))
        return self.get(row[0]) if cur.rowcount == 1 else None

    def update(self, job_id: str, now_ms: int, *, state: str | None = None, progress: dict[str, Any] | None = None,
               result: dict[str, Any] | None = None, error: str | None = None) -> TrainingJob | None:
        sets, args = ["updated_ms = ?"], [now_ms]
        if state is not None:
            if state not in STATES:
                raise ValueError(f"unknown training job state {state!r}")
            sets.append("state = ?")
            args.append(state)
            if state not in ACTIVE:
                sets.append("finished_ms = ?")
                args.append(now_ms)
        for name, value in (("progress", progress), ("result", result)):
            if value is not None:
                sets.append(f"{name} = ?")
                args.append(json.dumps(value))
        if error is not None:
            sets.append("error = ?")
            args.append(error)
        self._connect().execute(f"UPDATE training_jobs SET {', '.join(sets)} WHERE id = ?", (*args, job_id))
        return self.get(job_id)

    def request_cancel(self, job_id: str, now_ms: int) -> TrainingJob | None:
        """Flag the job; a queued one is cancelled at once, a running one by its runner. None: unknown job."""
        conn = self._connect()
        conn.execute("UPDATE training_jobs SET state = 'cancelled', cancel_requested = 1, updated_ms = ?,"
                     " finished_ms = ?, error = 'cancelled before it started' WHERE id = ? AND state = 'queued'",
                     (now_ms, now_ms, job_id))
        conn.execute("UPDATE training_jobs SET cancel_requested = 1, updated_ms = ? WHERE id = ? AND state IN"
                     " ('running', 'evaluating')", (now_ms, job_id))
        return self.get(job_id)

    def cancel_requested(self, job_id: str) -> bool:
        row = self._connect().execute("SELECT cancel_requested FROM training_jobs WHERE id = ?", (job_id,)).fetchone()
        return bool(row and row[0])

    def renew_leases(self, worker: str, now_ms: int, lease_ms: int) -> int:
        """Extend the lease of every active job ``worker`` runs; the number of jobs renewed."""
        cur = self._connect().execute(
            "UPDATE training_jobs SET lease_until_ms = ? WHERE worker = ? AND state IN ('running', 'evaluating')",
            (now_ms + lease_ms, worker))
        return cur.rowcount

    def fail_orphans(self, now_ms: int) -> int:
        """Jobs whose runner is gone (its lease expired, or a job from before leases): failed. Jobs of live runners,
        which renew their leases, are left alone."""
        cur = self._connect().execute(
            "UPDATE training_jobs SET state = 'failed', error = 'its API worker stopped while the job ran (lease "
            "expired)', updated_ms = ?, finished_ms = ? WHERE state IN ('running', 'evaluating') AND "
            "(lease_until_ms IS NULL OR lease_until_ms < ?)", (now_ms, now_ms, now_ms))
        return cur.rowcount
