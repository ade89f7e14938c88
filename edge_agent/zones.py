"""Polygon zones and counting lines, configured in normalised 0..1 frame coordinates.

Normalised coordinates keep one zone config valid when a camera's resolution changes; the pixel
geometry is built per call from the frame size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from edge_agent.detections import Detections

Anchor = Literal["center", "bottom_center"]
Point = tuple[float, float]
_ZONE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"


def anchor_points(detections: Detections, anchor: Anchor) -> np.ndarray:
    """(N, 2) pixel points: box centre, or bottom centre (where an object touches the floor/belt)."""
    xyxy = detections.xyxy.astype(np.float64)
    x = (xyxy[:, 0] + xyxy[:, 2]) / 2
    y = (xyxy[:, 1] + xyxy[:, 3]) / 2 if anchor == "center" else xyxy[:, 3]
    return np.stack([x, y], axis=1)


def _check_point(p: Point, what: str) -> np.ndarray:
    arr = np.asarray(p, np.float64)
    if arr.shape != (2,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} must be an (x, y) pair of finite numbers, got {p!r}")
    if np.any(arr < 0.0) or np.any(arr > 1.0):
        raise ValueError(f"{what} {tuple(arr.tolist())} is outside the normalised frame 0..1")
    return arr


def validate_polygon(points: list[Point] | np.ndarray) -> np.ndarray:
    """(K, 2) float array of a usable polygon, or ValueError saying what is wrong."""
    pts = list(points)
    if len(pts) < 3:
        raise ValueError(f"a polygon needs at least 3 points, got {len(pts)}")
    arr = np.stack([_check_point(p, f"polygon point {i}") for i, p in enumerate(pts)])
    x, y = arr[:, 0], arr[:, 1]
    area = 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
    if area < 1e-9:
        raise ValueError("polygon has zero area (its points are collinear or repeated)")
    return arr


def _check_frame(width: int, height: int) -> np.ndarray:
    if width <= 0 or height <= 0:
        raise ValueError(f"frame size must be positive, got {width}x{height}")
    return np.array([width, height], np.float64)


class PolygonZone:
    """Which detections have their anchor inside a polygon (boundary counts as inside)."""

    def __init__(self, polygon: list[Point], anchor: Anchor = "center") -> None:
        if anchor not in ("center", "bottom_center"):
            raise ValueError(f"anchor must be 'center' or 'bottom_center', got {anchor!r}")
        self.polygon = validate_polygon(polygon)
        self.anchor: Anchor = anchor

    def trigger(self, detections: Detections, frame_width: int, frame_height: int) -> np.ndarray:
        """Boolean mask (N,) of detections inside the zone."""
        if len(detections) == 0:
            return np.zeros(0, bool)
        poly = self.polygon * _check_frame(frame_width, frame_height)
        pts = anchor_points(detections, self.anchor)
        px, py = pts[:, 0:1], pts[:, 1:2]  # (N, 1) against (1, K) edges
        x1, y1 = poly[None, :, 0], poly[None, :, 1]
        x2, y2 = np.roll(poly[:, 0], -1)[None, :], np.roll(poly[:, 1], -1)[None, :]
        # Even-odd ray cast towards +x: count edges that straddle the point's row right of it.
        straddles = (y1 > py) != (y2 > py)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_cross = x1 + (py - y1) * (x2 - x1) / (y2 - y1)
        inside = np.count_nonzero(straddles & (px < x_cross), axis=1) % 2 == 1
        # Ray casting is ambiguous exactly on an edge (e.g. a box touching the frame bottom with a
        # bottom_center anchor and a zone drawn to y=1): treat points within 1e-6 px as inside.
        dx, dy = x2 - x1, y2 - y1
        seg_len2 = np.maximum(dx * dx + dy * dy, 1e-12)
        t = np.clip(((px - x1) * dx + (py - y1) * dy) / seg_len2, 0.0, 1.0)
        dist2 = (x1 + t * dx - px) ** 2 + (y1 + t * dy - py) ** 2
        return inside | np.any(dist2 <= 1e-12, axis=1)


@dataclass(frozen=True)
class Crossing:
    """One track crossing a counting line. ``in`` = from the left to the right of start→end."""

    tracker_id: int
    direction: Literal["in", "out"]
    label: str


@dataclass
class _LineSide:
    side: int  # +1 right of start→end (image coords, y down), -1 left
    point: np.ndarray  # last pixel anchor seen clearly on that side
    last_frame: int


class LineCounter:
    """Counts tracks whose anchor crosses a line segment; one event per track and direction.

    Anti-jitter: a track's side is recorded only when its anchor is more than ``hysteresis_px``
    from the line, and a crossing needs a recorded side then the opposite one, with the move
    between them passing through the segment (not around its ends). Boxes that wobble a pixel or
    two around the line therefore never fire; a part that really passes fires once.
    """

    def __init__(self, start: Point, end: Point, anchor: Anchor = "center",
                 hysteresis_px: float = 2.0, forget_after_frames: int = 1000) -> None:
        self.start = _check_point(start, "line start")
        self.end = _check_point(end, "line end")
        if np.allclose(self.start, self.end):
            raise ValueError("line start and end are the same point")
        if anchor not in ("center", "bottom_center"):
            raise ValueError(f"anchor must be 'center' or 'bottom_center', got {anchor!r}")
        if hysteresis_px < 0:
            raise ValueError(f"hysteresis_px must be >= 0, got {hysteresis_px}")
        self.anchor: Anchor = anchor
        self.hysteresis_px = float(hysteresis_px)
        self.forget_after_frames = forget_after_frames
        self.in_count = 0
        self.out_count = 0
        self._sides: dict[int, _LineSide] = {}
        self._fired: set[tuple[int, str]] = set()
        self._frame = 0

    def trigger(self, tracked: Detections, frame_width: int, frame_height: int) -> list[Crossing]:
        """Crossings in this frame. Detections without a tracker id are ignored."""
        self._frame += 1
        crossings: list[Crossing] = []
        if tracked.tracker_id is not None and len(tracked):
            scale = _check_frame(frame_width, frame_height)
            a, b = self.start * scale, self.end * scale
            direction = b - a
            length = float(np.hypot(*direction))
            pts = anchor_points(tracked, self.anchor)
            # Signed distance in pixels; positive = right-hand side of start→end with y pointing down.
            dist = (direction[0] * (pts[:, 1] - a[1]) - direction[1] * (pts[:, 0] - a[0])) / length
            labels = tracked.label_names()
            for k, track_id in enumerate(tracked.tracker_id.tolist()):
                crossing = self._observe(int(track_id), pts[k], float(dist[k]), labels[k], a, b)
                if crossing is not None:
                    crossings.append(crossing)
        self._forget_stale()
        return crossings

    def _observe(self, track_id: int, point: np.ndarray, dist: float, label: str,
                 a: np.ndarray, b: np.ndarray) -> Crossing | None:
        state = self._sides.get(track_id)
        if state is not None:
            state.last_frame = self._frame
        if abs(dist) <= self.hysteresis_px:
            return None  # in the dead band: side unknown, keep the last clear one
        side = 1 if dist > 0 else -1
        if state is None:
            self._sides[track_id] = _LineSide(side, point, self._frame)
            return None
        previous, state.side, state.point = (state.side, state.point), side, point
        if previous[0] == side or not self._passes_segment(previous[1], point, a, b):
            return None
        direction: Literal["in", "out"] = "in" if side > 0 else "out"
        if (track_id, direction) in self._fired:
            return None
        self._fired.add((track_id, direction))
        if direction == "in":
            self.in_count += 1
        else:
            self.out_count += 1
        return Crossing(track_id, direction, label)

    @staticmethod
    def _passes_segment(p: np.ndarray, q: np.ndarray, a: np.ndarray, b: np.ndarray) -> bool:
        """Whether the move p→q (on opposite sides of the line) crosses it between a and b."""
        d = b - a
        dp = d[0] * (p[1] - a[1]) - d[1] * (p[0] - a[0])
        dq = d[0] * (q[1] - a[1]) - d[1] * (q[0] - a[0])
        hit = p + (q - p) * (dp / (dp - dq))
        t = float(np.dot(hit - a, d) / np.dot(d, d))
        return 0.0 <= t <= 1.0

    def forget(self, track_ids: list[int]) -> None:
        """Drop the state of ended tracks (pass ``Tracker.ended_ids()``); ids are never reused."""
        for track_id in track_ids:
            self._sides.pop(track_id, None)
            self._fired.discard((track_id, "in"))
            self._fired.discard((track_id, "out"))

    def _forget_stale(self) -> None:
        stale = [i for i, s in self._sides.items() if self._frame - s.last_frame > self.forget_after_frames]
        self.forget(stale)

    def reset(self) -> None:
        self._sides.clear()
        self._fired.clear()
        self.in_count = self.out_count = 0
        self._frame = 0


class _ZoneMapping(BaseModel):
    """Where a zone's events go on the wire: ``zone`` = {kind, id, row}."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["shed", "line"] = Field(default="shed", description="Greenhouse shed or factory line")
    id: str = Field(pattern=_ZONE_ID_PATTERN, description="Zone id on the wire, e.g. shed-07 or line-2")
    row: str | None = Field(default=None, description="Row inside the shed, e.g. r3")


