"""Retention on PostgreSQL: old event and count-point partitions are dropped whole, not deleted row by row.

Same result as ``sqlite_retention.apply`` (tests run both): events older than the cutoff go with their count
points and QA rows, except an event that is still the latest count of a (shed, site, device, camera, row),
which the shed overview shows however old it is. A partition wholly before the cutoff is dropped; the few
latest-count events it holds are carried into a fresh partition for the same range first. The partition
that straddles the cutoff is trimmed with a DELETE. Snapshots, dead letters and rollups as on SQLite.

Climate readings are folded into hourly rollups and deleted with the SQLite module's SQL (``sqlite_climate``),
one day per transaction under an advisory lock, so two workers running retention together never fold the same
readings twice; hourly rollups and old temperature forecasts are pruned as on SQLite.
"""

from __future__ import annotations

from cloud_api.storage import sqlite_climate, sqlite_rollups
from cloud_api.storage.postgres_dialect import PgConnection
from cloud_api.storage.postgres_partitions import PARTITION_LOCK, Partitions
from cloud_api.storage.sqlite_retention import DAY_MS, RetentionPolicy, RetentionResult

CLIMATE_LOCK = 0x46_4C_43_4C  # "FLCL": pg_advisory_xact_lock key while folding climate readings into hours
_KEPT = "id IN (SELECT event_id FROM latest_counts)"


def _drop_partition_keeping_latest(conn: PgConnection, partitions: Partitions, start_ms: int,
                                   end_ms: int) -> tuple[int, int]:
    """Drop one wholly expired partition pair; returns (events, count points) removed."""
    part = partitions.partition_of(start_ms)
    events, points = part.name("events"), part.name("count_points")
    raw = conn.raw
    total_events = int(raw.execute(f"SELECT count(*) FROM {events}").fetchone()[0])  # type: ignore[index,arg-type]
    total_points = int(raw.execute(f"SELECT count(*) FROM {points}").fetchone()[0])  # type: ignore[index,arg-type]
    raw.execute(f"CREATE TEMP TABLE kept_events ON COMMIT DROP AS SELECT * FROM {events} WHERE {_KEPT}")  # type: ignore[arg-type]
    raw.execute(f"CREATE TEMP TABLE kept_points ON COMMIT DROP AS SELECT * FROM {points}"  # type: ignore[arg-type]
                " WHERE event_id IN (SELECT id FROM kept_events)")
    kept_events = int(raw.execute("SELECT count(*) FROM kept_events").fetchone()[0])  # type: ignore[index]
    kept_points = int(raw.execute("SELECT count(*) FROM kept_points").fetchone()[0])  # type: ignore[index]
    raw.execute(f"DROP TABLE {events}")  # type: ignore[arg-type]
    raw.execute(f"DROP TABLE {points}")  # type: ignore[arg-type]
    raw.execute("DELETE FROM event_ids WHERE ts_ms >= %s AND ts_ms < %s AND id NOT IN (SELECT id FROM kept_events)",
                (start_ms, end_ms))
    if kept_events:
        for table, name, kept in (("events", events, "kept_events"), ("count_points", points, "kept_points")):
            raw.execute(f"CREATE TABLE {name} PARTITION OF {table} FOR VALUES FROM ({start_ms}) TO ({end_ms})")  # type: ignore[arg-type]
            raw.execute(f"INSERT INTO {name} SELECT * FROM {kept}")  # type: ignore[arg-type]
    return total_events - kept_events, total_points - kept_points


