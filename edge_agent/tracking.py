"""ByteTrack-style multi-object tracking and unique counting, in plain numpy.

Why ByteTrack: a tomato half hidden by a leaf (or a part under glare on a conveyor) drops to a low
score for a few frames. Discarding those boxes breaks the track and counts the fruit twice; keeping
them as new tracks counts leaf fragments. ByteTrack uses low-score boxes only to *continue* tracks
that already exist, after the confident boxes have been matched.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from itertools import permutations
from math import perm

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
    overlap = np.minimum(a[:, None, 2:], b[None, :, 2:]) - np.maximum(a[:, None, :2], b[None, :, :2])
    np.maximum(overlap, 0.0, out=overlap)
    inter = overlap[..., 0] * overlap[..., 1]
    size_a = np.maximum(a[:, 2:] - a[:, :2], 0.0)
    size_b = np.maximum(b[:, 2:] - b[:, :2], 0.0)
    area_a = size_a[:, 0] * size_a[:, 1]
    area_b = size_b[:, 0] * size_b[:, 1]
    union = area_a[:, None] + area_b[None, :] - inter
    return inter / np.maximum(union, 1e-12)  # union 0 means inter 0: IoU 0


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


def match_by_iou(iou: np.ndarray) -> list[tuple[int, int]]:
    """Pairs (row, col) maximising the summed IoU over entries > 0.

    Solved per connected component of the overlap graph: most fruits overlap one predicted box only,
    so the Hungarian step runs on the few small clusters of touching fruit, not on the whole frame.
    """
    edge_rows, edge_cols = (iou > 0).nonzero()
    edges = list(zip(edge_rows.tolist(), edge_cols.tolist()))  # row-major: already sorted
    if len(set(edge_rows.tolist())) == len(edges) == len(set(edge_cols.tolist())):
        return edges  # no box competes for another: nothing to solve
    n, _ = iou.shape
    parent = list(range(n + iou.shape[1]))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for r, c in edges:
        parent[root(r)] = root(n + c)
    groups: dict[int, tuple[list[int], list[int]]] = {}
    for r, c in edges:
        g = groups.setdefault(root(r), ([], []))
        if r not in g[0]:
            g[0].append(r)
        if c not in g[1]:
            g[1].append(c)
    pairs = []
    for rows, cols in groups.values():
        if len(rows) == 1 and len(cols) == 1:
            pairs.append((rows[0], cols[0]))
            continue
        sub = iou[rows][:, cols]
        if perm(max(len(rows), len(cols)), min(len(rows), len(cols))) <= SMALL_CLUSTER_ASSIGNMENTS:
            chosen = _best_by_enumeration(sub.tolist())
        else:
            chosen = linear_assignment(1.0 - sub)
        pairs += [(rows[r], cols[c]) for r, c in chosen if sub[r, c] > 0.0]
    return sorted(pairs)


SMALL_CLUSTER_ASSIGNMENTS = 24  # up to this many one-to-one assignments, trying them all is the faster way


def _best_by_enumeration(values: list[list[float]]) -> list[tuple[int, int]]:
    """Maximum-sum one-to-one pairs of a small matrix, every assignment tried (two touching fruits and two
    predicted boxes: 2 assignments, in plain Python, where the numpy Hungarian step costs ~50 us)."""
    n, m = len(values), len(values[0])
    if n > m:
        return [(r, c) for c, r in _best_by_enumeration([list(col) for col in zip(*values)])]
    best = max(permutations(range(m), n), key=lambda cols: sum(values[r][c] for r, c in enumerate(cols)))
    return list(enumerate(best))


def _xyxy_to_cxcywh(boxes: np.ndarray) -> np.ndarray:
    b = np.asarray(boxes, np.float64).reshape(-1, 4)
    out = np.empty_like(b)
    out[:, :2] = (b[:, :2] + b[:, 2:]) * 0.5
    out[:, 2:] = np.maximum(b[:, 2:] - b[:, :2], 1.0)
    return out


_SIZE_TWICE = np.array([2, 3, 2, 3])  # (w, h, w, h): the box size beside each of the four coordinates


class KalmanBank:
    """Constant-velocity Kalman filters on (cx, cy, w, h) and their velocities, one row per track.

    Noise scales with the box size (as in ByteTrack/DeepSORT) so one tuning fits near and far objects.
    The motion model moves each coordinate by its own velocity, the noise is diagonal and the
    measurement reads the four coordinates, so the 8x8 covariance of the textbook form never couples
    two coordinates: it is four independent 2x2 blocks (position variance, position-velocity covariance,
    velocity variance) per track. Keeping just those blocks, every step is a dozen element-wise numpy
    operations over all tracks of a camera (no 8x8 products, no solve), with the textbook's numbers.
    All of a track's numbers are one row of ``state`` (mean, then the blocks' entries), so picking,
    updating and dropping tracks moves one array, not four.
    """

    POS_STD = 1.0 / 20.0
    VEL_STD = 1.0 / 160.0

    def __init__(self) -> None:
        self.state = np.zeros((0, 20))  # mean (cx, cy, w, h, vcx, vcy, vw, vh), pos_var, cross, vel_var

    @property
    def mean(self) -> np.ndarray:
        return self.state[:, :8]

    @property
    def pos_var(self) -> np.ndarray:  # the blocks' entries, one column per coordinate
        return self.state[:, 8:12]

    @property
    def cross(self) -> np.ndarray:
        return self.state[:, 12:16]

    @property
    def vel_var(self) -> np.ndarray:
        return self.state[:, 16:20]

    def __len__(self) -> int:
        return len(self.state)

    @property
    def cov(self) -> np.ndarray:
        """The full (n, 8, 8) covariances of the textbook form (for inspection and tests)."""
        cov = np.zeros((len(self.state), 8, 8))
        i = np.arange(4)
        cov[:, i, i], cov[:, i + 4, i + 4] = self.pos_var, self.vel_var
        cov[:, i, i + 4] = cov[:, i + 4, i] = self.cross
        return cov

    def add(self, boxes_xyxy: np.ndarray) -> None:
        z = _xyxy_to_cxcywh(boxes_xyxy)
        size = z[:, _SIZE_TWICE]
        zero = np.zeros_like(z)
        rows = np.concatenate([z, zero, (2 * self.POS_STD * size) ** 2, zero, (10 * self.VEL_STD * size) ** 2], 1)
        self.state = np.concatenate([self.state, rows])

    def keep(self, rows: np.ndarray | list[int]) -> None:
        self.state = self.state[np.asarray(rows, np.int64)]

    def predict(self, freeze_size: np.ndarray | list[bool]) -> None:
        """Advance one frame; rows with ``freeze_size`` stop growing/shrinking without evidence (lost boxes)."""
        st = self.state
        if not len(st):
            return
        if any(freeze_size):
            st[np.asarray(freeze_size, bool), 6:8] = 0.0
        size = st[:, _SIZE_TWICE]
        pos_var, cross, vel_var = st[:, 8:12], st[:, 12:16], st[:, 16:20]
        # x' = x + v;  P' = F P F^T + Q with F = [[1, 1], [0, 1]] per coordinate
        st[:, :4] += st[:, 4:8]
        pos_var += 2 * cross + vel_var + (self.POS_STD * size) ** 2
        cross += vel_var
        vel_var += (self.VEL_STD * size) ** 2
        np.maximum(st[:, 2:4], 1.0, out=st[:, 2:4])

    def update(self, rows: np.ndarray | list[int], boxes_xyxy: np.ndarray) -> None:
        rows = np.asarray(rows, np.int64)
        if not len(rows):
            return
        z = _xyxy_to_cxcywh(boxes_xyxy)
        picked = self.state[rows]  # a copy, written back at the end
        m, pos_var, cross, vel_var = picked[:, :8], picked[:, 8:12], picked[:, 12:16], picked[:, 16:20]
        innovation_var = pos_var + (self.POS_STD * m[:, _SIZE_TWICE]) ** 2
        gain_pos, gain_vel = pos_var / innovation_var, cross / innovation_var
        residual = z - m[:, :4]
        m[:, :4] += gain_pos * residual
        m[:, 4:] += gain_vel * residual
        np.maximum(m[:, 2:4], 1.0, out=m[:, 2:4])
        vel_var -= gain_vel * cross  # each from the blocks before this update: velocity first, cross, position
        cross -= gain_pos * cross
        pos_var -= gain_pos * pos_var
        self.state[rows] = picked

    def boxes(self, rows: np.ndarray | list[int] | None = None) -> np.ndarray:
        m = self.state if rows is None else self.state[np.asarray(rows, np.int64)]
        half = m[:, 2:4] / 2
        return np.concatenate([m[:, :2] - half, m[:, :2] + half], 1)


class _Track:
    """One tracked object (its Kalman state is row ``i`` of the tracker's bank, in list order).

    ``track_id`` stays 0 until confirmed, so false positives burn no ids.
    """

    __slots__ = ("class_id", "hits", "misses", "track_id")

    def __init__(self, class_id: int) -> None:
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
        self._kalman = KalmanBank()  # row i = self._tracks[i]
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
        self._kalman = KalmanBank()
        self._new_ids, self._ended_ids = [], []
        return ended

    def update(self, detections: Detections) -> Detections:
        cfg = self.config
        self._new_ids, self._ended_ids = [], []
        self._kalman.predict([t.misses > 0 for t in self._tracks])
        for track in self._tracks:
            track.misses += 1
        # plain Python on a handful of scores (each numpy call costs microseconds once inference has evicted
        # the caches); thresholds rounded to float32 as numpy compares a float32 array with a Python float
        high_t, low_t = float(np.float32(cfg.high_threshold)), float(np.float32(cfg.low_threshold))
        conf = detections.confidence.tolist()
        high = [i for i, c in enumerate(conf) if c >= high_t]
        low = [i for i, c in enumerate(conf) if low_t <= c < high_t]
        iou = self._iou_with_tracks(detections)  # (tracks, detections), computed once for both passes

        # Pass 1: confident boxes vs every track (confirmed, tentative and lost).
        matches, free_tracks, free_high = self._associate(iou, list(range(len(self._tracks))), high,
                                                          cfg.match_iou)
        # Pass 2: low-score boxes vs confirmed tracks seen in the previous frame. Lost tracks are
        # left out (as in ByteTrack): a weak box where a fruit used to be is often a leaf.
        candidates = [t for t in free_tracks if self._tracks[t].confirmed and self._tracks[t].misses == 1]
        low_matches, _, _ = self._associate(iou, candidates, low, cfg.low_match_iou)
        matches += low_matches

        matched_tracks = {t for t, _ in matches}
        reported: list[tuple[int, int]] = []  # (detection index, track id)
        if matches:
            self._kalman.update([t for t, _ in matches], detections.xyxy[[d for _, d in matches]])
        for t, d in matches:
            track = self._tracks[t]
            track.class_id = int(detections.class_id[d])
            track.hits += 1
            track.misses = 0
            self._confirm_if_due(track)
            if track.confirmed:
                reported.append((d, track.track_id))
        survivors, rows = [], []
        for t, track in enumerate(self._tracks):
            if t in matched_tracks or (track.confirmed and track.misses <= cfg.max_age):
                survivors.append(track)  # matched, or lost: kept and predicted, may be re-found
                rows.append(t)
            elif track.confirmed:
                self._ended_ids.append(track.track_id)
            # an unconfirmed track that missed a frame is dropped silently: it never had an id
        if len(rows) != len(self._tracks):  # rows are in order: all of them means nothing was dropped
            self._kalman.keep(rows)
        if free_high:
            self._kalman.add(detections.xyxy[np.asarray(free_high, np.int64)])
        for d in free_high:
            track = _Track(int(detections.class_id[d]))
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

    def _iou_with_tracks(self, detections: Detections) -> np.ndarray:
        """IoU of every predicted track box with every detection; 0 across classes when ``class_aware``."""
        if not self._tracks or not len(detections):
            return np.zeros((len(self._tracks), len(detections)))
        iou = box_iou(self._kalman.boxes(), detections.xyxy)
        if self.config.class_aware:
            track_cls = np.array([t.class_id for t in self._tracks])
            iou[track_cls[:, None] != detections.class_id[None, :]] = 0.0
        return iou

    @staticmethod
    def _associate(iou: np.ndarray, track_idx: list[int], det_idx: list[int],
                   min_iou: float) -> tuple[list[tuple[int, int]], list[int], list[int]]:
        """Optimal IoU matching of some tracks (rows of ``iou``) with some detections (its columns).

        Returns (track, detection) pairs and the unmatched of each side.
        """
        if not track_idx or not det_idx:
            return [], list(track_idx), list(det_idx)
        sub = iou[np.ix_(track_idx, det_idx)]  # a copy: the thresholding below leaves ``iou`` intact
        sub[sub < min_iou] = 0.0  # invalid pairs are worth the same as no match
        pairs = match_by_iou(sub)
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

    The tally by majority label is kept up to date as tracks are seen, so ``counts`` (read every frame by
    the count rule) costs the number of labels, not the number of tracks seen since the sweep began.
    """

    def __init__(self) -> None:
        self._votes: dict[int, Counter[str]] = {}
        self._last_seen: dict[int, dict[str, int]] = {}
        self._majority: dict[int, str] = {}  # track id -> label_of(track id)
        self._tally: Counter[str] = Counter()  # majority label -> tracks
        self._frame = 0

    def update(self, tracked: Detections) -> None:
        self._frame += 1
        if tracked.tracker_id is None:
            return
        for track_id, label in zip(tracked.tracker_id.tolist(), tracked.label_names()):
            self._votes.setdefault(track_id, Counter())[label] += 1
            self._last_seen.setdefault(track_id, {})[label] = self._frame
            before, now = self._majority.get(track_id), self.label_of(track_id)
            if now != before:
                if before is not None:
                    self._tally[before] -= 1
                self._tally[now] += 1
                self._majority[track_id] = now

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
        if any(n and label not in result for label, n in self._tally.items()):
            return self._counts_in_track_order(result)  # a label outside the table: keep its first-seen order
        for label, n in self._tally.items():
            if n:
                result[label] = n
        return result

    def _counts_in_track_order(self, result: dict[str, int]) -> dict[str, int]:
        for track_id in self._votes:
            label = self._majority[track_id]
            result[label] = result.get(label, 0) + 1
        return result

    def total(self) -> int:
        return len(self._votes)

    def reset(self) -> None:
        self._votes.clear()
        self._last_seen.clear()
        self._majority.clear()
        self._tally.clear()
        self._frame = 0
