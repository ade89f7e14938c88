"""Fleet tables (model registry, device commands, audit log, signing key) and their reads/writes.

Mixed into ``SqliteStore`` like the QA tables; created by ``ensure_schema`` from ``SqliteStore.open``
(``CREATE ... IF NOT EXISTS``: an existing database just gains them).

The command table is the API's memory of what it asked devices to do: a command row is committed before
its message is published, its state moves pending -> sent -> ok | error, or -> timed_out when its deadline
passes without a reply (a reply that comes later is still stored, and ``timed_out_ms`` stays set).
The audit log is append-only: one row per action and one more for each command's outcome.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from fieldline.contract import CommandReply

from cloud_api.fleet.records import AuditRecord, CommandRecord, ModelRecord

FLEET_DDL = """
CREATE TABLE IF NOT EXISTS fleet_models (
    sha256 TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    decoder TEXT NOT NULL,
    labels TEXT NOT NULL,
    input_size INTEGER,
    train_data_hash TEXT,
    native INTEGER NOT NULL CHECK (native IN (0, 1)),
    size_bytes INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    card TEXT,
    figures TEXT NOT NULL,
    uploaded_by TEXT NOT NULL,
    uploaded_ms INTEGER NOT NULL
);
-- one name and version may have several files (FP32 and INT8 of one training run): sha256 is the identity
CREATE INDEX IF NOT EXISTS fleet_models_name ON fleet_models (name, version);

CREATE TABLE IF NOT EXISTS fleet_commands (
    id TEXT PRIMARY KEY,
    site TEXT NOT NULL,
    device TEXT NOT NULL,
    name TEXT NOT NULL,
    args TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'sent', 'ok', 'error', 'timed_out')),
    created_by TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    deadline_ms INTEGER NOT NULL,
    sent_ms INTEGER,
    attempts INTEGER NOT NULL DEFAULT 0,
    replied_ms INTEGER,
    reply TEXT,
    timed_out_ms INTEGER
);
CREATE INDEX IF NOT EXISTS fleet_commands_device ON fleet_commands (site, device, created_ms);
CREATE INDEX IF NOT EXISTS fleet_commands_open ON fleet_commands (deadline_ms) WHERE state IN ('pending', 'sent');

CREATE TABLE IF NOT EXISTS fleet_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ms INTEGER NOT NULL,
    actor TEXT NOT NULL,
    role TEXT NOT NULL,
    action TEXT NOT NULL,
    target_kind TEXT NOT NULL CHECK (target_kind IN ('device', 'model', 'config')),
    target TEXT NOT NULL,
    result TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS fleet_audit_target ON fleet_audit (target_kind, target, id);

