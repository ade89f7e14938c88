"""Factory QA: per-line counts, defect rate trend, Pareto of defect classes, p-chart and reject gallery.

Windows are ``[from_ms, to_ms)`` in UTC epoch ms (default: the last 8 hours). Buckets are aligned to the
site's local clock (``Settings.timezone``): a 10-minute bucket starts at :00, :10, ..., a day bucket at local
midnight, also where the UTC offset is not whole hours. The offset in force at the window's start is used
for the whole window, so across a daylight-saving change day buckets are off by an hour after it. The first
and last bucket may be cut by the window. When no bucket size is given one is chosen so the window has at most
``TARGET_BUCKETS`` buckets.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from cloud_api.services import spc
from cloud_api.storage.qa_records import (
    DefectClassCount,
    InspectionBucket,
    InspectionRow,
    LineRecord,
    QaStore,
    RejectRecord,
)
from cloud_api.storage.sqlite_store import natural_key

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DEFAULT_WINDOW_MS = 8 * HOUR_MS
MAX_WINDOW_MS = 400 * 24 * HOUR_MS
MIN_BUCKET_MS = 1000
MAX_TS_MS = 10**14  # year 5138: bounds every time parameter well inside SQLite's 64-bit integers
MAX_BUCKETS = 2000
TARGET_BUCKETS = 48
NICE_BUCKETS_MS = (
    MINUTE_MS, 2 * MINUTE_MS, 5 * MINUTE_MS, 10 * MINUTE_MS, 15 * MINUTE_MS, 30 * MINUTE_MS,
    HOUR_MS, 2 * HOUR_MS, 4 * HOUR_MS, 6 * HOUR_MS, 12 * HOUR_MS, 24 * HOUR_MS, 7 * 24 * HOUR_MS,
)
CSV_COLUMNS = ("ts", "ts_ms", "line", "site", "device", "camera", "event_id", "verdict", "defects", "snapshot")


class UnknownLine(LookupError):
    """No inspection was ever stored for this line."""


class InvalidQuery(ValueError):
    """A window, bucket or cursor that cannot be served; the message names the parameter."""


@dataclass(frozen=True)
class Window:
    from_ms: int
    to_ms: int


@dataclass(frozen=True)
class Summary:
    line: str | None
    window: Window
    parts: int
    passed: int
    rejects: int
    defect_rate: float | None  # rejects / parts, None without parts
    defects: list[DefectClassCount]  # by count, descending


@dataclass(frozen=True)
class TrendPoint:
    ts_ms: int
    parts: int
    rejects: int
    rate: float | None


@dataclass(frozen=True)
class ParetoItem:
    label: str
    count: int
    parts: int
    share: float  # count / total defects
    cumulative: float  # running share, 0..1; the last item is 1


@dataclass(frozen=True)
class PChartSeries:
    line: str | None
    window: Window
    bucket_ms: int
    timestamps: list[int]  # bucket start of each point (empty buckets are not plotted)
    chart: spc.PChart


def defect_rate(parts: int, rejects: int) -> float | None:
    return rejects / parts if parts else None


def auto_bucket_ms(window_ms: int) -> int:
    """The smallest "nice" bucket that cuts the window into at most TARGET_BUCKETS buckets."""
    for size in NICE_BUCKETS_MS:
        if window_ms <= size * TARGET_BUCKETS:
            return size
    return NICE_BUCKETS_MS[-1]


def parse_cursor(before: str | None) -> tuple[int, str] | None:
    """``before`` is ``ts_ms`` (everything older) or ``ts_ms:event_id`` as returned in ``next_before``."""
    if before is None or before == "":
        return None
    ts_text, sep, event_id = before.partition(":")
    try:
        ts_ms = int(ts_text)
    except ValueError:
        raise InvalidQuery("before: must be ts_ms or ts_ms:event_id") from None
    if not 0 <= ts_ms <= MAX_TS_MS:
        raise InvalidQuery(f"before: ts_ms must be within 0..{MAX_TS_MS}")
    # without an id, every event at ts_ms is older than the cursor too: "" sorts before any id
    return (ts_ms, event_id) if sep else (ts_ms, "")


def format_cursor(record: RejectRecord) -> str:
    return f"{record.ts_ms}:{record.event_id}"


def iso_ms(ts_ms: int) -> str:
    """UTC ISO 8601 with milliseconds, e.g. 2023-11-14T22:14:00.040Z."""
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _csv_safe(text: str) -> str:
    """Defuse spreadsheet formulas in free text (labels, ids) by prefixing a quote."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


