"""Remote control over real Mosquitto: snapshot, config (valid and invalid), model OTA with rollback, restart."""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml

from edge_agent.agent import Agent
from edge_agent.config import AgentConfig
from edge_agent.detectors.onnx_detector import OnnxDetector
from edge_agent.ota import sha256_of
from fieldline.contract import Command, command_reply_topic, command_topic, device_root
import httpx

from tests.support.live_api import free_port, wait_until
from tests.support.mosquitto import MosquittoBroker

ZOO = Path(__file__).resolve().parents[2] / "models" / "zoo"
INT8, FP32 = ZOO / "tomato-ripeness.int8.onnx", ZOO / "tomato-ripeness.onnx"


class Operator:
    """A cloud-side MQTT client that sends commands and waits for their replies."""

    def __init__(self, port: int) -> None:
        self.replies: queue.Queue[dict] = queue.Queue()
        self.snapshots: dict[str, bytes] = {}
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"op-{uuid.uuid4().hex[:6]}")
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(command_reply_topic("farm", "dev-1", "+"), qos=1)
        self.client.subscribe(device_root("farm", "dev-1") + "/snapshots/+", qos=1)
        self.client.loop_start()

    def _on_message(self, client, userdata, message) -> None:
        if "/snapshots/" in message.topic:
            self.snapshots[message.topic.rsplit("/", 1)[1]] = message.payload
        else:
            self.replies.put(json.loads(message.payload))

    def send(self, name: str, args: dict, timeout: float = 30) -> dict:
        request_id = uuid.uuid4().hex
        command = Command(request_id=request_id, name=name, ts_ms=int(time.time() * 1000), args=args)
        self.client.publish(command_topic("farm", "dev-1", name), command.to_json(), qos=1)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                reply = self.replies.get(timeout=0.5)
            except queue.Empty:
                continue
            if reply["request_id"] == request_id:
                return reply
        raise AssertionError(f"no reply to {name} within {timeout}s")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture()
def running_agent(tmp_path):
    with MosquittoBroker() as broker:
        config_path = tmp_path / "agent.yaml"
        data = {
            "device": "dev-1", "site": "farm", "data_dir": str(tmp_path / "edge"),
            "mqtt": {"host": "127.0.0.1", "port": broker.port},
            "model": {"path": str(INT8)},
            "metrics_port": free_port(),
            "cameras": [{"name": "cam-1", "source": {"type": "synthetic", "seed": 4, "ripening_per_hour": 0},
                         "zone": {"kind": "shed", "id": "shed-01"}, "fps": 5}],
        }
        config_path.write_text(yaml.safe_dump(data))
        config = AgentConfig.model_validate(data)
        agent = Agent(config, OnnxDetector(INT8), config_path=config_path)
        stop = threading.Event()
        runner = threading.Thread(target=agent.run, args=(stop,))
        runner.start()
        operator = Operator(broker.port)
        try:
            wait_until(lambda: agent.publisher.connected and agent.loops["cam-1"].latest_frame(), what="agent up")
            time.sleep(0.3)  # let the agent's command subscription settle
            yield agent, operator, config_path
        finally:
            operator.close()
            stop.set()
            runner.join(timeout=20)


def test_snapshot_command_publishes_a_jpeg(running_agent):
    agent, operator, _ = running_agent
    reply = operator.send("snapshot", {"camera": "cam-1"})
    assert reply["ok"], reply
    snap_id = reply["result"]["snapshot"]
    jpeg = wait_until(lambda: operator.snapshots.get(snap_id), what="snapshot image")
    assert jpeg[:3] == b"\xff\xd8\xff"
    assert operator.send("snapshot", {"camera": "nope"})["error"] == "no camera named 'nope'"


def test_invalid_config_is_refused_and_the_old_one_stays(running_agent):
    agent, operator, config_path = running_agent
    before = config_path.read_text()
    bad = agent.config.model_dump(mode="json")
    bad["cameras"][0]["fps"] = -3
    reply = operator.send("config", {"config": bad})
    assert reply["ok"] is False
    assert "cameras[0].fps" in reply["error"]
    assert config_path.read_text() == before
    assert agent.config.cameras[0].fps == 5


def test_valid_config_is_applied_live_and_persisted(running_agent):
    agent, operator, config_path = running_agent
    new = agent.config.model_dump(mode="json")
    new["cameras"][0]["zone"]["id"] = "shed-09"
    reply = operator.send("config", {"config": new})
    assert reply == {**reply, "ok": True, "result": {"applied": "live", "config_hash": agent.config_hash}}
    assert agent.config.cameras[0].zone.id == "shed-09"
    assert yaml.safe_load(config_path.read_text())["cameras"][0]["zone"]["id"] == "shed-09"
    wait_until(lambda: agent.loops["cam-1"].camera.zone.id == "shed-09", what="camera loop restarted")
    assert not agent.restart_requested