CREATE TABLE IF NOT EXISTS fleet_keys (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
"""

_COMMAND_COLUMNS = ("id, site, device, name, args, state, created_by, created_ms, deadline_ms, sent_ms, attempts,"
                    " replied_ms, reply, timed_out_ms")
_MODEL_COLUMNS = ("sha256, name, version, decoder, labels, input_size, train_data_hash, native, size_bytes,"
                  " metadata, card, figures, uploaded_by, uploaded_ms")


def ensure_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(FLEET_DDL)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _model(row: Sequence[Any]) -> ModelRecord:
    return ModelRecord(
        sha256=row[0], name=row[1], version=row[2], decoder=row[3], labels=json.loads(row[4]), input_size=row[5],
        train_data_hash=row[6], fieldline_native=bool(row[7]), size_bytes=row[8], metadata=json.loads(row[9]),
        card=row[10], figures=json.loads(row[11]), uploaded_by=row[12], uploaded_ms=row[13])


def _command(row: Sequence[Any]) -> CommandRecord:
    return CommandRecord(
        id=row[0], site=row[1], device=row[2], name=row[3], args=json.loads(row[4]), state=row[5],
        created_by=row[6], created_ms=row[7], deadline_ms=row[8], sent_ms=row[9], attempts=row[10],
        replied_ms=row[11], reply=json.loads(row[12]) if row[12] else None, timed_out_ms=row[13])


def _audit(row: Sequence[Any]) -> AuditRecord:
    return AuditRecord(id=row[0], ts_ms=row[1], actor=row[2], role=row[3], action=row[4], target_kind=row[5],
                       target=row[6], result=row[7], detail=json.loads(row[8]))


def _insert_audit(conn: sqlite3.Connection, entry: AuditRecord) -> int:
    cur = conn.execute(
        "INSERT INTO fleet_audit (ts_ms, actor, role, action, target_kind, target, result, detail)"
        " VALUES (?,?,?,?,?,?,?,?)",
        (entry.ts_ms, entry.actor, entry.role, entry.action, entry.target_kind, entry.target, entry.result,
         _json(entry.detail)))
    return int(cur.lastrowid or 0)


def _outcome_audit(command: CommandRecord, ts_ms: int, result: str, detail: dict[str, Any]) -> AuditRecord:
    """The audit row of a command's outcome: reported by the device (a reply) or by the API (a time-out)."""
    replied = result in ("ok", "error")
    target = f"{command.site}/{command.device}"
    return AuditRecord(id=0, ts_ms=ts_ms, actor=target if replied else "api", role="device" if replied else "system",
                       action=f"command.{command.name}.result", target_kind="device", target=target, result=result,
                       detail={"command_id": command.id, "requested_by": command.created_by, **detail})


class FleetMixin:
    """Needs ``_conn()`` and ``_transaction()`` from the class it is mixed into (``SqliteStore``)."""

    def _conn(self) -> sqlite3.Connection:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    # ------------------------------------------------------------ key for download tokens

    def fleet_key(self, name: str) -> bytes:
        """A random 32-byte secret kept in the database (made on first use; shared by every API worker)."""
        with self._transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO fleet_keys (name, value) VALUES (?, ?)",
                         (name, secrets.token_bytes(32)))
            return bytes(conn.execute("SELECT value FROM fleet_keys WHERE name = ?", (name,)).fetchone()[0])

    # ------------------------------------------------------------ models

    def add_model(self, model: ModelRecord, audit: AuditRecord) -> bool:
        """Register a model; False when this exact file (sha256) is already there."""
        with self._transaction() as conn:
            if conn.execute("SELECT 1 FROM fleet_models WHERE sha256 = ?", (model.sha256,)).fetchone():
                return False
            conn.execute(
                f"INSERT INTO fleet_models ({_MODEL_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (model.sha256, model.name, model.version, model.decoder, _json(model.labels), model.input_size,
                 model.train_data_hash, int(model.fieldline_native), model.size_bytes, _json(model.metadata),
                 model.card, _json(model.figures), model.uploaded_by, model.uploaded_ms))
            _insert_audit(conn, audit)
        return True

    def get_model(self, sha256: str) -> ModelRecord | None:
        row = self._conn().execute(f"SELECT {_MODEL_COLUMNS} FROM fleet_models WHERE sha256 = ?", (sha256,)).fetchone()
        return _model(row) if row else None

    def list_models(self) -> list[ModelRecord]:
        rows = self._conn().execute(
            f"SELECT {_MODEL_COLUMNS} FROM fleet_models ORDER BY name, uploaded_ms DESC").fetchall()
        return [_model(r) for r in rows]

    # ------------------------------------------------------------ commands

    def add_command(self, command: CommandRecord, audit: AuditRecord) -> None:
        with self._transaction() as conn:
            conn.execute(
                f"INSERT INTO fleet_commands ({_COMMAND_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (command.id, command.site, command.device, command.name, _json(command.args), command.state,
                 command.created_by, command.created_ms, command.deadline_ms, command.sent_ms, command.attempts,
                 command.replied_ms, None, command.timed_out_ms))
            _insert_audit(conn, audit)

    def get_command(self, command_id: str) -> CommandRecord | None:
        row = self._conn().execute(f"SELECT {_COMMAND_COLUMNS} FROM fleet_commands WHERE id = ?",
                                   (command_id,)).fetchone()
        return _command(row) if row else None

    def list_commands(self, site: str, device: str, limit: int = 100) -> list[CommandRecord]:
        rows = self._conn().execute(
            f"SELECT {_COMMAND_COLUMNS} FROM fleet_commands WHERE site = ? AND device = ?"
            " ORDER BY created_ms DESC, id DESC LIMIT ?", (site, device, limit)).fetchall()
        return [_command(r) for r in rows]

    def open_commands(self, now_ms: int) -> list[CommandRecord]:
        """Commands without a reply whose deadline has not passed, oldest first."""
        rows = self._conn().execute(
            f"SELECT {_COMMAND_COLUMNS} FROM fleet_commands WHERE state IN ('pending', 'sent') AND deadline_ms > ?"
            " ORDER BY created_ms, id", (now_ms,)).fetchall()
        return [_command(r) for r in rows]

    def mark_command_sent(self, command_id: str, now_ms: int) -> bool:
        """The broker took the message (PUBACK). Only a pending command becomes sent: a reply may have come first."""
        with self._transaction() as conn:
            cur = conn.execute(
                "UPDATE fleet_commands SET state = CASE WHEN state = 'pending' THEN 'sent' ELSE state END,"
                " sent_ms = coalesce(sent_ms, ?), attempts = attempts + 1 WHERE id = ?", (now_ms, command_id))
            return cur.rowcount == 1

    def write_command_reply(self, site: str, device: str, name: str, reply: CommandReply, received_ms: int) -> bool:
        """Store a device's reply to one of our commands; False when no such command was sent to that device
        (a hand-made command, or a reply already stored: the first one counts)."""
        with self._transaction() as conn:
            row = conn.execute(
                f"SELECT {_COMMAND_COLUMNS} FROM fleet_commands WHERE id = ? AND site = ? AND device = ? AND name = ?"
                " AND replied_ms IS NULL", (reply.request_id, site, device, name)).fetchone()
            if row is None:
                return False
            command = _command(row)
            state = "ok" if reply.ok else "error"
            conn.execute("UPDATE fleet_commands SET state = ?, reply = ?, replied_ms = ? WHERE id = ?",
                         (state, reply.model_dump_json(), received_ms, command.id))
            detail: dict[str, Any] = {"error": reply.error} if reply.error else {}
            if command.timed_out_ms is not None:
                detail["late_by_ms"] = received_ms - command.deadline_ms
            _insert_audit(conn, _outcome_audit(command, received_ms, state, detail))
        return True

    def expire_commands(self, now_ms: int) -> list[CommandRecord]:
        """Mark unanswered commands past their deadline timed_out; returns them."""
        with self._transaction() as conn:
            rows = conn.execute(
                f"SELECT {_COMMAND_COLUMNS} FROM fleet_commands WHERE state IN ('pending', 'sent') AND deadline_ms <= ?",
                (now_ms,)).fetchall()
            expired = [_command(r) for r in rows]
            for command in expired:
                conn.execute("UPDATE fleet_commands SET state = 'timed_out', timed_out_ms = ? WHERE id = ?",
                             (now_ms, command.id))
                _insert_audit(conn, _outcome_audit(command, now_ms, "timed_out",
                                                   {"sent": command.sent_ms is not None}))
        return expired

    # ------------------------------------------------------------ audit

    def add_audit(self, entry: AuditRecord) -> int:
        with self._transaction() as conn:
            return _insert_audit(conn, entry)

    def list_audit(self, *, target_kind: str | None = None, target: str | None = None, actor: str | None = None,
                   before_id: int | None = None, limit: int = 100) -> list[AuditRecord]:
        where: list[str] = []
        params: list[object] = []
        for column, value in (("target_kind", target_kind), ("target", target), ("actor", actor)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if before_id is not None:
            where.append("id < ?")
            params.append(before_id)
        sql = ("SELECT id, ts_ms, actor, role, action, target_kind, target, result, detail FROM fleet_audit"
               + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id DESC LIMIT ?")
        rows = self._conn().execute(sql, (*params, limit)).fetchall()
        return [_audit(r) for r in rows]
