"""ByteTrack-style multi-object tracking and unique counting, in plain numpy.

Why ByteTrack: a tomato half hidden by a leaf (or a part under glare on a conveyor) drops to a low
score for a few frames. Discarding those boxes breaks the track and counts the fruit twice; keeping
them as new tracks counts leaf fragments. ByteTrack uses low-score boxes only to *continue* tracks
that already exist, after the confident boxes have been matched.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge_agent.detections import Detections


class TrackerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    high_threshold: float = Field(
        default=0.5, ge=0.0, le=1.0,
        description="Detections at or above this score are matched first and may start new tracks")
    low_threshold: float = Field(
        default=0.1, ge=0.0, le=1.0,
        description="Detections between this and high_threshold only continue existing tracks; below it they are ignored")
    match_iou: float = Field(
        default=0.3, gt=0.0, le=1.0,
        description="Minimum IoU between a predicted track box and a high-score detection (first pass)")
    low_match_iou: float = Field(
        default=0.5, gt=0.0, le=1.0,
        description="Minimum IoU for the second pass with low-score detections (stricter: they are less reliable)")
    min_hits: int = Field(
        default=3, ge=1, le=100,
        description="Consecutive matched frames before a track is confirmed, gets an id and is reported")
    max_age: int = Field(
        default=30, ge=0, le=10_000,
        description="Frames a confirmed track is kept (Kalman-predicted) without a match before it ends")
    class_aware: bool = Field(
        default=False,
        description="Only match detections to tracks of the same class. Off by default because ripeness models "
                    "flip between neighbouring labels frame to frame (UniqueCounter takes the majority label); "
                    "turn on for classes that never turn into each other")

    @model_validator(mode="after")
    def _ordered_thresholds(self) -> TrackerConfig:
        if self.low_threshold > self.high_threshold:
            raise ValueError(f"low_threshold ({self.low_threshold}) must not exceed "
                             f"high_threshold ({self.high_threshold})")
        return self


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix (len(a), len(b)) of two xyxy box arrays."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0.0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0.0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0.0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def linear_assignment(cost: np.ndarray) -> list[tuple[int, int]]:
    """Minimum-cost assignment (Hungarian, shortest augmenting path with potentials, O(n^2 m)).

    Every row of the smaller side is assigned. Greedy-by-IoU can lose a match when two fruits touch;
    the optimal assignment costs well under a millisecond for the few dozen tracks of one camera.
    """
    cost = np.asarray(cost, np.float64)
    if cost.size == 0:
        return []
    transposed = cost.shape[0] > cost.shape[1]
    if transposed:
        cost = cost.T
    n, m = cost.shape
    u = np.zeros(n + 1)
    v = np.zeros(m + 1)
    owner = np.zeros(m + 1, np.int64)  # owner[j]: 1-based row assigned to column j (0 = free)
    way = np.zeros(m + 1, np.int64)
    for i in range(1, n + 1):
        owner[0] = i
        j0 = 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, bool)
        while True:
            used[j0] = True
            i0 = owner[j0]
            free = ~used
            free[0] = False
            reduced = np.full(m + 1, np.inf)
            reduced[1:] = cost[i0 - 1] - u[i0] - v[1:]
            better = free & (reduced < minv)
            minv[better] = reduced[better]
            way[better] = j0
            j1 = int(np.argmin(np.where(free, minv, np.inf)))
            delta = minv[j1]
            cols = np.nonzero(used)[0]
            u[owner[cols]] += delta
            v[cols] -= delta
            minv[free] -= delta
            j0 = j1
            if owner[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            owner[j0] = owner[j1]
            j0 = j1
    pairs = [(int(owner[j]) - 1, j - 1) for j in range(1, m + 1) if owner[j]]
    if transposed:
        pairs = [(c, r) for r, c in pairs]
    return sorted(pairs)


def _xyxy_to_cxcywh(box: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = np.asarray(box, np.float64)
    return np.array([(x1 + x2) / 2, (y1 + y2) / 2, max(x2 - x1, 1.0), max(y2 - y1, 1.0)])


class KalmanBoxFilter:
    """Constant-velocity Kalman filter on (cx, cy, w, h) and their velocities.

    Noise scales with the box size (as in ByteTrack/DeepSORT) so one tuning fits near and far objects.
    """

    POS_STD = 1.0 / 20.0
    VEL_STD = 1.0 / 160.0
    _F = np.eye(8) + np.eye(8, k=4)
    _H = np.eye(4, 8)

    def __init__(self, box_xyxy: np.ndarray) -> None:
        z = _xyxy_to_cxcywh(box_xyxy)
        self.mean = np.concatenate([z, np.zeros(4)])
        size = np.tile(z[2:4], 2)
        std = np.concatenate([2 * self.POS_STD * size, 10 * self.VEL_STD * size])
        self.cov = np.diag(std ** 2)

    def predict(self, freeze_size: bool = False) -> None:
        """Advance one frame; ``freeze_size`` stops a lost box from growing/shrinking without evidence."""
        if freeze_size:
            self.mean[6:8] = 0.0
        size = np.tile(self.mean[2:4], 2)
        q = np.concatenate([self.POS_STD * size, self.VEL_STD * size]) ** 2
        self.mean = self._F @ self.mean
        self.cov = self._F @ self.cov @ self._F.T + np.diag(q)
        self.mean[2:4] = np.maximum(self.mean[2:4], 1.0)

    def update(self, box_xyxy: np.ndarray) -> None:
        z = _xyxy_to_cxcywh(box_xyxy)
        r = np.diag((self.POS_STD * np.tile(self.mean[2:4], 2)) ** 2)
        s = self._H @ self.cov @ self._H.T + r
        gain = np.linalg.solve(s, self._H @ self.cov).T  # cov H^T S^-1 (s and cov are symmetric)
        self.mean = self.mean + gain @ (z - self._H @ self.mean)
        self.cov = (np.eye(8) - gain @ self._H) @ self.cov
        self.mean[2:4] = np.maximum(self.mean[2:4], 1.0)

    def box(self) -> np.ndarray:
        cx, cy, w, h = self.mean[:4]
        return np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2])


class _Track:
    """One tracked object. ``track_id`` stays 0 until confirmed, so false positives burn no ids."""

    __slots__ = ("kf", "class_id", "hits", "misses", "track_id")

    def __init__(self, box: np.ndarray, class_id: int) -> None:
        self.kf = KalmanBoxFilter(box)
        self.class_id = class_id
        self.hits = 1
        self.misses = 0  # frames since the last match
        self.track_id = 0

    @property
    def confirmed(self) -> bool:
        return self.track_id > 0


class Tracker:
    """Two-stage (high then low score) IoU tracker with Kalman prediction; one per camera.

    ``update`` returns the detections that belong to confirmed tracks, with ``tracker_id`` set.
    Ids start at 1 and are never reused, not even after ``reset`` (events carry them).
    """

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self._tracks: list[_Track] = []
        self._next_id = 1
        self._new_ids: list[int] = []
        self._ended_ids: list[int] = []

    def new_ids(self) -> list[int]:
        """Ids confirmed in the last ``update`` (emit ``track_state: new``)."""
        return list(self._new_ids)

    def ended_ids(self) -> list[int]:
        """Ids whose tracks were dropped in the last ``update`` (emit ``track_state: end``)."""
        return list(self._ended_ids)

    def active_ids(self) -> list[int]:
        """Confirmed ids still alive, including lost ones kept for re-identification."""
        return [t.track_id for t in self._tracks if t.confirmed]

    def reset(self) -> list[int]:
        """Forget all tracks (e.g. a new sweep); returns the confirmed ids this ends."""
        ended = self.active_ids()
        self._tracks.clear()
        self._new_ids, self._ended_ids = [], []
        return ended

    def update(self, detections: Detections) -> Detections:
        cfg = self.config
        self._new_ids, self._ended_ids = [], []
        for track in self._tracks:
            track.kf.predict(freeze_size=track.misses > 0)
            track.misses += 1
        conf = detections.confidence
        high = np.nonzero(conf >= cfg.high_threshold)[0]
        low = np.nonzero((conf >= cfg.low_threshold) & (conf < cfg.high_threshold))[0]

        # Pass 1: confident boxes vs every track (confirmed, tentative and lost).
        matches, free_tracks, free_high = self._associate(
            list(range(len(self._tracks))), high, detections, cfg.match_iou)
        # Pass 2: low-score boxes vs confirmed tracks seen in the previous frame. Lost tracks are
        # left out (as in ByteTrack): a weak box where a fruit used to be is often a leaf.
        candidates = [t for t in free_tracks if self._tracks[t].confirmed and self._tracks[t].misses == 1]
        low_matches, _, _ = self._associate(candidates, low, detections, cfg.low_match_iou)
        matches += low_matches

        matched_tracks = {t for t, _ in matches}
        reported: list[tuple[int, int]] = []  # (detection index, track id)
        for t, d in matches:
            track = self._tracks[t]
            track.kf.update(detections.xyxy[d])
            track.class_id = int(detections.class_id[d])
            track.hits += 1
            track.misses = 0
            self._confirm_if_due(track)
            if track.confirmed:
                reported.append((d, track.track_id))
        survivors = []
        for t, track in enumerate(self._tracks):
            if t in matched_tracks:
                survivors.append(track)
            elif track.confirmed and track.misses <= cfg.max_age:
                survivors.append(track)  # lost: kept and predicted, may be re-found
            elif track.confirmed:
                self._ended_ids.append(track.track_id)
            # an unconfirmed track that missed a frame is dropped silently: it never had an id
        for d in free_high:
            track = _Track(detections.xyxy[d], int(detections.class_id[d]))
            self._confirm_if_due(track)
            if track.confirmed:
                reported.append((d, track.track_id))
            survivors.append(track)
        self._tracks = survivors

        reported.sort()
        index = np.array([d for d, _ in reported], np.int64)
        out = detections.filter(index)
        out.tracker_id = np.array([i for _, i in reported], np.int64)
        return out

    def _confirm_if_due(self, track: _Track) -> None:
        if not track.confirmed and track.hits >= self.config.min_hits:
            track.track_id = self._next_id
            self._next_id += 1
            self._new_ids.append(track.track_id)

    def _associate(self, track_idx: list[int], det_idx: np.ndarray, detections: Detections,
                   min_iou: float) -> tuple[list[tuple[int, int]], list[int], list[int]]:
        """Optimal IoU matching; returns (track, detection) pairs and the unmatched of each side."""
        det_idx = [int(d) for d in det_idx]
        if not track_idx or not det_idx:
            return [], list(track_idx), det_idx
        track_boxes = np.array([self._tracks[t].kf.box() for t in track_idx])
        iou = box_iou(track_boxes, detections.xyxy[det_idx])
        if self.config.class_aware:
            track_cls = np.array([self._tracks[t].class_id for t in track_idx])
            iou[track_cls[:, None] != detections.class_id[det_idx][None, :]] = 0.0
        iou[iou < min_iou] = 0.0  # invalid pairs are worth the same as no match
        pairs = [(r, c) for r, c in linear_assignment(1.0 - iou) if iou[r, c] > 0.0]
        used_r = {r for r, _ in pairs}
        used_c = {c for _, c in pairs}
        return ([(track_idx[r], det_idx[c]) for r, c in pairs],
                [t for r, t in enumerate(track_idx) if r not in used_r],
                [d for c, d in enumerate(det_idx) if c not in used_c])


class UniqueCounter:
    """Unique confirmed tracks per label over a sweep (e.g. a rail camera passing one row).

    Each track counts once, under the label it carried in most frames: ripeness classifiers flip
    between neighbouring stages frame to frame, and counting every label seen would double count.
    Ties go to the label seen most recently (fruit only ripens forward).
    """

    def __init__(self) -> None:
        self._votes: dict[int, Counter[str]] = {}
        self._last_seen: dict[int, dict[str, int]] = {}
        self._frame = 0

    def update(self, tracked: Detections) -> None:
        self._frame += 1
        if tracked.tracker_id is None:
            return
        for track_id, label in zip(tracked.tracker_id.tolist(), tracked.label_names()):
            self._votes.setdefault(track_id, Counter())[label] += 1
            self._last_seen.setdefault(track_id, {})[label] = self._frame

    def label_of(self, track_id: int) -> str | None:
        """Majority label of one track, or None if it was never seen."""
        votes = self._votes.get(track_id)
        if not votes:
            return None
        seen = self._last_seen[track_id]
        return max(votes, key=lambda label: (votes[label], seen[label]))

    def counts(self, labels: Iterable[str] = ()) -> dict[str, int]:
        """Tracks per majority label; ``labels`` are included with 0 when absent."""
        result = {label: 0 for label in labels}
        for track_id in self._votes:
            label = self.label_of(track_id)
            if label is not None:
                result[label] = result.get(label, 0) + 1
        return result

    def total(self) -> int:
        return len(self._votes)

    def reset(self) -> None:
        self._votes.clear()
        self._last_seen.clear()
        self._frame = 0
