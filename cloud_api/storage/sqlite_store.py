"""SQLite implementation of the ``Store`` protocol (WAL mode, batched write transactions)."""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fieldline.contract import Alert, DeviceStats, DeviceStatus, Event, Telemetry

from cloud_api.storage import (
    sqlite_alerts,
    sqlite_batch,
    sqlite_climate,
    sqlite_datasets,
    sqlite_deployments,
    sqlite_fleet,
    sqlite_identity,
    sqlite_qa,
    sqlite_retention,
    sqlite_rollups,
    sqlite_sheds,
)
from cloud_api.storage.sqlite_identity import EventsWritten
from cloud_api.storage.records import (
    AlertQuery,
    AlertRecord,
    AlertSummary,
    CountBucket,
    DeadLetterRecord,
    DeviceAudit,
    DeviceRecord,
    EventQuery,
    LatestCount,
    NewDeadLetter,
    ShedSummary,
    StoreChange,
)
from cloud_api.storage.sqlite_datasets import DatasetsMixin
from cloud_api.storage.sqlite_deployments import DeploymentsMixin
from cloud_api.storage.sqlite_fleet import FleetMixin
from cloud_api.storage.sqlite_metadata import MetadataMixin
from cloud_api.storage.sqlite_qa import QaMixin
from cloud_api.storage.sqlite_schema import ConnectionPool, setup_lock

log = logging.getLogger(__name__)

ChangeListener = Callable[[StoreChange], None]

_DIGITS = re.compile(r"(\d+)")


def natural_key(value: str) -> list[tuple[int, int | str]]:
    """Sort key that orders shed-2 before shed-10."""
    return [(0, int(part)) if part.isdigit() else (1, part) for part in _DIGITS.split(value) if part]


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


