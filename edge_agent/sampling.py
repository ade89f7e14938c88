"""Which frames a camera uploads for labelling (issue 40): the sampling policy of one camera.

A frame is picked when the model is unsure about it: a detection score inside ``uncertain_band``; a label's
count that jumps for one frame and comes back (flicker: the odd frame is the one sent); a tracked object whose
label changes. A small random share keeps the set from being all hard cases. Every pick then passes, in
order: a minimum interval, near-duplicate suppression (a 64-bit difference hash of a small grayscale copy,
against the recent uploads) and a bytes-per-hour budget. On-demand picks (the ``sample`` command) skip the
interval and the duplicate check and are always sent (they still count against the budget).

With ``rank_window`` set, frames are ranked instead of sent as they come: of every ``rank_window`` frames the
policy sends the one with the highest :func:`informativeness` (boxes in the band, boxes whose top two class
scores are close, low mean confidence, count change, a tracker label switch), skipping near-duplicates of recent uploads; with
probability ``random_rate`` a window sends one of its frames drawn at random instead (the random share).

The policy sees frames and detections only; encoding and publishing are the agent's (``Agent._sample``).
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from edge_agent.config import CameraConfig, SamplingConfig
from edge_agent.detections import Detections
from edge_agent.snapshots import ByteBudget, encode_jpeg
from edge_agent.sources import Frame
from fieldline.contract import Detection, ModelRef, Sample, Zone, build_sample

REASONS = ("uncertain_score", "count_flicker", "label_switch", "random", "on_demand")


@dataclass(frozen=True)
class Pick:
    """A frame worth uploading and why (for flicker: the odd frame out, not the latest)."""

    reason: str
    frame: Frame
    detections: Detections


def dhash(image: np.ndarray) -> int:
    """64-bit difference hash: a 9x8 grayscale copy, one bit per horizontal neighbour pair (brighter or not)."""
    gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    small = cv2.resize(gray, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).reshape(-1)
    return int(np.packbits(bits).view(">u8")[0])


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def label_counts(detections: Detections) -> Counter[str]:
    return Counter(detections.label_names())


def informativeness(detections: Detections, config: SamplingConfig, previous: Counter[str] | None = None,
                    counts: Counter[str] | None = None) -> float:
    """How much labelling this frame would teach the model: higher is more informative.

    One point per box scored inside ``uncertain_band``; ``margin_weight`` per box whose two best class scores
    differ by less than ``margin_below`` (a fruit between half_ripe and ripe; needs the detector's class
    scores); ``1 - mean confidence`` when there are boxes; ``flicker_weight`` per unit of count change against
    the previous frame.
    """
    conf = detections.confidence
    if not len(conf):
        score = 0.0
    else:
        low, high = config.uncertain_band
        score = float(np.count_nonzero((conf >= low) & (conf <= high))) + 1.0 - float(conf.mean())
        scores = detections.class_scores
        if scores is not None and scores.shape[1] >= 2:
            top2 = np.sort(scores, axis=1)[:, -2:]
            score += config.margin_weight * float(np.count_nonzero(top2[:, 1] - top2[:, 0] < config.margin_below))
    if previous is not None and config.flicker_weight:
        counts = counts if counts is not None else label_counts(detections)
        score += config.flicker_weight * sum(abs(counts[k] - previous[k]) for k in set(counts) | set(previous))
    return score


@dataclass
class _Window:
    """The frames of one ranking window seen so far: the best candidate and a uniformly drawn one."""

    seen: int = 0
    best: Pick | None = None
    best_score: float = float("-inf")
    drawn: Pick | None = None


class SamplingPolicy:
    """Per-camera state: the previous frames (for flicker), track labels, recent hashes, budget, counters."""

    def __init__(self, config: SamplingConfig, rng: np.random.Generator | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._rng = rng or np.random.default_rng(config.seed)
        self._clock = clock
        self.budget = ByteBudget(config.budget_bytes_per_hour, clock=clock, period_s=3600.0)
        self._history: deque[tuple[Frame, Detections, Counter[str]]] = deque(maxlen=2)
        self._track_labels: dict[int, int] = {}
        self._recent: deque[int] = deque(maxlen=config.dedup_window)
        self._last_pick_s: float | None = None
        self.picked: Counter[str] = Counter()  # samples sent, by reason
        self.suppressed: Counter[str] = Counter()  # interval | duplicate | budget
        self._window = _Window()
        self._window_random = self._rng.random() < config.random_rate if config.rank_window else False

    # ------------------------------------------------------------ triggers

    def trigger(self, frame: Frame, detections: Detections, tracked: Detections | None) -> Pick | None:
        """A frame worth sending, or None. Call once per frame, in order (the picture is not decoded here)."""
        cfg = self.config
        counts = label_counts(detections)
        if cfg.rank_window:
            switched = self._label_switched(tracked) if cfg.label_switch else False
            return self._rank(frame, detections, counts, switched)
        history = self._history
        found: Pick | None = None
        switched = self._label_switched(tracked) if cfg.label_switch else False
        low, high = cfg.uncertain_band
        conf = detections.confidence
        if len(conf) and bool(np.any((conf >= low) & (conf <= high))):
            found = Pick("uncertain_score", frame, detections)
        elif cfg.flicker_delta and len(history) == 2 and _flickered(history[0][2], history[1][2], counts,
                                                                   cfg.flicker_delta):
            found = Pick("count_flicker", history[1][0], history[1][1])  # the odd frame out
        elif switched:
            found = Pick("label_switch", frame, tracked if tracked is not None else detections)
        elif cfg.random_rate > 0 and self._rng.random() < cfg.random_rate:
            found = Pick("random", frame, detections)
        history.append((frame, detections, counts))
        return found

    def _rank(self, frame: Frame, detections: Detections, counts: Counter[str], switched: bool) -> Pick | None:
        """Window mode: remember the window's best (not a near-duplicate) and a random frame; send at its end."""
        cfg, window = self.config, self._window
        previous = self._history[-1][2] if self._history else None
        self._history.append((frame, detections, counts))
        window.seen += 1
        if self._window_random:
            if self._rng.random() * window.seen < 1.0:  # reservoir of one: each frame equally likely
                window.drawn = Pick("random", frame, detections)
        else:
            score = informativeness(detections, cfg, previous, counts) + (1.0 if switched else 0.0)
            if score >= cfg.min_score and score > window.best_score and not self._duplicate(frame):
                window.best, window.best_score = Pick("uncertain_score", frame, detections), score
        if window.seen < cfg.rank_window:
            return None
        found = window.drawn if self._window_random else window.best
        self._window = _Window()
        self._window_random = bool(self._rng.random() < cfg.random_rate)
        return found

    def _duplicate(self, frame: Frame) -> bool:
        if self.config.dedup_distance < 0 or not self._recent:
            return False
        digest = dhash(frame.image)
        return any(hamming(digest, h) <= self.config.dedup_distance for h in self._recent)

    def _label_switched(self, tracked: Detections | None) -> bool:
        if tracked is None or tracked.tracker_id is None:
            return False
        switched = False
        seen = {}
        for track_id, class_id in zip(tracked.tracker_id.tolist(), tracked.class_id.tolist()):
            if track_id < 0:
                continue
            before = self._track_labels.get(track_id)
            switched = switched or (before is not None and before != class_id)
            seen[track_id] = class_id
        self._track_labels = seen  # tracks not seen this frame are forgotten (the tracker ended or lost them)
        return switched

    # ------------------------------------------------------------ admission

    def admit(self, reason: str, image: np.ndarray) -> int | None:
        """The frame's hash when the interval and the duplicate check let it through, else None (counted)."""
        now = self._clock()
        if reason != "on_demand":
            if self._last_pick_s is not None and now - self._last_pick_s < self.config.min_interval_s:
                self.suppressed["interval"] += 1
                return None
        digest = dhash(image)
        if reason != "on_demand" and any(hamming(digest, h) <= self.config.dedup_distance for h in self._recent):
            self.suppressed["duplicate"] += 1
            return None
        return digest

    def charge(self, reason: str, size: int, digest: int) -> bool:
        """Take ``size`` bytes from the budget (on demand: always, even past it); True when the frame may go."""
        if reason == "on_demand":
            self.budget.charge(size)
        elif not self.budget.take(size):
            self.suppressed["budget"] += 1
            return False
        self._recent.append(digest)
        self._last_pick_s = self._clock()
        self.picked[reason] += 1
        return True


