"""Detector interface: every model family returns the shared :class:`Detections`."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import numpy as np

from edge_agent.detections import Detections

if TYPE_CHECKING:
    from edge_agent.detectors.precision import PrecisionChoice
    from edge_agent.sources.base import Frame


class Detector(ABC):
    labels: tuple[str, ...]
    precision_choice: PrecisionChoice | None = None  # set when built with ``precision: auto``

    @abstractmethod
    def detect(self, frame: np.ndarray) -> Detections:
        """Detect objects in one BGR uint8 HxWx3 frame; boxes in that frame's pixels."""

    def input_fit(self, width: int, height: int) -> tuple[int, int] | None:
        """The size a ``width`` x ``height`` frame is resized to before padding, or None when the detector
        does not resize that way; detectors that letterbox or stretch return it so the frame can be scaled
        by its source."""
        return None

    def prepare(self, frame: Frame) -> None:
        """Make the small copy ``detect_frame`` will read, now: called right after decoding, while the decoded
        picture is still in the CPU caches (a camera loop that reads a few frames ahead calls it per frame)."""
        fit = self.input_fit(frame.width, frame.height)
        if fit is not None and fit != frame.size:
            frame.scaled(*fit)

    def detect_frame(self, frame: Frame) -> Detections:
        """Detect on a source :class:`Frame`; boxes in the full frame's pixels.

        With ``input_fit``, the detector runs on ``frame.scaled(...)`` (made once, shared with the health
        check; a decoder makes it from YUV without the full-size BGR picture) and its boxes are scaled back.
        """
        fit = self.input_fit(frame.width, frame.height)
        if fit is None or fit == frame.size:
            return self.detect(frame.image)
        small = self.detect(frame.scaled(*fit))
        return small.rescaled(frame.width / fit[0], frame.height / fit[1], frame.size)

