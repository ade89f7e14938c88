"""Fleet console end to end: real Mosquitto, the API as its own process, a real agent with a synthetic camera.

1. ``fieldline model push`` uploads a zoo model; a model command makes the agent download it from the API
   with the download token issued for it, load it on a live frame and run it.
2. A command to an offline device survives ``kill -9`` of the API: after the restart the API publishes it
   again, the returning agent runs it and the reply is stored.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from edge_agent.agent import Agent
from edge_agent.config import AgentConfig
from edge_agent.detectors.onnx_detector import OnnxDetector
from edge_agent.ota import OtaError
from tests.support.api_process import REPO, ApiProcess
from tests.support.live_api import wait_until
from tests.support.mosquitto import MosquittoBroker

pytestmark = pytest.mark.e2e
ZOO = REPO / "models" / "zoo"
INT8, FP32 = ZOO / "tomato-ripeness.int8.onnx", ZOO / "tomato-ripeness.onnx"


def agent_config(tmp_path: Path, port: int) -> AgentConfig:
    return AgentConfig.model_validate({
        "device": "dev-1", "site": "farm", "data_dir": str(tmp_path / "edge"),
        "mqtt": {"host": "127.0.0.1", "port": port, "reconnect_min_s": 0.2, "reconnect_max_s": 1},
        "model": {"path": str(INT8)},
        "cameras": [{"name": "cam-1", "source": {"type": "synthetic", "seed": 4, "ripening_per_hour": 0},
                     "zone": {"kind": "shed", "id": "shed-01"}, "fps": 4}],
    })


class RunningAgent:
    def __init__(self, config: AgentConfig) -> None:
        self.agent = Agent(config, OnnxDetector(Path(config.model.path)))
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.agent.run, args=(self.stop_event,), name="agent")
        self.thread.start()
        wait_until(lambda: self.agent.publisher.connected and self.agent.loops.get("cam-1")
                   and self.agent.loops["cam-1"].latest_frame(), timeout=30, what="agent connected with a frame")
        time.sleep(0.3)  # the command subscription settles

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=30)


def api_call(api: ApiProcess, method: str, path: str, **kwargs) -> httpx.Response:
    return httpx.request(method, f"{api.url}/api/v1{path}", headers={"Authorization": f"Bearer {api.token}"},
                         timeout=10, **kwargs)


def command(api: ApiProcess, command_id: str) -> dict:
    return api.get(f"/commands/{command_id}")


@pytest.fixture()
def fleet(tmp_path):
    with MosquittoBroker() as broker:
        (tmp_path / "api").mkdir()
        api = ApiProcess(tmp_path / "api", broker, client_id="fleet-api")
        api.start()
        try:
            yield api, broker
        finally:
            api.stop()


def test_pushed_model_reaches_the_agent_with_its_download_token(fleet, tmp_path):
    api, broker = fleet
    running = RunningAgent(agent_config(tmp_path, broker.port))
    try:
        agent = running.agent
        wait_until(lambda: api_call(api, "GET", "/devices/farm/dev-1").status_code == 200, timeout=15,
                   what="the API knows the device")
        pushed = subprocess.run(
            [sys.executable, "-m", "fieldline.cli", "model", "push", str(FP32), "--api", api.url, "--token", api.token],
            cwd=REPO, capture_output=True, text=True, timeout=120)
        assert pushed.returncode == 0, pushed.stderr
        sha = re.search(r"sha256 ([0-9a-f]{64})", pushed.stdout).group(1)
        assert sha == hashlib.sha256(FP32.read_bytes()).hexdigest()
        assert "registered: tomato-ripeness 2.2.2" in pushed.stdout and "map50" in pushed.stdout

        # the URL alone opens nothing, nor does a token the API did not sign; the agent says why
        assert httpx.get(f"{api.url}/api/v1/models/{sha}/file").status_code == 401
        forged = f"fldl1.farm.dev-1.{sha}.{10**13}.{'0' * 64}"
        with pytest.raises(OtaError, match=r"HTTP 401 \(model download token has a bad signature"):
            agent.install_model(f"{api.url}/api/v1/models/{sha}/file", sha, forged)
        assert agent.detector.sha256 != sha
        frames_before = agent.counters["cam-1"].frames
        sent = api_call(api, "POST", "/devices/farm/dev-1/commands", json={"name": "model", "args": {"sha256": sha}})
        assert sent.status_code == 202, sent.text
        assert sent.json()["args"]["token"] == "<redacted>"
        done = wait_until(lambda: (c := command(api, sent.json()["id"]))["state"] in ("ok", "error") and c,
                          timeout=60, what="the model command's reply")
        assert done["state"] == "ok", done
        assert done["reply"]["result"]["model"]["sha256"] == sha
        assert agent.detector.sha256 == sha  # loaded, checked on a live frame, running
        wait_until(lambda: agent.counters["cam-1"].frames > frames_before + 3, what="frames on the new model")
        downloads = [a for a in api.get("/audit", target=sha) if a["action"] == "model.download"]
        assert [(a["actor"], a["role"], a["result"]) for a in downloads] == [("farm/dev-1", "device", "ok")]

        again = api_call(api, "POST", "/devices/farm/dev-1/commands", json={"name": "model", "args": {"sha256": sha}})
        repeat = wait_until(lambda: (c := command(api, again.json()["id"]))["state"] == "ok" and c, timeout=30,
                            what="reply to the same model again")
        assert repeat["reply"]["result"]["unchanged"] is True  # the rollback slot keeps the previous model
    finally:
        running.stop()


def test_a_command_for_an_offline_device_survives_kill_9_of_the_api(fleet, tmp_path):
    api, broker = fleet
    config = agent_config(tmp_path, broker.port)
    first = RunningAgent(config)
    wait_until(lambda: api_call(api, "GET", "/devices/farm/dev-1").status_code == 200, timeout=15,
               what="the API knows the device")
    first.stop()  # offline: its clean MQTT session means the broker keeps nothing for it

    sent = api_call(api, "POST", "/devices/farm/dev-1/commands", json={"name": "snapshot", "timeout_s": 300})
    assert sent.status_code == 202, sent.text
    command_id = sent.json()["id"]
    wait_until(lambda: command(api, command_id)["state"] == "sent", what="the broker took the command")
    api.kill()

    second = RunningAgent(config)  # back online while the API is dead
    try:
        api.start()
        done = wait_until(lambda: (c := command(api, command_id))["state"] in ("ok", "error") and c, timeout=30,
                          what="the reply after the API restart")
        assert done["state"] == "ok", done
        assert done["attempts"] == 2  # once before the kill (lost with the offline device), once after
        assert done["reply"]["result"]["camera"] == "cam-1"
        assert second.agent.commands.repeated == 0  # it ran once
        results = [a for a in api.get("/audit", target="farm/dev-1") if a["action"] == "command.snapshot.result"]
        assert [(a["actor"], a["result"]) for a in results] == [("farm/dev-1", "ok")]
    finally:
        second.stop()