def _flickered(before: Counter[str], middle: Counter[str], after: Counter[str], delta: int) -> bool:
    """A label whose count jumped by >= ``delta`` in the middle frame and came back (up-down or down-up)."""
    for label in set(before) | set(middle) | set(after):
        up, down = middle[label] - before[label], middle[label] - after[label]
        if abs(up) >= delta and abs(down) >= delta and (up > 0) == (down > 0):
            return True
    return False


def encode_sample_jpeg(image: np.ndarray, config: SamplingConfig, max_bytes: int) -> bytes:
    """The frame as JPEG (no boxes drawn), at ``config.jpeg_quality`` or lower until it fits ``max_bytes``."""
    quality = config.jpeg_quality
    while True:
        jpeg = encode_jpeg(image, quality=quality, max_width=config.max_width)
        if len(jpeg) <= max_bytes or quality <= 30:
            break
        quality -= 15
    if len(jpeg) > max_bytes:
        raise ValueError(f"the frame is {len(jpeg)} bytes as JPEG at quality {quality}, the limit is {max_bytes}")
    return jpeg


def wire_detections(detections: Detections, width: int, height: int) -> list[Detection]:
    """Detections as on the wire: boxes normalised to 0..1, rounded like events."""
    boxes, names = detections.normalized_boxes(width, height), detections.label_names()
    tracks = detections.tracker_id
    return [Detection(label=names[i], score=round(float(detections.confidence[i]), 4),
                      box=tuple(round(float(v), 5) for v in boxes[i]),  # type: ignore[arg-type]
                      track=int(tracks[i]) if tracks is not None else None) for i in range(len(detections))]


def make_sample(pick: Pick, jpeg: bytes, *, sample_id: str, site: str, device: str, instance: str,
                camera: CameraConfig, model: ModelRef, model_labels: list[str], note: str | None = None,
                request_id: str | None = None) -> Sample:
    """The ``Sample`` message of a picked frame."""
    width, height = pick.frame.width, pick.frame.height
    if width > camera.sampling.max_width:  # encode_jpeg scaled it down the same way
        width, height = camera.sampling.max_width, int(height * camera.sampling.max_width / width)
    return build_sample(
        jpeg=jpeg, id=sample_id, device=device, site=site, instance=instance, camera=camera.name,
        zone=Zone(**camera.zone.model_dump()), ts_ms=pick.frame.ts_ms, model=model, model_labels=model_labels,
        dataset=camera.sampling.dataset, reason=pick.reason, note=note, request_id=request_id,
        detections=wire_detections(pick.detections, pick.frame.width, pick.frame.height), width=width,
        height=height)
