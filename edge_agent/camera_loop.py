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
from edge_agent.health import GRID_COLS, GRID_ROWS, CameraHealth, check_stride
from edge_agent.rules import Outcome, ZoneRef, build_rule, rule_for_model
from edge_agent.sources import Frame, Source
from edge_agent.tracking import Tracker

log = logging.getLogger(__name__)
OutcomeSink = Callable[[CameraConfig, Frame, Detections, list[Outcome]], None]
FrameHook = Callable[[CameraConfig, Frame, Detections, Detections | None], None]  # every detected frame (sampling)


@dataclass
class CameraCounters:
    frames: int = 0
    events: int = 0
    skipped_frames: int = 0
    model_errors: int = 0
    detect_ms: deque[float] = field(default_factory=lambda: deque(maxlen=500))


class CameraLoop:
    """Runs until ``stop`` is set or the source ends. ``detector()`` is read every frame group (one frame
    from a live camera, ``group_frames`` from a file or folder), so a swap is live."""

    def __init__(self, camera: CameraConfig, source: Source, detector: Callable[[], Detector],
                 sink: OutcomeSink, counters: CameraCounters, on_frame: FrameHook | None = None) -> None:
        self.camera = camera
        self._on_frame = on_frame
        self.source = source
        self._detector = detector
        self._sink = sink
        self.counters = counters
        self.health = CameraHealth(camera.name, ZoneRef(camera.zone.kind, camera.zone.id, camera.zone.row),
                                   camera.alerts, check_stride(camera.fps))
        self.last_frame_s = time.monotonic()
        self._latest: tuple[Frame, Detections] | None = None
        self._latest_lock = threading.Lock()

    def latest_frame(self) -> tuple[Frame, Detections] | None:
        with self._latest_lock:
            return self._latest

    def _read_group(self, detector: Detector) -> list[Frame]:
        """The next frame, or up to ``group_frames`` of them from a source with a backlog (file, folder).

        Each frame's small copy is made right after it is decoded, while the decoded picture is in the caches.
        """
        size = self.camera.group_frames if self.source.backlog else 1
        group: list[Frame] = []
        while len(group) < size:
            frame = self.source.read()
            if frame is None:
                break
            try:
                detector.prepare(frame)
            except Exception:  # noqa: BLE001 - detect_frame meets the same error on this frame and reports it
                pass
            group.append(frame)
        return group

    def _detect(self, detector: Detector, frame: Frame) -> tuple[Detections | None, list[Outcome]]:
        """(detections, []) or, when the frame could not be detected, (None, the model_error alert or [])."""
        counters = self.counters
        started = time.perf_counter()
        try:
            detections = detector.detect_frame(frame)
        except ValueError as exc:
            counters.skipped_frames += 1
            log.warning("camera %s: frame %d skipped: %s", self.camera.name, frame.index, exc)
            return None, []
        except Exception as exc:  # noqa: BLE001 - onnxruntime failure: alert, keep the loop alive
            counters.model_errors += 1
            log.error("camera %s: detector failed on frame %d: %s", self.camera.name, frame.index, exc)
            return None, [self.health.model_error(exc)]
        counters.detect_ms.append((time.perf_counter() - started) * 1000)
        return detections, []

    def run(self, stop: threading.Event) -> None:
        camera, counters = self.camera, self.counters
        model = self._detector()
        labels = model.labels
        rule = build_rule(camera, labels, getattr(model, "calibrated_reject_score", None))
        tracker = Tracker(camera.tracker) if rule.needs_tracking else None
        period = 1.0 / camera.fps
        next_at = time.monotonic()
        try:
            while not stop.is_set():
                detector = self._detector()
                group = self._read_group(detector)
                if not group:
                    if self.source.ended:
                        log.info("camera %s: source ended", camera.name)
                        return
                    continue  # a live source has no new frame yet; the watchdog raises camera_offline
                self.last_frame_s = time.monotonic()
                counters.frames += len(group)
                if detector is not model:  # a model update (OTA)
                    model = detector
                    rule, rebuilt = rule_for_model(camera, rule, labels, detector)
                    if rebuilt:
                        labels = detector.labels
                        tracker = Tracker(camera.tracker) if rule.needs_tracking else None
                # stage by stage over the group (one frame for live sources): every detection first, then
                # health, tracking and rules frame by frame in order, so results match one-at-a-time
                results = [self._detect(detector, frame) for frame in group]
                model_failed = False
                for frame, (detections, failure) in zip(group, results):
                    now = time.monotonic()
                    # health-checked after detection, so it reads the detector's small copy; every frame of a
                    # camera capped at up to 40 fps, one in a few of a faster loop (health.check_stride)
                    outcomes: list[Outcome] = list(self.health.on_grid(frame.grid(GRID_COLS, GRID_ROWS), now)) \
                        if self.health.due() else []
                    if detections is None:
                        if failure or outcomes:
                            self._sink(camera, frame, Detections.empty(labels), failure + outcomes)
                        model_failed = model_failed or bool(failure)
                        continue
                    with self._latest_lock:
                        self._latest = (frame, detections)
                    tracked = tracker.update(detections) if tracker is not None else None
                    if self._on_frame is not None:
                        self._on_frame(camera, frame, detections, tracked)
                    outcomes += rule.process(detections, tracked, frame.size, now)
                    if outcomes:
                        self._sink(camera, frame, detections, outcomes)
                if model_failed:
                    stop.wait(1.0)
                    continue
                now = time.monotonic()
                next_at = max(next_at + period * len(group), now - period)
                if next_at > now:  # behind the frame rate (or uncapped): straight on to the next frame
                    stop.wait(next_at - now)
        finally:
            counters.skipped_frames += self.source.corrupt_frames
            self.source.close()
