"""The agent's own camera loop on a video, publishing to a real MQTT broker, timed (wall and CPU).

Shared by ``bench/edge_pipeline.py`` (file and live paths on a file) and ``bench/rtsp_camera.py``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

from edge_agent.agent import Agent
from edge_agent.camera_loop import CameraCounters, CameraLoop
from edge_agent.config import AgentConfig
from edge_agent.detectors.base import Detector
from edge_agent.sources.video import open_video

CLOCK = time.process_time  # this process's CPU time (all threads: decoder, loop, MQTT sender and network)


@dataclass(frozen=True)
class LoopRun:
    wall_s: float
    cpu_s: float
    frames: int
    events: int  # events the rule emitted
    published: int  # spool items the broker acknowledged (events and snapshots)

    @property
    def cpu_ms(self) -> float:
        return self.cpu_s * 1000 / max(self.frames, 1)

    @property
    def wall_ms(self) -> float:
        return self.wall_s * 1000 / max(self.frames, 1)


def agent_config(model: dict, source: str, data_dir: Path, broker: tuple[str, int], fps: float = 120,
                 publish_interval_s: float = 60.0) -> AgentConfig:
    host, port = broker
    return AgentConfig.model_validate({
        "device": "bench-1", "site": "bench", "data_dir": str(data_dir), "mqtt": {"host": host, "port": port},
        "model": model,
        "cameras": [{"name": "cam-1", "source": {"type": "video", "path": source}, "zone": {"id": "shed-01"},
                     "rule": {"type": "count", "mode": "unique"}, "fps": fps,
                     "publish_interval_s": publish_interval_s}],
    })


def wait_connected(agent: Agent, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not agent.publisher.connected:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no MQTT connection to {agent.config.mqtt.host}:{agent.config.mqtt.port}")
        time.sleep(0.01)


def agent_loop(config: AgentConfig, detector: Detector, group_frames: int | None = None,
               drain_timeout: float = 10.0) -> LoopRun:
    """``CameraLoop`` over the video with the frame-rate cap lifted, its events spooled and published to the
    broker by the agent's publisher; timed until the broker has acknowledged every event.

    ``group_frames`` 1 runs one frame at a time as for a live camera (None: the camera default for a file).
    """
    agent = Agent(config, detector)
    agent.publisher.start()
    wait_connected(agent)
    camera = config.cameras[0]
    camera = camera.model_copy(update={"fps": 1e9} | ({"group_frames": group_frames} if group_frames else {}))
    counters = CameraCounters()
    agent.counters[camera.name] = counters
    loop = CameraLoop(camera, open_video(camera.source), lambda: agent.detector, agent._on_outcomes, counters)
    started, cpu_started = time.perf_counter(), CLOCK()
    loop.run(threading.Event())
    drained = agent.publisher.wait_drained(drain_timeout)
    seconds, cpu = time.perf_counter() - started, CLOCK() - cpu_started
    published = agent.publisher.published
    agent.publisher.stop()
    agent.spool.close()
    ledger = getattr(agent.commands, "ledger", None)
    if ledger is not None:
        ledger.close()
    if not drained:
        raise RuntimeError(f"the broker did not acknowledge every event within {drain_timeout} s")
    return LoopRun(seconds, cpu, counters.frames, counters.events, published)