class QaService:
    def __init__(self, store: QaStore, timezone: str = "UTC") -> None:
        self._store = store
        self._zone = ZoneInfo(timezone)

    def utc_offset_ms(self, at_ms: int) -> int:
        """The site's UTC offset at one instant (e.g. +8 h in Asia/Shanghai), in ms."""
        offset = datetime.fromtimestamp(at_ms / 1000, tz=self._zone).utcoffset()
        return int(offset.total_seconds() * 1000) if offset else 0

    def bucket_start(self, ts_ms: int, window: Window, bucket_ms: int) -> int:
        """Start of the local-clock bucket holding ``ts_ms`` (see the module docstring)."""
        shift = self.utc_offset_ms(window.from_ms) % bucket_ms
        return ((ts_ms + shift) // bucket_ms) * bucket_ms - shift

    # ------------------------------------------------------------ arguments

    @staticmethod
    def window(now_ms: int, from_ms: int | None, to_ms: int | None, default_ms: int = DEFAULT_WINDOW_MS) -> Window:
        end = now_ms if to_ms is None else to_ms
        start = end - default_ms if from_ms is None else from_ms
        if start < 0:
            start = 0
        if start >= end:
            raise InvalidQuery("from: must be before to")
        if end - start > MAX_WINDOW_MS:
            raise InvalidQuery(f"from: the window may span at most {MAX_WINDOW_MS // (24 * HOUR_MS)} days")
        return Window(start, end)

    @staticmethod
    def bucket(window: Window, bucket_ms: int | None) -> int:
        if bucket_ms is None:
            return auto_bucket_ms(window.to_ms - window.from_ms)
        if not MIN_BUCKET_MS <= bucket_ms <= MAX_WINDOW_MS:
            raise InvalidQuery(f"bucket: must be within {MIN_BUCKET_MS}..{MAX_WINDOW_MS} ms")
        first = window.from_ms // bucket_ms
        last = (window.to_ms - 1) // bucket_ms
        if last - first + 1 > MAX_BUCKETS:
            raise InvalidQuery(f"bucket: the window would have {last - first + 1} buckets, at most {MAX_BUCKETS}")
        return bucket_ms

    def check_line(self, line: str | None) -> None:
        if line is not None and not self._store.qa_line_exists(line):
            raise UnknownLine(line)

    # ------------------------------------------------------------ views

    def lines(self, window: Window) -> list[LineRecord]:
        return sorted(self._store.qa_lines(window.from_ms, window.to_ms), key=lambda r: natural_key(r.id))

    def summary(self, line: str | None, window: Window) -> Summary:
        self.check_line(line)
        totals = self._store.qa_totals(line, window.from_ms, window.to_ms)
        defects = sorted(self._store.qa_defect_classes(line, window.from_ms, window.to_ms),
                         key=lambda c: (-c.count, c.label))
        return Summary(
            line=line, window=window, parts=totals.parts, passed=totals.parts - totals.rejects,
            rejects=totals.rejects, defect_rate=defect_rate(totals.parts, totals.rejects), defects=defects,
        )

    def _buckets(self, line: str | None, window: Window, bucket_ms: int) -> list[InspectionBucket]:
        self.check_line(line)
        return self._store.qa_buckets(line, window.from_ms, window.to_ms, bucket_ms, self.utc_offset_ms(window.from_ms))

    def trend(self, line: str | None, window: Window, bucket_ms: int) -> list[TrendPoint]:
        """Every bucket of the window, oldest first; empty buckets have parts 0 and rate None."""
        found = {b.ts_ms: b for b in self._buckets(line, window, bucket_ms)}
        points = []
        for ts in range(self.bucket_start(window.from_ms, window, bucket_ms), window.to_ms, bucket_ms):
            b = found.get(ts)
            parts, rejects = (b.parts, b.rejects) if b else (0, 0)
            points.append(TrendPoint(ts_ms=ts, parts=parts, rejects=rejects, rate=defect_rate(parts, rejects)))
        return points

    def pareto(self, line: str | None, window: Window) -> list[ParetoItem]:
        classes = self.summary(line, window).defects
        total = sum(c.count for c in classes)
        items, running = [], 0
        for c in classes:
            running += c.count
            items.append(ParetoItem(label=c.label, count=c.count, parts=c.parts, share=c.count / total,
                                    cumulative=running / total))
        return items

    def pchart(self, line: str | None, window: Window, bucket_ms: int, p_bar: float | None = None) -> PChartSeries:
        buckets = [b for b in self._buckets(line, window, bucket_ms) if b.parts > 0]
        try:
            chart = spc.p_chart([spc.Subgroup(n=b.parts, d=b.rejects) for b in buckets], p_bar=p_bar)
        except spc.InvalidSubgroup as exc:
            raise InvalidQuery(f"p_bar: {exc}") from None
        return PChartSeries(line=line, window=window, bucket_ms=bucket_ms, timestamps=[b.ts_ms for b in buckets],
                            chart=chart)

    def rejects(self, line: str | None, limit: int, before: str | None) -> tuple[list[RejectRecord], str | None]:
        """A page of rejected parts, newest first, and the cursor of the next page (None on the last one)."""
        self.check_line(line)
        records = self._store.qa_rejects(line, limit, parse_cursor(before))
        return records, (format_cursor(records[-1]) if len(records) == limit else None)

    # ------------------------------------------------------------ export

    def export_rows(self, line: str | None, window: Window) -> Iterator[InspectionRow]:
        self.check_line(line)
        return self._store.qa_inspections(line, window.from_ms, window.to_ms)

    @staticmethod
    def csv_chunks(rows: Iterator[InspectionRow], rows_per_chunk: int = 1000) -> Iterator[str]:
        """The CSV text (header first) in chunks of rows; defects are ``label:score`` joined with ``;``."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(CSV_COLUMNS)
        pending = 0
        for r in rows:
            defects = ";".join(f"{label}:{score:.3f}" for label, score in r.defects)
            writer.writerow((
                iso_ms(r.ts_ms), r.ts_ms, _csv_safe(r.line), r.site, r.device, _csv_safe(r.camera),
                _csv_safe(r.event_id), r.verdict, _csv_safe(defects), _csv_safe(r.snapshot or ""),
            ))
            pending += 1
            if pending >= rows_per_chunk:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
                pending = 0
        yield buffer.getvalue()
