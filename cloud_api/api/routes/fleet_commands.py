"""Device commands (operator sends, anyone reads) and the fleet audit log (read only)."""

from __future__ import annotations

import time
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request, status

from fieldline.contract import NAME_PATTERN

from cloud_api.api.deps import OperatorDep, StoreDep
from cloud_api.fleet.commands import CommandRefused, CommandService, UnknownTarget
from cloud_api.fleet.records import AuditRecord
from cloud_api.fleet.runtime import DispatcherDep, FleetStoreDep, fleet_lifespan
from cloud_api.fleet.schemas import AuditOut, CommandIn, CommandOut

router = APIRouter(lifespan=fleet_lifespan)  # one tag per route: Swagger UI lists an operation once per tag
COMMANDS = ["commands"]

SitePath = Path(pattern=NAME_PATTERN, description="Site id")
DevicePath = Path(pattern=NAME_PATTERN, description="Device name within the site")


@router.post(
    "/devices/{site}/{device}/commands", response_model=CommandOut, tags=COMMANDS,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Send a command to a device (operator)",
    description="The command is stored (state pending) before it is published on the device's `cmd/{name}` topic; "
                "it becomes sent at the broker's PUBACK, then ok/error with the device's reply, or timed_out. "
                "Unanswered commands are re-published until their deadline, also after an API restart (the agent "
                "runs a request id once and answers repeats from its ledger). A model command names a registered "
                "file by sha256; the API adds the download URL and a download token for this device. An API worker without "
                "the broker connection (ingest disabled) stores the command for a worker that has it.",
    responses={404: {"description": "Unknown device (it never reported to this API) or unknown model"},
               422: {"description": "Bad args for that command; detail says which"}},
)
def send_command(
    request: Request, body: CommandIn, principal: OperatorDep, store: FleetStoreDep, devices: StoreDep,
    dispatcher: DispatcherDep, site: Annotated[str, SitePath], device: Annotated[str, DevicePath],
) -> CommandOut:
    try:
        if devices.get_device(site, device) is None:
            raise UnknownTarget(f"no device {device!r} at site {site!r} has reported to this API")
        service = CommandService(store, wake=dispatcher.wake)
        record = service.create(site=site, device=device, name=body.name, args=body.args, actor=principal.username,
                                role=principal.role, timeout_s=body.timeout_s,
                                api_url=body.api_url or str(request.base_url))
    except (CommandRefused, UnknownTarget) as exc:
        store.add_audit(AuditRecord(id=0, ts_ms=time.time_ns() // 1_000_000, actor=principal.username,
                                    role=principal.role, action=f"command.{body.name}", target_kind="device",
                                    target=f"{site}/{device}", result="refused", detail={"error": str(exc)}))
        code = status.HTTP_404_NOT_FOUND if isinstance(exc, UnknownTarget) else status.HTTP_422_UNPROCESSABLE_CONTENT
        raise HTTPException(code, str(exc)) from None
    return CommandOut.of(record)


@router.get("/devices/{site}/{device}/commands", response_model=list[CommandOut], tags=COMMANDS,
            summary="Commands sent to a device, newest first, with their state and reply")
def list_commands(
    store: FleetStoreDep, site: Annotated[str, SitePath], device: Annotated[str, DevicePath],
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[CommandOut]:
    return [CommandOut.of(c) for c in store.list_commands(site, device, limit)]


@router.get("/commands/{command_id}", response_model=CommandOut, tags=COMMANDS,
            summary="One command by id (its request_id)",
            responses={404: {"description": "No such command"}})
def get_command(store: FleetStoreDep,
                command_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]) -> CommandOut:
    record = store.get_command(command_id)
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no command {command_id}")
    return CommandOut.of(record)


@router.get("/audit", response_model=list[AuditOut], tags=["audit"],
            summary="Audit log: who did what to which device or model, when, with what result; newest first")
def list_audit(
    store: FleetStoreDep,
    target_kind: Annotated[Literal["device", "model", "config"] | None, Query()] = None,
    target: Annotated[str | None, Query(max_length=200, description="site/device or a model sha256")] = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    before_id: Annotated[int | None, Query(ge=1, description="Page: entries older than this id")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AuditOut]:
    rows = store.list_audit(target_kind=target_kind, target=target, actor=actor, before_id=before_id, limit=limit)
    return [AuditOut.of(r) for r in rows]
