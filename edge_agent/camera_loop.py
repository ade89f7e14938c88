"""One camera's pipeline: source → detector → tracker → rule (+ health checks) → outcomes for the agent.

It keeps the latest frame and detections for snapshots and for the OTA sample-frame test.
"""

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
from edge_agent.health import GRID_COLS, GRID_ROWS, CameraHealth
from edge_agent.rules import Outcome, ZoneRef, build_rule
from edge_agent.sources import Frame, Source
from edge_agent.tracking import Tracker

log = logging.getLogger(__name__)
OutcomeSink = Callable[[CameraConfig, Frame, Detections, list[Outcome]], None]


@dataclass
class CameraCounters:
    frames: int = 0
    events: int = 0
    skipped_frames: int = 0
    model_errors: int = 0
    detect_ms: deque[float] = field(default_factory=lambda: deque(maxlen=500))


class CameraLoop:
    """Runs until ``stop`` is set or the source ends. ``detector()`` is read every frame, so a swap is live."""

    def __init__(self, camera: CameraConfig, source: Source, detector: Callable[[], Detector],
                 sink: OutcomeSink, counters: CameraCounters) -> None:
        self.camera = camera
        self.source = source
        self._detector = detector
        self._sink = sink
        self.counters = counters
        self.health = CameraHealth(camera.name, ZoneRef(camera.zone.kind, camera.zone.id, camera.zone.row),
                                   camera.alerts)
        self.last_frame_s = time.monotonic()
        self._latest: tuple[Frame, Detections] | None = None
        self._latest_lock = threading.Lock()

    def latest_frame(self) -> tuple[Frame, Detections] | None:
        with self._latest_lock:
            return self._latest

    def run(self, stop: threading.Event) -> None:
        camera, counters = self.camera, self.counters
        labels = self._detector().labels
        rule = build_rule(camera, labels)
        tracker = Tracker(camera.tracker) if rule.needs_tracking else None
        period = 1.0 / camera.fps
        next_at = time.monotonic()
        try:
            while not stop.is_set():
                frame = self.source.read()
                if frame is None:
                    if self.source.ended:
                        log.info("camera %s: source ended", camera.name)
                        return
                    continue  # a live source has no new frame yet; the watchdog raises camera_offline
                now = time.monotonic()
                self.last_frame_s = now
                counters.frames += 1
                detector = self._detector()
                if detector.labels != labels:  # a model update changed the label set
                    labels = detector.labels
                    rule = build_rule(camera, labels)
                    tracker = Tracker(camera.tracker) if rule.needs_tracking else None
                started = time.perf_counter()
                failure: list[Outcome] | None = None
                try:
                    detections = detector.detect_frame(frame)
                except ValueError as exc:
                    counters.skipped_frames += 1
                    log.warning("camera %s: frame %d skipped: %s", camera.name, frame.index, exc)
                    failure = []
                except Exception as exc:  # noqa: BLE001 - onnxruntime failure: alert, keep the loop alive
                    counters.model_errors += 1
                    log.error("camera %s: detector failed on frame %d: %s", camera.name, frame.index, exc)
                    failure = [self.health.model_error(exc)]
                # every frame is health-checked, after detection so it reads the detector's small copy
                outcomes: list[Outcome] = list(self.health.on_grid(frame.grid(GRID_COLS, GRID_ROWS), now))
                if failure is not None:
                    if failure or outcomes:
                        self._sink(camera, frame, Detections.empty(labels), failure + outcomes)
                    if failure:
                        stop.wait(1.0)
                    continue
                counters.detect_ms.append((time.perf_counter() - started) * 1000)
                with self._latest_lock:
                    self._latest = (frame, detections)
                tracked = tracker.update(detections) if tracker is not None else None
                outcomes += rule.process(detections, tracked, frame.size, now)
                if outcomes:
                    self._sink(camera, frame, detections, outcomes)
                now = time.monotonic()
                next_at = max(next_at + period, now - period)
                if next_at > now:  # behind the frame rate (or uncapped): straight on to the next frame
                    stop.wait(next_at - now)
        finally:
            counters.skipped_frames += self.source.corrupt_frames
            self.source.close()