class SqliteStore(MetadataMixin, QaMixin, FleetMixin, DeploymentsMixin, DatasetsMixin):
    """Events, count time series, devices, alerts, snapshots and dead letters in one SQLite file."""

    def __init__(self, path: Path, dead_letter_max_bytes: int = 4096) -> None:
        self._path = Path(path)
        self._dead_letter_max_bytes = dead_letter_max_bytes
        self._pool: ConnectionPool | None = None
        self._listeners: list[ChangeListener] = []
        self.listener_errors = 0  # change listeners that raised (counted, never stop a write)

    # ------------------------------------------------------------ lifecycle

    def open(self) -> None:
        if self._pool is None:
            with setup_lock(self._path):  # one process at a time (see setup_lock)
                self._pool = ConnectionPool(self._path)
                if self._pool.create_schema() == 1:
                    self._backfill_alert_lifecycle()
                sqlite_qa.ensure_schema(self._pool.get())  # factory QA tables (backfilled once when new)
                sqlite_rollups.ensure_schema(self._pool.get())  # count rollups (backfilled once when new)
                sqlite_climate.ensure_schema(self._pool.get())  # climate series, sensors, temperature forecasts
                sqlite_fleet.ensure_schema(self._pool.get())  # model registry, device commands, audit log
                sqlite_deployments.ensure_schema(self._pool.get())  # staged rollouts, device tags
                sqlite_datasets.ensure_schema(self._pool.get())  # learning-loop datasets and frames

    def _backfill_alert_lifecycle(self) -> None:
        """Schema 1 -> 2: group the alerts stored before the lifecycle existed (all start active)."""
        with self._transaction() as conn:
            if conn.execute("SELECT count(*) FROM alert_lifecycle").fetchone()[0]:
                return
            for (payload,) in conn.execute("SELECT payload FROM alerts ORDER BY ts_ms, id").fetchall():
                sqlite_alerts.group_alert(conn, Alert.model_validate_json(payload))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def _conn(self) -> sqlite3.Connection:
        if self._pool is None:
            raise sqlite3.ProgrammingError("the store is not open")
        return self._pool.get()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def add_change_listener(self, listener: ChangeListener) -> None:
        """Call ``listener`` (in the writing thread) for every change committed from now on."""
        self._listeners.append(listener)

    def _emit(self, changes: list[StoreChange]) -> None:
        for change in changes:
            for listener in self._listeners:
                try:
                    listener(change)
                except Exception:  # noqa: BLE001 - a broken listener must not fail the committed write
                    self.listener_errors += 1
                    log.exception("store change listener failed on a %s change", change.kind)

    def ping(self) -> bool:
        try:
            return self._conn().execute("SELECT 1").fetchone() == (1,)
        except sqlite3.Error:
            return False

    # ------------------------------------------------------------ writes

    def write_events(self, events: list[Event], received_ms: int,
                     payloads: Sequence[bytes | None] | None = None) -> EventsWritten:
        """Store new events; a repeated id with other content is stored under a derived id and alerted."""
        with self._transaction() as conn:  # a few statements per batch (see sqlite_batch)
            resolved = sqlite_batch.insert_events(conn, events, received_ms, payloads)
            alerts = [sqlite_identity.collision_alert(c) for c in resolved.collisions]
            alerts += sqlite_identity.record(conn, resolved, received_ms)
            changes = self._insert_alerts(conn, alerts, received_ms)[1]
        if resolved.collisions:
            log.warning("%d event id collision(s), stored under derived ids: %s", len(resolved.collisions),
                        ", ".join(f"{c.original_id} -> {c.event.id}" for c in resolved.collisions[:5]))
        inserted = [e for e, _ in resolved.fresh]
        self._emit([StoreChange(e.kind, "stored", e) for e in inserted if e.kind in ("count", "inspection")])
        self._emit(changes)
        return EventsWritten(len(inserted), collisions=len(resolved.collisions), repeats=len(resolved.repeats))

    def _touch_device(self, conn: sqlite3.Connection, site: str, device: str, received_ms: int) -> None:
        conn.execute(
            "INSERT INTO devices (device, site, state, last_seen_ms, first_seen_ms) VALUES (?,?,'unknown',?,?)"
            " ON CONFLICT (site, device) DO UPDATE SET last_seen_ms = max(devices.last_seen_ms, excluded.last_seen_ms)",
            (device, site, received_ms, received_ms),
        )

    def write_status(self, status: DeviceStatus, received_ms: int) -> bool:
        with self._transaction() as conn:
            self._touch_device(conn, status.site, status.device, received_ms)
            # stale: an older boot of the same install; a new install (wiped folder: boot restarts at 1)
            # replaces the old one's status when it is newer by its clock
            cur = conn.execute(
                "UPDATE devices SET state = ?, boot = ?, agent_version = ?, status_ts_ms = ?, model = ?,"
                " cameras = ?, instance = ? WHERE site = ? AND device = ?"
                " AND ((instance IS ? AND boot <= ?) OR (instance IS NOT ? AND coalesce(status_ts_ms, 0) <= ?))",
                (
                    status.state, status.boot, status.agent_version, status.ts_ms,
                    _json(status.model.model_dump()) if status.model else None,
                    _json([camera.model_dump() for camera in status.cameras]), status.instance,
                    status.site, status.device, status.instance, status.boot, status.instance, status.ts_ms,
                ),
            )
            applied = cur.rowcount == 1
            if applied:
                self.record_config_hash(conn, status, received_ms)  # the deployment gate of config rollouts
            device = self._device(conn, status.site, status.device) if applied else None
        if device is not None:
            self._emit([StoreChange("device", "status", device)])
        return applied

    def write_alerts(self, alerts: list[Alert], received_ms: int) -> int:
        with self._transaction() as conn:
            inserted, changes = self._insert_alerts(conn, alerts, received_ms)
        self._emit(changes)
        return inserted

    def _insert_alerts(self, conn: sqlite3.Connection, alerts: list[Alert],
                       received_ms: int) -> tuple[int, list[StoreChange]]:
        inserted = 0
        changes: list[StoreChange] = []
        for alert in alerts:
            cur = conn.execute(
                "INSERT OR IGNORE INTO alerts (id, ts_ms, device, site, zone_kind, zone_id, severity, code,"
                " dedup_key, payload, received_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (
                    alert.id, alert.ts_ms, alert.device, alert.site,
                    alert.zone.kind if alert.zone else None, alert.zone.id if alert.zone else None,
                    alert.severity, alert.code, alert.dedup_key, alert.to_json().decode("utf-8"), received_ms,
                ),
            )
            inserted += cur.rowcount
            self._touch_device(conn, alert.site, alert.device, received_ms)
            if cur.rowcount == 1:  # a new payload id: fold it into the lifecycle of its dedup key
                record, what = sqlite_alerts.group_alert(conn, alert)
                changes.append(StoreChange("alert", what, record))
        return inserted, changes

    def write_stats(self, stats: DeviceStats, received_ms: int) -> None:
        with self._transaction() as conn:
            self._touch_device(conn, stats.site, stats.device, received_ms)
            conn.execute("UPDATE devices SET stats = ? WHERE site = ? AND device = ?",
                         (_json(stats.model_dump()), stats.site, stats.device))
            self.record_stats_sample(conn, stats, received_ms)  # the deployment gate's fps and latency

    def write_snapshot(self, site: str, device: str, event_id: str, jpeg: bytes, received_ms: int) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO snapshots (event_id, site, device, jpeg, received_ms) VALUES (?,?,?,?,?)",
                (event_id, site, device, jpeg, received_ms),
            )
            self._touch_device(conn, site, device, received_ms)

    def write_telemetry(self, readings: Sequence[Telemetry], received_ms: int) -> int:
        """Store climate readings (duplicates ignored); returns how many were new."""
        with self._transaction() as conn:
            fresh = sqlite_climate.insert(conn, readings, received_ms)
            for reading in fresh:
                self._touch_device(conn, reading.site, reading.device, received_ms)
        self._emit([StoreChange("telemetry", "stored", r) for r in fresh])
        return len(fresh)

    def climate_series(self, shed: str, quantity: str, from_ms: int, to_ms: int,
                       bucket_ms: int) -> list[sqlite_climate.ClimateBucket]:
        return sqlite_climate.series(self._conn(), shed, quantity, from_ms, to_ms, bucket_ms)

    def climate_sensors(self, shed: str | None = None) -> list[sqlite_climate.SensorState]:
        return sqlite_climate.sensors(self._conn(), shed)

    def climate_sheds(self) -> dict[str, str]:
        return sqlite_climate.climate_sheds(self._conn())

    def put_temperature_forecast(self, site: str, shed: str, points: Sequence[tuple[int, float]],
                                 created_ms: int) -> None:
        with self._transaction() as conn:
            sqlite_climate.put_forecast(conn, site, shed, points, created_ms)

    def temperature_forecast(self, site: str, shed: str, from_ms: int, to_ms: int) -> list[tuple[int, float]]:
        return sqlite_climate.forecast(self._conn(), site, shed, from_ms, to_ms)

    def write_dead_letters(self, letters: list[NewDeadLetter], received_ms: int) -> None:
        limit = self._dead_letter_max_bytes
        with self._transaction() as conn:
            conn.executemany(
                "INSERT INTO dead_letters (received_ms, topic, reason, raw, raw_size) VALUES (?,?,?,?,?)",
                [(received_ms, d.topic, d.reason, bytes(d.raw[:limit]), len(d.raw)) for d in letters],
            )

    # ------------------------------------------------------------ reads

    _DEVICE_COLUMNS = (
        "device, site, state, last_seen_ms, first_seen_ms, boot, agent_version, status_ts_ms, model, cameras, stats,"
        " instance"
    )

    @staticmethod
    def _device_record(r: tuple[Any, ...]) -> DeviceRecord:
        return DeviceRecord(
            device=r[0], site=r[1], state=r[2], last_seen_ms=r[3], first_seen_ms=r[4], boot=r[5],
            agent_version=r[6], status_ts_ms=r[7], model=json.loads(r[8]) if r[8] else None,
            cameras=json.loads(r[9]), stats=json.loads(r[10]) if r[10] else None, instance=r[11],
        )

    def _device(self, conn: sqlite3.Connection, site: str, device: str) -> DeviceRecord | None:
        row = conn.execute(f"SELECT {self._DEVICE_COLUMNS} FROM devices WHERE site = ? AND device = ?",
                           (site, device)).fetchone()
        return self._device_record(row) if row else None

    def get_device(self, site: str, device: str) -> DeviceRecord | None:
        return self._device(self._conn(), site, device)

    def device_audit(self, site: str, device: str) -> DeviceAudit | None:
        return sqlite_identity.audit(self._conn(), site, device)

    def count_id_collisions(self) -> int:
        return int(self._conn().execute("SELECT count(*) FROM id_collisions").fetchone()[0])

    def list_devices(self) -> list[DeviceRecord]:
        rows = self._conn().execute(f"SELECT {self._DEVICE_COLUMNS} FROM devices").fetchall()
        records = [self._device_record(r) for r in rows]
        return sorted(records, key=lambda d: (natural_key(d.site), natural_key(d.device)))

    def list_events(self, query: EventQuery) -> list[dict[str, Any]]:
        where, params = [], []
        filters = (("site", query.site), ("device", query.device), ("zone_id", query.zone), ("kind", query.kind))
        for column, value in filters:
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if query.from_ms is not None:
            where.append("ts_ms >= ?")
            params.append(query.from_ms)
        if query.to_ms is not None:
            where.append("ts_ms < ?")
            params.append(query.to_ms)
        sql = "SELECT payload FROM events"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY ts_ms DESC, boot DESC, seq DESC, id DESC LIMIT ?"
        rows = self._conn().execute(sql, [*params, query.limit]).fetchall()
        return [json.loads(row[0]) for row in rows]

    def list_sheds(self) -> list[ShedSummary]:
        rows = self._conn().execute(
            "SELECT lc.zone_id, cp.label, sum(cp.n), max(lc.ts_ms) FROM latest_counts lc"
            " LEFT JOIN count_points cp ON cp.event_id = lc.event_id"
            " WHERE lc.zone_kind = 'shed' GROUP BY lc.zone_id, cp.label"
        ).fetchall()
        counts: dict[str, dict[str, int]] = {}
        updated: dict[str, int] = {}
        for zone_id, label, n, _ in rows:
            shed_counts = counts.setdefault(zone_id, {})
            if label is not None:
                shed_counts[label] = int(n)
        # updated_ms is over all latest events of the shed, including ones that counted nothing
        for zone_id, ts_ms in self._conn().execute(
            "SELECT zone_id, max(ts_ms) FROM latest_counts WHERE zone_kind = 'shed' GROUP BY zone_id"
        ):
            updated[zone_id] = int(ts_ms)
        return [
            ShedSummary(id=zone_id, counts=counts.get(zone_id, {}), updated_ms=updated[zone_id])
            for zone_id in sorted(updated, key=natural_key)
        ]

    def shed_exists(self, shed_id: str) -> bool:
        row = self._conn().execute(
            "SELECT 1 FROM latest_counts WHERE zone_kind = 'shed' AND zone_id = ? LIMIT 1", (shed_id,)
        ).fetchone()
        return row is not None

    def shed_count_buckets(self, shed_id: str, from_ms: int, to_ms: int, bucket_ms: int) -> list[CountBucket]:
        """Per bucket (from_ms + i * bucket_ms), the sum over (device, camera, row) of its last count event."""
        rollup = sqlite_rollups.table_for(from_ms, bucket_ms)
        if rollup is not None:  # minute/hour grid: read the rollups, same answer (see sqlite_rollups)
            return sqlite_rollups.shed_count_buckets(self._conn(), rollup, shed_id, from_ms, to_ms, bucket_ms)
        rows = self._conn().execute(
            "WITH ranked AS ("
            "  SELECT id, :from + ((ts_ms - :from) / :bucket) * :bucket AS bucket_ts, ROW_NUMBER() OVER ("
            "    PARTITION BY device, camera, row, (ts_ms - :from) / :bucket"
            "    ORDER BY ts_ms DESC, boot DESC, seq DESC, id DESC) AS rn"
            "  FROM events WHERE zone_kind = 'shed' AND zone_id = :shed AND kind = 'count'"
            "  AND ts_ms >= :from AND ts_ms < :to)"
            " SELECT r.bucket_ts, cp.label, sum(cp.n) FROM ranked r"
            " LEFT JOIN count_points cp ON cp.event_id = r.id"
            " WHERE r.rn = 1 GROUP BY r.bucket_ts, cp.label ORDER BY r.bucket_ts",
            {"bucket": bucket_ms, "shed": shed_id, "from": from_ms, "to": to_ms},
        ).fetchall()
        buckets: dict[int, dict[str, int]] = {}
        for bucket_ts, label, n in rows:
            counts = buckets.setdefault(int(bucket_ts), {})
            if label is not None:
                counts[label] = int(n)
        return [CountBucket(ts_ms=ts, counts=counts) for ts, counts in buckets.items()]

    def list_dead_letters(self, limit: int) -> list[DeadLetterRecord]:
        rows = self._conn().execute(
            "SELECT id, received_ms, topic, reason, raw, raw_size FROM dead_letters ORDER BY id DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [DeadLetterRecord(id=r[0], received_ms=r[1], topic=r[2], reason=r[3], raw=bytes(r[4]), raw_size=r[5])
                for r in rows]

    def get_snapshot(self, event_id: str) -> bytes | None:
        row = self._conn().execute("SELECT jpeg FROM snapshots WHERE event_id = ?", (event_id,)).fetchone()
        return bytes(row[0]) if row else None

    def apply_retention(self, policy: sqlite_retention.RetentionPolicy, now_ms: int) -> sqlite_retention.RetentionResult:
        """Delete raw events, snapshots, dead letters and rollups older than the policy allows."""
        return sqlite_retention.apply(self._conn(), policy, now_ms)

    # ------------------------------------------------------------ shed overview

    def latest_counts(self, shed_id: str | None = None) -> list[LatestCount]:
        return sqlite_sheds.latest_counts(self._conn(), shed_id)

    def shed_counts_at(self, at_ms: int, lookback_ms: int) -> dict[str, dict[str, int]]:
        return sqlite_sheds.counts_at(self._conn(), at_ms, lookback_ms)

    def shed_sites(self) -> dict[str, str]:
        return sqlite_sheds.shed_sites(self._conn())

    def latest_snapshot(self, shed_id: str) -> str | None:
        return sqlite_sheds.latest_snapshot(self._conn(), shed_id)

    # ------------------------------------------------------------ alert lifecycle

    def list_alerts(self, query: AlertQuery) -> list[AlertRecord]:
        return sqlite_alerts.list_alerts(self._conn(), query)

    def get_alert(self, alert_id: int) -> AlertRecord | None:
        return sqlite_alerts.get_alert(self._conn(), alert_id)

    def alert_summary(self) -> AlertSummary:
        return sqlite_alerts.summary(self._conn())

    def open_alerts_by_shed(self) -> dict[str, int]:
        return sqlite_alerts.open_alerts_by_shed(self._conn())

    def transition_alert(
        self, alert_id: int, to_state: str, allowed_from: tuple[str, ...], by: str, at_ms: int
    ) -> tuple[AlertRecord | None, bool]:
        """Atomically move an alert from one of ``allowed_from`` to ``to_state``; (alert or None, changed)."""
        with self._transaction() as conn:
            record, changed = sqlite_alerts.transition(conn, alert_id, to_state, allowed_from, by, at_ms)
        if changed and record is not None:
            self._emit([StoreChange("alert", to_state, record)])
        return record, changed
