"""Retention cleanup of the SQLite store: raw events (with their count points and, for inspections, their
QA rows), snapshots, dead letters, the minute/hour count rollups, and climate readings (rolled up hourly
first, see ``sqlite_climate``) with their hourly rollups and old temperature forecasts, each with its own
age limit.

Deletes run in small transactions so the ingest writer never waits long for the write lock. The event
that is the latest count of a (shed, device, camera, row) is kept however old it is: the shed overview
shows it (and it is what ``latest_counts`` points to).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from cloud_api.storage import sqlite_climate, sqlite_rollups

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class RetentionPolicy:
    """Age limits in days; None keeps that data for ever."""

    events_days: int | None
    minute_rollups_days: int | None
    hour_rollups_days: int | None
    climate_days: int | None = None
    climate_hour_rollups_days: int | None = None


@dataclass(frozen=True)
class RetentionResult:
    events: int = 0
    count_points: int = 0
    snapshots: int = 0
    dead_letters: int = 0
    minute_rollups: int = 0
    hour_rollups: int = 0
    inspections: int = 0
    climate_points: int = 0  # raw readings rolled up into hours and deleted
    climate_hourly: int = 0
    temperature_forecasts: int = 0




def _in_transaction(conn: sqlite3.Connection, work: Callable[[sqlite3.Connection], int]) -> int:
    conn.execute("BEGIN IMMEDIATE")
    try:
        n = work(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return n


def apply(conn: sqlite3.Connection, policy: RetentionPolicy, now_ms: int, chunk: int = 2000) -> RetentionResult:
    """Delete what ``policy`` says is too old, as of ``now_ms``; returns how many rows went per table."""
    events = points = snapshots = letters = minutes = hours = inspections = 0
    if policy.events_days is not None:
        cutoff = now_ms - policy.events_days * DAY_MS
        while True:
            ids = [
                (event_id,) for (event_id,) in conn.execute(
                    "SELECT id FROM events WHERE ts_ms < ? AND id NOT IN (SELECT event_id FROM latest_counts)"
                    " LIMIT ?", (cutoff, chunk),
                )
            ]
            if not ids:
                break

            def drop(c: sqlite3.Connection, ids: list[tuple[str]] = ids) -> int:
                nonlocal points, inspections
                points += c.executemany("DELETE FROM count_points WHERE event_id = ?", ids).rowcount
                inspections += c.executemany("DELETE FROM inspections WHERE event_id = ?", ids).rowcount
                c.executemany("DELETE FROM reject_defects WHERE event_id = ?", ids)
                return c.executemany("DELETE FROM events WHERE id = ?", ids).rowcount

            events += _in_transaction(conn, drop)
        snapshots = _in_transaction(conn, lambda c: c.execute(
            "DELETE FROM snapshots WHERE received_ms < ?", (cutoff,)).rowcount)
        letters = _in_transaction(conn, lambda c: c.execute(
            "DELETE FROM dead_letters WHERE received_ms < ?", (cutoff,)).rowcount)
    if policy.minute_rollups_days is not None:
        cutoff = now_ms - policy.minute_rollups_days * DAY_MS
        minutes = _in_transaction(conn, lambda c: sqlite_rollups.delete_older_than(c, sqlite_rollups.MINUTE, cutoff))
    if policy.hour_rollups_days is not None:
        cutoff = now_ms - policy.hour_rollups_days * DAY_MS
        hours = _in_transaction(conn, lambda c: sqlite_rollups.delete_older_than(c, sqlite_rollups.HOUR, cutoff))
    climate = climate_hourly = forecasts = 0
    if policy.climate_days is not None:
        cutoff = now_ms - policy.climate_days * DAY_MS
        climate = sqlite_climate.roll_up(conn, cutoff)
        forecasts = _in_transaction(conn, lambda c: sqlite_climate.prune_forecasts(c, cutoff))
    if policy.climate_hour_rollups_days is not None:
        cutoff = now_ms - policy.climate_hour_rollups_days * DAY_MS
        climate_hourly = _in_transaction(conn, lambda c: sqlite_climate.prune_hourly(c, cutoff))
    return RetentionResult(events=events, count_points=points, snapshots=snapshots, dead_letters=letters,
                           minute_rollups=minutes, hour_rollups=hours, inspections=inspections,
                           climate_points=climate, climate_hourly=climate_hourly, temperature_forecasts=forecasts)
