"""Per-minute and per-hour rollups of the count time series, filled at write time.

A rollup row holds, per (zone, time unit, site, device, camera, row), the counts of the LAST count event in that
unit (ordered by ts_ms, boot, seq, id): exactly what ``shed_count_buckets`` picks per bucket from the raw
events. A bucket of B ms starting at F covers whole units when B and F are multiples of the unit, so its
last event per key is the last of its units' rollup rows: the answer is the same as from the raw events,
but reads one row per key and unit instead of every event. Only the tail unit cut by ``to`` is read from
the raw events.

Tables are created by ``ensure_schema`` (no schema version bump needed); when they are new and events
already exist, they are backfilled once from the events.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass

from fieldline.contract import Event

from cloud_api.storage.records import CountBucket

MINUTE_MS = 60_000
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class RollupTable:
    name: str
    unit_ms: int


MINUTE = RollupTable("count_rollup_minute", MINUTE_MS)
HOUR = RollupTable("count_rollup_hour", HOUR_MS)
TABLES = (HOUR, MINUTE)  # coarsest first: the first that fits a query is used

_DDL = """
CREATE TABLE IF NOT EXISTS {name} (
    zone_kind TEXT NOT NULL,
    zone_id TEXT NOT NULL,
    bucket_ms INTEGER NOT NULL,
    site TEXT NOT NULL,
    device TEXT NOT NULL,
    camera TEXT NOT NULL,
    row_key TEXT NOT NULL,
    ts_ms INTEGER NOT NULL,
    boot INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    event_id TEXT NOT NULL,
    counts TEXT NOT NULL,
    PRIMARY KEY (zone_kind, zone_id, bucket_ms, site, device, camera, row_key)
) WITHOUT ROWID;
"""

_UPSERT = (
    "INSERT INTO {name} (zone_kind, zone_id, bucket_ms, site, device, camera, row_key, ts_ms, boot, seq, event_id,"
    " counts) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT (zone_kind, zone_id, bucket_ms, site, device, camera, row_key) DO UPDATE SET"
    " ts_ms = excluded.ts_ms, boot = excluded.boot, seq = excluded.seq, event_id = excluded.event_id,"
    " counts = excluded.counts"
    " WHERE (excluded.ts_ms, excluded.boot, excluded.seq, excluded.event_id)"
    " > ({name}.ts_ms, {name}.boot, {name}.seq, {name}.event_id)"
)
_UPSERTS = {t.name: _UPSERT.format(name=t.name) for t in TABLES}


def _counts_json(counts: dict[str, int]) -> str:
    return json.dumps(counts, separators=(",", ":"), sort_keys=True)


def ensure_schema(conn: sqlite3.Connection) -> None:
    """Create the rollup tables; backfill them from the stored events when they did not exist yet.

    Tables from before schema 4 (keyed without the site) are dropped and rebuilt the same way.
    """
    for table in TABLES:
        columns = [row[1] for row in conn.execute(f"PRAGMA table_info({table.name})")]
        if columns and "site" not in columns:
            conn.execute(f"DROP TABLE {table.name}")
    existing = {
        name for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name IN (?, ?)", (MINUTE.name, HOUR.name)
        )
    }
    for table in TABLES:
        conn.execute(_DDL.format(name=table.name))
    missing = [t for t in TABLES if t.name not in existing]
    if missing and conn.execute("SELECT 1 FROM events WHERE kind = 'count' LIMIT 1").fetchone():
        conn.execute("BEGIN IMMEDIATE")
        try:
            for table in missing:
                rebuild(conn, table)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")


def rebuild(conn: sqlite3.Connection, table: RollupTable) -> None:
    """Fill ``table`` from the raw count events (inside the caller's transaction); idempotent."""
    unit = table.unit_ms
    conn.execute(
        f"INSERT OR REPLACE INTO {table.name}"
        " (zone_kind, zone_id, bucket_ms, site, device, camera, row_key, ts_ms, boot, seq, event_id, counts)"
        " SELECT zone_kind, zone_id, bucket_ms, site, device, camera, row_key, ts_ms, boot, seq, id, counts FROM ("
        f"  SELECT zone_kind, zone_id, (ts_ms / {unit}) * {unit} AS bucket_ms, site, device, camera,"
        "   coalesce(row, '') AS row_key, ts_ms, boot, seq, id,"
        "   coalesce(json_extract(payload, '$.counts'), '{}') AS counts,"
        "   ROW_NUMBER() OVER (PARTITION BY zone_kind, zone_id, ts_ms / "
        f"{unit}, site, device, camera, coalesce(row, '')"
        "    ORDER BY ts_ms DESC, boot DESC, seq DESC, id DESC) AS rn"
        "  FROM events WHERE kind = 'count')"
        " WHERE rn = 1"
    )


def add_counts(conn: sqlite3.Connection, events: list[Event]) -> None:
    """Fold newly stored count events into every rollup (inside the caller's write transaction).

    Each (table, key, unit) is upserted once, with its last event of the batch.
    """
    for table in TABLES:
        last: dict[tuple[str, str, int, str, str, str, str], Event] = {}
        for e in events:
            key = (e.zone.kind, e.zone.id, (e.ts_ms // table.unit_ms) * table.unit_ms, e.site, e.device, e.camera,
                   e.zone.row or "")
            held = last.get(key)
            if held is None or (e.ts_ms, e.boot, e.seq, e.id) > (held.ts_ms, held.boot, held.seq, held.id):
                last[key] = e
        conn.executemany(_UPSERTS[table.name], [
            (*key, e.ts_ms, e.boot, e.seq, e.id, _counts_json(e.counts)) for key, e in last.items()
        ])


def table_for(from_ms: int, bucket_ms: int) -> RollupTable | None:
    """The coarsest rollup whose units tile every bucket of this grid, or None (read the raw events)."""
    for table in TABLES:
        if bucket_ms % table.unit_ms == 0 and from_ms % table.unit_ms == 0:
            return table
    return None


_Order = tuple[int, int, int, str]


def shed_count_buckets(
    conn: sqlite3.Connection, table: RollupTable, shed_id: str, from_ms: int, to_ms: int, bucket_ms: int
) -> list[CountBucket]:
    """Same result as the raw-event query of ``SqliteStore.shed_count_buckets``, read from ``table``.

    Needs ``from_ms`` and ``bucket_ms`` to be multiples of the table's unit (see ``table_for``).
    """
    clean_end = (to_ms // table.unit_ms) * table.unit_ms  # units before this lie wholly inside [from, to)
    best: dict[tuple[int, str, str, str, str], tuple[_Order, str]] = {}

    def offer(bucket: int, device: tuple[str, str], camera: str, row_key: str, order: _Order, counts: str) -> None:
        key = (bucket, *device, camera, row_key)
        held = best.get(key)
        if held is None or order > held[0]:
            best[key] = (order, counts)

    if clean_end > from_ms:
        rows = conn.execute(
            f"SELECT bucket_ms, site, device, camera, row_key, ts_ms, boot, seq, event_id, counts FROM {table.name}"
            " WHERE zone_kind = 'shed' AND zone_id = ? AND bucket_ms >= ? AND bucket_ms < ?",
            (shed_id, from_ms, clean_end),
        )
        for unit_start, site, device, camera, row_key, ts, boot, seq, event_id, counts in rows:
            bucket = from_ms + ((unit_start - from_ms) // bucket_ms) * bucket_ms
            offer(bucket, (site, device), camera, row_key, (ts, boot, seq, event_id), counts)
    tail_start = max(from_ms, clean_end)
    if tail_start < to_ms:
        rows = conn.execute(
            "SELECT site, device, camera, coalesce(row, ''), ts_ms, boot, seq, id,"
            " coalesce(json_extract(payload, '$.counts'), '{}') FROM events"
            " WHERE zone_kind = 'shed' AND zone_id = ? AND kind = 'count' AND ts_ms >= ? AND ts_ms < ?",
            (shed_id, tail_start, to_ms),
        )
        for site, device, camera, row_key, ts, boot, seq, event_id, counts in rows:
            bucket = from_ms + ((ts - from_ms) // bucket_ms) * bucket_ms
            offer(bucket, (site, device), camera, row_key, (ts, boot, seq, event_id), counts)
    totals: dict[int, dict[str, int]] = {}
    for (bucket, *_), (_, counts) in best.items():
        into = totals.setdefault(bucket, {})
        for label, n in json.loads(counts).items():
            into[label] = into.get(label, 0) + int(n)
    return [CountBucket(ts_ms=ts, counts=totals[ts]) for ts in sorted(totals)]


def delete_older_than(conn: sqlite3.Connection, table: RollupTable, cutoff_ms: int) -> int:
    """Delete rollup rows of units that start before ``cutoff_ms``; one PK-range delete per zone."""
    # every zone with a count event has a latest_counts row: no scan of the (large) rollup table needed
    zones = conn.execute("SELECT DISTINCT zone_kind, zone_id FROM latest_counts").fetchall()
    deleted = 0
    for zone_kind, zone_id in zones:
        deleted += conn.execute(
            f"DELETE FROM {table.name} WHERE zone_kind = ? AND zone_id = ? AND bucket_ms < ?",
            (zone_kind, zone_id, cutoff_ms),
        ).rowcount
    return deleted
