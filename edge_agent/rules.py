"""Rules turn per-frame detections into events. v1: the greenhouse ``count`` rule."""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass

import numpy as np

from edge_agent.detections import Detections


@dataclass(frozen=True)
class CountDecision:
    counts: dict[str, int]
    reason: str  # "change" or "interval"


class CountRule:
    """Objects per label in the camera's zone, as the per-label median over the last ``window`` frames.

    The median hides a fruit that flickers for one frame behind a leaf. An event is due when the smoothed
    counts change, or when ``interval_s`` has passed since the last one (a heartbeat with the same counts).
    """

    def __init__(self, labels: tuple[str, ...], window: int = 3, interval_s: float = 60.0) -> None:
        self.labels = labels
        self.interval_s = interval_s
        self._history: deque[Counter[str]] = deque(maxlen=window)
        self._last_counts: dict[str, int] | None = None
        self._last_ts: float | None = None

    def smoothed(self) -> dict[str, int]:
        return {
            label: int(round(float(np.median([frame[label] for frame in self._history]))))
            for label in self.labels
        }

    def update(self, detections: Detections, now_s: float) -> CountDecision | None:
        """Feed one frame's detections; return the counts to publish, or ``None`` if nothing is due."""
        self._history.append(Counter(detections.label_names()))
        counts = self.smoothed()
        if self._last_counts is None or counts != self._last_counts:
            reason = "change"
        elif self._last_ts is not None and now_s - self._last_ts >= self.interval_s:
            reason = "interval"
        else:
            return None
        self._last_counts, self._last_ts = counts, now_s
        return CountDecision(counts, reason)
