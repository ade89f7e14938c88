from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, Response, status

from cloud_api.api.convert import shed_detail_out, shed_out
from cloud_api.api.deps import SettingsDep, ShedServiceDep, StoreDep
from cloud_api.api.errors import MAX_EPOCH_MS, UnprocessableOut
from cloud_api.api.schemas import CountPointOut, ShedCountsOut, ShedDetailOut, ShedOut
from cloud_api.services.sheds import InvalidRange, UnknownShed

router = APIRouter(tags=["sheds"])


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


@router.get("/sheds", response_model=list[ShedOut],
            summary="Every shed with its counts, pick-ready fruits, 24 h trend, camera state and open alerts")
def list_sheds(service: ShedServiceDep, settings: SettingsDep) -> list[ShedOut]:
    return [shed_out(o, settings.zone_names) for o in service.overview(_now_ms())]


@router.get("/sheds/{shed_id}", response_model=ShedDetailOut, responses={404: {"description": "Unknown shed"}},
            summary="One shed: counts by row, cameras, latest snapshot, open alerts")
def shed_detail(service: ShedServiceDep, settings: SettingsDep,
                shed_id: Annotated[str, Path(min_length=1, max_length=64)]) -> ShedDetailOut:
    try:
        overview, snapshot = service.detail(shed_id, _now_ms())
    except UnknownShed:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown shed {shed_id!r}") from None
    return shed_detail_out(overview, snapshot, settings.zone_names)


@router.get(
    "/snapshots/{event_id}", response_class=Response, summary="Evidence image of an event (JPEG)",
    responses={200: {"content": {"image/jpeg": {}}, "description": "The JPEG bytes"},
               404: {"description": "No snapshot for this event"}},
)
def snapshot(store: StoreDep, event_id: Annotated[str, Path(min_length=1, max_length=200)]) -> Response:
    jpeg = store.get_snapshot(event_id)
    if jpeg is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no snapshot for event {event_id!r}")
    return Response(content=jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})


@router.get(
    "/sheds/{shed_id}/counts",
    response_model=ShedCountsOut,
    summary="Counts per label over time, bucketed",
    responses={
        404: {"description": "Unknown shed"},
        422: {"model": UnprocessableOut, "description": "Invalid range or bucket"},
    },
)
def shed_counts(
    service: ShedServiceDep,
    shed_id: Annotated[str, Path(min_length=1, max_length=64)],
    from_ms: Annotated[
        int | None, Query(alias="from", ge=0, le=MAX_EPOCH_MS, description="Start, epoch ms; default to - 24 h")
    ] = None,
    to_ms: Annotated[
        int | None, Query(alias="to", ge=0, le=MAX_EPOCH_MS, description="End (exclusive), epoch ms; default now")
    ] = None,
    bucket: Annotated[
        int | None, Query(ge=1000, le=MAX_EPOCH_MS, description="Bucket size in ms; default 300000")
    ] = None,
) -> ShedCountsOut:
    try:
        series = service.series(
            shed_id, now_ms=_now_ms(), from_ms=from_ms, to_ms=to_ms, bucket_ms=bucket
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
