"""Batched event inserts for ``SqliteStore.write_events``: a handful of statements per batch, not per event.

Same result as inserting the events one by one (skip a true duplicate, else the event, its count points, the
latest-count upsert, the rollups and the device touch), but: one ``SELECT`` finds the ids already stored
(``sqlite_identity.resolve`` tells a duplicate from an id collision), ``executemany`` inserts the new rows,
and per-key upserts (latest counts, rollups, devices) are folded in Python first so each key is written once
per batch.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from fieldline.contract import Event

from cloud_api.storage import sqlite_identity, sqlite_qa, sqlite_rollups
from cloud_api.storage.sqlite_identity import Resolved

_INSERT_EVENT = (
    "INSERT INTO events (id, device, site, instance, camera, kind, zone_kind, zone_id, row, ts_ms,"
    " boot, seq, historical, payload, received_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_INSERT_POINT = (
    "INSERT INTO count_points (event_id, zone_kind, zone_id, row, device, camera, ts_ms, label, n)"
    " VALUES (?,?,?,?,?,?,?,?,?)"
)
_UPSERT_LATEST = (
    "INSERT INTO latest_counts (zone_kind, zone_id, site, device, camera, row_key, event_id, ts_ms, boot, seq)"
    " VALUES (?,?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT (zone_kind, zone_id, site, device, camera, row_key) DO UPDATE SET"
    " event_id = excluded.event_id, ts_ms = excluded.ts_ms, boot = excluded.boot, seq = excluded.seq"
    " WHERE (excluded.ts_ms, excluded.boot, excluded.seq)"
    " > (latest_counts.ts_ms, latest_counts.boot, latest_counts.seq)"
)


def _payload_text(event: Event, payload: bytes | None) -> str:
    """The event's JSON as received when given (already parsed, so valid UTF-8 JSON), else serialised."""
    if payload is not None:
        try:
            return payload.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return event.to_json().decode("utf-8")


def insert_events(conn: sqlite3.Connection, events: Sequence[Event], received_ms: int,
                  payloads: Sequence[bytes | None] | None = None) -> Resolved:
    """Insert the new events of a batch (inside the caller's write transaction); returns how the batch split.

    ``payloads`` (one per event) are stored as received instead of serialising each event again. Events
    whose id collided are stored under their derived id (see ``sqlite_identity``).
    """
    resolved = sqlite_identity.resolve(conn, events, payloads)
    insert_resolved(conn, resolved, received_ms)
    return resolved


def insert_resolved(conn: sqlite3.Connection, resolved: Resolved, received_ms: int) -> None:
    """Insert the fresh events of a resolved batch with their points, latest counts, rollups, QA rows, devices.

    The PostgreSQL store resolves (and claims the ids) itself, then calls this with its connection adapter.
    """
    pairs = resolved.fresh
    if not pairs:
        return
    conn.executemany(_INSERT_EVENT, [
        (e.id, e.device, e.site, e.instance or "", e.camera, e.kind, e.zone.kind, e.zone.id, e.zone.row, e.ts_ms,
         e.boot, e.seq, int(e.historical), _payload_text(e, payload), received_ms)
        for e, payload in pairs
    ])
    fresh = [e for e, _ in pairs]
    counts = [e for e in fresh if e.kind == "count"]
    if counts:
        conn.executemany(_INSERT_POINT, [
            (e.id, e.zone.kind, e.zone.id, e.zone.row, e.device, e.camera, e.ts_ms, label, n)
            for e in counts for label, n in e.counts.items()
        ])
        latest: dict[tuple[str, str, str, str, str, str], Event] = {}
        for e in counts:  # strictly newer replaces: on a tie the first in the batch wins, as one by one
            key = (e.zone.kind, e.zone.id, e.site, e.device, e.camera, e.zone.row or "")
            held = latest.get(key)
            if held is None or (e.ts_ms, e.boot, e.seq) > (held.ts_ms, held.boot, held.seq):
                latest[key] = e
        conn.executemany(_UPSERT_LATEST, [(*key, e.id, e.ts_ms, e.boot, e.seq) for key, e in latest.items()])
        sqlite_rollups.add_counts(conn, counts)
    for e in fresh:
        if e.kind == "inspection":
            sqlite_qa.insert_inspection(conn, e)
    devices = {(e.site, e.device) for e in fresh}
    conn.executemany(
        "INSERT INTO devices (device, site, state, last_seen_ms, first_seen_ms) VALUES (?,?,'unknown',?,?)"
        " ON CONFLICT (site, device) DO UPDATE SET last_seen_ms = max(devices.last_seen_ms, excluded.last_seen_ms)",
        [(device, site, received_ms, received_ms) for site, device in sorted(devices)],
    )
