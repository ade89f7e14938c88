"""The one detection result type shared by detectors, trackers, zones and publishers."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Detections:
    """N detections in pixel coordinates of the original frame.

    ``labels`` is the class-name table of the model; ``class_id`` indexes into it.
    """

    xyxy: np.ndarray  # (N,4) float32
    confidence: np.ndarray  # (N,) float32
    class_id: np.ndarray  # (N,) int64
    tracker_id: np.ndarray | None = None  # (N,) int64 once a tracker has run
    labels: tuple[str, ...] = field(default_factory=tuple)
    class_scores: np.ndarray | None = None  # (N, C) every class's score, when the detector reports them

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        self.confidence = np.asarray(self.confidence, dtype=np.float32).reshape(-1)
        self.class_id = np.asarray(self.class_id, dtype=np.int64).reshape(-1)
        if self.tracker_id is not None:
            self.tracker_id = np.asarray(self.tracker_id, dtype=np.int64).reshape(-1)
        self.labels = tuple(self.labels)
        n = len(self.xyxy)
        if self.class_scores is not None:
            self.class_scores = np.asarray(self.class_scores, dtype=np.float32)
            if self.class_scores.ndim != 2 or len(self.class_scores) != n:
                raise ValueError(f"Detections class_scores must be (N, C) with N = {n}, got "
                                 f"{self.class_scores.shape}")
        if len(self.confidence) != n or len(self.class_id) != n or (
                self.tracker_id is not None and len(self.tracker_id) != n):
            raise ValueError(f"Detections arrays disagree in length: xyxy {n}, confidence "
                             f"{len(self.confidence)}, class_id {len(self.class_id)}")

    def __len__(self) -> int:
        return len(self.xyxy)

    @classmethod
    def empty(cls, labels: tuple[str, ...] | list[str] = ()) -> "Detections":
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64),
                   None, tuple(labels))

    def label_names(self) -> list[str]:
        """Class name of each detection (``str(class_id)`` when the table has no entry)."""
        return [self.labels[c] if 0 <= c < len(self.labels) else str(int(c)) for c in self.class_id]

    def filter(self, mask: np.ndarray) -> "Detections":
        """Subset by boolean mask or index array."""
        mask = np.asarray(mask)
        return Detections(self.xyxy[mask], self.confidence[mask], self.class_id[mask],
                          None if self.tracker_id is None else self.tracker_id[mask], self.labels,
                          None if self.class_scores is None else self.class_scores[mask])

    def rescaled(self, sx: float, sy: float, size: tuple[int, int]) -> "Detections":
        """Boxes multiplied by (sx, sy) and clipped to a ``size`` = (width, height) frame."""
        xyxy = self.xyxy * np.array([sx, sy, sx, sy], np.float32)
        np.clip(xyxy[:, 0::2], 0, size[0], out=xyxy[:, 0::2])
        np.clip(xyxy[:, 1::2], 0, size[1], out=xyxy[:, 1::2])
        return Detections(xyxy, self.confidence, self.class_id, self.tracker_id, self.labels, self.class_scores)

    def normalized_boxes(self, width: int, height: int) -> np.ndarray:
        """Boxes scaled to 0..1 by the frame size (the wire format), clipped."""
        scale = np.array([width, height, width, height], np.float32)
        return np.clip(self.xyxy / scale, 0.0, 1.0)
