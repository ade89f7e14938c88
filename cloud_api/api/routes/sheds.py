from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status

from cloud_api.api.deps import ShedServiceDep
from cloud_api.api.schemas import CountPointOut, ShedCountsOut, ShedOut
from cloud_api.services.sheds import InvalidRange, UnknownShed

router = APIRouter(tags=["sheds"])


@router.get("/sheds", response_model=list[ShedOut], summary="Every shed with its current counts per label")
def list_sheds(service: ShedServiceDep) -> list[ShedOut]:
    return [ShedOut(id=s.id, name=s.id, counts=s.counts, updated_ms=s.updated_ms) for s in service.list()]


@router.get(
    "/sheds/{shed_id}/counts",
    response_model=ShedCountsOut,
    summary="Counts per label over time, bucketed",
    responses={404: {"description": "Unknown shed"}, 422: {"description": "Invalid range or bucket"}},
)
def shed_counts(
    service: ShedServiceDep,
    shed_id: Annotated[str, Path(min_length=1, max_length=64)],
    from_ms: Annotated[int | None, Query(alias="from", ge=0, description="Start, epoch ms; default to - 24 h")] = None,
    to_ms: Annotated[int | None, Query(alias="to", ge=0, description="End (exclusive), epoch ms; default now")] = None,
    bucket: Annotated[int | None, Query(ge=1000, description="Bucket size in ms; default 300000")] = None,
) -> ShedCountsOut:
    try:
        series = service.series(
            shed_id, now_ms=time.time_ns() // 1_000_000, from_ms=from_ms, to_ms=to_ms, bucket_ms=bucket
        )
    except UnknownShed:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown shed {shed_id!r}") from None
    except InvalidRange as exc:
        raise HTTPException(422, str(exc)) from None
    return ShedCountsOut(
        shed=series.shed,
        from_ms=series.from_ms,
        to_ms=series.to_ms,
        bucket_ms=series.bucket_ms,
        points=[CountPointOut(ts_ms=p.ts_ms, counts=p.counts) for p in series.points],
    )
