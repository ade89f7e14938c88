"""Shed overview reads: latest counts per (site, device, camera, row), the picture at an earlier time, snapshots."""

from __future__ import annotations

import sqlite3

from cloud_api.storage.records import LatestCount


def latest_counts(conn: sqlite3.Connection, shed_id: str | None = None) -> list[LatestCount]:
    """The latest count event of every (shed, site, device, camera, row), with its counts per label."""
    sql = (
        "SELECT lc.zone_id, lc.site, lc.device, lc.camera, lc.row_key, lc.event_id, lc.ts_ms, cp.label, cp.n"
        " FROM latest_counts lc LEFT JOIN count_points cp ON cp.event_id = lc.event_id"
        " WHERE lc.zone_kind = 'shed'"
    )
    params: tuple[str, ...] = ()
    if shed_id is not None:
        sql += " AND lc.zone_id = ?"
        params = (shed_id,)
    grouped: dict[tuple[str, str, str, str, str], tuple[str, int, dict[str, int]]] = {}
    for zone_id, site, device, camera, row_key, event_id, ts_ms, label, n in conn.execute(sql, params):
        _, _, counts = grouped.setdefault((zone_id, site, device, camera, row_key), (event_id, int(ts_ms), {}))
        if label is not None:
            counts[label] = int(n)
    return [
        LatestCount(shed=k[0], site=k[1], device=k[2], camera=k[3], row=k[4] or None, event_id=v[0], ts_ms=v[1],
                    counts=v[2])
        for k, v in grouped.items()
    ]


def counts_at(conn: sqlite3.Connection, at_ms: int, lookback_ms: int) -> dict[str, dict[str, int]]:
    """Per shed, the sum over (site, device, camera, row) of the last count event in (at_ms - lookback_ms, at_ms].

    Keys with no event in that window do not contribute; sheds with none at all are absent (unknown).
    One indexed look-back per key of ``latest_counts`` (which holds every key ever seen), so the cost does
    not grow with the number of events in the window.
    """
    rows = conn.execute(
        "WITH past AS ("
        "  SELECT lc.zone_id, (SELECT e.id FROM events e"
        "    WHERE e.zone_kind = 'shed' AND e.zone_id = lc.zone_id AND e.kind = 'count'"
        "    AND e.ts_ms > :start AND e.ts_ms <= :at"
        "    AND e.site = lc.site AND e.device = lc.device AND e.camera = lc.camera AND coalesce(e.row, '') = lc.row_key"
        "    ORDER BY e.ts_ms DESC, e.boot DESC, e.seq DESC, e.id DESC LIMIT 1) AS event_id"
        "  FROM latest_counts lc WHERE lc.zone_kind = 'shed')"
        " SELECT p.zone_id, cp.label, sum(cp.n) FROM past p LEFT JOIN count_points cp ON cp.event_id = p.event_id"
        " WHERE p.event_id IS NOT NULL GROUP BY p.zone_id, cp.label",
        {"start": at_ms - lookback_ms, "at": at_ms},
    )
    result: dict[str, dict[str, int]] = {}
    for zone_id, label, n in rows:
        counts = result.setdefault(zone_id, {})
        if label is not None:
            counts[label] = int(n)
    return result


def latest_snapshot(conn: sqlite3.Connection, shed_id: str) -> str | None:
    """Event id of the newest stored snapshot that belongs to an event of this shed.

    A snapshot message is published on ``snapshots/{event_id}``; it belongs to the event with that id, or to
    an event whose ``snapshot`` field names it.
    """
    row = conn.execute(
        "SELECT event_id FROM ("
        "  SELECT s.event_id, e.ts_ms FROM snapshots s JOIN events e ON e.id = s.event_id"
        "  WHERE e.zone_kind = 'shed' AND e.zone_id = :shed"
        "  UNION ALL"
        "  SELECT s.event_id, e.ts_ms FROM events e JOIN snapshots s ON s.event_id = json_extract(e.payload, '$.snapshot')"
        "  WHERE e.zone_kind = 'shed' AND e.zone_id = :shed AND json_extract(e.payload, '$.snapshot') IS NOT NULL"
        ") ORDER BY ts_ms DESC LIMIT 1",
        {"shed": shed_id},
    ).fetchone()
    return str(row[0]) if row else None


def shed_sites(conn: sqlite3.Connection) -> dict[str, str]:
    """The site of each shed: the site of the device behind its newest latest count."""
    rows = conn.execute(
        "SELECT lc.zone_id, lc.site, lc.ts_ms FROM latest_counts lc WHERE lc.zone_kind = 'shed' ORDER BY lc.ts_ms"
    )
    return {zone_id: site for zone_id, site, _ in rows}
