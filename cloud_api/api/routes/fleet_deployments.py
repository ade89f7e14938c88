"""Staged rollouts (operators start and steer them, anyone reads), device tags and the fleet table.

The router's lifespan runs the deployment engine (``cloud_api.fleet.deployments``) in the API process; its
state is in SQLite, so a restarted API carries on with every unfinished rollout.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Literal

from fastapi import APIRouter, FastAPI, HTTPException, Path, Request, status

from fieldline.contract import NAME_PATTERN

from cloud_api.api.deps import OperatorDep
from cloud_api.fleet.deployment_records import DeploymentRecord
from cloud_api.fleet.deployment_schemas import (
    DeploymentDetailOut,
    DeploymentIn,
    DeploymentOut,
    DeploymentDeviceOut,
    FleetDeviceOut,
    HistoryOut,
    TagsIn,
)
from cloud_api.fleet.deployments import (
    DeploymentConflict,
    DeploymentEngine,
    DeploymentError,
    DeploymentNotFound,
    DeploymentService,
    audit_entry,
)


def _wake_commands(app: FastAPI) -> None:
    dispatcher = getattr(app.state, "fleet_dispatcher", None)
    if dispatcher is not None:
        dispatcher.wake()


@asynccontextmanager
async def deployments_lifespan(app: FastAPI) -> AsyncIterator[None]:
    store = app.state.store

    def changed(deployment_id: str) -> None:
        hub = getattr(app.state, "live", None)
        record = store.get_deployment(deployment_id)
        if hub is not None and record is not None:
            hub.publish("deployment", DeploymentOut.of(record, store.deployment_devices(deployment_id))
                        .model_dump(mode="json"))

    engine = DeploymentEngine(store, lambda: _wake_commands(app), on_change=changed)
    app.state.fleet_deployments = engine
    engine.start()  # its first pass picks up every rollout a previous process left unfinished
    try:
        yield
    finally:
        engine.stop()


router = APIRouter(lifespan=deployments_lifespan)  # tags per route: one tag each (Swagger lists an operation per tag)
DEPLOYMENTS = ["deployments"]
IdPath = Path(pattern=r"^[0-9a-f]{32}$", description="Deployment id")
SitePath = Path(pattern=NAME_PATTERN)
DevicePath = Path(pattern=NAME_PATTERN)


def _service(request: Request) -> DeploymentService:
    engine: DeploymentEngine = request.app.state.fleet_deployments
    return DeploymentService(request.app.state.store, wake=engine.wake)


def _detail(request: Request, record: DeploymentRecord) -> DeploymentDetailOut:
    store = request.app.state.store
    devices = store.deployment_devices(record.id)
    return DeploymentDetailOut(**DeploymentOut.of(record, devices).model_dump(),
                               devices=[DeploymentDeviceOut.of(d) for d in devices],
                               history=[HistoryOut.of(h) for h in store.deployment_history(record.id)])


@router.post(
    "/deployments", response_model=DeploymentDetailOut, status_code=status.HTTP_201_CREATED, tags=DEPLOYMENTS,
    summary="Roll a registered model or config version out to devices, a site or a tag, in stages (operator)",
    description="The online devices come first: `canary` of them form stage 0, the rest follow in batches of "
                "`batch_size`. A stage starts when every device of the one before passed the health gate (or is "
                "offline: it gets the model when it returns). The gate per device: the new model loaded and its "
                "self-test on a live frame passed (a config: the device applied it and reports its hash), median "
                "fps >= `min_fps_pct` % of its own median over the last hour before, median p95 inference latency "
                "at most `max_latency_pct` % above before (each on `min_stats_samples` stats messages or more), no "
                "model_error alert, counts within `max_count_jump_pct` % of its last hour, all held for `hold_s` "
                "seconds. A failing gate rolls back every device that loaded the model or config (the agent's "
                "previous-model or previous-config slot) and stops the rollout with the reason.",
    responses={404: {"description": "Unknown model, device, site or tag"},
               409: {"description": "A device of the target is in a running deployment"}})
def create_deployment(request: Request, body: DeploymentIn, principal: OperatorDep) -> DeploymentDetailOut:
    service = _service(request)
    try:
        record = service.create(kind=body.kind, sha256=body.sha256, target=body.target.as_dict(),
                                policy=body.policy(), actor=principal.username, role=principal.role,
                                api_url=body.api_url or str(request.base_url))
    except (DeploymentError, DeploymentNotFound) as exc:
        request.app.state.store.add_audit(audit_entry(
            principal.username, principal.role, "deployment.create", body.kind, body.sha256.lower(), "refused",
            error=str(exc), target=body.target.as_dict()))
        code = (status.HTTP_404_NOT_FOUND if isinstance(exc, DeploymentNotFound) else status.HTTP_409_CONFLICT
                if isinstance(exc, DeploymentConflict) else status.HTTP_422_UNPROCESSABLE_CONTENT)
        raise HTTPException(code, str(exc)) from None
    return _detail(request, record)


@router.get("/deployments", response_model=list[DeploymentOut], tags=DEPLOYMENTS, summary="Deployments, newest first")
def list_deployments(request: Request) -> list[DeploymentOut]:
    store = request.app.state.store
    return [DeploymentOut.of(d, store.deployment_devices(d.id)) for d in store.list_deployments()]


@router.get("/deployments/{deployment_id}", response_model=DeploymentDetailOut, tags=DEPLOYMENTS,
            summary="One deployment: its devices with their gate checks, and its history",
            responses={404: {"description": "No such deployment"}})
def get_deployment(request: Request, deployment_id: Annotated[str, IdPath]) -> DeploymentDetailOut:
    record = request.app.state.store.get_deployment(deployment_id)
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no deployment {deployment_id}")
    return _detail(request, record)


@router.post("/deployments/{deployment_id}/{action}", response_model=DeploymentDetailOut, tags=DEPLOYMENTS,
             summary="pause, resume, abort, or roll back (also a finished rollout) (operator)",
             responses={404: {"description": "No such deployment"},
                        409: {"description": "Not allowed in the deployment's state"}})
def act_on_deployment(request: Request, principal: OperatorDep, deployment_id: Annotated[str, IdPath],
                      action: Literal["pause", "resume", "abort", "rollback"]) -> DeploymentDetailOut:
    try:
        record = _service(request).act(deployment_id, action, principal.username, principal.role)
    except DeploymentNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    except DeploymentError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return _detail(request, record)


@router.put("/devices/{site}/{device}/tags", response_model=list[str], tags=["fleet"],
            summary="Set a device's tags (operator), e.g. line:3 or greenhouse; deployments can target a tag",
            responses={404: {"description": "Unknown device"}})
def set_tags(request: Request, body: TagsIn, principal: OperatorDep, site: Annotated[str, SitePath],
             device: Annotated[str, DevicePath]) -> list[str]:
    store = request.app.state.store
    if store.get_device(site, device) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no device {device!r} at site {site!r}")
    store.set_device_tags(site, device, body.tags)
    store.add_audit(audit_entry(principal.username, principal.role, "device.tags", "device", f"{site}/{device}",
                                "ok", tags=body.tags))
    return sorted(set(body.tags))


@router.get("/fleet", response_model=list[FleetDeviceOut], tags=["fleet"],
            summary="The fleet table: every device with its model, fps, spool depth, last seen and open alerts")
def fleet_table(request: Request) -> list[FleetDeviceOut]:
    store = request.app.state.store
    tags, alerts, deployment = store.device_tags(), store.open_alerts_by_device(), store.latest_deployment_states()
    rows = []
    for d in store.list_devices():
        model, stats = d.model or {}, d.stats or {}
        key = (d.site, d.device)
        rows.append(FleetDeviceOut(
            site=d.site, device=d.device, online=d.state == "online", state=d.state, model=model.get("name"),
            version=model.get("version"), sha256=model.get("sha256") or None, fps=stats.get("fps"),
            spool_depth=stats.get("spool_depth"), latency_p50_ms=(stats.get("latency_ms") or {}).get("p50"),
            last_seen_ms=d.last_seen_ms, open_alerts=alerts.get(key, 0), tags=tags.get(key, []),
            deployment=deployment.get(key)))
    return rows
