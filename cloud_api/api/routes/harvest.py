from __future__ import annotations

from datetime import date as Date
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Path, Query, status

from cloud_api.api.deps import HarvestServiceDep, OperatorDep, PrincipalDep
from cloud_api.api.schemas import HarvestDoneOut, HarvestPlanIn, HarvestPlanOut, OperatorPlanOut
from cloud_api.services.harvest import PlanParams
from cloud_api.services.harvest_plans import NoPlan, PlanRequest
from cloud_api.services.sheds import UnknownShed
from cloud_api.storage.records import HarvestDoneRecord, HarvestPlanRecord

router = APIRouter(prefix="/harvest", tags=["harvest"])

_SHED = Path(min_length=1, max_length=64, description="Shed id")
_UNKNOWN_SHED = {404: {"description": "Unknown shed"}}


def _plan_out(plan: HarvestPlanRecord, done: list[HarvestDoneRecord]) -> HarvestPlanOut:
    data = plan.plan
    params = data.get("params", {})
    defaults = PlanParams()
    return HarvestPlanOut(
        date=plan.date, created_ms=plan.created_ms, created_by=plan.created_by,
        operators=[OperatorPlanOut(**o) for o in data["operators"]],
        makespan_minutes=data["makespan_minutes"], contiguous=data["contiguous"], explanation=data["explanation"],
        done=[d.shed for d in done],
        pick_rate_per_min=params.get("pick_rate_per_min", defaults.pick_rate_per_min),
        walk_speed_m_per_min=params.get("walk_speed_m_per_min", defaults.walk_speed_m_per_min),
    )


@router.get(
    "/plan", response_model=HarvestPlanOut, summary="The day's harvest plan (today's is computed on first request)",
    responses={404: {"description": "No plan stored for that date"}},
)
def get_plan(
    service: HarvestServiceDep,
    principal: PrincipalDep,
    day: Annotated[Date | None, Query(alias="date", description="YYYY-MM-DD; default today in Settings.timezone")] = None,
) -> HarvestPlanOut:
    try:
        plan, done = service.get(day, principal.username)
    except NoPlan:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no harvest plan for {day}") from None
    return _plan_out(plan, done)


@router.post(
    "/plan", response_model=HarvestPlanOut,
    summary="Re-plan today (operator): sheds marked done are left out; the stored plan is replaced",
)
def replan(
    service: HarvestServiceDep, principal: OperatorDep, body: Annotated[HarvestPlanIn | None, Body()] = None
) -> HarvestPlanOut:
    request = PlanRequest(**body.model_dump()) if body is not None else PlanRequest()
    plan, done = service.replan(request, principal.username)
    return _plan_out(plan, done)


@router.post("/sheds/{shed_id}/done", response_model=HarvestDoneOut, responses=_UNKNOWN_SHED,
             summary="Mark a shed harvested today (operator; idempotent: the first mark is kept)")
def mark_done(service: HarvestServiceDep, principal: OperatorDep, shed_id: Annotated[str, _SHED]) -> HarvestDoneOut:
    try:
        mark = service.mark_done(shed_id, principal.username)
    except UnknownShed:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown shed {shed_id!r}") from None
    return HarvestDoneOut(date=mark.date, shed=mark.shed, done=True, done_by=mark.done_by, done_ms=mark.done_ms)


@router.delete("/sheds/{shed_id}/done", response_model=HarvestDoneOut, responses=_UNKNOWN_SHED,
               summary="Undo today's done mark of a shed (operator; idempotent)")
def unmark_done(service: HarvestServiceDep, _: OperatorDep, shed_id: Annotated[str, _SHED]) -> HarvestDoneOut:
    try:
        day = service.unmark_done(shed_id)
    except UnknownShed:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown shed {shed_id!r}") from None
    return HarvestDoneOut(date=day, shed=shed_id, done=False, done_by=None, done_ms=None)
