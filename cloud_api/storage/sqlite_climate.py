"""Climate time series in SQLite: readings per (site, sensor, quantity, time), each sensor's last reading, and
temperature forecasts given to the API.

Retention (``roll_up``, ``prune_hourly``, ``prune_forecasts``): raw readings older than the retention limit
are folded into hourly rollups per sensor (sum, min, max, count) before they are deleted, so a series still
reaches back with hourly buckets; ``series`` reads both.

Values are stored in canonical units (°C, % relative humidity), so every reader sees one unit. A repeated
reading (same site, sensor, quantity and time) is a duplicate and ignored. A sensor is keyed by (site,
sensor): sensor names are chosen per site, like device names.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from fieldline.contract import Telemetry

SCHEMA = """
CREATE TABLE IF NOT EXISTS climate_points (
    site TEXT NOT NULL, sensor TEXT NOT NULL, quantity TEXT NOT NULL, ts_ms INTEGER NOT NULL,
    shed TEXT NOT NULL, device TEXT NOT NULL, value REAL NOT NULL, received_ms INTEGER NOT NULL,
    PRIMARY KEY (site, sensor, quantity, ts_ms)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS climate_points_shed ON climate_points (shed, quantity, ts_ms);
CREATE TABLE IF NOT EXISTS climate_sensors (
    site TEXT NOT NULL, sensor TEXT NOT NULL, quantity TEXT NOT NULL, shed TEXT NOT NULL, device TEXT NOT NULL,
    last_ts_ms INTEGER NOT NULL, last_value REAL NOT NULL, last_received_ms INTEGER NOT NULL,
    PRIMARY KEY (site, sensor, quantity)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS climate_hourly (
    site TEXT NOT NULL, sensor TEXT NOT NULL, quantity TEXT NOT NULL, hour_ms INTEGER NOT NULL,
    shed TEXT NOT NULL, total REAL NOT NULL, low REAL NOT NULL, high REAL NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (site, sensor, quantity, hour_ms)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS climate_hourly_shed ON climate_hourly (shed, quantity, hour_ms);
CREATE TABLE IF NOT EXISTS temperature_forecasts (
    site TEXT NOT NULL, shed TEXT NOT NULL, ts_ms INTEGER NOT NULL, value REAL NOT NULL, created_ms INTEGER NOT NULL,
    PRIMARY KEY (site, shed, ts_ms)
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class ClimateBucket:
    ts_ms: int  # bucket start
    mean: float
    low: float
    high: float
    n: int


@dataclass(frozen=True)
class SensorState:
    site: str
    sensor: str
    quantity: str
    shed: str
    device: str
    last_ts_ms: int
    last_value: float
    last_received_ms: int


def ensure_schema(conn: sqlite3.Connection) -> None:
    conn.executescript(SCHEMA)


def insert(conn: sqlite3.Connection, readings: Sequence[Telemetry], received_ms: int) -> list[Telemetry]:
    """Store new readings (inside the caller's transaction); returns those that were not duplicates."""
    fresh: list[Telemetry] = []
    for r in readings:
        value = r.canonical_value()
        cur = conn.execute(
            "INSERT OR IGNORE INTO climate_points (site, sensor, quantity, ts_ms, shed, device, value, received_ms)"
            " VALUES (?,?,?,?,?,?,?,?)",
            (r.site, r.sensor, r.quantity, r.ts_ms, r.shed, r.device, value, received_ms),
        )
        if cur.rowcount != 1:
            continue
        fresh.append(r)
        conn.execute(
            "INSERT INTO climate_sensors (site, sensor, quantity, shed, device, last_ts_ms, last_value, last_received_ms)"
            " VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (site, sensor, quantity) DO UPDATE SET"
            " shed = excluded.shed, device = excluded.device, last_ts_ms = excluded.last_ts_ms,"
            " last_value = excluded.last_value, last_received_ms = excluded.last_received_ms"
            " WHERE excluded.last_ts_ms >= climate_sensors.last_ts_ms",
            (r.site, r.sensor, r.quantity, r.shed, r.device, r.ts_ms, value, received_ms),
        )
    return fresh


def series(conn: sqlite3.Connection, shed: str, quantity: str, from_ms: int, to_ms: int,
           bucket_ms: int) -> list[ClimateBucket]:
    """Mean, min and max per bucket (from_ms + i x bucket_ms) over every sensor of the shed; empty buckets absent."""
    rows = conn.execute(
        "SELECT :from + ((t - :from) / :bucket) * :bucket AS b, sum(total) / sum(n), min(lo), max(hi), sum(n)"
        " FROM (SELECT ts_ms AS t, value AS total, value AS lo, value AS hi, 1 AS n FROM climate_points"
        "       WHERE shed = :shed AND quantity = :q AND ts_ms >= :from AND ts_ms < :to"
        "       UNION ALL SELECT hour_ms, total, low, high, n FROM climate_hourly"
        "       WHERE shed = :shed AND quantity = :q AND hour_ms >= :from AND hour_ms < :to) AS readings"
        " GROUP BY b ORDER BY b",
        {"from": from_ms, "to": to_ms, "bucket": bucket_ms, "shed": shed, "q": quantity},
    ).fetchall()
    return [ClimateBucket(int(b), float(mean), float(lo), float(hi), int(n)) for b, mean, lo, hi, n in rows]


HOUR_MS = 3_600_000


def roll_up_chunks(conn: sqlite3.Connection, before_ms: int, chunk_ms: int = 86_400_000) -> list[tuple[int, int]]:
    """The [start, end) time ranges, ``chunk_ms`` each, that ``roll_up`` folds, oldest first: raw readings older
    than ``before_ms`` rounded down to the hour."""
    cutoff = before_ms // HOUR_MS * HOUR_MS
    (oldest,) = conn.execute("SELECT min(ts_ms) FROM climate_points").fetchone()
    chunks: list[tuple[int, int]] = []
    while oldest is not None and oldest < cutoff:
        end = min(cutoff, (oldest // HOUR_MS * HOUR_MS) + chunk_ms)
        chunks.append((oldest, end))
        oldest = end
    return chunks


def roll_up_range(conn: sqlite3.Connection, start_ms: int, end_ms: int) -> int:
    """Fold the raw readings in [start_ms, end_ms) into hourly rollups and delete them (inside the caller's
    transaction); returns how many raw readings went. The same SQL runs on PostgreSQL (``postgres_dialect``
    turns the two-argument min/max into least/greatest)."""
    conn.execute(
        "INSERT INTO climate_hourly (site, sensor, quantity, hour_ms, shed, total, low, high, n)"
        " SELECT site, sensor, quantity, (ts_ms / 3600000) * 3600000 AS h, max(shed), sum(value), min(value),"
        " max(value), count(*) FROM climate_points WHERE ts_ms >= ? AND ts_ms < ?"
        " GROUP BY site, sensor, quantity, h"
        " ON CONFLICT (site, sensor, quantity, hour_ms) DO UPDATE SET"
        " total = climate_hourly.total + excluded.total, low = min(climate_hourly.low, excluded.low),"
        " high = max(climate_hourly.high, excluded.high), n = climate_hourly.n + excluded.n",
        (start_ms, end_ms),
    )
    return int(conn.execute("DELETE FROM climate_points WHERE ts_ms >= ? AND ts_ms < ?",
                            (start_ms, end_ms)).rowcount)


def roll_up(conn: sqlite3.Connection, before_ms: int, chunk_ms: int = 86_400_000) -> int:
    """Fold raw readings older than ``before_ms`` (rounded down to the hour) into hourly rollups and delete
    them, one ``chunk_ms`` of time per transaction; returns how many raw readings went."""
    moved = 0
    for start, end in roll_up_chunks(conn, before_ms, chunk_ms):
        conn.execute("BEGIN IMMEDIATE")
        try:
            moved += roll_up_range(conn, start, end)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    return moved


def prune_hourly(conn: sqlite3.Connection, before_ms: int) -> int:
    """Delete hourly rollups older than ``before_ms`` (inside the caller's transaction)."""
    return conn.execute("DELETE FROM climate_hourly WHERE hour_ms < ?", (before_ms,)).rowcount


def prune_forecasts(conn: sqlite3.Connection, before_ms: int) -> int:
    """Delete temperature forecast points older than ``before_ms`` (inside the caller's transaction)."""
    return conn.execute("DELETE FROM temperature_forecasts WHERE ts_ms < ?", (before_ms,)).rowcount


def sensors(conn: sqlite3.Connection, shed: str | None = None) -> list[SensorState]:
    sql = ("SELECT site, sensor, quantity, shed, device, last_ts_ms, last_value, last_received_ms FROM climate_sensors")
    params: tuple[str, ...] = ()
    if shed is not None:
        sql += " WHERE shed = ?"
        params = (shed,)
    rows = conn.execute(sql + " ORDER BY site, shed, sensor, quantity", params).fetchall()
    return [SensorState(*row) for row in rows]


def climate_sheds(conn: sqlite3.Connection) -> dict[str, str]:
    """Shed -> site of every shed that has a sensor."""
    return {shed: site for site, shed in conn.execute("SELECT site, shed FROM climate_sensors ORDER BY last_ts_ms")}


def put_forecast(conn: sqlite3.Connection, site: str, shed: str, points: Sequence[tuple[int, float]],
                 created_ms: int) -> None:
    """Replace the forecast of (site, shed) from its first point on (``shed`` "" = the whole site)."""
    if not points:
        return
    start = min(ts for ts, _ in points)
    conn.execute("DELETE FROM temperature_forecasts WHERE site = ? AND shed = ? AND ts_ms >= ?", (site, shed, start))
    conn.executemany(
        "INSERT OR REPLACE INTO temperature_forecasts (site, shed, ts_ms, value, created_ms) VALUES (?,?,?,?,?)",
        [(site, shed, ts, value, created_ms) for ts, value in points],
    )


def forecast(conn: sqlite3.Connection, site: str, shed: str, from_ms: int, to_ms: int) -> list[tuple[int, float]]:
    """Forecast points of the shed in [from_ms, to_ms); the site-wide forecast ("") where the shed has none."""
    rows = conn.execute(
        "SELECT ts_ms, value, shed FROM temperature_forecasts WHERE site = ? AND shed IN (?, '')"
        " AND ts_ms >= ? AND ts_ms < ? ORDER BY ts_ms",
        (site, shed, from_ms, to_ms),
    ).fetchall()
    own = [(int(ts), float(v)) for ts, v, s in rows if s == shed and shed]
    return own or [(int(ts), float(v)) for ts, v, s in rows if s == ""]
