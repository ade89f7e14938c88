"""Whole path with real parts: synthetic camera → shipped ONNX model → Mosquitto → API → SQLite → REST."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import paho.mqtt.client as mqtt
import pytest

from cloud_api.core.config import Settings
from edge_agent.agent import Agent
from edge_agent.config import AgentConfig
from edge_agent.detectors import build_detector
from fieldline.contract import events_topic
from models.data.synth.tomato import random_scene, render
from tests.support.builders import event_dict
from tests.support.live_api import LiveApi, wait_until
from tests.support.mosquitto import MosquittoBroker

pytestmark = pytest.mark.e2e
MODEL = Path(__file__).resolve().parents[2] / "models" / "zoo" / "tomato-ripeness.int8.onnx"
SEEDS = {"shed-01": 11, "shed-02": 12, "shed-03": 13}
TOKEN = "e2e-token"


def ground_truth(seed: int) -> Counter[str]:
    """What the synthetic camera with this seed shows: the generator's visible fruits per label."""
    scene = random_scene(np.random.default_rng(seed), 640, 480)
    return Counter(render(scene, np.random.default_rng(0)).labels)


def agent_config(tmp_path: Path, port: int, device: str = "gh-edge-01", fps: float = 4.0) -> AgentConfig:
    return AgentConfig.model_validate({
        "device": device,
        "site": "farm",
        "data_dir": tmp_path / device,
        "mqtt": {"host": "127.0.0.1", "port": port},
        "model": {"path": MODEL},
        "cameras": [
            {"name": f"cam-{shed}", "source": {"type": "synthetic", "seed": seed, "ripening_per_hour": 0},
             "zone": {"kind": "shed", "id": shed}, "fps": fps, "smoothing_frames": 3}
            for shed, seed in SEEDS.items()
        ],
    })


def publish(port: int, messages: list[tuple[str, bytes]]) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="e2e-injector")
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for topic, payload in messages:
            client.publish(topic, payload, qos=1).wait_for_publish(5)
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.fixture(scope="module")
def broker():
    with MosquittoBroker() as running:
        yield running


@pytest.fixture(scope="module")
def api(broker, tmp_path_factory):
    settings = Settings(data_dir=tmp_path_factory.mktemp("api"), mqtt_port=broker.port, api_tokens=[TOKEN])
    with LiveApi(settings) as live:
        yield live


def test_agent_counts_reach_the_api_and_match_ground_truth(broker, api, tmp_path):
    config = agent_config(tmp_path, broker.port)
    agent = Agent(config, build_detector(config.model))  # as the CLI builds it: the file's conf, agnostic NMS
    assert agent.run(duration_s=5.0) == 0
    with api.client() as client:
        def our_sheds() -> dict[str, dict]:
            return {s["id"]: s for s in client.get("/api/v1/sheds").json() if s["id"] in SEEDS}

        sheds = wait_until(lambda: found if len(found := our_sheds()) == 3 else None, what="three sheds")
        devices = client.get("/api/v1/devices").json()
    for shed, seed in SEEDS.items():
        truth, reported = ground_truth(seed), Counter(sheds[shed]["counts"])
        # The agent counts above the threshold calibrated into the file (`fieldline model calibrate`: 0.53 / 0.52
        # for the FP32 / INT8 files of tomato-ripeness 2.2.2, where counts on validation frames match the labels
        # best). Measured on these three scenes (2.2), FP32 and INT8: exact per label; at the uncalibrated 0.35
        # the generator's unlabelled, barely visible fruits were counted too (8 labelled -> 11 counted on
        # shed-01). Tolerance 2 per label and in total: frames differ (camera noise, light) and the count is
        # smoothed over 3 of them.
        assert abs(sum(reported.values()) - sum(truth.values())) <= 2, (shed, dict(truth), dict(reported))
        for label in ("green", "half_ripe", "ripe"):
            assert abs(reported[label] - truth[label]) <= 2, (shed, label, dict(truth), dict(reported))
        assert sheds[shed]["updated_ms"] > 0
    device = next(d for d in devices if d["device"] == "gh-edge-01")
    assert device["state"] == "offline"  # the agent said goodbye with a retained offline status


def test_duplicate_event_is_stored_once_and_bad_payloads_are_dead_lettered(broker, api):
    topic = events_topic("farm", "inj-1")
    dup = json.dumps(event_dict(id="inj-1-1-1", device="inj-1", seq=1)).encode()
    marker = json.dumps(event_dict(id="inj-1-1-2", device="inj-1", seq=2)).encode()
    publish(broker.port, [(topic, dup), (topic, b"{oops"), (topic, dup),
                          (topic, json.dumps(event_dict(id="inj-1-1-9", device="inj-1", zone={"kind": "barn", "id": "x"})).encode()),
                          (topic, marker)])
    with api.client() as client:
        def marker_stored() -> list[dict] | None:
            events = client.get("/api/v1/events", params={"device": "inj-1"}).json()
            return events if any(e["id"] == "inj-1-1-2" for e in events) else None

        events = wait_until(marker_stored, what="marker event")
        dead = client.get("/api/v1/dead-letters").json()
    assert sorted(e["id"] for e in events) == ["inj-1-1-1", "inj-1-1-2"]
    reasons = " | ".join(d["reason"] for d in dead)
    assert "not JSON" in reasons
    assert "zone.kind" in reasons


def test_requests_without_a_valid_token_get_401(api):
    assert httpx.get(f"{api.url}/api/v1/health").status_code == 200
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}):
        response = httpx.get(f"{api.url}/api/v1/sheds", headers=headers)
        assert response.status_code == 401, headers
    assert httpx.get(f"{api.url}/api/v1/events", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


def test_agent_spools_while_the_broker_is_down_and_replays_as_historical(tmp_path):
    with MosquittoBroker() as broker:
        settings = Settings(data_dir=tmp_path / "api", mqtt_port=broker.port, api_tokens=[TOKEN])
        with LiveApi(settings) as api:
            broker.stop()
            config = agent_config(tmp_path, broker.port, device="gh-edge-07", fps=5.0)
            agent = Agent(config, build_detector(config.model))
            stop = threading.Event()
            runner = threading.Thread(target=agent.run, args=(stop,))
            runner.start()
            try:
                wait_until(lambda: agent.spool.depth() >= 3, what="events spooled while offline")
                assert agent.publisher.connected is False
                broker.start()
                wait_until(lambda: agent.spool.depth() == 0, timeout=30, what="spool drained after reconnect")
            finally:
                stop.set()
                runner.join(timeout=20)
            with api.client() as client:
                events = wait_until(lambda: client.get("/api/v1/events", params={"device": "gh-edge-07"}).json(),
                                    timeout=30, what="replayed events")
    assert any(e["historical"] for e in events)
    seqs = sorted(e["seq"] for e in events)
    assert seqs == list(range(1, len(seqs) + 1)), "no gaps and no duplicates in seq"