def apply(conn: PgConnection, partitions: Partitions, policy: RetentionPolicy, now_ms: int) -> RetentionResult:
    """Apply ``policy`` as of ``now_ms``; ``conn`` is an autocommit connection (each step its own transaction)."""
    events = points = snapshots = letters = minutes = hours = inspections = 0
    raw = conn.raw
    if policy.events_days is not None:
        cutoff = now_ms - policy.events_days * DAY_MS
        for part in partitions.load(raw):
            if part.start_ms >= cutoff:
                break
            with raw.transaction():
                raw.execute("SELECT pg_advisory_xact_lock(%s)", (PARTITION_LOCK,))
                if raw.execute("SELECT to_regclass(%s)", (part.name("events"),)).fetchone() == (None,):  # type: ignore[comparison-overlap]
                    continue  # another worker's retention dropped it meanwhile
                if part.end_ms <= cutoff:
                    gone_events, gone_points = _drop_partition_keeping_latest(conn, partitions, part.start_ms,
                                                                              part.end_ms)
                else:  # straddles the cutoff: trim it
                    name = part.name("events")
                    gone = [r[0] for r in raw.execute(
                        f"DELETE FROM {name} WHERE ts_ms < %s AND NOT {_KEPT} RETURNING id", (cutoff,))]  # type: ignore[arg-type]
                    gone_points = raw.execute(f"DELETE FROM {part.name('count_points')} WHERE event_id = ANY(%s)",  # type: ignore[arg-type]
                                              (gone,)).rowcount
                    raw.execute("DELETE FROM event_ids WHERE id = ANY(%s)", (gone,))
                    gone_events = len(gone)
            events += gone_events
            points += gone_points
        partitions.forget()  # reloaded on the next write (another worker may have cached a dropped one)
        with raw.transaction():
            inspections = raw.execute("DELETE FROM inspections WHERE ts_ms < %s", (cutoff,)).rowcount
            raw.execute("DELETE FROM reject_defects WHERE ts_ms < %s", (cutoff,))
        with raw.transaction():
            snapshots = raw.execute("DELETE FROM snapshots WHERE received_ms < %s", (cutoff,)).rowcount
        with raw.transaction():
            letters = raw.execute("DELETE FROM dead_letters WHERE received_ms < %s", (cutoff,)).rowcount
    if policy.minute_rollups_days is not None:
        cutoff = now_ms - policy.minute_rollups_days * DAY_MS
        with raw.transaction():
            minutes = sqlite_rollups.delete_older_than(conn, sqlite_rollups.MINUTE, cutoff)  # type: ignore[arg-type]
    if policy.hour_rollups_days is not None:
        cutoff = now_ms - policy.hour_rollups_days * DAY_MS
        with raw.transaction():
            hours = sqlite_rollups.delete_older_than(conn, sqlite_rollups.HOUR, cutoff)  # type: ignore[arg-type]
    climate, climate_hourly, forecasts = _climate(conn, policy, now_ms)
    return RetentionResult(events=events, count_points=points, snapshots=snapshots, dead_letters=letters,
                           minute_rollups=minutes, hour_rollups=hours, inspections=inspections,
                           climate_points=climate, climate_hourly=climate_hourly, temperature_forecasts=forecasts)


def _climate(conn: PgConnection, policy: RetentionPolicy, now_ms: int) -> tuple[int, int, int]:
    """Climate retention as ``sqlite_retention.apply``: (raw readings rolled up, hourly rollups, forecasts) gone."""
    climate = climate_hourly = forecasts = 0
    raw = conn.raw
    if policy.climate_days is not None:
        cutoff = now_ms - policy.climate_days * DAY_MS
        for start, end in sqlite_climate.roll_up_chunks(conn, cutoff):  # type: ignore[arg-type]
            with raw.transaction():
                raw.execute("SELECT pg_advisory_xact_lock(%s)", (CLIMATE_LOCK,))
                climate += sqlite_climate.roll_up_range(conn, start, end)  # type: ignore[arg-type]
        with raw.transaction():
            forecasts = sqlite_climate.prune_forecasts(conn, cutoff)  # type: ignore[arg-type]
    if policy.climate_hour_rollups_days is not None:
        cutoff = now_ms - policy.climate_hour_rollups_days * DAY_MS
        with raw.transaction():
            climate_hourly = sqlite_climate.prune_hourly(conn, cutoff)  # type: ignore[arg-type]
    return climate, climate_hourly, forecasts
