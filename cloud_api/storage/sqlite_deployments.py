"""Deployment tables (rollouts, their devices, their history) and device tags; mixed into ``SqliteStore``.

Created by ``ensure_schema`` from ``SqliteStore.open`` (``CREATE ... IF NOT EXISTS``). Every state change of a
deployment or of one of its devices is one transaction together with its history row (and, when the change
sends a command, with that command's row and audit entry), so a ``kill -9`` leaves either the old state or the
new one, never a device marked as installing without the command that installs it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from cloud_api.fleet.deployment_records import DeploymentDevice, DeploymentRecord, HistoryEntry
from cloud_api.fleet.records import AuditRecord, CommandRecord
from cloud_api.storage.sqlite_fleet import _COMMAND_COLUMNS, _insert_audit

DEPLOYMENTS_DDL = """
CREATE TABLE IF NOT EXISTS fleet_deployments (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('model')),
    sha256 TEXT NOT NULL,
    target TEXT NOT NULL,
    policy TEXT NOT NULL,
    state TEXT NOT NULL,
    stage INTEGER NOT NULL DEFAULT 0,
    stages INTEGER NOT NULL,
    reason TEXT,
    after_rollback TEXT,
    api_url TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    finished_ms INTEGER
);
CREATE INDEX IF NOT EXISTS fleet_deployments_state ON fleet_deployments (state, created_ms);

CREATE TABLE IF NOT EXISTS fleet_deployment_devices (
    deployment_id TEXT NOT NULL REFERENCES fleet_deployments (id),
    site TEXT NOT NULL,
    device TEXT NOT NULL,
    stage INTEGER NOT NULL,
    state TEXT NOT NULL,
    command_id TEXT,
    rollback_command_id TEXT,
    before_sha256 TEXT,
    before_fps REAL,
    baseline_count REAL,
    gate TEXT NOT NULL DEFAULT '{}',
    reason TEXT,
    started_ms INTEGER,
    loaded_ms INTEGER,
    updated_ms INTEGER NOT NULL,
    PRIMARY KEY (deployment_id, site, device)
);

CREATE TABLE IF NOT EXISTS fleet_deployment_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    deployment_id TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    site TEXT,
    device TEXT,
    from_state TEXT,
    to_state TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS fleet_deployment_history_dep ON fleet_deployment_history (deployment_id, id);

