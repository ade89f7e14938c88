"""``fieldline edge doctor``: checks camera, model, broker, disk and clock before a site visit is needed."""

from __future__ import annotations

import json
import shutil
import threading
import time
from dataclasses import dataclass

import paho.mqtt.client as mqtt

from edge_agent.config import AgentConfig
from edge_agent.sources import SourceError, open_source

MIN_FREE_BYTES = 500 * 1024 * 1024
EARLIEST_SANE_TS = 1_735_689_600  # 2025-01-01: a clock before this has never been set (no RTC, no NTP)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def check_cameras(config: AgentConfig) -> list[Check]:
    results = []
    for camera in config.cameras:
        try:
            source = open_source(camera.source)
            deadline = time.monotonic() + 10
            frame = source.read()
            while frame is None and not source.ended and time.monotonic() < deadline:
                frame = source.read()  # a live stream may still be connecting
            source.close()
        except SourceError as exc:
            results.append(Check(f"camera {camera.name}", False, str(exc)))
            continue
        if frame is None:
            results.append(Check(f"camera {camera.name}", False, "opened but delivered no frame"))
        else:
            w, h = frame.size
            results.append(Check(f"camera {camera.name}", True, f"{w}x{h} frame read"))
    return results


def _labels_text(labels: tuple[str, ...], shown: int = 8) -> str:
    more = f" … ({len(labels)} in all)" if len(labels) > shown else ""
    return ", ".join(labels[:shown]) + more


def check_model(config: AgentConfig) -> Check:
    import numpy as np

    from edge_agent.detectors.factory import build_detector
    from edge_agent.detectors.onnx_detector import ModelLoadError
    from edge_agent.detectors.precision import cpu_summary, cpu_text

    try:
        detector = build_detector(config.model)
    except ModelLoadError as exc:
        return Check("model", False, str(exc))
    frame = np.full((480, 640, 3), 114, np.uint8)
    detector.detect(frame)
    started = time.perf_counter()
    for _ in range(5):
        detector.detect(frame)
    ms = (time.perf_counter() - started) / 5 * 1000
    choice = f"; precision auto: {detector.precision_choice.chosen.name} ({detector.precision_choice.reason})" \
        if detector.precision_choice else ""
    canvas = getattr(detector, "input_canvas", None)  # FieldLine-native files: the letterbox actually run
    shape = f" run at {'x'.join(map(str, canvas(640, 480)))} ({detector.letterbox} letterbox)" if canvas else ""
    return Check("model", True, f"{detector.name} {detector.version}, labels {_labels_text(detector.labels)}, "
                                f"{ms:.1f} ms per 640x480 frame{shape} on {cpu_text(cpu_summary())}{choice}"
                                f"{_conf_text(detector)}")


def _conf_text(detector) -> str:
    """Where the score threshold comes from (FieldLine-native files; the others always use the config's)."""
    source = getattr(detector, "conf_source", None)
    if source is None:
        return ""
    text = {"config": "set in the config", "file": "calibrated, from the file",
            "default": "default; the file has no calibrated one: `fieldline model calibrate`"}[source]
    if source == "file":
        from edge_agent.detectors.session import COUNT_CALIBRATION_META

        try:
            calibrated_at = json.loads(detector.metadata.get(COUNT_CALIBRATION_META, "{}")).get("input_size")
        except ValueError:
            calibrated_at = None
        if calibrated_at and calibrated_at != detector.input_size:
            text += (f"; WARNING: calibrated at input {calibrated_at}, this config runs {detector.input_size}: "
                     f"`fieldline model calibrate --input-size {detector.input_size}` re-picks it")
    reject = getattr(detector, "calibrated_reject_score", None)
    reject_text = f"; inspection rules reject at {reject:.2f} unless rule.reject_score is set" if reject else ""
    return f", conf {detector.conf_threshold:.2f} ({text}){reject_text}"


def check_broker(config: AgentConfig, timeout_s: float = 5.0) -> Check:
    m = config.mqtt
    done = threading.Event()
    outcome: dict[str, str] = {}

    def on_connect(client, userdata, flags, reason_code, properties=None) -> None:
        outcome["result"] = "ok" if not reason_code.is_failure else f"refused: {reason_code}"
        done.set()

    protocol = mqtt.MQTTv5 if m.protocol == "5" else mqtt.MQTTv311
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"fieldline-doctor-{config.device}",
                         protocol=protocol)
    if m.username:
        client.username_pw_set(m.username, m.password)
    if m.tls is not None:
        m.tls.apply(client)
    client.on_connect = on_connect
    try:
        client.connect(m.host, m.port, keepalive=10)
    except OSError as exc:
        return Check("broker", False, f"{m.host}:{m.port} unreachable: {exc}")
    client.loop_start()
    done.wait(timeout_s)
    client.disconnect()
    client.loop_stop()
    result = outcome.get("result", f"no CONNACK within {timeout_s}s")
    return Check("broker", result == "ok", f"{m.host}:{m.port} {result}")


def check_disk(config: AgentConfig) -> Check:
    config.data_dir.mkdir(parents=True, exist_ok=True)
    probe = config.data_dir / ".doctor-write-test"
    try:
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        return Check("disk", False, f"{config.data_dir} is not writable: {exc.strerror}")
    free = shutil.disk_usage(config.data_dir).free
    ok = free >= MIN_FREE_BYTES
    return Check("disk", ok, f"{free / 1e9:.1f} GB free in {config.data_dir}"
                 + ("" if ok else f" (below {MIN_FREE_BYTES / 1e6:.0f} MB: the spool may fill)"))


def check_clock() -> Check:
    now = time.time()
    if now < EARLIEST_SANE_TS:
        return Check("clock", False, f"system time {time.strftime('%Y-%m-%d', time.gmtime(now))} is not set; "
                                     "event timestamps would be wrong (enable NTP)")
    return Check("clock", True, time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(now)))


def run_checks(config: AgentConfig) -> list[Check]:
    return [*check_cameras(config), check_model(config), check_broker(config), check_disk(config), check_clock()]
