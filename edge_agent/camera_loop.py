"""One camera's pipeline: source → detector → count rule; keeps the latest frame for snapshots and OTA tests."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from edge_agent.config import CameraConfig
from edge_agent.detections import Detections
from edge_agent.detectors.base import Detector
from edge_agent.rules import CountRule
from edge_agent.sources import Frame, Source

log = logging.getLogger(__name__)


@dataclass
class CameraCounters:
    frames: int = 0
    events: int = 0
    skipped_frames: int = 0
    detect_ms: deque[float] = field(default_factory=lambda: deque(maxlen=500))


class CameraLoop:
    """Runs until ``stop`` is set or the source ends. ``detector()`` is read every frame, so a swap is live."""

    def __init__(self, camera: CameraConfig, source: Source, detector: Callable[[], Detector],
                 on_counts: Callable[[CameraConfig, Frame, Detections, dict[str, int]], None],
                 counters: CameraCounters) -> None:
        self.camera = camera
        self.source = source
        self._detector = detector
        self._on_counts = on_counts
        self.counters = counters
        self.latest: tuple[Frame, Detections] | None = None
        self._latest_lock = threading.Lock()

    def latest_frame(self) -> tuple[Frame, Detections] | None:
        with self._latest_lock:
            return self.latest

    def run(self, stop: threading.Event) -> None:
        camera, counters = self.camera, self.counters
        rule = CountRule(self._detector().labels, camera.smoothing_frames, camera.publish_interval_s)
        period = 1.0 / camera.fps
        next_at = time.monotonic()
        try:
            while not stop.is_set():
                frame = self.source.read()
                if frame is None:
                    log.info("camera %s: source ended", camera.name)
                    return
                counters.frames += 1
                detector = self._detector()
                if detector.labels != rule.labels:
                    rule = CountRule(detector.labels, camera.smoothing_frames, camera.publish_interval_s)
                started = time.perf_counter()
                try:
                    detections = detector.detect(frame.image)
                except ValueError as exc:
                    counters.skipped_frames += 1
                    log.warning("camera %s: frame %d skipped: %s", camera.name, frame.index, exc)
                    continue
                counters.detect_ms.append((time.perf_counter() - started) * 1000)
                with self._latest_lock:
                    self.latest = (frame, detections)
                decision = rule.update(detections, time.monotonic())
                if decision is not None:
                    self._on_counts(camera, frame, detections, decision.counts)
                    counters.events += 1
                next_at = max(next_at + period, time.monotonic() - period)
                stop.wait(max(0.0, next_at - time.monotonic()))
        finally:
            counters.skipped_frames += self.source.corrupt_frames
            self.source.close()
