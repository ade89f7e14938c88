"""A small real fleet for rollout tests and bench/rollout.py: edge agents with synthetic cameras on one broker.

    rig = FleetRig(tmp_path, broker.port, processes=3, in_process=17, fps=1)
    rig.start()                      # returns once every agent is connected and has a frame
    rig.stop_device("farm/dev-06")   # offline (in-process agents only); rig.start_device(...) brings it back
    rig.stop()

``processes`` agents run as ``fieldline edge run`` OS processes, the rest as threads of this process (20 agent
processes do not fit on 2 cores). Devices are named dev-01.. at site ``farm``; the process agents come first.
Cameras are small (320x240) and slow (``fps``), every agent starts on the zoo's INT8 tomato model and sends
stats and count heartbeats every second.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import yaml

from edge_agent.agent import Agent
from edge_agent.config import AgentConfig
from edge_agent.detectors.factory import build_detector
from tests.support.api_process import REPO
from tests.support.live_api import wait_until
from tests.support.mosquitto import terminate

BASE_MODEL = REPO / "models" / "zoo" / "tomato-ripeness.int8.onnx"
SITE = "farm"


def agent_config(workdir: Path, port: int, device: str, seed: int, fps: float) -> dict[str, Any]:
    return {
        "device": device, "site": SITE, "data_dir": str(workdir / device), "stats_interval_s": 1.0,
        "mqtt": {"host": "127.0.0.1", "port": port, "reconnect_min_s": 0.2, "reconnect_max_s": 1},
        "model": {"path": str(BASE_MODEL), "threads": 1},
        "cameras": [{"name": "cam-1", "source": {"type": "synthetic", "seed": seed, "ripening_per_hour": 0,
                                                 "width": 320, "height": 240},
                     "zone": {"kind": "shed", "id": f"shed-{seed:02d}"}, "fps": fps, "publish_interval_s": 1.0}],
    }


class _ThreadAgent:
    def __init__(self, config: AgentConfig) -> None:
        self.agent = Agent(config, build_detector(config.model))  # as `fieldline edge run` builds it
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.agent.run, args=(self.stop_event,), name=config.device,
                                       daemon=True)
        self.thread.start()

    def ready(self) -> bool:
        loop = self.agent.loops.get("cam-1")
        return bool(self.agent.publisher.connected and loop and loop.latest_frame())

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=30)


class FleetRig:
    def __init__(self, workdir: Path, port: int, *, processes: int, in_process: int, fps: float = 2.0) -> None:
        self.workdir = workdir
        self.port = port
        self.fps = fps
        self.process_names = [f"dev-{i + 1:02d}" for i in range(processes)]
        self.thread_names = [f"dev-{i + 1:02d}" for i in range(processes, processes + in_process)]
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.threads: dict[str, _ThreadAgent] = {}

    @property
    def devices(self) -> list[str]:
        return [f"{SITE}/{n}" for n in self.process_names + self.thread_names]

    def _config(self, name: str) -> dict[str, Any]:
        return agent_config(self.workdir, self.port, name, int(name.split("-")[1]), self.fps)

    def start(self) -> FleetRig:
        env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDLINE__")}
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        for name in self.process_names:
            path = self.workdir / f"{name}.yaml"
            path.write_text(yaml.safe_dump(self._config(name)))
            log = (self.workdir / f"{name}.log").open("ab")
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "fieldline.cli", "edge", "run", "--config", str(path)], cwd=REPO, env=env,
                stdout=log, stderr=subprocess.STDOUT)
        for name in self.thread_names:
            self.start_device(f"{SITE}/{name}", wait=False)
        wait_until(lambda: all(t.ready() for t in self.threads.values()), timeout=60, what="in-process agents ready")
        return self

    def agent(self, key: str) -> Agent:
        return self.threads[key.split("/")[1]].agent

    def start_device(self, key: str, wait: bool = True) -> None:
        name = key.split("/")[1]
        self.threads[name] = _ThreadAgent(AgentConfig.model_validate(self._config(name)))
        if wait:
            wait_until(self.threads[name].ready, timeout=30, what=f"{key} ready")

    def stop_device(self, key: str) -> None:
        self.threads.pop(key.split("/")[1]).stop()

    def stop(self) -> None:
        for agent in self.threads.values():
            agent.stop_event.set()
        for agent in self.threads.values():
            agent.stop()
        for process in self.processes.values():
            terminate(process, 15)


class Api:
    """The few REST calls rollout tests make, with the API's token."""

    def __init__(self, url: str, token: str) -> None:
        self.base = f"{url}/api/v1"
        self.headers = {"Authorization": f"Bearer {token}"}

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return httpx.request(method, f"{self.base}{path}", headers=headers, timeout=20, **kwargs)

    def ok(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.call(method, path, **kwargs)
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
        return response.json()

    def push(self, path: Path) -> str:
        return self.ok("POST", "/models", content=path.read_bytes(),
                       headers={"Content-Type": "application/octet-stream"})["model"]["sha256"]

    def push_config(self, name: str, config: dict[str, Any]) -> str:
        """A config version (a partial agent config); returns its sha256."""
        return self.ok("POST", "/configs", json={"name": name, "config": config})["config"]["sha256"]

    def fleet(self) -> dict[str, dict[str, Any]]:
        return {f"{d['site']}/{d['device']}": d for d in self.ok("GET", "/fleet")}

    def wait_fleet(self, devices: list[str], timeout: float = 30) -> None:
        wait_until(lambda: all(self.fleet().get(k, {}).get("online") and self.fleet()[k]["fps"] for k in devices),
                   timeout=timeout, what="every device online with stats")

    def deployment(self, deployment_id: str) -> dict[str, Any]:
        return self.ok("GET", f"/deployments/{deployment_id}")

    def wait_state(self, deployment_id: str, states: tuple[str, ...], timeout: float = 60) -> dict[str, Any]:
        try:
            return wait_until(lambda: (d := self.deployment(deployment_id))["state"] in states and d,
                              timeout=timeout, interval=0.2, what=f"deployment in {states}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.describe(deployment_id)}") from None

    def describe(self, deployment_id: str) -> str:
        d = self.deployment(deployment_id)
        return f"{d['state']} stage {d['stage']}/{d['stages']} ({d['reason']}):\n" + "\n".join(
            f"  {r['site']}/{r['device']} stage {r['stage']} {r['state']} {r['reason'] or ''} {r['gate']}"
            for r in d["devices"])
