"""Alert lifecycle in SQLite: group alert payloads by dedup key, move them active -> acknowledged -> cleared.

Functions take a connection; ``SqliteStore`` owns transactions and calls them inside one.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from fieldline.contract import Alert

from cloud_api.storage.records import AlertQuery, AlertRecord, AlertSummary

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
OPEN_STATES = ("active", "acknowledged")

_COLUMNS = (
    "id, ts_ms, last_ts_ms, device, site, zone_kind, zone_id, zone_row, severity, code, message, dedup_key,"
    " state, count, acknowledged_by, acknowledged_ms, cleared_by, cleared_ms"
)


def _record(row: tuple[Any, ...]) -> AlertRecord:
    return AlertRecord(*row)


def get_alert(conn: sqlite3.Connection, alert_id: int) -> AlertRecord | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM alert_lifecycle WHERE id = ?", (alert_id,)).fetchone()
    return _record(row) if row else None


def group_alert(conn: sqlite3.Connection, alert: Alert) -> tuple[AlertRecord, str]:
    """Fold a new alert payload into the open alert of its dedup key, or open one.

    Returns the alert after the change and what happened: "opened" or "repeated". On a repeat the count goes
    up, last_ts_ms becomes the newest ts_ms, the message is the newest payload's and the severity the highest
    seen; an acknowledged alert stays acknowledged.
    """
    row = conn.execute(
        "SELECT id, last_ts_ms, severity FROM alert_lifecycle WHERE dedup_key = ? AND state != 'cleared'",
        (alert.dedup_key,),
    ).fetchone()
    if row is None:
        zone = alert.zone
        cur = conn.execute(
            "INSERT INTO alert_lifecycle (dedup_key, state, first_alert_id, ts_ms, last_ts_ms, device, site,"
            " zone_kind, zone_id, zone_row, severity, code, message, count)"
            " VALUES (?, 'active', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)",
            (
                alert.dedup_key, alert.id, alert.ts_ms, alert.ts_ms, alert.device, alert.site,
                zone.kind if zone else None, zone.id if zone else None, zone.row if zone else None,
                alert.severity, alert.code, alert.message,
            ),
        )
        alert_id, change = int(cur.lastrowid or 0), "opened"
    else:
        alert_id, last_ts_ms, severity = row
        newer = alert.ts_ms >= last_ts_ms
        highest = max(severity, alert.severity, key=SEVERITY_RANK.__getitem__)
        conn.execute(
            "UPDATE alert_lifecycle SET count = count + 1, last_ts_ms = max(last_ts_ms, ?), severity = ?,"
            " message = CASE WHEN ? THEN ? ELSE message END WHERE id = ?",
            (alert.ts_ms, highest, int(newer), alert.message, alert_id),
        )
        change = "repeated"
    record = get_alert(conn, alert_id)
    assert record is not None
    return record, change


def transition(
    conn: sqlite3.Connection, alert_id: int, to_state: str, allowed_from: tuple[str, ...], by: str, at_ms: int
) -> tuple[AlertRecord | None, bool]:
    """Move an alert to ``to_state`` if it is in one of ``allowed_from``; returns (alert or None, changed)."""
    marks = ",".join("?" * len(allowed_from))
    who = "acknowledged" if to_state == "acknowledged" else "cleared"
    cur = conn.execute(
        f"UPDATE alert_lifecycle SET state = ?, {who}_by = ?, {who}_ms = ? WHERE id = ? AND state IN ({marks})",
        (to_state, by, at_ms, alert_id, *allowed_from),
    )
    return get_alert(conn, alert_id), cur.rowcount == 1


def list_alerts(conn: sqlite3.Connection, query: AlertQuery) -> list[AlertRecord]:
    where, params = [], []
    for column, value in (("state", query.state), ("severity", query.severity), ("site", query.site),
                          ("zone_id", query.zone)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    sql = f"SELECT {_COLUMNS} FROM alert_lifecycle"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY last_ts_ms DESC, id DESC LIMIT ?"
    return [_record(row) for row in conn.execute(sql, [*params, query.limit])]


def summary(conn: sqlite3.Connection) -> AlertSummary:
    states = {"active": 0, "acknowledged": 0}
    by_severity = dict.fromkeys(SEVERITY_RANK, 0)
    for state, severity, n in conn.execute(
        "SELECT state, severity, count(*) FROM alert_lifecycle WHERE state != 'cleared' GROUP BY state, severity"
    ):
        states[state] += n
        by_severity[severity] = by_severity.get(severity, 0) + n
    return AlertSummary(active=states["active"], acknowledged=states["acknowledged"], by_severity=by_severity)


def open_alerts_by_shed(conn: sqlite3.Connection) -> dict[str, int]:
    """Active + acknowledged alerts per shed id (alerts whose zone is a shed)."""
    rows = conn.execute(
        "SELECT zone_id, count(*) FROM alert_lifecycle WHERE zone_kind = 'shed' AND state != 'cleared'"
        " GROUP BY zone_id"
    )
    return {zone_id: int(n) for zone_id, n in rows}
