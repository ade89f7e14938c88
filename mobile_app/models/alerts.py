"""Alerts as the app lists them: open first, most severe first, newest first."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

SEVERITY_RANK = {"info": 1, "warning": 2, "critical": 3}


@dataclass(frozen=True)
class AlertItem:
    id: str
    ts_ms: int
    last_ts_ms: int
    device: str
    site: str
    zone_id: str | None
    severity: str
    code: str
    message: str
    state: str  # active | acknowledged | cleared
    count: int
    acknowledged_by: str | None
    acknowledged_ms: int | None
    ack_pending: bool = False  # acknowledged on this phone, not yet confirmed by the server

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> AlertItem:
        zone = data.get("zone")
        zone_id = zone.get("id") if isinstance(zone, dict) else zone
        return cls(
            id=str(data["id"]), ts_ms=int(data.get("ts_ms") or 0),
            last_ts_ms=int(data.get("last_ts_ms") or data.get("ts_ms") or 0), device=str(data.get("device", "")),
            site=str(data.get("site", "")), zone_id=zone_id, severity=str(data.get("severity", "info")),
            code=str(data.get("code", "")), message=str(data.get("message", "")),
            state=str(data.get("state") or "active"), count=int(data.get("count") or 1),
            acknowledged_by=data.get("acknowledged_by"), acknowledged_ms=data.get("acknowledged_ms"),
        )

    @property
    def is_open(self) -> bool:
        return self.state != "cleared"

    @property
    def needs_ack(self) -> bool:
        return self.state == "active" and not self.ack_pending

    @property
    def rank(self) -> int:
        return SEVERITY_RANK.get(self.severity, 0)

    def pending_ack(self) -> AlertItem:
        return replace(self, ack_pending=True)


def sort_alerts(items: list[AlertItem]) -> list[AlertItem]:
    state_order = {"active": 0, "acknowledged": 1, "cleared": 2}
    return sorted(items, key=lambda a: (state_order.get(a.state, 3), -a.rank, -a.last_ts_ms, a.id))


@dataclass(frozen=True)
class AlertSummary:
    """What the badge shows: active (unacknowledged) alerts, by severity."""

    active: int
    by_severity: dict[str, int]

    @classmethod
    def from_alerts(cls, items: list[AlertItem]) -> AlertSummary:
        need = [a for a in items if a.needs_ack]
        by: dict[str, int] = {}
        for a in need:
            by[a.severity] = by.get(a.severity, 0) + 1
        return cls(active=len(need), by_severity=by)


def max_severity_by_zone(items: list[AlertItem]) -> dict[str, str]:
    """zone id -> highest severity among its open alerts."""
    out: dict[str, str] = {}
    for a in items:
        if a.is_open and a.zone_id and SEVERITY_RANK.get(a.severity, 0) > SEVERITY_RANK.get(out.get(a.zone_id, ""), 0):
            out[a.zone_id] = a.severity
    return out
