"""The edge agent: camera loops, spooled MQTT publishing, remote commands, stats for one device."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml
from pydantic import ValidationError

from edge_agent.camera_loop import CameraCounters, CameraLoop
from edge_agent.health import AlertGate
from edge_agent.home_assistant import discovery_messages, state_message
from edge_agent.metrics import AgentCounters, serve_metrics
from edge_agent.commands import CommandError, CommandHandler
from edge_agent.config import AgentConfig, CameraConfig
from edge_agent.config_slots import ConfigSlots
from edge_agent.detections import Detections
from edge_agent.detectors.base import Detector
from edge_agent.detectors.factory import build_detector
from edge_agent.ota import ModelStore
from edge_agent.publisher import Publisher
from edge_agent.rules import AlertOut, EventOut, Outcome
from edge_agent.sampling import Pick, SamplingPolicy, encode_sample_jpeg, make_sample
from edge_agent.snapshots import ByteBudget, annotate, encode_jpeg
from edge_agent.sources import Frame, SourceError, open_source
from edge_agent.spool import Spool
from fieldline import __version__
from fieldline.config import config_context, describe_errors
from fieldline.contract import (
    Alert,
    CameraInfo,
    Detection,
    DeviceStats,
    DeviceStatus,
    Event,
    LatencyMs,
    ModelRef,
    Zone,
    alerts_topic,
    command_topic,
    events_topic,
    message_id,
    MAX_SAMPLE_BYTES,
    sample_topic,
    snapshot_topic,
    stats_topic,
    status_topic,
)

log = logging.getLogger(__name__)
FPS_WINDOW_S = 5.0  # stats fps: frames over (about) the last this many seconds, so a slower model shows at once
DetectorFactory = Callable[[Path], Detector]


class Agent:
    """Wires sources, the detector, rules, the spool and the publisher for one device.

    It is the ``CommandTarget`` of its ``CommandHandler`` and the ``MetricsSource`` of its Prometheus
    exporter: those modules see it only through these small protocols (no import of this module).
    """

    def __init__(self, config: AgentConfig, detector: Detector, config_path: Path | None = None,
                 detector_factory: DetectorFactory | None = None) -> None:
        self.config = config
        self.detector = detector
        self.config_path = config_path
        self._factory = detector_factory or self._default_factory
        self.spool = Spool(config.data_dir / "spool.db", config.spool_max_events)
        self.models = ModelStore(config.data_dir)
        self.config_slots = ConfigSlots(config.data_dir)
        self.camera_errors: list[str] = []  # cameras that did not open at the latest (re)start
        self.instance = self.spool.instance_id()
        self.boot = self.spool.next_boot()
        self.counters: dict[str, CameraCounters] = {c.name: CameraCounters() for c in config.cameras}
        self.loops: dict[str, CameraLoop] = {}
        self.snapshot_budget = ByteBudget(config.snapshot_budget_bytes_per_min)
        self.commands = CommandHandler(self)
        self.restart_requested = False
        self._snapshot_seq = 0
        self.samplers: dict[str, SamplingPolicy] = {}  # per camera, kept across camera restarts
        self._sample_seq = 0
        self._sample_lock = threading.Lock()
        self._alert_seq = 0
        self.alert_gate = AlertGate()
        self._started = time.monotonic()
        self._fps_marks: deque[tuple[float, int]] = deque()  # (monotonic, frames) at each stats() call
        self._fps_lock = threading.Lock()
        self._stop = threading.Event()
        self._camera_stop = threading.Event()
        self._camera_threads: list[threading.Thread] = []
        self._cameras_lock = threading.RLock()  # held across a config change and its undo (see apply_config)
        self.publisher = Publisher(
            config.mqtt,
            client_id=f"fieldline-edge-{config.site}-{config.device}",
            spool=self.spool,
            status_topic=status_topic(config.site, config.device),
            online_status=lambda: self._status("online"),
            offline_status=self._status("offline"),
        )
        self.publisher.subscribe(command_topic(config.site, config.device, "+"), self.commands.on_message)
        if config.home_assistant.enabled:
            self.publisher.on_connected.append(
                lambda: discovery_messages(self.config, self.detector.labels, __version__))

    def _default_factory(self, path: Path) -> Detector:
        return build_detector(self.config.model, path)

    # ------------------------------------------------------------------ payloads
    @property
    def model_ref(self) -> ModelRef:
        d = self.detector
        return ModelRef(name=getattr(d, "name", "unknown"), version=getattr(d, "version", "0"),
                        sha256=getattr(d, "sha256", ""))

    def _status(self, state: str) -> bytes:
        return DeviceStatus(
            state=state, device=self.config.device, site=self.config.site, boot=self.boot, instance=self.instance,
            ts_ms=int(time.time() * 1000), agent_version=__version__, model=self.model_ref,
            cameras=[CameraInfo(name=c.name, zone=Zone(**c.zone.model_dump())) for c in self.config.cameras],
            config_hash=self.config_hash,
        ).to_json()

    @property
    def config_hash(self) -> str:
        """Short hash of the running config, in every status (a config rollout's gate compares it)."""
        return hashlib.sha256(self.config.model_dump_json().encode()).hexdigest()[:16]

    def _on_outcomes(self, camera: CameraConfig, frame: Frame, detections: Detections,
                     outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            if isinstance(outcome, AlertOut):
                self._emit_alert(camera, outcome, frame.ts_ms)
            else:
                self._emit_event(camera, frame, outcome)
                self.counters[camera.name].events += 1
                if outcome.kind == "count" and self.config.home_assistant.enabled:
                    topic, payload = state_message(self.config, camera.name, outcome.zone.id, outcome.counts,
                                                   frame.ts_ms)
                    self.publisher.publish_now(topic, payload, qos=0, retain=True)

    def _emit_event(self, camera: CameraConfig, frame: Frame, out: EventOut) -> None:
        width, height = frame.size
        dets_in = out.detections
        boxes, names = dets_in.normalized_boxes(width, height), dets_in.label_names()
        tracks = dets_in.tracker_id
        dets = [Detection(label=names[i], score=round(float(dets_in.confidence[i]), 4),
                          box=tuple(round(float(v), 5) for v in boxes[i]),
                          track=int(tracks[i]) if tracks is not None else None) for i in range(len(dets_in))]
        model, cfg = self.model_ref, self.config
        jpeg = self._snapshot_jpeg(frame, dets_in) if out.snapshot else None

        def build(seq: int) -> list[tuple[str, bytes, int]]:
            event_id = message_id(cfg.device, self.instance, self.boot, seq)
            # the image goes out first, so the event never points at a snapshot the cloud has not got
            snapshot = [(snapshot_topic(cfg.site, cfg.device, event_id), jpeg, 1)] if jpeg is not None else []
            return [*snapshot, (events_topic(cfg.site, cfg.device), Event(
                id=event_id, device=cfg.device, site=cfg.site, instance=self.instance, camera=camera.name,
                boot=self.boot, seq=seq,
                ts_ms=frame.ts_ms, zone=Zone(kind=out.zone.kind, id=out.zone.id, row=out.zone.row), kind=out.kind,
                model=model, detections=dets, counts=out.counts, verdict=out.verdict,
                snapshot=event_id if jpeg is not None else None,
            ).to_json(), 1)]

        self.spool.append_sequenced(build)
        self.publisher.notify()

    def _snapshot_jpeg(self, frame: Frame, detections: Detections) -> bytes | None:
        jpeg = encode_jpeg(annotate(frame.image, detections))
        if not self.snapshot_budget.take(len(jpeg)):
            log.info("snapshot skipped: budget of %d bytes/min spent", self.config.snapshot_budget_bytes_per_min)
            return None
        return jpeg

    def _emit_alert(self, camera: CameraConfig, out: AlertOut, ts_ms: int) -> None:
        if not self.alert_gate.allow(out.dedup_key, time.monotonic(), camera.alerts.cooldown_s):
            return
        cfg = self.config
        self._alert_seq += 1
        zone = Zone(kind=out.zone.kind, id=out.zone.id, row=out.zone.row) if out.zone else None
        alert = Alert(id=message_id(cfg.device, self.instance, self.boot, f"a{self._alert_seq}"), ts_ms=ts_ms,
                      device=cfg.device, site=cfg.site, zone=zone, severity=out.severity, code=out.code, message=out.message,
                      dedup_key=f"{cfg.site}:{cfg.device}:{out.dedup_key}")
        log.warning("alert %s: %s", out.code, out.message)
        self.spool.append(alerts_topic(cfg.site, cfg.device), alert.to_json(), qos=1)
        self.publisher.notify()

    def enqueue(self, topic: str, payload: bytes) -> None:
        """A QoS 1 message into the spool (kept across link loss and restarts), then wake the publisher."""
        self.spool.append(topic, payload, qos=1)
        self.publisher.notify()

    def agent_counters(self) -> AgentCounters:
        return AgentCounters(
            spool_dropped=self.spool.dropped, published=self.publisher.published,
            reconnects=self.publisher.reconnects, connected=self.publisher.connected,
            snapshots_refused=self.snapshot_budget.refused, commands_rejected=self.commands.rejected,
            commands_repeated=self.commands.repeated, samples=self._sample_counts("picked"),
            samples_suppressed=self._sample_counts("suppressed"))

    def _sample_counts(self, which: str) -> dict[str, int]:
        total: dict[str, int] = {}
        for sampler in list(self.samplers.values()):
            for key, n in getattr(sampler, which).items():
                total[key] = total.get(key, 0) + n
        return total

    # ------------------------------------------------------------------ samples for the datasets (issue 40)
    def _on_frame(self, camera: CameraConfig, frame: Frame, detections: Detections,
                  tracked: Detections | None) -> None:
        """Every detected frame of a camera with sampling on: the policy decides (camera thread)."""
        sampler = self.samplers.get(camera.name)
        if sampler is None or not camera.sampling.enabled:
            return
        pick = sampler.trigger(frame, detections, tracked)
        if pick is not None:
            try:
                self._send_sample(camera, pick)
            except ValueError as exc:
                log.warning("camera %s: sample not sent: %s", camera.name, exc)

    def _send_sample(self, camera: CameraConfig, pick: Pick, note: str | None = None,
                     request_id: str | None = None) -> str | None:
        """Through the policy's interval, duplicate and budget checks into the spool; the sample id or None."""
        sampler = self.samplers[camera.name]
        cfg = self.config
        with self._sample_lock:
            digest = sampler.admit(pick.reason, pick.frame.image)
            if digest is None:
                return None
            jpeg = encode_sample_jpeg(pick.frame.image, camera.sampling, MAX_SAMPLE_BYTES * 3 // 4 - 16 * 1024)
            if not sampler.charge(pick.reason, len(jpeg), digest):
                return None
            self._sample_seq += 1
            sample_id = message_id(cfg.device, self.instance, self.boot, f"s{self._sample_seq}")
        sample = make_sample(pick, jpeg, sample_id=sample_id, site=cfg.site, device=cfg.device, instance=self.instance,
                             camera=camera, model=self.model_ref, model_labels=list(self.detector.labels),
                             note=note, request_id=request_id)
        self.enqueue(sample_topic(cfg.site, cfg.device, sample_id), sample.to_json())
        return sample_id

    def sample_now(self, camera: str | None, request_id: str | None, note: str | None) -> dict:
        """The ``sample`` command: the camera's latest frame as a Sample with reason on_demand."""
        name = camera or self.config.cameras[0].name
        loop = self.loops.get(name)
        latest = loop.latest_frame() if loop else None
        if latest is None:
            raise CommandError(f"camera {name!r} has no frame yet" if loop else f"no camera named {name!r}")
        if name not in self.samplers:
            self.samplers[name] = SamplingPolicy(loop.camera.sampling)
        try:
            sample_id = self._send_sample(loop.camera, Pick("on_demand", *latest), note, request_id)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        return {"sample": sample_id, "camera": name}

    def publish_snapshot(self, camera: str) -> str:
        """JPEG of the camera's latest frame with boxes, on ``snapshots/{id}``; returns the id."""
        loop = self.loops.get(camera)
        latest = loop.latest_frame() if loop else None
        if latest is None:
            raise CommandError(f"camera {camera!r} has no frame yet" if loop else f"no camera named {camera!r}")
        jpeg = self._snapshot_jpeg(*latest)
        if jpeg is None:
            raise CommandError(f"snapshot budget of {self.config.snapshot_budget_bytes_per_min} bytes/min is spent")
        self._snapshot_seq += 1
        snap_id = message_id(self.config.device, self.instance, self.boot, f"snap{self._snapshot_seq}")
        self.spool.append(snapshot_topic(self.config.site, self.config.device, snap_id), jpeg, qos=1)
        self.publisher.notify()
        return snap_id

    def stats(self) -> DeviceStats:
        all_ms = [ms for c in self.counters.values() for ms in c.detect_ms]
        elapsed = max(time.monotonic() - self._started, 1e-6)
        cpu = os.times()
        return DeviceStats(
            device=self.config.device, site=self.config.site, ts_ms=int(time.time() * 1000),
            fps=self._recent_fps(elapsed),
            latency_ms=LatencyMs(p50=round(float(np.percentile(all_ms, 50)), 3) if all_ms else 0.0,
                                 p95=round(float(np.percentile(all_ms, 95)), 3) if all_ms else 0.0),
            spool_depth=self.spool.depth(),
            dropped=self.spool.dropped + sum(c.skipped_frames for c in self.counters.values()),
            cpu=round(100.0 * (cpu.user + cpu.system) / elapsed, 1),
            samples=self._sample_counts("picked") or None,
        )

    def _recent_fps(self, elapsed: float) -> float:
        """Frames per second since the oldest stats call within ``FPS_WINDOW_S`` (since start until then)."""
        now, frames = time.monotonic(), sum(c.frames for c in self.counters.values())
        with self._fps_lock:
            marks = self._fps_marks
            marks.append((now, frames))
            while len(marks) > 2 and now - marks[1][0] >= FPS_WINDOW_S:
                marks.popleft()
            start_s, start_frames = marks[0]
        if now - start_s < 1.0:
            return round(frames / elapsed, 3)
        return round((frames - start_frames) / (now - start_s), 3)

    def _publish_status(self) -> None:
        """The retained status again (after a model change, so the cloud sees the sha256 now running)."""
        self.publisher.publish_now(status_topic(self.config.site, self.config.device), self._status("online"),
                                   qos=1, retain=True)

    # ------------------------------------------------------------------ remote changes
    def _sample_frame(self) -> np.ndarray | None:
        for loop in self.loops.values():
            latest = loop.latest_frame()
            if latest is not None:
                return latest[0].image
        return None

    def _swap_detector(self, detector: Detector) -> None:
        """Serve ``detector`` from now on: warmed on a live frame first (its first run is slow), and the latency
        window restarted, so stats report the new model's latency alone."""
        sample = self._sample_frame()
        if sample is not None:
            try:
                detector.detect(sample)
            except Exception:  # noqa: BLE001 - the callers tested it already; a warm-up failure changes nothing
                log.warning("warm-up inference of the new detector failed", exc_info=True)
        self.detector = detector
        for counters in self.counters.values():
            counters.detect_ms.clear()

    def install_model(self, url: str, sha256: str, token: str | None = None) -> dict:
        """Fetch (with ``token`` as the bearer credential, if given), verify, test, swap; see ``ModelStore``."""
        running = Path(self.config.model.path)
        self._swap_detector(self.models.install(url, sha256, running, self._factory, self._sample_frame(),
                                                token=token))
        self._persist(self.config.model_copy(update={"model": self.config.model.model_copy(
            update={"path": self.models.current})}))
        self._publish_status()
        return {"model": self.model_ref.model_dump(), "previous": str(self.models.previous)}

    def rollback_model(self) -> dict:
        self._swap_detector(self.models.rollback(self._factory, self._sample_frame()))
        self._persist(self.config.model_copy(update={"model": self.config.model.model_copy(
            update={"path": self.models.current})}))
        self._publish_status()
        return {"model": self.model_ref.model_dump()}

    def apply_config(self, new: AgentConfig) -> str:
        """Apply live when only cameras/model settings change; otherwise persist and restart. Returns how.

        The running config goes to the previous-config slot first. A live change that fails (model settings
        that do not load or fail on a live frame, a camera that does not open) is undone here: the running
        config is applied again and the slot restored, and the error says so."""
        old = self.config
        prior = self.config_slots.load_previous()
        self.config_slots.save_previous(old.model_dump(mode="json"))
        if (new.mqtt, new.data_dir, new.spool_max_events) != (old.mqtt, old.data_dir, old.spool_max_events):
            self._persist(new)
            self.request_restart()
            return "restart"
        with self._cameras_lock:  # the run loop must not see the cameras of a config being undone (none, say)
            try:
                self._apply_live(new)
            except CommandError as exc:
                if prior is not None:
                    self.config_slots.save_previous(prior)
                else:
                    self.config_slots.previous.unlink(missing_ok=True)
                self._apply_live(old)
                raise CommandError(f"{exc}; the previous config is restored") from None
        return "live"

    def rollback_config(self) -> dict:
        """Make the previous-config slot current again (keeping ``model.path``: model files are not a config
        matter); the replaced config becomes the previous."""
        prior = self.config_slots.load_previous()
        if prior is None:
            raise CommandError("rollback: there is no previous config")
        prior["model"] = {**prior.get("model", {}), "path": str(self.config.model.path)}
        try:
            previous = AgentConfig.model_validate(prior, context=config_context(self.config_path))
        except ValidationError as exc:
            raise CommandError("rollback: the previous config no longer validates: "
                               + "; ".join(describe_errors(exc))) from None
        how = self.apply_config(previous) if previous != self.config else "unchanged"
        return {"rolled_back": how, "config_hash": self.config_hash}

    def _apply_live(self, new: AgentConfig) -> None:
        old = self.config
        detector = None
        if new.model != old.model:
            try:
                # the default factory reads self.config.model: build from the new settings, not the running ones
                detector = (self._factory(Path(new.model.path)) if self._factory != self._default_factory
                            else build_detector(new.model))
                sample = self._sample_frame()
                if sample is not None:
                    detector.detect(sample)
            except Exception as exc:  # noqa: BLE001
                raise CommandError(f"new model settings do not load or run: {exc}") from None
        self._persist(new)
        if detector is not None:
            self._swap_detector(detector)
        self._restart_cameras()
        self._publish_status()
        if self.camera_errors:
            raise CommandError("; ".join(self.camera_errors))

    def _persist(self, config: AgentConfig) -> None:
        self.config = config
        if self.config_path is None:
            return
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
        os.replace(tmp, self.config_path)

    def request_restart(self) -> None:
        self.restart_requested = True
        self._stop.set()

    # ------------------------------------------------------------------ loops
    def _start_cameras(self) -> int:
        self._camera_stop = threading.Event()
        self._camera_threads, self.loops, self.camera_errors = [], {}, []
        for camera in self.config.cameras:
            try:
                source = open_source(camera.source)
            except SourceError as exc:
                log.error("camera %s: %s", camera.name, exc)
                self.camera_errors.append(f"camera {camera.name}: {exc}")
                continue
            counters = self.counters.setdefault(camera.name, CameraCounters())
            sampler = self.samplers.get(camera.name)
            if sampler is None or sampler.config != camera.sampling:
                self.samplers[camera.name] = SamplingPolicy(camera.sampling)
            loop = CameraLoop(camera, source, lambda: self.detector, self._on_outcomes, counters, self._on_frame)
            self.loops[camera.name] = loop
            thread = threading.Thread(target=loop.run, args=(self._camera_stop,), name=f"camera-{camera.name}",
                                      daemon=True)
            self._camera_threads.append(thread)
            thread.start()
        return len(self._camera_threads)

    def _stop_cameras(self) -> None:
        self._camera_stop.set()
        for thread in self._camera_threads:
            thread.join(timeout=10)

    def _restart_cameras(self) -> None:
        with self._cameras_lock:
            self._stop_cameras()
            self._start_cameras()

    def _check_silent_cameras(self) -> None:
        now = time.monotonic()
        for thread, loop in zip(self._camera_threads, self.loops.values()):
            silent = now - loop.last_frame_s
            if thread.is_alive() and silent >= loop.camera.alerts.offline_after_s:
                self._emit_alert(loop.camera, loop.health.offline(silent), int(time.time() * 1000))

    def _stats_loop(self, stop: threading.Event) -> None:
        topic = stats_topic(self.config.site, self.config.device)
        while not stop.wait(self.config.stats_interval_s):
            self.publisher.publish_now(topic, self.stats().to_json(), qos=0)

    def run(self, stop: threading.Event | None = None, duration_s: float | None = None) -> int:
        """Run until ``stop`` is set, ``duration_s`` passes, a restart is requested, or every source ended."""
        if stop is not None:
            self._stop = stop
        stop = self._stop
        with self._cameras_lock:
            opened = self._start_cameras()
        if not opened:
            log.error("no camera could be opened; the agent stops")
            self.spool.close()
            return 2
        self.publisher.start()
        metrics_server = None
        if self.config.metrics_port:
            metrics_server, _ = serve_metrics(self, self.config.metrics_port, self.config.metrics_host)
        helpers = [threading.Thread(target=self._stats_loop, args=(stop,), name="stats", daemon=True),
                   threading.Thread(target=self.commands.run, args=(stop,), name="commands", daemon=True)]
        for thread in helpers:
            thread.start()
        deadline = None if duration_s is None else time.monotonic() + duration_s
        try:
            while not stop.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                with self._cameras_lock:
                    if not any(t.is_alive() for t in self._camera_threads):
                        break
                    self._check_silent_cameras()
                stop.wait(0.2)
        finally:
            stop.set()
            with self._cameras_lock:
                self._stop_cameras()
            for thread in helpers:
                thread.join(timeout=5)
            self.publisher.wait_drained(timeout=3.0 if self.publisher.connected else 0.0)
            self.publisher.stop(offline_status=self._status("offline"))
            self.spool.close()
            self.commands.ledger.close()
            if metrics_server is not None:
                metrics_server.shutdown()
        return 0
