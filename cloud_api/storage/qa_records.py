"""Records and the storage protocol of the factory QA views (inspection events of ``zone.kind == "line"``).

A *part* is one inspection event; a *reject* is one whose verdict is ``reject``; a *defect* is a detection
on a rejected part (detections on passed parts are below the edge's reject rule and are not defects).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class LineRecord:
    """A line that has ever sent an inspection, with its counts in a window."""

    id: str
    site: str  # site of the device behind the newest inspection
    parts: int
    rejects: int
    last_ts_ms: int  # newest inspection ever (not limited to the window)


@dataclass(frozen=True)
class InspectionTotals:
    parts: int
    rejects: int


@dataclass(frozen=True)
class InspectionBucket:
    ts_ms: int  # start of the bucket, a multiple of the bucket size (UTC epoch ms)
    parts: int
    rejects: int


@dataclass(frozen=True)
class DefectClassCount:
    label: str
    count: int  # defect detections of this class
    parts: int  # rejected parts with at least one defect of this class


@dataclass(frozen=True)
class DefectRecord:
    label: str
    score: float
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class RejectRecord:
    event_id: str
    ts_ms: int
    line: str
    site: str
    device: str
    camera: str
    snapshot: str | None  # id to fetch at GET /snapshots/{id}, only when that snapshot is stored
    defects: list[DefectRecord]


@dataclass(frozen=True)
class InspectionRow:
    """One line of the CSV export."""

    event_id: str
    ts_ms: int
    line: str
    site: str
    device: str
    camera: str
    verdict: str  # "pass" | "reject"
    defects: list[tuple[str, float]]  # (label, score)
    snapshot: str | None


class QaStore(Protocol):
    """What the QA service needs from storage; ``line=None`` means every line."""

    def qa_lines(self, from_ms: int, to_ms: int) -> list[LineRecord]: ...

    def qa_line_exists(self, line: str) -> bool: ...

    def qa_totals(self, line: str | None, from_ms: int, to_ms: int) -> InspectionTotals: ...

    def qa_buckets(self, line: str | None, from_ms: int, to_ms: int, bucket_ms: int,
                   offset_ms: int = 0) -> list[InspectionBucket]: ...

    def qa_defect_classes(self, line: str | None, from_ms: int, to_ms: int) -> list[DefectClassCount]: ...

    def qa_rejects(
        self, line: str | None, limit: int, before: tuple[int, str] | None
    ) -> list[RejectRecord]: ...

    def qa_inspections(self, line: str | None, from_ms: int, to_ms: int, chunk: int = 5000) -> Iterator[InspectionRow]:
        ...
