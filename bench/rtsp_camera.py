"""The RTSP camera path end to end: a local RTSP server -> the agent's stream source -> detector -> tracker ->
rule -> spool -> MQTT broker -> a subscriber.

``bench/rtsp_server.py`` (GStreamer's RTSP server, run by the system Python) replays a camera-like H.264
file in real time; the whole ``Agent`` runs on ``rtsp://...`` exactly as configured for a live camera. After a
warm-up, the bench reads this process's CPU time and the loop's frame count over a window: CPU per frame
and the share of a core at the camera's frame rate. A separate subscriber process (``bench/mqtt_listener.py``)
stamps each event's arrival; latency = arrival - the event's ``ts_ms``, which is the agent's capture time
(the moment its grabber thread had the decoded frame). All clocks are this machine's.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import numpy as np

from bench.agent_runs import CLOCK, agent_config, wait_connected
from bench.pan_video import write_video
from edge_agent.agent import Agent
from edge_agent.detectors.base import Detector
from fieldline.contract import events_topic

HERE = Path(__file__).resolve().parent
SYSTEM_PYTHON = os.environ.get("FIELDLINE_GST_PYTHON", "/usr/bin/python3")
GST_CHECK = ("import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0'); "
             "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
             "missing = [n for n in ('qtdemux', 'h264parse', 'rtph264pay') if Gst.ElementFactory.find(n) is None]; "
             "assert not missing, 'GStreamer elements missing: ' + ', '.join(missing)")


class RtspUnavailable(RuntimeError):
    """No local RTSP server can run here (what is missing and how to install it)."""


def check_server() -> None:
    """Raises ``RtspUnavailable`` unless the system Python can run GStreamer's RTSP server."""
    try:
        done = subprocess.run([SYSTEM_PYTHON, "-c", GST_CHECK], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RtspUnavailable(f"{SYSTEM_PYTHON}: {exc}; run scripts/bench-setup.sh") from None
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        raise RtspUnavailable(f"GStreamer RTSP server not usable from {SYSTEM_PYTHON} ({last}); "
                              "run scripts/bench-setup.sh")


def _all_cores() -> None:  # the helpers are other machines in real life: not pinned to the bench's core
    os.sched_setaffinity(0, range(os.cpu_count() or 1))


@contextmanager
def rtsp_server(video: Path, port: int) -> Iterator[str]:
    proc = subprocess.Popen([SYSTEM_PYTHON, str(HERE / "rtsp_server.py"), str(video), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_all_cores)
    try:
        line = proc.stdout.readline().strip()
        if not line.startswith("ready "):
            raise RtspUnavailable(f"the RTSP server did not start: {line} {proc.stderr.read()[-500:]}")
        yield line.split(" ", 1)[1]
    finally:
        proc.terminate()
        proc.wait(10)


@contextmanager
def event_listener(host: str, port: int, topic: str) -> Iterator[list[tuple[float, int]]]:
    """Yields a list that is filled, on exit, with (arrival ms, event ts_ms) pairs."""
    received: list[tuple[float, int]] = []
    proc = subprocess.Popen([sys.executable, str(HERE / "mqtt_listener.py"), host, str(port), topic],
                            stdout=subprocess.PIPE, text=True, preexec_fn=_all_cores)
    try:
        if proc.stdout.readline().strip() != "subscribed":
            raise RuntimeError("the MQTT listener could not subscribe")
        yield received
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=10)
        for line in out.splitlines():
            arrival, ts = line.split()
            received.append((float(arrival), int(ts)))


def measure_rtsp(model: dict, detector: Detector, work: Path, broker: tuple[str, int], port: int,
                 seconds: float = 20.0, warmup_s: float = 4.0, height: int = 720, fps: int = 15,
                 sources: tuple[str, ...] = ("pyav",)) -> dict:
    """Runs the agent on a local RTSP camera; CPU per frame and capture-to-subscriber latency.

    ``sources``: one agent session per entry, in order, on the same server and file: ``pyav`` (the agent's
    stream source) or ``opencv`` (its fallback, ``LiveCapture``, for an A/B in one run). The first session's
    figures are the result; with more, ``sessions`` lists them all.
    """
    check_server()
    video = work / f"rtsp-{height}p{fps}.mp4"
    codec = write_video(video, int((seconds + warmup_s + 6) * fps * len(sources)), height, "h264", fps)
    sessions = []
    with rtsp_server(video, port) as url:
        for k, kind in enumerate(sources):
            sessions.append(_session(model, detector, work / f"rtsp-agent-{k}", broker, url, seconds, warmup_s, kind))
    result = {"server": "GStreamer RTSP server (Debian), 127.0.0.1, RTP over TCP", "video": codec,
              "size": f"{int(height * 16 / 9)}x{height}", "stream_fps": fps, **sessions[0]}
    if len(sessions) > 1:
        result["sessions"] = sessions
    return result


def _session(model: dict, detector: Detector, data_dir: Path, broker: tuple[str, int], url: str, seconds: float,
             warmup_s: float, kind: str) -> dict:
    topic = events_topic("bench", "bench-1")
    # OpenCV's LiveCapture is what open_video falls back to when PyAV's stream module cannot be imported
    fallback = mock.patch.dict(sys.modules, {"edge_agent.sources.pyav_live": None}) if kind == "opencv" \
        else contextlib.nullcontext()
    with fallback, event_listener(*broker, topic) as received:
        # the cap never throttles; a count event at least every second (changes publish at once), so the
        # window holds enough events for latency percentiles
        config = agent_config(model, url, data_dir, broker, fps=120, publish_interval_s=1.0)
        agent = Agent(config, detector)
        stop = threading.Event()
        runner = threading.Thread(target=agent.run, args=(stop,), name="agent", daemon=True)
        runner.start()
        wait_connected(agent)
        time.sleep(warmup_s)
        counters = agent.counters["cam-1"]
        loop = agent.loops.get("cam-1")
        source_kind = type(loop.source).__name__ if loop else "?"
        t0, cpu0, frames0, events0 = time.time(), CLOCK(), counters.frames, counters.events
        time.sleep(seconds)
        t1, cpu1, frames1, events1 = time.time(), CLOCK(), counters.frames, counters.events
        stop.set()
        runner.join(30)
        time.sleep(0.5)  # the last events reach the listener
    frames = frames1 - frames0
    if frames <= 0:
        raise RuntimeError(f"the agent processed no frame from {url} (see its log)")
    latencies = [arrival - ts for arrival, ts in received if t0 * 1000 <= ts <= t1 * 1000]
    cpu = cpu1 - cpu0
    return {"source": source_kind, "window_s": round(t1 - t0, 2), "frames": frames,
            "frames_per_s": round(frames / (t1 - t0), 2), "cpu_ms_per_frame": round(cpu * 1000 / frames, 3),
            "cpu_share_of_core": round(cpu / (t1 - t0), 3), "events": events1 - events0,
            "events_received": len(latencies), "latency_ms": _percentiles(latencies)}


def _percentiles(values: list[float]) -> dict:
    if not values:
        return {}
    arr = np.asarray(values)
    return {"p50": round(float(np.median(arr)), 1), "p95": round(float(np.percentile(arr, 95)), 1),
            "min": round(float(arr.min()), 1), "max": round(float(arr.max()), 1)}
