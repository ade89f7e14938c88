"""Shed overview reads on PostgreSQL: ``sqlite_sheds``' answers with plans that stay fast on partitioned events.

``counts_at`` looks up, per key of ``latest_counts``, its last count event in a time window. The SQLite query
(a correlated sub-query ordered by ts_ms, boot, seq, id) makes PostgreSQL read and sort every event of the key
in the window (a day of per-minute events: about 1,400 per key, over a second for 60 sheds at 600k events).
Here the newest ``ts_ms`` comes first from ``events_key_ts`` (site, device, camera, zone, row, ts_ms: one
index descent per key, schema version 2), then the tie-break among the events at that instant; count points are
joined on (event id, ts_ms), so only the partition holding the event is probed.
"""

from __future__ import annotations

from typing import Any

from cloud_api.storage.records import LatestCount

_KEY = ("{a}.site = lc.site AND {a}.device = lc.device AND {a}.camera = lc.camera AND {a}.zone_id = lc.zone_id"
        " AND coalesce({a}.row, '') = lc.row_key AND {a}.zone_kind = 'shed' AND {a}.kind = 'count'")

COUNTS_AT = (
    "SELECT lc.zone_id, cp.label, sum(cp.n) FROM latest_counts lc"
    " CROSS JOIN LATERAL ("
    f"  SELECT e.id, e.ts_ms FROM events e WHERE {_KEY.format(a='e')}"
    f"  AND e.ts_ms = (SELECT l.ts_ms FROM events l WHERE {_KEY.format(a='l')}"
    "    AND l.ts_ms > %(start)s AND l.ts_ms <= %(at)s ORDER BY l.ts_ms DESC LIMIT 1)"
    "  ORDER BY e.boot DESC, e.seq DESC, e.id DESC LIMIT 1) AS p"
    " LEFT JOIN count_points cp ON cp.event_id = p.id AND cp.ts_ms = p.ts_ms"
    " WHERE lc.zone_kind = 'shed' GROUP BY lc.zone_id, cp.label"
)

LATEST = (
    "SELECT lc.zone_id, lc.site, lc.device, lc.camera, lc.row_key, lc.event_id, lc.ts_ms, cp.label, cp.n"
    " FROM latest_counts lc LEFT JOIN count_points cp ON cp.event_id = lc.event_id AND cp.ts_ms = lc.ts_ms"
    " WHERE lc.zone_kind = 'shed'"
)


def counts_at(raw: Any, at_ms: int, lookback_ms: int) -> dict[str, dict[str, int]]:
    """Per shed, the sum over its keys of the last count event in (at_ms - lookback_ms, at_ms] (as
    ``sqlite_sheds.counts_at``); ``raw`` is a psycopg connection."""
    result: dict[str, dict[str, int]] = {}
    for zone_id, label, n in raw.execute(COUNTS_AT, {"start": at_ms - lookback_ms, "at": at_ms}).fetchall():
        counts = result.setdefault(zone_id, {})
        if label is not None:
            counts[label] = int(n)
    return result


def latest_counts(raw: Any, shed_id: str | None = None) -> list[LatestCount]:
    """``sqlite_sheds.latest_counts`` with the count points found in the event's partition only."""
    sql, params = LATEST, ()
    if shed_id is not None:
        sql, params = sql + " AND lc.zone_id = %s", (shed_id,)
    grouped: dict[tuple[str, str, str, str, str], tuple[str, int, dict[str, int]]] = {}
    for zone_id, site, device, camera, row_key, event_id, ts_ms, label, n in raw.execute(sql, params).fetchall():
        _, _, counts = grouped.setdefault((zone_id, site, device, camera, row_key), (event_id, int(ts_ms), {}))
        if label is not None:
            counts[label] = int(n)
    return [LatestCount(shed=k[0], site=k[1], device=k[2], camera=k[3], row=k[4] or None, event_id=v[0], ts_ms=v[1],
                        counts=v[2]) for k, v in grouped.items()]
