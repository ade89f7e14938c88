"""The PostgreSQL store's ingest hot path: a batch of new events in a few array statements, pipelined.

``sqlite_batch.insert_resolved`` runs one bound INSERT per event and per count point (cheap in-process on
SQLite); on PostgreSQL each of those is a statement the server plans and executes. Here every table gets one
statement per batch, ``INSERT ... SELECT * FROM unnest(<arrays>)``, with the arrays sent in binary (psycopg's
text array format escapes each JSON payload in Python, ~300 us per event). The statements keep one text, so
psycopg prepares them after a few batches. Same rows as ``insert_resolved``: events, count points, the latest
count and rollup upserts folded per key first, devices touched; the per-install rows of
``sqlite_identity.record`` with one lookup for every device of the batch instead of one per device.

``PostgresStore._write_events_once`` sends these with the claim of the ids in two round trips per batch.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import psycopg

from fieldline.contract import Alert, Event

from cloud_api.storage import sqlite_rollups
from cloud_api.storage.sqlite_batch import _payload_text  # noqa: PLC2701 - one payload rule for both engines
from cloud_api.storage.sqlite_identity import LEGACY_INSTANCE
from cloud_api.storage.sqlite_identity import _new_install_alert  # noqa: PLC2701 - one alert text

CLAIM = ("INSERT INTO event_ids (id, ts_ms) SELECT * FROM unnest(%b::text[], %b::bigint[])"
         " ON CONFLICT DO NOTHING RETURNING id")

_EVENTS = (
    "INSERT INTO events (id, device, site, instance, camera, kind, zone_kind, zone_id, row, ts_ms, boot, seq,"
    " historical, payload, received_ms)"
    " SELECT id, device, site, instance, camera, kind, zone_kind, zone_id, row, ts_ms, boot, seq, historical,"
    " payload, %b::bigint FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[],"
    " %b::text[], %b::text[], %b::text[], %b::bigint[], %b::bigint[], %b::bigint[], %b::bigint[], %b::text[])"
    " AS u (id, device, site, instance, camera, kind, zone_kind, zone_id, row, ts_ms, boot, seq, historical, payload)"
)
_POINTS = (
    "INSERT INTO count_points (event_id, zone_kind, zone_id, row, device, camera, ts_ms, label, n)"
    " SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::bigint[],"
    " %b::text[], %b::bigint[])"
)
_LATEST = (
    "INSERT INTO latest_counts (zone_kind, zone_id, site, device, camera, row_key, event_id, ts_ms, boot, seq)"
    " SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[],"
    " %b::bigint[], %b::bigint[], %b::bigint[])"
    " ON CONFLICT (zone_kind, zone_id, site, device, camera, row_key) DO UPDATE SET"
    " event_id = excluded.event_id, ts_ms = excluded.ts_ms, boot = excluded.boot, seq = excluded.seq"
    " WHERE (excluded.ts_ms, excluded.boot, excluded.seq) > (latest_counts.ts_ms, latest_counts.boot, latest_counts.seq)"
)
_ROLLUP = (
    "INSERT INTO {name} (zone_kind, zone_id, bucket_ms, site, device, camera, row_key, ts_ms, boot, seq, event_id,"
    " counts) SELECT * FROM unnest(%b::text[], %b::text[], %b::bigint[], %b::text[], %b::text[], %b::text[],"
    " %b::text[], %b::bigint[], %b::bigint[], %b::bigint[], %b::text[], %b::text[])"
    " ON CONFLICT (zone_kind, zone_id, bucket_ms, site, device, camera, row_key) DO UPDATE SET"
    " ts_ms = excluded.ts_ms, boot = excluded.boot, seq = excluded.seq, event_id = excluded.event_id,"
    " counts = excluded.counts"
    " WHERE (excluded.ts_ms, excluded.boot, excluded.seq, excluded.event_id)"
    " > ({name}.ts_ms, {name}.boot, {name}.seq, {name}.event_id)"
)
_ROLLUPS = {t.name: _ROLLUP.format(name=t.name) for t in sqlite_rollups.TABLES}
_DEVICES = (
    "INSERT INTO devices (device, site, state, last_seen_ms, first_seen_ms)"
    " SELECT device, site, 'unknown', %b::bigint, %b::bigint FROM unnest(%b::text[], %b::text[]) AS u (site, device)"
    " ON CONFLICT (site, device) DO UPDATE SET last_seen_ms = greatest(devices.last_seen_ms, excluded.last_seen_ms)"
)
KNOWN_INSTANCES = (
    "SELECT site, device, instance FROM device_instances"
    " WHERE (site, device) IN (SELECT * FROM unnest(%b::text[], %b::text[]))"
)
_INSTANCES = (
    "INSERT INTO device_instances (site, device, instance, first_seen_ms, last_seen_ms, repeats)"
    " SELECT site, device, instance, %b::bigint, %b::bigint, 0 FROM unnest(%b::text[], %b::text[], %b::text[])"
    " AS u (site, device, instance)"
    " ON CONFLICT (site, device, instance) DO UPDATE SET"
    " last_seen_ms = greatest(device_instances.last_seen_ms, excluded.last_seen_ms)"
)

InstanceKey = tuple[str, str, str]


def columns(rows: Sequence[Sequence[object]], width: int) -> list[list[object]]:
    """Rows -> one list per column (``width`` columns, also when there are no rows)."""
    return [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


def insert_fresh(raw: psycopg.Connection, pairs: Sequence[tuple[Event, bytes | None]], received_ms: int) -> None:
    """Queue the rows of new events (ids already claimed, so no conflict on events or count points).

    Inspection events still need ``sqlite_qa.insert_inspection`` (the caller runs it).
    """
    if not pairs:
        return
    raw.execute(_EVENTS, [received_ms, *columns([
        (e.id, e.device, e.site, e.instance or "", e.camera, e.kind, e.zone.kind, e.zone.id, e.zone.row, e.ts_ms,
         e.boot, e.seq, int(e.historical), _payload_text(e, payload)) for e, payload in pairs], 14)])
    counts = [e for e, _ in pairs if e.kind == "count"]
    if counts:
        points = [(e.id, e.zone.kind, e.zone.id, e.zone.row, e.device, e.camera, e.ts_ms, label, n)
                  for e in counts for label, n in e.counts.items()]
        if points:
            raw.execute(_POINTS, columns(points, 9))
        raw.execute(_LATEST, columns(latest_rows(counts), 10))
        for table in sqlite_rollups.TABLES:
            raw.execute(_ROLLUPS[table.name], columns(rollup_rows(counts, table), 12))
    devices = sorted({(e.site, e.device) for e, _ in pairs})
    raw.execute(_DEVICES, [received_ms, received_ms, *columns(devices, 2)])


def latest_rows(counts: Sequence[Event]) -> list[tuple[object, ...]]:
    """The latest-count upsert rows: per key the newest event of the batch (first of a tie), keys sorted so
    workers lock rows in one order."""
    latest: dict[tuple[str, str, str, str, str, str], Event] = {}
    for e in counts:
        key = (e.zone.kind, e.zone.id, e.site, e.device, e.camera, e.zone.row or "")
        held = latest.get(key)
        if held is None or (e.ts_ms, e.boot, e.seq) > (held.ts_ms, held.boot, held.seq):
            latest[key] = e
    return [(*key, e.id, e.ts_ms, e.boot, e.seq) for key, e in sorted(latest.items(), key=lambda kv: kv[0])]


def rollup_rows(counts: Sequence[Event], table: sqlite_rollups.RollupTable) -> list[tuple[object, ...]]:
    """One upsert row per (key, unit) of ``table``: its last event of the batch (as ``sqlite_rollups.add_counts``)."""
    unit = table.unit_ms
    last: dict[tuple[str, str, int, str, str, str, str], Event] = {}
    for e in counts:
        key = (e.zone.kind, e.zone.id, (e.ts_ms // unit) * unit, e.site, e.device, e.camera, e.zone.row or "")
        held = last.get(key)
        if held is None or (e.ts_ms, e.boot, e.seq, e.id) > (held.ts_ms, held.boot, held.seq, held.id):
            last[key] = e
    return [(*key, e.ts_ms, e.boot, e.seq, e.id, json.dumps(e.counts, separators=(",", ":"), sort_keys=True))
            for key, e in sorted(last.items(), key=lambda kv: kv[0])]


def instance_keys(events: Sequence[Event]) -> dict[InstanceKey, Event]:
    """(site, device, install) of each event -> its first event, in batch order."""
    seen: dict[InstanceKey, Event] = {}
    for e in events:
        seen.setdefault((e.site, e.device, e.instance or LEGACY_INSTANCE), e)
    return seen


def queue_known_instances(raw: psycopg.Connection, keys: dict[InstanceKey, Event]) -> psycopg.Cursor | None:
    """Queue the lookup of the installs already known for the batch's devices (None: only legacy events)."""
    devices = sorted({(site, device) for site, device, instance in keys if instance != LEGACY_INSTANCE})
    if not devices:
        return None
    return raw.execute(KNOWN_INSTANCES, columns(devices, 2))


def new_install_alerts(keys: dict[InstanceKey, Event], known_rows: Sequence[tuple[str, str, str]]) -> list[Alert]:
    """``instance_changed`` alerts as ``sqlite_identity.record`` raises them: a known device under a new install."""
    known: dict[tuple[str, str], set[str]] = {}
    for site, device, instance in known_rows:
        known.setdefault((site, device), set()).add(instance)
    alerts = []
    for (site, device, instance), event in keys.items():
        if instance == LEGACY_INSTANCE:
            continue
        held = known.get((site, device))
        if held and instance not in held:
            alerts.append(_new_install_alert(event))
    return alerts


def upsert_instances(raw: psycopg.Connection, keys: dict[InstanceKey, Event], received_ms: int) -> None:
    """The per-install rows of a batch of new events (first/last seen; no repeats among new events)."""
    if keys:
        raw.execute(_INSTANCES, [received_ms, received_ms, *columns(sorted(keys), 3)])
