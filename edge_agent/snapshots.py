"""Evidence images: boxes drawn on the frame, JPEG-encoded, under a bytes-per-minute budget."""

from __future__ import annotations

import time

import cv2
import numpy as np

from edge_agent.detections import Detections

_COLOURS = [(60, 180, 75), (0, 165, 255), (40, 40, 230), (200, 130, 0), (180, 30, 145), (128, 128, 0)]


def annotate(image: np.ndarray, detections: Detections) -> np.ndarray:
    """A copy of ``image`` with each detection's box and label drawn."""
    out = image.copy()
    names = detections.label_names()
    for i, box in enumerate(detections.xyxy.astype(int)):
        colour = _COLOURS[int(detections.class_id[i]) % len(_COLOURS)]
        cv2.rectangle(out, (box[0], box[1]), (box[2], box[3]), colour, 2)
        text = f"{names[i]} {detections.confidence[i]:.2f}"
        cv2.putText(out, text, (box[0], max(12, box[1] - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.4, colour, 1, cv2.LINE_AA)
    return out


def encode_jpeg(image: np.ndarray, quality: int = 80, max_width: int = 1280) -> bytes:
    if image.shape[1] > max_width:
        scale = max_width / image.shape[1]
        image = cv2.resize(image, (max_width, int(image.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return data.tobytes()


class ByteBudget:
    """Token bucket: at most ``bytes_per_period`` per ``period_s`` on average (a minute by default), bursts up to
    one period's worth. Snapshots use bytes per minute; frame samples (``edge_agent.sampling``) bytes per hour."""

    def __init__(self, bytes_per_period: int, clock=time.monotonic, period_s: float = 60.0) -> None:
        self.rate = bytes_per_period / period_s
        self.capacity = float(bytes_per_period)
        self._tokens = float(bytes_per_period)
        self._clock = clock
        self._last = clock()
        self.refused = 0

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
        self._last = now

    def take(self, size: int) -> bool:
        self._refill()
        if size > self._tokens:
            self.refused += 1
            return False
        self._tokens -= size
        return True

    def charge(self, size: int) -> None:
        """Spend ``size`` even past the budget (for what must go anyway, e.g. a frame an operator asked for)."""
        self._refill()
        self._tokens -= size
