"""Deployment tables (rollouts, their devices, their history), device tags, config versions and what the
health gate reads (stats samples, reported config hashes); mixed into ``SqliteStore``.

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

from cloud_api.fleet.config_registry import ConfigRecord
from cloud_api.fleet.deployment_records import DeploymentDevice, DeploymentRecord, HistoryEntry, StatsSample
from cloud_api.fleet.records import AuditRecord, CommandRecord
from cloud_api.storage.sqlite_fleet import _COMMAND_COLUMNS, FLEET_DDL, _insert_audit
from fieldline.contract import DeviceStats, DeviceStatus

DEPLOYMENTS_DDL = """
CREATE TABLE IF NOT EXISTS fleet_deployments (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('model', 'config')),
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

-- config versions rolled out by deployments of kind 'config': a partial agent config (JSON merge patch)
CREATE TABLE IF NOT EXISTS fleet_configs (
    sha256 TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    version TEXT NOT NULL,
    document TEXT NOT NULL,
    note TEXT,
    created_by TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS fleet_configs_name_version ON fleet_configs (name, version);

-- every stats message of the last STATS_KEEP_MS, tagged with the model and config the device ran then
CREATE TABLE IF NOT EXISTS fleet_stats_samples (
    site TEXT NOT NULL,
    device TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    fps REAL NOT NULL,
    p95_ms REAL NOT NULL,
    model_sha256 TEXT,
    config_hash TEXT
);
CREATE INDEX IF NOT EXISTS fleet_stats_samples_dev ON fleet_stats_samples (site, device, ts_ms);

-- the config hash of each device's latest status
CREATE TABLE IF NOT EXISTS fleet_device_configs (
    site TEXT NOT NULL,
    device TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    PRIMARY KEY (site, device)
);
"""
_AUDIT_COLUMNS = "id, ts_ms, actor, role, action, target_kind, target, result, detail"
STATS_KEEP_MS = 2 * 3_600_000  # the gate's baseline is the last hour before an update

_DEP_COLUMNS = ("id, kind, sha256, target, policy, state, stage, stages, reason, api_url, created_by, created_ms,"
                " updated_ms, finished_ms, after_rollback")
_DEV_COLUMNS = ("deployment_id, site, device, stage, state, command_id, rollback_command_id, before_sha256,"
                " before_fps, baseline_count, gate, reason, started_ms, loaded_ms, updated_ms")
_DEV_UPDATABLE = ("state", "command_id", "rollback_command_id", "before_sha256", "before_fps", "baseline_count",
                  "gate", "reason", "started_ms", "loaded_ms")


def ensure_schema(conn: sqlite3.Connection) -> None:
    _widen_check(conn, "fleet_deployments", DEPLOYMENTS_DDL, _DEP_COLUMNS)
    _widen_check(conn, "fleet_audit", FLEET_DDL, _AUDIT_COLUMNS)
    conn.executescript(DEPLOYMENTS_DDL)


def _widen_check(conn: sqlite3.Connection, table: str, ddl_script: str, columns: str) -> None:
    """Files made before config rollouts allow only 'model' (and 'device') in ``table``'s kind CHECK: rebuild the
    table from ``ddl_script`` (SQLite cannot alter a CHECK) as SQLite's documentation prescribes: foreign keys
    off, create, copy, drop, rename, in one transaction. Its indexes come back with the DDL scripts."""
    row = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
    if row is None or "'config'" in row[0]:
        return
    start = ddl_script.index(f"CREATE TABLE IF NOT EXISTS {table} (")
    ddl = ddl_script[start:ddl_script.index(");", start) + 2]
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(ddl.replace(f"IF NOT EXISTS {table}", f"{table}_new"))
            conn.execute(f"INSERT INTO {table}_new ({columns}) SELECT {columns} FROM {table}")
            conn.execute(f"DROP TABLE {table}")
            conn.execute(f"ALTER TABLE {table}_new RENAME TO {table}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.execute("PRAGMA foreign_keys = ON")
    conn.executescript(ddl_script)


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

    # ------------------------------------------------------------ config versions

    def add_config(self, record: ConfigRecord, audit: AuditRecord) -> bool:
        """False when the sha256, or the name and version, is taken (nothing stored)."""
        with self._transaction() as conn:
            cur = conn.execute(
                "INSERT OR IGNORE INTO fleet_configs (sha256, name, version, document, note, created_by, created_ms)"
                " VALUES (?,?,?,?,?,?,?)", (record.sha256, record.name, record.version, _json(record.document),
                                            record.note, record.created_by, record.created_ms))
            if cur.rowcount != 1:
                return False
            _insert_audit(conn, audit)
        return True

    _CONFIG_COLUMNS = "sha256, name, version, document, note, created_by, created_ms"

    @staticmethod
    def _config(row: Sequence[Any]) -> ConfigRecord:
        return ConfigRecord(sha256=row[0], name=row[1], version=row[2], document=json.loads(row[3]), note=row[4],
                            created_by=row[5], created_ms=row[6])

    def get_config(self, sha256: str) -> ConfigRecord | None:
        row = self._conn().execute(f"SELECT {self._CONFIG_COLUMNS} FROM fleet_configs WHERE sha256 = ?",
                                   (sha256,)).fetchone()
        return self._config(row) if row else None

    def get_config_version(self, name: str, version: str) -> ConfigRecord | None:
        row = self._conn().execute(f"SELECT {self._CONFIG_COLUMNS} FROM fleet_configs WHERE name = ? AND version = ?",
                                   (name, version)).fetchone()
        return self._config(row) if row else None

    def list_configs(self) -> list[ConfigRecord]:
        rows = self._conn().execute(
            f"SELECT {self._CONFIG_COLUMNS} FROM fleet_configs ORDER BY name, created_ms DESC").fetchall()
        return [self._config(r) for r in rows]

    # ------------------------------------------------------------ device reports kept for the gate

    @staticmethod
    def record_config_hash(conn: sqlite3.Connection, status: DeviceStatus, received_ms: int) -> None:
        """In the transaction that stored ``status`` (only a status that was applied)."""
        conn.execute("INSERT OR REPLACE INTO fleet_device_configs (site, device, config_hash, ts_ms) VALUES (?,?,?,?)",
                     (status.site, status.device, status.config_hash, received_ms))

    @staticmethod
    def record_stats_sample(conn: sqlite3.Connection, stats: DeviceStats, received_ms: int) -> None:
        """In the transaction that stored ``stats``: one sample tagged with the device's model and config now."""
        model = conn.execute("SELECT json_extract(model, '$.sha256') FROM devices WHERE site = ? AND device = ?",
                             (stats.site, stats.device)).fetchone()
        config = conn.execute("SELECT config_hash FROM fleet_device_configs WHERE site = ? AND device = ?",
                              (stats.site, stats.device)).fetchone()
        conn.execute("INSERT INTO fleet_stats_samples (site, device, ts_ms, fps, p95_ms, model_sha256, config_hash)"
                     " VALUES (?,?,?,?,?,?,?)", (stats.site, stats.device, received_ms, stats.fps,
                                                 stats.latency_ms.p95, model[0] if model else None,
                                                 config[0] if config else None))
        conn.execute("DELETE FROM fleet_stats_samples WHERE site = ? AND device = ? AND ts_ms < ?",
                     (stats.site, stats.device, received_ms - STATS_KEEP_MS))

    def device_config_hash(self, site: str, device: str) -> str | None:
        row = self._conn().execute("SELECT config_hash FROM fleet_device_configs WHERE site = ? AND device = ?",
                                   (site, device)).fetchone()
        return row[0] or None if row else None

    def stats_samples(self, site: str, device: str, from_ms: int, to_ms: int, *, model_sha256: str | None = None,
                      config_hash: str | None = None) -> list[StatsSample]:
        """Stats received in [from_ms, to_ms), oldest first; only those of that model and config when given."""
        rows = self._conn().execute(
            "SELECT ts_ms, fps, p95_ms, model_sha256, config_hash FROM fleet_stats_samples WHERE site = ? AND"
            " device = ? AND ts_ms >= ? AND ts_ms < ? ORDER BY ts_ms", (site, device, from_ms, to_ms)).fetchall()
        return [StatsSample(ts_ms=r[0], fps=r[1], p95_ms=r[2]) for r in rows
                if model_sha256 in (None, r[3]) and config_hash in (None, r[4])]
