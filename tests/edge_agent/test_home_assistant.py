"""Home Assistant discovery over a real Mosquitto: retained sensor configs and states."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import paho.mqtt.client as mqtt

from edge_agent.agent import Agent
from edge_agent.config import AgentConfig
from edge_agent.detectors.onnx_detector import OnnxDetector
from tests.support.live_api import wait_until
from tests.support.mosquitto import MosquittoBroker

MODEL = Path(__file__).resolve().parents[2] / "models" / "zoo" / "tomato-ripeness.int8.onnx"


def test_sensors_are_announced_and_fed(tmp_path):
    with MosquittoBroker() as broker:
        config = AgentConfig.model_validate({
            "device": "gh-edge-01", "site": "farm", "data_dir": tmp_path / "edge",
            "mqtt": {"host": "127.0.0.1", "port": broker.port}, "model": {"path": MODEL},
            "home_assistant": {"enabled": True},
            "cameras": [{"name": "cam-1", "source": {"type": "synthetic", "seed": 2, "ripening_per_hour": 0},
                         "zone": {"id": "shed-01"}, "fps": 5}],
        })
        agent = Agent(config, OnnxDetector(MODEL))
        stop = threading.Event()
        runner = threading.Thread(target=agent.run, args=(stop,))
        runner.start()
        wait_until(lambda: agent.counters["cam-1"].events >= 1, what="a count event")
        stop.set()
        runner.join(timeout=20)
        # a Home Assistant that starts later still finds everything (retained)
        seen: dict[str, dict] = {}
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="home-assistant")
        client.on_message = lambda c, u, m: seen.__setitem__(m.topic, json.loads(m.payload))
        client.connect("127.0.0.1", broker.port)
        client.subscribe([("homeassistant/#", 1), ("fieldline-ha/#", 1)])
        client.loop_start()
        try:
            wait_until(lambda: len(seen) >= 4, what="3 sensor configs and 1 state")
        finally:
            client.loop_stop()
    configs = {t: p for t, p in seen.items() if t.startswith("homeassistant/sensor/")}
    assert len(configs) == 3
    ripe = configs["homeassistant/sensor/fieldline_farm_gh_edge_01_cam_1_ripe/config"]
    assert ripe["state_topic"] == "fieldline-ha/farm/gh-edge-01/cam-1/state"
    assert ripe["availability_topic"] == "fieldline/v1/farm/gh-edge-01/status"
    state = seen["fieldline-ha/farm/gh-edge-01/cam-1/state"]
    assert state["zone"] == "shed-01" and set(state["counts"]) == {"green", "half_ripe", "ripe"}