CREATE TABLE IF NOT EXISTS fleet_device_tags (
    site TEXT NOT NULL,
    device TEXT NOT NULL,
    tag TEXT NOT NULL,
    PRIMARY KEY (site, device, tag)
);
CREATE INDEX IF NOT EXISTS fleet_device_tags_tag ON fleet_device_tags (tag);
"""

_DEP_COLUMNS = ("id, kind, sha256, target, policy, state, stage, stages, reason, api_url, created_by, created_ms,"
                " updated_ms, finished_ms, after_rollback")
_DEV_COLUMNS = ("deployment_id, site, device, stage, state, command_id, rollback_command_id, before_sha256,"
                " before_fps, baseline_count, gate, reason, started_ms, loaded_ms, updated_ms")
_DEV_UPDATABLE = ("state", "command_id", "rollback_command_id", "before_sha256", "before_fps", "baseline_count",
                  "gate", "reason", "started_ms", "loaded_ms")


def ensure_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(DEPLOYMENTS_DDL)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _deployment(row: Sequence[Any]) -> DeploymentRecord:
    return DeploymentRecord(
        id=row[0], kind=row[1], sha256=row[2], target=json.loads(row[3]), policy=json.loads(row[4]), state=row[5],
        stage=row[6], stages=row[7], reason=row[8], api_url=row[9], created_by=row[10], created_ms=row[11],
        updated_ms=row[12], finished_ms=row[13], after_rollback=row[14])


def _device(row: Sequence[Any]) -> DeploymentDevice:
    return DeploymentDevice(
        deployment_id=row[0], site=row[1], device=row[2], stage=row[3], state=row[4], command_id=row[5],
        rollback_command_id=row[6], before_sha256=row[7], before_fps=row[8], baseline_count=row[9],
        gate=json.loads(row[10]), reason=row[11], started_ms=row[12], loaded_ms=row[13], updated_ms=row[14])


def _history(conn: sqlite3.Connection, deployment_id: str, ts_ms: int, site: str | None, device: str | None,
             from_state: str | None, to_state: str, detail: dict[str, Any]) -> None:
    conn.execute("INSERT INTO fleet_deployment_history (deployment_id, ts_ms, site, device, from_state, to_state,"
                 " detail) VALUES (?,?,?,?,?,?,?)",
                 (deployment_id, ts_ms, site, device, from_state, to_state, _json(detail)))


def _insert_command(conn: sqlite3.Connection, command: CommandRecord, audit: AuditRecord) -> None:
    conn.execute(
        f"INSERT INTO fleet_commands ({_COMMAND_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        (command.id, command.site, command.device, command.name, _json(command.args), command.state,
         command.created_by, command.created_ms, command.deadline_ms, command.sent_ms, command.attempts,
         command.replied_ms, None, command.timed_out_ms))
    _insert_audit(conn, audit)


class DeploymentsMixin:
    """Needs ``_conn()`` and ``_transaction()`` from the class it is mixed into (``SqliteStore``)."""

    def _conn(self) -> sqlite3.Connection:
        raise NotImplementedError

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError

    # ------------------------------------------------------------ tags

    def set_device_tags(self, site: str, device: str, tags: Sequence[str]) -> None:
        with self._transaction() as conn:
            conn.execute("DELETE FROM fleet_device_tags WHERE site = ? AND device = ?", (site, device))
            conn.executemany("INSERT OR IGNORE INTO fleet_device_tags (site, device, tag) VALUES (?,?,?)",
                             [(site, device, t) for t in tags])

    def device_tags(self) -> dict[tuple[str, str], list[str]]:
        tags: dict[tuple[str, str], list[str]] = {}
        for site, device, tag in self._conn().execute(
                "SELECT site, device, tag FROM fleet_device_tags ORDER BY site, device, tag").fetchall():
            tags.setdefault((site, device), []).append(tag)
        return tags

    def devices_with_tag(self, tag: str) -> list[tuple[str, str]]:
        rows = self._conn().execute("SELECT site, device FROM fleet_device_tags WHERE tag = ?", (tag,)).fetchall()
        return [(r[0], r[1]) for r in rows]

    def open_alerts_by_device(self) -> dict[tuple[str, str], int]:
        rows = self._conn().execute(
            "SELECT site, device, count(*) FROM alert_lifecycle WHERE state != 'cleared' GROUP BY site, device")
        return {(site, device): int(n) for site, device, n in rows}

    def latest_deployment_states(self) -> dict[tuple[str, str], str]:
        """Each device's state in the newest deployment that includes it."""
        rows = self._conn().execute(
            "SELECT v.site, v.device, v.state FROM fleet_deployment_devices v JOIN fleet_deployments d"
            " ON d.id = v.deployment_id ORDER BY d.created_ms")
        return {(site, device): state for site, device, state in rows}

    # ------------------------------------------------------------ deployments

    def add_deployment(self, deployment: DeploymentRecord, devices: Sequence[DeploymentDevice],
                       audit: AuditRecord) -> None:
        d = deployment
        with self._transaction() as conn:
            conn.execute(
                f"INSERT INTO fleet_deployments ({_DEP_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (d.id, d.kind, d.sha256, _json(d.target), _json(d.policy), d.state, d.stage, d.stages, d.reason,
                 d.api_url, d.created_by, d.created_ms, d.updated_ms, d.finished_ms, d.after_rollback))
            conn.executemany(
                f"INSERT INTO fleet_deployment_devices ({_DEV_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(d.id, v.site, v.device, v.stage, v.state, None, None, None, None, None, "{}", None, None, None,
                  d.created_ms) for v in devices])
            _history(conn, d.id, d.created_ms, None, None, None, d.state,
                     {"devices": len(devices), "stages": d.stages, "by": d.created_by})
            _insert_audit(conn, audit)

    def get_deployment(self, deployment_id: str) -> DeploymentRecord | None:
        row = self._conn().execute(f"SELECT {_DEP_COLUMNS} FROM fleet_deployments WHERE id = ?",
                                   (deployment_id,)).fetchone()
        return _deployment(row) if row else None

    def list_deployments(self, limit: int = 100) -> list[DeploymentRecord]:
        rows = self._conn().execute(
            f"SELECT {_DEP_COLUMNS} FROM fleet_deployments ORDER BY created_ms DESC, id LIMIT ?", (limit,)).fetchall()
        return [_deployment(r) for r in rows]

    def deployments_to_drive(self, final_states: Sequence[str], busy_device_states: Sequence[str]
                             ) -> list[DeploymentRecord]:
        """Deployments not finished, and finished ones that still have a device half-way (a command in flight)."""
        marks = ",".join("?" * len(final_states))
        busy = ",".join("?" * len(busy_device_states))
        rows = self._conn().execute(
            f"SELECT {_DEP_COLUMNS} FROM fleet_deployments WHERE state NOT IN ({marks}) OR id IN"
            f" (SELECT deployment_id FROM fleet_deployment_devices WHERE state IN ({busy})) ORDER BY created_ms",
            (*final_states, *busy_device_states)).fetchall()
        return [_deployment(r) for r in rows]

    def deployment_devices(self, deployment_id: str) -> list[DeploymentDevice]:
        rows = self._conn().execute(
            f"SELECT {_DEV_COLUMNS} FROM fleet_deployment_devices WHERE deployment_id = ? ORDER BY stage, site, device",
            (deployment_id,)).fetchall()
        return [_device(r) for r in rows]

    def deployment_history(self, deployment_id: str, limit: int = 500) -> list[HistoryEntry]:
        rows = self._conn().execute(
            "SELECT id, deployment_id, ts_ms, site, device, from_state, to_state, detail FROM fleet_deployment_history"
            " WHERE deployment_id = ? ORDER BY id LIMIT ?", (deployment_id, limit)).fetchall()
        return [HistoryEntry(id=r[0], deployment_id=r[1], ts_ms=r[2], site=r[3], device=r[4], from_state=r[5],
                             to_state=r[6], detail=json.loads(r[7])) for r in rows]

    def update_deployment(self, deployment_id: str, now_ms: int, *, expect: Sequence[str] | None = None,
                          audit: AuditRecord | None = None, detail: dict[str, Any] | None = None,
                          **changes: Any) -> DeploymentRecord | None:
        """Change a deployment (state, stage, reason, finished_ms); None when its state is not in ``expect``."""
        with self._transaction() as conn:
            row = conn.execute(f"SELECT {_DEP_COLUMNS} FROM fleet_deployments WHERE id = ?",
                               (deployment_id,)).fetchone()
            if row is None or (expect is not None and row[5] not in expect):
                return None
            before = _deployment(row)
            sets = ", ".join(f"{k} = ?" for k in changes)
            conn.execute(f"UPDATE fleet_deployments SET {sets}{', ' if sets else ''}updated_ms = ? WHERE id = ?",
                         (*changes.values(), now_ms, deployment_id))
            if "state" in changes and changes["state"] != before.state or detail:
                _history(conn, deployment_id, now_ms, None, None, before.state, changes.get("state", before.state),
                         {**(detail or {}), **({"stage": changes["stage"]} if "stage" in changes else {})})
            if audit is not None:
                _insert_audit(conn, audit)
            row = conn.execute(f"SELECT {_DEP_COLUMNS} FROM fleet_deployments WHERE id = ?",
                               (deployment_id,)).fetchone()
        return _deployment(row)

    def update_deployment_device(self, device: DeploymentDevice, now_ms: int, *, detail: dict[str, Any] | None = None,
                                 command: tuple[CommandRecord, AuditRecord] | None = None,
                                 audit: AuditRecord | None = None, **changes: Any) -> bool:
        """Move one device on (compare-and-set on its state), with its history row, in one transaction; the
        command that the move sends, if any, is stored in the same transaction. False: someone moved it first."""
        unknown = set(changes) - set(_DEV_UPDATABLE)
        if unknown:
            raise ValueError(f"not a deployment device column: {', '.join(sorted(unknown))}")
        values = {k: _json(v) if k == "gate" else v for k, v in changes.items()}
        with self._transaction() as conn:
            sets = ", ".join(f"{k} = ?" for k in values)
            cur = conn.execute(
                f"UPDATE fleet_deployment_devices SET {sets}{', ' if sets else ''}updated_ms = ?"
                " WHERE deployment_id = ? AND site = ? AND device = ? AND state = ?",
                (*values.values(), now_ms, device.deployment_id, device.site, device.device, device.state))
            if cur.rowcount != 1:
                return False
            new_state = changes.get("state", device.state)
            if new_state != device.state or detail:
                _history(conn, device.deployment_id, now_ms, device.site, device.device, device.state, new_state,
                         detail or {})
            if command is not None:
                _insert_command(conn, *command)
            if audit is not None:
                _insert_audit(conn, audit)
        return True

    # ------------------------------------------------------------ what the gate reads

    def model_error_alerts_since(self, site: str, device: str, since_ms: int) -> int:
        return int(self._conn().execute(
            "SELECT count(*) FROM alerts WHERE site = ? AND device = ? AND code = 'model_error' AND received_ms >= ?",
            (site, device, since_ms)).fetchone()[0])

    def count_totals(self, site: str, device: str, from_ms: int, to_ms: int, model_sha256: str | None = None,
                     limit: int = 5000) -> list[int]:
        """Total objects (sum over labels) of the device's count events received in [from_ms, to_ms), only
        those counted by the model ``model_sha256`` when given."""
        rows = self._conn().execute(
            "SELECT payload FROM events WHERE site = ? AND device = ? AND kind = 'count' AND received_ms >= ?"
            " AND received_ms < ? ORDER BY received_ms DESC LIMIT ?", (site, device, from_ms, to_ms, limit)).fetchall()
        totals = []
        for (payload,) in rows:
            event = json.loads(payload)
            if model_sha256 is None or (event.get("model") or {}).get("sha256") == model_sha256:
                totals.append(sum(int(v) for v in event.get("counts", {}).values()))
        return totals

    def latest_count_total(self, site: str, device: str) -> int | None:
        row = self._conn().execute(
            "SELECT payload FROM events WHERE site = ? AND device = ? AND kind = 'count'"
            " ORDER BY received_ms DESC LIMIT 1", (site, device)).fetchone()
        return sum(int(v) for v in json.loads(row[0]).get("counts", {}).values()) if row else None
