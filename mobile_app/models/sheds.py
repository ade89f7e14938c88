"""Sheds: the overview tile, the detail page and the 7-day trend series."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any

PICK_READY_LABELS: tuple[str, ...] = ("ripe", "red", "light_red")
RIPENESS_ORDER: tuple[str, ...] = (
    "green", "breaker", "turning", "half_ripe", "pink", "light_red", "red", "ripe", "overripe",
)
SEVERITY_RANK = {"info": 1, "warning": 2, "critical": 3}


class Urgency(str, Enum):
    """How urgently a shed needs the operators; the tile colour follows it."""

    ALARM = "alarm"  # camera offline or a critical alert: go and look
    PICK = "pick"  # many fruits ready, or a warning: pick soon
    OK = "ok"
    UNKNOWN = "unknown"  # never reported

    @property
    def rank(self) -> int:
        return {"alarm": 3, "pick": 2, "ok": 1, "unknown": 0}[self.value]


def pick_ready_from_counts(counts: dict[str, int]) -> int:
    return sum(n for label, n in counts.items() if label in PICK_READY_LABELS)


def normalise_trend(value: Any) -> str:
    """'up' | 'down' | 'flat' from a number (slope) or a word the API may send."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "up" if value > 0 else "down" if value < 0 else "flat"
    if isinstance(value, str):
        word = value.lower()
        if word in ("up", "rising", "increasing", "+"):
            return "up"
        if word in ("down", "falling", "decreasing", "-"):
            return "down"
    return "flat"


def ordered_labels(counts: dict[str, int]) -> list[str]:
    """Ripeness labels in ripening order, unknown labels last (alphabetical)."""
    known = [label for label in RIPENESS_ORDER if label in counts]
    return known + sorted(label for label in counts if label not in RIPENESS_ORDER)


@dataclass(frozen=True)
class ShedTile:
    """One tile of the site overview."""

    id: str
    name: str
    site: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    pick_ready: int = 0
    trend: str = "flat"
    camera_state: str = "unknown"
    open_alerts: int = 0
    updated_ms: int | None = None
    max_severity: str | None = None  # highest severity among this shed's open alerts, when known

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> ShedTile:
        counts = {str(k): int(v) for k, v in (data.get("counts") or {}).items()}
        pick = data.get("pick_ready")
        return cls(
            id=str(data["id"]),
            name=str(data.get("name") or data["id"]),
            site=str(data.get("site") or ""),
            counts=counts,
            pick_ready=int(pick) if pick is not None else pick_ready_from_counts(counts),
            trend=normalise_trend(data.get("trend")),
            camera_state=str(data.get("camera_state") or "unknown"),
            open_alerts=int(data.get("open_alerts") or 0),
            updated_ms=data.get("updated_ms"),
        )

    def with_alert_severity(self, severity: str | None) -> ShedTile:
        return replace(self, max_severity=severity)

    def urgency(self, pick_threshold: int = 40) -> Urgency:
        if self.camera_state == "offline" or self.max_severity == "critical":
            return Urgency.ALARM
        if self.updated_ms is None and self.camera_state == "unknown" and not self.counts:
            return Urgency.UNKNOWN
        if self.pick_ready >= pick_threshold or self.open_alerts > 0:
            return Urgency.PICK
        return Urgency.OK

    @property
    def trend_arrow(self) -> str:
        return {"up": "↑", "down": "↓"}.get(self.trend, "→")


@dataclass(frozen=True)
class RowCounts:
    row: str
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def pick_ready(self) -> int:
        return pick_ready_from_counts(self.counts)


@dataclass(frozen=True)
class CameraStatus:
    device: str
    camera: str
    state: str
    last_seen_ms: int | None


@dataclass(frozen=True)
class ShedDetail:
    id: str
    name: str
    site: str
    counts: dict[str, int]
    pick_ready: int
    updated_ms: int | None
    rows: list[RowCounts]
    cameras: list[CameraStatus]
    latest_snapshot: str | None
    open_alerts: int

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> ShedDetail:
        counts = {str(k): int(v) for k, v in (data.get("counts") or {}).items()}
        pick = data.get("pick_ready")
        rows = [RowCounts(str(r.get("row") or "-"), {str(k): int(v) for k, v in (r.get("counts") or {}).items()})
                for r in data.get("rows") or []]
        cams = [CameraStatus(str(c.get("device", "")), str(c.get("camera", "")), str(c.get("state") or "unknown"),
                             c.get("last_seen_ms")) for c in data.get("cameras") or []]
        return cls(
            id=str(data["id"]), name=str(data.get("name") or data["id"]), site=str(data.get("site") or ""),
            counts=counts, pick_ready=int(pick) if pick is not None else pick_ready_from_counts(counts),
            updated_ms=data.get("updated_ms"), rows=sorted(rows, key=lambda r: _natural(r.row)), cameras=cams,
            latest_snapshot=data.get("latest_snapshot"), open_alerts=int(data.get("open_alerts") or 0),
        )

    @property
    def camera_state(self) -> str:
        states = {c.state for c in self.cameras}
        if "offline" in states:
            return "offline"
        return "online" if states == {"online"} else "unknown"


@dataclass(frozen=True)
class TrendSeries:
    """Pick-ready fruits per bucket (oldest first), from ``GET /sheds/{id}/counts``."""

    bucket_ms: int
    points: list[tuple[int, int]]  # (ts_ms, pick_ready)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> TrendSeries:
        pts = [(int(p["ts_ms"]), pick_ready_from_counts(p.get("counts") or {})) for p in data.get("points") or []]
        return cls(bucket_ms=int(data.get("bucket_ms") or 0), points=sorted(pts))

    def chart_line(self, x: float, y: float, width: float, height: float,
                   from_ms: int, to_ms: int) -> list[float]:
        """Flat [x0, y0, x1, y1, ...] for a Kivy ``Line`` inside the box; x by time, y by value (0 at bottom)."""
        if not self.points or to_ms <= from_ms:
            return []
        top = max(v for _, v in self.points) or 1
        span = to_ms - from_ms
        out: list[float] = []
        for ts, value in self.points:
            fx = min(1.0, max(0.0, (ts - from_ms) / span))
            out += [x + fx * width, y + (value / top) * height]
        return out

    @property
    def peak(self) -> int:
        return max((v for _, v in self.points), default=0)


def _natural(text: str) -> tuple[Any, ...]:
    digits = "".join(ch for ch in text if ch.isdigit())
    return (text.rstrip("0123456789"), int(digits) if digits else -1, text)
