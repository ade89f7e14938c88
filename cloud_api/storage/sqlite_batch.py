"""Batched event inserts for ``SqliteStore.write_events``: a handful of statements per batch, not per event.

Same result as inserting the events one by one (``INSERT OR IGNORE`` per event, then its count points, the
latest-count upsert, the rollups and the device touch), but: one ``SELECT`` finds the ids already stored,
``executemany`` inserts the new rows, and per-key upserts (latest counts, rollups, devices) are folded in
Python first so each key is written once per batch.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from fieldline.contract import Event

from cloud_api.storage import sqlite_qa, sqlite_rollups

_CHUNK = 500  # ids per IN (...) lookup, well under SQLite's variable limit

_INSERT_EVENT = (
    "INSERT INTO events (id, device, site, camera, kind, zone_kind, zone_id, row, ts_ms,"
    " boot, seq, historical, payload, received_ms) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_INSERT_POINT = (
    "INSERT INTO count_points (event_id, zone_kind, zone_id, row, device, camera, ts_ms, label, n)"
    " VALUES (?,?,?,?,?,?,?,?,?)"
)
_UPSERT_LATEST = (
    "INSERT INTO latest_counts (zone_kind, zone_id, device, camera, row_key, event_id, ts_ms, boot, seq)"
    " VALUES (?,?,?,?,?,?,?,?,?)"
    " ON CONFLICT (zone_kind, zone_id, device, camera, row_key) DO UPDATE SET"
    " event_id = excluded.event_id, ts_ms = excluded.ts_ms, boot = excluded.boot, seq = excluded.seq"
    " WHERE (excluded.ts_ms, excluded.boot, excluded.seq)"
    " > (latest_counts.ts_ms, latest_counts.boot, latest_counts.seq)"
)


def new_events(conn: sqlite3.Connection, events: Sequence[Event],
               payloads: Sequence[bytes | None] | None = None) -> list[tuple[Event, bytes | None]]:
    """The events whose id is neither stored nor earlier in this batch, in batch order, with their payloads."""
    unique: dict[str, tuple[Event, bytes | None]] = {}
    for event, payload in zip(events, payloads or [None] * len(events), strict=True):
        unique.setdefault(event.id, (event, payload))
    ids = list(unique)
    stored: set[str] = set()
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i:i + _CHUNK]
        marks = ",".join("?" * len(chunk))
        stored.update(row[0] for row in conn.execute(f"SELECT id FROM events WHERE id IN ({marks})", chunk))
    return [pair for event_id, pair in unique.items() if event_id not in stored]


def _payload_text(event: Event, payload: bytes | None) -> str:
    """The event's JSON as received when given (already parsed, so valid UTF-8 JSON), else serialised."""
    if payload is not None:
        try:
            return payload.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return event.to_json().decode("utf-8")


def insert_events(conn: sqlite3.Connection, events: Sequence[Event], received_ms: int,
                  payloads: Sequence[bytes | None] | None = None) -> list[Event]:
    """Insert the new events of a batch (inside the caller's write transaction); returns them.

    ``payloads`` (one per event) are stored as received instead of serialising each event again.
    """
    pairs = new_events(conn, events, payloads)
    if not pairs:
        return []
    conn.executemany(_INSERT_EVENT, [
        (e.id, e.device, e.site, e.camera, e.kind, e.zone.kind, e.zone.id, e.zone.row, e.ts_ms, e.boot, e.seq,
         int(e.historical), _payload_text(e, payload), received_ms)
        for e, payload in pairs
    ])
    fresh = [e for e, _ in pairs]
    counts = [e for e in fresh if e.kind == "count"]
    if counts:
        conn.executemany(_INSERT_POINT, [
            (e.id, e.zone.kind, e.zone.id, e.zone.row, e.device, e.camera, e.ts_ms, label, n)
            for e in counts for label, n in e.counts.items()
        ])
        latest: dict[tuple[str, str, str, str, str], Event] = {}
        for e in counts:  # strictly newer replaces: on a tie the first in the batch wins, as one by one
            key = (e.zone.kind, e.zone.id, e.device, e.camera, e.zone.row or "")
            held = latest.get(key)
            if held is None or (e.ts_ms, e.boot, e.seq) > (held.ts_ms, held.boot, held.seq):
                latest[key] = e
        conn.executemany(_UPSERT_LATEST, [(*key, e.id, e.ts_ms, e.boot, e.seq) for key, e in latest.items()])
        sqlite_rollups.add_counts(conn, counts)
    for e in fresh:
        if e.kind == "inspection":
            sqlite_qa.insert_inspection(conn, e)
    devices: dict[str, str] = {}
    for e in fresh:
        devices[e.device] = e.site  # the last site wins, as with one touch per event
    conn.executemany(
        "INSERT INTO devices (device, site, state, last_seen_ms, first_seen_ms) VALUES (?,?,'unknown',?,?)"
        " ON CONFLICT (device) DO UPDATE SET site = excluded.site,"
        " last_seen_ms = max(devices.last_seen_ms, excluded.last_seen_ms)",
        [(device, site, received_ms, received_ms) for device, site in devices.items()],
    )
    return fresh
