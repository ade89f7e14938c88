"""``/qa/...``: summary, defect-rate trend, Pareto, p-chart, reject gallery and CSV export of inspections.

``line`` omitted means every line. Windows are ``[from, to)`` in UTC epoch ms, default the last 8 hours.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import StreamingResponse

from cloud_api.api.qa_deps import QaServiceDep, now_ms
from cloud_api.api.qa_schemas import (
    DefectClassOut,
    DefectOut,
    ParetoItemOut,
    PChartPointOut,
    QaParetoOut,
    QaPChartOut,
    QaRejectsOut,
    QaSummaryOut,
    QaTrendOut,
    RejectOut,
    TrendPointOut,
)
from cloud_api.services.qa import MAX_TS_MS, MAX_WINDOW_MS, InvalidQuery, QaService, UnknownLine, Window

router = APIRouter(prefix="/qa", tags=["qa"])

T = TypeVar("T")

ERRORS = {404: {"description": "Unknown line"}, 422: {"description": "Invalid window, bucket or cursor"}}

LineQ = Annotated[str | None, Query(min_length=1, max_length=64, description="Line id; omit for every line")]
FromQ = Annotated[int | None, Query(alias="from", ge=0, le=MAX_TS_MS, description="Start, epoch ms; default to - 8 h")]
ToQ = Annotated[int | None, Query(alias="to", ge=0, le=MAX_TS_MS, description="End (exclusive), epoch ms; default now")]
BucketQ = Annotated[int | None, Query(
    ge=1000, le=MAX_WINDOW_MS, description="Bucket (subgroup) size in ms; default: a round size, <= 48 buckets")]


def _run(call: Callable[[], T]) -> T:
    """Map the service's domain errors to HTTP errors."""
    try:
        return call()
    except UnknownLine as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown line {exc.args[0]!r}") from None
    except InvalidQuery as exc:
        raise HTTPException(422, str(exc)) from None


def _window(service: QaService, from_ms: int | None, to_ms: int | None) -> Window:
    return _run(lambda: service.window(now_ms(), from_ms, to_ms))


@router.get("/summary", response_model=QaSummaryOut, responses=ERRORS,
            summary="Pass/reject counts, defect rate and defects by class in a window")
def summary(service: QaServiceDep, line: LineQ = None, from_ms: FromQ = None, to_ms: ToQ = None) -> QaSummaryOut:
    window = _window(service, from_ms, to_ms)
    s = _run(lambda: service.summary(line, window))
    return QaSummaryOut(
        line=line, from_ms=window.from_ms, to_ms=window.to_ms, parts=s.parts, passed=s.passed, rejects=s.rejects,
        defect_rate=s.defect_rate, defects=[DefectClassOut(label=c.label, count=c.count, parts=c.parts)
                                            for c in s.defects],
    )


@router.get("/trend", response_model=QaTrendOut, responses=ERRORS,
            summary="Parts, rejects and defect rate per time bucket")
def trend(service: QaServiceDep, line: LineQ = None, from_ms: FromQ = None, to_ms: ToQ = None,
          bucket: BucketQ = None) -> QaTrendOut:
    window = _window(service, from_ms, to_ms)
    bucket_ms = _run(lambda: service.bucket(window, bucket))
    points = _run(lambda: service.trend(line, window, bucket_ms))
    return QaTrendOut(
        line=line, from_ms=window.from_ms, to_ms=window.to_ms, bucket_ms=bucket_ms,
        points=[TrendPointOut(ts_ms=p.ts_ms, parts=p.parts, rejects=p.rejects, rate=p.rate) for p in points],
    )


@router.get("/pareto", response_model=QaParetoOut, responses=ERRORS,
            summary="Defect classes sorted by count with cumulative share")
def pareto(service: QaServiceDep, line: LineQ = None, from_ms: FromQ = None, to_ms: ToQ = None) -> QaParetoOut:
    window = _window(service, from_ms, to_ms)
    items = _run(lambda: service.pareto(line, window))
    return QaParetoOut(
        line=line, from_ms=window.from_ms, to_ms=window.to_ms, total=sum(i.count for i in items),
        items=[ParetoItemOut(label=i.label, count=i.count, parts=i.parts, share=i.share, cumulative=i.cumulative,
                             cumulative_pct=round(i.cumulative * 100, 2)) for i in items],
    )


@router.get("/pchart", response_model=QaPChartOut, responses=ERRORS,
            summary="p-chart of the reject fraction per bucket, with varying limits and run-rule flags")
def pchart(
    service: QaServiceDep, line: LineQ = None, from_ms: FromQ = None, to_ms: ToQ = None, bucket: BucketQ = None,
    p_bar: Annotated[float | None, Query(ge=0, le=1, description="Known centre line (phase II); default: estimated")]
    = None,
) -> QaPChartOut:
    window = _window(service, from_ms, to_ms)
    bucket_ms = _run(lambda: service.bucket(window, bucket))
    series = _run(lambda: service.pchart(line, window, bucket_ms, p_bar))
    chart = series.chart
    return QaPChartOut(
        line=line, from_ms=window.from_ms, to_ms=window.to_ms, bucket_ms=bucket_ms, p_bar=chart.p_bar,
        total_n=chart.total_n, total_rejects=chart.total_d, flagged=chart.flagged,
        points=[
            PChartPointOut(ts_ms=ts, n=p.n, rejects=p.d, p=p.p, sigma=p.sigma, ucl=p.ucl, lcl=p.lcl, z=p.z,
                           flagged=p.flagged, rules=list(p.rules))
            for ts, p in zip(series.timestamps, chart.points, strict=True)
        ],
    )


@router.get("/rejects", response_model=QaRejectsOut, responses=ERRORS,
            summary="Reject gallery: rejected parts with their defects and snapshot, newest first")
def rejects(
    service: QaServiceDep, line: LineQ = None,
    limit: Annotated[int, Query(ge=1, le=200, description="Items per page")] = 24,
    before: Annotated[str | None, Query(max_length=260, description="Cursor: ts_ms, or next_before of a page")]
    = None,
) -> QaRejectsOut:
    records, next_before = _run(lambda: service.rejects(line, limit, before))
    return QaRejectsOut(
        line=line, next_before=next_before,
        items=[
            RejectOut(event_id=r.event_id, ts_ms=r.ts_ms, line=r.line, site=r.site, device=r.device, camera=r.camera,
                      snapshot=r.snapshot,
                      defects=[DefectOut(label=d.label, score=d.score, box=d.box) for d in r.defects])
            for r in records
        ],
    )


@router.get(
    "/export.csv", response_class=StreamingResponse, summary="CSV of the inspections in a window, oldest first",
    responses={**ERRORS, 200: {"content": {"text/csv": {}}, "description": (
        "Columns: ts (UTC ISO 8601), ts_ms, line, site, device, camera, event_id, verdict, "
        "defects (label:score joined with ';', rejected parts only), snapshot")}},
)
def export_csv(service: QaServiceDep, line: LineQ = None, from_ms: FromQ = None, to_ms: ToQ = None) -> StreamingResponse:
    window = _window(service, from_ms, to_ms)
    rows = _run(lambda: service.export_rows(line, window))
    safe_line = re.sub(r"[^A-Za-z0-9_.-]", "_", line or "all-lines")
    filename = f"inspections_{safe_line}_{window.from_ms}_{window.to_ms}.csv"
    return StreamingResponse(
        service.csv_chunks(rows), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )
