"""Detector interface: every model family returns the shared :class:`Detections`."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from edge_agent.detections import Detections


class Detector(ABC):
    labels: tuple[str, ...]

    @abstractmethod
    def detect(self, frame: np.ndarray) -> Detections:
        """Detect objects in one BGR uint8 HxWx3 frame; boxes in that frame's pixels."""