class PolygonZoneConfig(_ZoneMapping):
    type: Literal["polygon"] = Field(description="Count objects whose anchor lies inside a polygon")
    points: list[Point] = Field(
        min_length=3, description="Polygon corners (x, y) in normalised 0..1 frame coordinates")
    anchor: Anchor = Field(
        default="center", description="Point of each box tested: centre, or bottom centre for objects on a surface")

    @field_validator("points")
    @classmethod
    def _valid_polygon(cls, points: list[Point]) -> list[Point]:
        validate_polygon(points)
        return points

    def build(self) -> PolygonZone:
        return PolygonZone(self.points, anchor=self.anchor)


class LineZoneConfig(_ZoneMapping):
    kind: Literal["shed", "line"] = Field(default="line", description="Greenhouse shed or factory line")
    type: Literal["line"] = Field(description="Count tracks crossing a line segment (one event per part)")
    start: Point = Field(description="Line start (x, y), normalised 0..1")
    end: Point = Field(description="Line end (x, y), normalised 0..1; 'in' = crossing to the right of start→end")
    anchor: Anchor = Field(default="center", description="Point of each box that must cross the line")
    hysteresis_px: float = Field(
        default=2.0, ge=0.0, le=1000.0,
        description="Dead band in pixels either side of the line; jitter inside it never counts")

    @field_validator("start", "end")
    @classmethod
    def _in_frame(cls, point: Point) -> Point:
        _check_point(point, "line point")
        return point

    @field_validator("end")
    @classmethod
    def _not_degenerate(cls, end: Point, info: ValidationInfo) -> Point:
        start = info.data.get("start")
        if start is not None and np.allclose(start, end):
            raise ValueError("line start and end are the same point")
        return end

    def build(self) -> LineCounter:
        return LineCounter(self.start, self.end, anchor=self.anchor, hysteresis_px=self.hysteresis_px)