def test_corrupt_model_is_rejected_and_the_old_model_keeps_running(running_agent, tmp_path):
    agent, operator, _ = running_agent
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x01garbage" * 100)
    before = agent.detector
    reply = operator.send("model", {"url": corrupt.as_uri(), "sha256": sha256_of(corrupt)})
    assert reply["ok"] is False and "load test failed" in reply["error"]
    assert agent.detector is before
    wrong_hash = operator.send("model", {"url": FP32.as_uri(), "sha256": "0" * 64})
    assert "sha256 mismatch" in wrong_hash["error"]
    assert agent.detector is before


def test_model_update_swaps_and_rolls_back(running_agent):
    agent, operator, config_path = running_agent
    reply = operator.send("model", {"url": FP32.as_uri(), "sha256": sha256_of(FP32)})
    assert reply["ok"], reply
    assert agent.detector.sha256 == sha256_of(FP32)
    assert yaml.safe_load(config_path.read_text())["model"]["path"].endswith("current.onnx")
    frames_before = agent.counters["cam-1"].frames
    wait_until(lambda: agent.counters["cam-1"].frames > frames_before + 2, what="frames with the new model")
    back = operator.send("model", {"rollback": True})
    assert back["ok"], back
    assert agent.detector.sha256 == sha256_of(INT8)


def test_restart_and_malformed_commands(running_agent):
    agent, operator, _ = running_agent
    operator.client.publish(command_topic("farm", "dev-1", "config"), b'{"request_id": "r1", "name": 5}', qos=1)
    bad = wait_until(lambda: operator.replies.get(timeout=5), what="reply to a malformed command")
    assert bad["request_id"] == "r1" and bad["ok"] is False and "name" in bad["error"]
    reply = operator.send("restart", {})
    assert reply["ok"]
    wait_until(lambda: agent.restart_requested, what="restart requested")


def test_prometheus_metrics_reflect_the_agent(running_agent):
    agent, _, _ = running_agent
    wait_until(lambda: agent.counters["cam-1"].frames >= 3, what="a few frames")
    text = httpx.get(f"http://127.0.0.1:{agent.config.metrics_port}/metrics").text
    frames = next(line for line in text.splitlines() if line.startswith('fieldline_edge_frames_total{camera="cam-1"}'))
    assert float(frames.split()[-1]) >= 3
    assert "fieldline_edge_spool_depth" in text
    assert "fieldline_edge_connected 1.0" in text
    assert 'fieldline_edge_detect_latency_ms{camera="cam-1",quantile="0.95"}' in text


def test_a_repeated_request_id_is_answered_again_but_not_run_again(running_agent):
    """The cloud re-publishes unanswered commands after its restart: the agent must not act twice."""
    agent, operator, _ = running_agent
    first = operator.send("snapshot", {"camera": "cam-1"})
    assert first["ok"], first
    command = Command(request_id=first["request_id"], name="snapshot", ts_ms=int(time.time() * 1000),
                      args={"camera": "cam-1"})
    snapshots_before = set(operator.snapshots)
    operator.client.publish(command_topic("farm", "dev-1", "snapshot"), command.to_json(), qos=1)
    again = wait_until(lambda: operator.replies.get(timeout=5), what="reply to the repeated command")
    assert again == first  # the stored reply, byte for byte the same answer
    assert agent.commands.repeated == 1
    time.sleep(0.5)
    assert set(operator.snapshots) == snapshots_before  # no second snapshot was taken
    text = httpx.get(f"http://127.0.0.1:{agent.config.metrics_port}/metrics").text
    assert "fieldline_edge_commands_repeated_total 1.0" in text


def test_the_reply_ledger_survives_a_restart_and_keeps_the_newest(tmp_path):
    from edge_agent.commands import ReplyLedger

    ledger = ReplyLedger(tmp_path / "commands.db", keep=3)
    for i in range(5):
        ledger.put(f"r{i}", "restart", f"reply-{i}".encode())
    ledger.close()
    reopened = ReplyLedger(tmp_path / "commands.db", keep=3)
    assert reopened.get("r1") is None
    assert reopened.get("r4") == ("restart", b"reply-4")
    assert reopened.get("r2") == ("restart", b"reply-2")


def test_commands_and_metrics_do_not_import_the_agent():
    """The agent depends on them through protocols; a fresh interpreter shows no circle back to it."""
    import subprocess
    import sys

    code = ("import sys, edge_agent.commands, edge_agent.metrics; "
            "print('edge_agent.agent' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "False"
