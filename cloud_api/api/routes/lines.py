"""``GET /lines``: every factory line with its pass/reject counts in a window."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from cloud_api.api.deps import SettingsDep
from cloud_api.api.qa_deps import QaServiceDep, now_ms
from cloud_api.api.qa_schemas import LineOut
from cloud_api.services.qa import MAX_TS_MS, InvalidQuery, defect_rate

router = APIRouter(tags=["qa"])


@router.get("/lines", response_model=list[LineOut], responses={422: {"description": "Invalid window"}},
            summary="Every line that ever sent an inspection, with parts, rejects and defect rate in a window")
def list_lines(
    service: QaServiceDep,
    settings: SettingsDep,
    from_ms: Annotated[
        int | None, Query(alias="from", ge=0, le=MAX_TS_MS, description="Start, epoch ms; default to - 8 h")] = None,
    to_ms: Annotated[
        int | None, Query(alias="to", ge=0, le=MAX_TS_MS, description="End (exclusive), epoch ms; default now")] = None,
) -> list[LineOut]:
    try:
        window = service.window(now_ms(), from_ms, to_ms)
    except InvalidQuery as exc:
        raise HTTPException(422, str(exc)) from None
    return [
        LineOut(id=r.id, name=settings.zone_names.get(r.id, r.id), site=r.site, parts=r.parts, rejects=r.rejects,
                defect_rate=defect_rate(r.parts, r.rejects), last_ts_ms=r.last_ts_ms)
        for r in service.lines(window)
    ]
