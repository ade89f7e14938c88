"""Records and service results -> API models, and store changes -> live WebSocket messages."""

from __future__ import annotations

from typing import Any

from fieldline.contract import Event, Zone

from cloud_api.api.schemas import AlertOut, ShedCameraOut, ShedDetailOut, ShedOut, ShedRowOut
from cloud_api.services.sheds import ShedOverview
from cloud_api.storage.records import AlertRecord, DeviceRecord, StoreChange


def alert_out(r: AlertRecord) -> AlertOut:
    zone = Zone(kind=r.zone_kind, id=r.zone_id, row=r.zone_row) if r.zone_kind and r.zone_id else None  # type: ignore[arg-type]
    return AlertOut(
        id=str(r.id), ts_ms=r.ts_ms, last_ts_ms=r.last_ts_ms, device=r.device, site=r.site, zone=zone,
        zone_id=r.zone_id, severity=r.severity, code=r.code, message=r.message,  # type: ignore[arg-type]
        dedup_key=r.dedup_key, state=r.state, count=r.count, acknowledged_by=r.acknowledged_by,  # type: ignore[arg-type]
        acknowledged_ms=r.acknowledged_ms, cleared_by=r.cleared_by, cleared_ms=r.cleared_ms,
    )


def _shed_fields(o: ShedOverview, names: dict[str, str]) -> dict[str, Any]:
    return {
        "id": o.id, "name": names.get(o.id, o.id), "counts": o.counts, "updated_ms": o.updated_ms, "site": o.site,
        "pick_ready": o.pick_ready, "trend": o.trend, "camera_state": o.camera_state, "open_alerts": o.open_alerts,
    }


def shed_out(o: ShedOverview, names: dict[str, str]) -> ShedOut:
    """``names``: Settings.zone_names (display names by zone id)."""
    return ShedOut(**_shed_fields(o, names))


def shed_detail_out(o: ShedOverview, latest_snapshot: str | None, names: dict[str, str]) -> ShedDetailOut:
    return ShedDetailOut(
        **_shed_fields(o, names),
        rows=[ShedRowOut(row=r.row, counts=r.counts) for r in o.rows],
        cameras=[ShedCameraOut(site=c.site, device=c.device, camera=c.camera, state=c.state,  # type: ignore[arg-type]
                               last_seen_ms=c.last_seen_ms) for c in o.cameras],
        latest_snapshot=latest_snapshot,
    )


def live_message(change: StoreChange) -> tuple[str, dict[str, Any]] | None:
    """(type, data) for the WebSocket, or None for changes live clients do not get.

    count / inspection: the event as on the wire without ``detections`` (GET /events has them);
    alert: the alert as in GET /alerts plus ``change`` (opened, repeated, acknowledged, cleared);
    device: device, site, state, boot, status_ts_ms, agent_version, last_seen_ms.
    """
    subject = change.subject
    if change.kind in ("count", "inspection") and isinstance(subject, Event):
        return change.kind, subject.model_dump(mode="json", by_alias=True, exclude={"detections"})
    if change.kind == "alert" and isinstance(subject, AlertRecord):
        return "alert", {**alert_out(subject).model_dump(mode="json"), "change": change.change}
    if change.kind == "device" and isinstance(subject, DeviceRecord):
        return "device", {
            "device": subject.device, "site": subject.site, "state": subject.state, "boot": subject.boot,
            "status_ts_ms": subject.status_ts_ms, "agent_version": subject.agent_version,
            "last_seen_ms": subject.last_seen_ms,
        }
    return None
