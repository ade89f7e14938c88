"""Response models of the factory QA routes (/lines, /qa/...)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

RuleName = Literal["beyond_3sigma", "2_of_3_beyond_2sigma", "4_of_5_beyond_1sigma", "8_same_side"]


class LineOut(BaseModel):
    id: str = Field(description="Line id (zone.id of its inspection events)")
    name: str = Field(description="Display name: Settings.zone_names, else the id")
    site: str = Field(description="Site of the device behind the newest inspection")
    parts: int = Field(description="Parts inspected in the window")
    rejects: int = Field(description="Parts rejected in the window")
    defect_rate: float | None = Field(description="rejects / parts in the window; null without parts")
    last_ts_ms: int = Field(description="ts_ms of the newest inspection ever (not limited to the window)")


class WindowOut(BaseModel):
    from_ms: int = Field(description="Start of the window (inclusive), UTC epoch ms")
    to_ms: int = Field(description="End of the window (exclusive), UTC epoch ms")


class DefectClassOut(BaseModel):
    label: str
    count: int = Field(description="Defect detections of this class on rejected parts")
    parts: int = Field(description="Rejected parts with at least one defect of this class")


class QaSummaryOut(WindowOut):
    line: str | None = Field(description="The line, or null for every line")
    parts: int
    passed: int
    rejects: int
    defect_rate: float | None = Field(description="rejects / parts; null without parts")
    defects: list[DefectClassOut] = Field(description="Defect classes by count, most frequent first")


class TrendPointOut(BaseModel):
    ts_ms: int = Field(description="Start of the bucket (a multiple of bucket_ms since the epoch)")
    parts: int
    rejects: int
    rate: float | None = Field(description="rejects / parts; null for an empty bucket")


class QaTrendOut(WindowOut):
    line: str | None
    bucket_ms: int
    points: list[TrendPointOut] = Field(description="Every bucket of the window, oldest first, empty ones too")


class ParetoItemOut(BaseModel):
    label: str
    count: int = Field(description="Defect detections of this class")
    parts: int = Field(description="Rejected parts with this class")
    share: float = Field(description="count / total defects, 0..1")
    cumulative: float = Field(description="Running share of the classes so far, 0..1 (1 on the last item)")
    cumulative_pct: float = Field(description="cumulative x 100, rounded to 0.01")


class QaParetoOut(WindowOut):
    line: str | None
    total: int = Field(description="All defect detections in the window")
    items: list[ParetoItemOut] = Field(description="Defect classes by count, descending (ties by label)")


class PChartPointOut(BaseModel):
    ts_ms: int = Field(description="Start of the subgroup's bucket")
    n: int = Field(description="Parts inspected in the subgroup")
    rejects: int
    p: float = Field(description="rejects / n")
    sigma: float = Field(description="sqrt(p_bar (1 - p_bar) / n)")
    ucl: float = Field(description="min(1, p_bar + 3 sigma)")
    lcl: float = Field(description="max(0, p_bar - 3 sigma)")
    z: float = Field(description="(p - p_bar) / sigma; 0 when sigma is 0")
    flagged: bool = Field(description="True when any run rule fires at this point")
    rules: list[RuleName] = Field(description=(
        "The run rules that fire at this point, evaluated on z. The zone rules (2 of 3, 4 of 5, 8 in a row) use "
        "only subgroups with p_bar +- 3 sigma inside (0, 1) (about n p_bar > 9): for smaller subgroups they "
        "would fire on noise; beyond_3sigma applies to every point"))


class QaPChartOut(WindowOut):
    line: str | None
    bucket_ms: int
    p_bar: float = Field(description="Centre line: total rejects / total parts (or the p_bar given)")
    total_n: int
    total_rejects: int
    flagged: int = Field(description="Points flagged by at least one rule")
    points: list[PChartPointOut] = Field(description="Subgroups with at least one part, oldest first")


class DefectOut(BaseModel):
    label: str
    score: float
    box: tuple[float, float, float, float] = Field(description="x1, y1, x2, y2 normalised to 0..1")


class RejectOut(BaseModel):
    event_id: str
    ts_ms: int
    line: str
    site: str
    device: str
    camera: str
    snapshot: str | None = Field(description="Id for GET /snapshots/{id} when the JPEG is stored, else null")
    defects: list[DefectOut]


class QaRejectsOut(BaseModel):
    line: str | None
    items: list[RejectOut] = Field(description="Rejected parts, newest first")
    next_before: str | None = Field(description="Pass as `before` for the next page; null on the last page")
