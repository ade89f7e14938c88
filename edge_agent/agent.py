"""The edge agent: one loop per camera (source → detector → count rule → event), spooled MQTT publishing."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from edge_agent.config import AgentConfig, CameraConfig
from edge_agent.detections import Detections
from edge_agent.detectors.base import Detector
from edge_agent.publisher import Publisher
from edge_agent.rules import CountRule
from edge_agent.sources import Frame, Source, SourceError, open_source
from edge_agent.spool import Spool
from fieldline import __version__
from fieldline.contract import (
    CameraInfo,
    Detection,
    DeviceStats,
    DeviceStatus,
    Event,
    LatencyMs,
    ModelRef,
    Zone,
    events_topic,
    stats_topic,
    status_topic,
)

log = logging.getLogger(__name__)


@dataclass
class CameraCounters:
    frames: int = 0
    events: int = 0
    skipped_frames: int = 0
    detect_ms: deque[float] = field(default_factory=lambda: deque(maxlen=500))


class Agent:
    """Wires sources, the detector, rules, the spool and the publisher for one device."""

    def __init__(self, config: AgentConfig, detector: Detector) -> None:
        self.config = config
        self.detector = detector
        self.spool = Spool(config.data_dir / "spool.db", config.spool_max_events)
        self.boot = self.spool.next_boot()
        self.model_ref = ModelRef(
            name=getattr(detector, "name", "unknown"),
            version=getattr(detector, "version", "0"),
            sha256=getattr(detector, "sha256", ""),
        )
        self.config_hash = hashlib.sha256(config.model_dump_json().encode()).hexdigest()[:16]
        self.counters = {c.name: CameraCounters() for c in config.cameras}
        self._started = time.monotonic()
        self.publisher = Publisher(
            config.mqtt,
            client_id=f"fieldline-edge-{config.site}-{config.device}",
            spool=self.spool,
            status_topic=status_topic(config.site, config.device),
            online_status=lambda: self._status("online"),
            offline_status=self._status("offline"),
        )

    # ------------------------------------------------------------------ payloads
    def _status(self, state: str) -> bytes:
        return DeviceStatus(
            state=state,
            device=self.config.device,
            site=self.config.site,
            boot=self.boot,
            ts_ms=int(time.time() * 1000),
            agent_version=__version__,
            model=self.model_ref,
            cameras=[CameraInfo(name=c.name, zone=Zone(**c.zone.model_dump())) for c in self.config.cameras],
            config_hash=self.config_hash,
        ).to_json()

    def _emit_count(self, camera: CameraConfig, frame: Frame, detections: Detections, counts: dict[str, int]) -> int:
        height, width = frame.image.shape[:2]
        boxes = detections.normalized_boxes(width, height)
        names = detections.label_names()
        dets = [
            Detection(label=names[i], score=round(float(detections.confidence[i]), 4),
                      box=tuple(round(float(v), 5) for v in boxes[i]))
            for i in range(len(detections))
        ]

        def build(seq: int) -> bytes:
            return Event(
                id=f"{self.config.device}-{self.boot}-{seq}",
                device=self.config.device,
                site=self.config.site,
                camera=camera.name,
                boot=self.boot,
                seq=seq,
                ts_ms=frame.ts_ms,
                zone=Zone(**camera.zone.model_dump()),
                kind="count",
                model=self.model_ref,
                detections=dets,
                counts=counts,
            ).to_json()

        seq = self.spool.append_sequenced(events_topic(self.config.site, self.config.device), 1, build)
        self.publisher.notify()
        return seq

    def stats(self) -> DeviceStats:
        all_ms = [ms for c in self.counters.values() for ms in c.detect_ms]
        elapsed = max(time.monotonic() - self._started, 1e-6)
        frames = sum(c.frames for c in self.counters.values())
        cpu = os.times()
        return DeviceStats(
            device=self.config.device,
            site=self.config.site,
            ts_ms=int(time.time() * 1000),
            fps=round(frames / elapsed, 3),
            latency_ms=LatencyMs(
                p50=round(float(np.percentile(all_ms, 50)), 3) if all_ms else 0.0,
                p95=round(float(np.percentile(all_ms, 95)), 3) if all_ms else 0.0,
            ),
            spool_depth=self.spool.depth(),
            dropped=self.spool.dropped + sum(c.skipped_frames for c in self.counters.values()),
            cpu=round(100.0 * (cpu.user + cpu.system) / elapsed, 1),
        )

    # ------------------------------------------------------------------ loops
    def _camera_loop(self, camera: CameraConfig, source: Source, stop: threading.Event) -> None:
        rule = CountRule(self.detector.labels, camera.smoothing_frames, camera.publish_interval_s)
        counters = self.counters[camera.name]
        period = 1.0 / camera.fps
        next_at = time.monotonic()
        try:
            while not stop.is_set():
                frame = source.read()
                if frame is None:
                    log.info("camera %s: source ended", camera.name)
                    return
                counters.frames += 1
                started = time.perf_counter()
                try:
                    detections = self.detector.detect(frame.image)
                except ValueError as exc:
                    counters.skipped_frames += 1
                    log.warning("camera %s: frame %d skipped: %s", camera.name, frame.index, exc)
                    continue
                counters.detect_ms.append((time.perf_counter() - started) * 1000)
                decision = rule.update(detections, time.monotonic())
                if decision is not None:
                    self._emit_count(camera, frame, detections, decision.counts)
                    counters.events += 1
                next_at = max(next_at + period, time.monotonic() - period)
                stop.wait(max(0.0, next_at - time.monotonic()))
        finally:
            counters.skipped_frames += source.corrupt_frames
            source.close()

    def _stats_loop(self, stop: threading.Event) -> None:
        topic = stats_topic(self.config.site, self.config.device)
        while not stop.wait(self.config.stats_interval_s):
            self.publisher.publish_now(topic, self.stats().to_json(), qos=0)

    def run(self, stop: threading.Event | None = None, duration_s: float | None = None) -> int:
        """Run until ``stop`` is set, ``duration_s`` passes, or every source has ended. Returns an exit code."""
        stop = stop or threading.Event()
        sources: list[tuple[CameraConfig, Source]] = []
        for camera in self.config.cameras:
            try:
                sources.append((camera, open_source(camera.source)))
            except SourceError as exc:
                log.error("camera %s: %s", camera.name, exc)
        if not sources:
            log.error("no camera could be opened; the agent stops")
            self.spool.close()
            return 2
        self.publisher.start()
        threads = [
            threading.Thread(target=self._camera_loop, args=(cam, src, stop), name=f"camera-{cam.name}", daemon=True)
            for cam, src in sources
        ]
        threads.append(threading.Thread(target=self._stats_loop, args=(stop,), name="stats", daemon=True))
        for thread in threads:
            thread.start()
        deadline = None if duration_s is None else time.monotonic() + duration_s
        try:
            while not stop.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if not any(t.is_alive() for t in threads[:-1]):
                    break
                stop.wait(0.2)
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=5)
            self.publisher.wait_drained(timeout=3.0 if self.publisher.connected else 0.0)
            self.publisher.stop(offline_status=self._status("offline"))
            self.spool.close()
        return 0
