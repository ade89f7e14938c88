from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, status

from cloud_api.api.convert import alert_out
from cloud_api.api.deps import AlertServiceDep, OperatorDep
from cloud_api.api.schemas import AlertOut, AlertSummaryOut
from cloud_api.services.alerts import TransitionNotAllowed, UnknownAlert
from cloud_api.storage.records import AlertQuery

router = APIRouter(prefix="/alerts", tags=["alerts"])

_ID = Path(description="Alert id: the lifecycle row id as a decimal string (the `id` field of GET /alerts)")
_TRANSITION_ERRORS = {404: {"description": "Unknown alert"}, 409: {"description": "Transition not allowed"}}


@router.get("", response_model=list[AlertOut], summary="Alerts grouped by dedup key, newest activity first")
def list_alerts(
    service: AlertServiceDep,
    state: Annotated[Literal["active", "acknowledged", "cleared"] | None, Query()] = None,
    severity: Annotated[Literal["info", "warning", "critical"] | None, Query()] = None,
    site: Annotated[str | None, Query(max_length=64)] = None,
    zone: Annotated[str | None, Query(max_length=64, description="Zone id, e.g. shed-07")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AlertOut]:
    query = AlertQuery(state=state, severity=severity, site=site, zone=zone, limit=limit)
    return [alert_out(r) for r in service.list(query)]


@router.get("/summary", response_model=AlertSummaryOut, summary="Open alerts by state and severity")
def summary(service: AlertServiceDep) -> AlertSummaryOut:
    s = service.summary()
    return AlertSummaryOut(active=s.active, acknowledged=s.acknowledged, by_severity=s.by_severity)


def _move(service: AlertServiceDep, alert_id: str, to: str, by: str) -> AlertOut:
    try:
        record = service.acknowledge(alert_id, by) if to == "acknowledged" else service.clear(alert_id, by)
    except UnknownAlert:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown alert {alert_id!r}") from None
    except TransitionNotAllowed as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return alert_out(record)


@router.post("/{alert_id}/ack", response_model=AlertOut, summary="Acknowledge an active alert (operator)",
             responses=_TRANSITION_ERRORS)
def acknowledge(service: AlertServiceDep, principal: OperatorDep, alert_id: Annotated[str, _ID]) -> AlertOut:
    return _move(service, alert_id, "acknowledged", principal.username)


@router.post("/{alert_id}/clear", response_model=AlertOut,
             summary="Clear an active or acknowledged alert (operator)", responses=_TRANSITION_ERRORS)
def clear(service: AlertServiceDep, principal: OperatorDep, alert_id: Annotated[str, _ID]) -> AlertOut:
    return _move(service, alert_id, "cleared", principal.username)
