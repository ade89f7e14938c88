"""Chaos with real processes: kill -9 of the broker mid-stream, kill -9 of the agent with events spooled.

An audit subscriber keeps a persistent MQTT session, dedups by event id and checks ``seq`` for gaps.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml

from edge_agent.agent import Agent
from edge_agent.config import AgentConfig
from edge_agent.detectors.onnx_detector import OnnxDetector
from fieldline.contract import events_topic
from tests.support.live_api import wait_until
from tests.support.mosquitto import MosquittoBroker

pytestmark = pytest.mark.e2e
MODEL = Path(__file__).resolve().parents[2] / "models" / "zoo" / "tomato-ripeness.int8.onnx"


class AuditSubscriber:
    """Receives events with a persistent session; ``events`` is keyed by id (dedup), ``duplicates`` counted."""

    def __init__(self, port: int, device: str) -> None:
        self.events: dict[str, dict] = {}
        self.duplicates = 0
        self.historical: set[str] = set()  # ids seen at least once with historical=true
        self._lock = threading.Lock()
        self._topic = events_topic("farm", device)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"audit-{device}", clean_session=False)
        self.client.on_connect = lambda c, u, f, rc, p=None: c.subscribe(self._topic, qos=1)
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client, userdata, message) -> None:
        event = json.loads(message.payload)
        with self._lock:
            if event["historical"]:
                self.historical.add(event["id"])
            if event["id"] in self.events:
                self.duplicates += 1
            else:
                self.events[event["id"]] = event

    def seqs(self) -> list[int]:
        with self._lock:
            return sorted(e["seq"] for e in self.events.values())

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def agent_config(tmp_path: Path, port: int, device: str) -> dict:
    return {
        "device": device, "site": "farm", "data_dir": str(tmp_path / device),
        "mqtt": {"host": "127.0.0.1", "port": port, "reconnect_min_s": 0.2, "reconnect_max_s": 1},
        "model": {"path": str(MODEL)},
        "cameras": [{"name": "cam-1", "source": {"type": "synthetic", "seed": 9, "ripening_per_hour": 0},
                     "zone": {"id": "shed-01"}, "fps": 20, "publish_interval_s": 0.04, "smoothing_frames": 1}],
    }


def assert_complete(seqs: list[int]) -> None:
    assert seqs, "no events"
    missing = sorted(set(range(1, seqs[-1] + 1)) - set(seqs))
    assert not missing, f"seq gaps (lost events): {missing[:20]}"


def test_broker_kill_9_mid_stream_loses_nothing(tmp_path):
    broker = MosquittoBroker(persistent=True).start()
    audit = AuditSubscriber(broker.port, "chaos-1")
    agent = Agent(AgentConfig.model_validate(agent_config(tmp_path, broker.port, "chaos-1")), OnnxDetector(MODEL))
    stop = threading.Event()
    runner = threading.Thread(target=agent.run, args=(stop,))
    try:
        time.sleep(0.5)  # the audit session is saved before the stream starts
        runner.start()
        wait_until(lambda: len(audit.seqs()) >= 30, what="30 events before the crash")
        broker.kill()
        wait_until(lambda: agent.spool.depth() >= 10, what="events spooled while the broker is dead")
        broker.start()
        wait_until(lambda: agent.publisher.connected and agent.spool.depth() == 0, timeout=30, what="spool drained")
        last_seq = agent.spool.last_seq
        stop.set()
        runner.join(timeout=20)
        wait_until(lambda: audit.seqs()[-1] >= last_seq, timeout=20, what="the last seq at the subscriber")
    finally:
        stop.set()
        audit.close()
        broker.close()
    seqs = audit.seqs()
    assert seqs[-1] >= last_seq > 40
    assert_complete(seqs)
    assert audit.historical, "events spooled during the outage are replayed as historical"


def test_agent_kill_9_then_restart_replays_the_spool_and_continues_seq(tmp_path):
    broker = MosquittoBroker(persistent=True)
    config_path = tmp_path / "agent.yaml"
    config_path.write_text(yaml.safe_dump(agent_config(tmp_path, broker.port, "chaos-2")))
    command = [sys.executable, "-m", "fieldline.cli", "edge", "run", "--config", str(config_path)]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    spool = tmp_path / "chaos-2" / "spool.db"

    def spooled() -> int:
        import sqlite3

        if not spool.exists():
            return 0
        try:
            with sqlite3.connect(spool) as db:
                return db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        except sqlite3.OperationalError:  # the agent is still creating its tables
            return 0

    try:
        wait_until(lambda: spooled() >= 20, timeout=30, what="events spooled with no broker")
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
        kept = spooled()
        broker.start()
        audit = AuditSubscriber(broker.port, "chaos-2")
        second = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_until(lambda: len(audit.seqs()) >= kept + 20, timeout=40, what="replayed and new events")
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(20)
            audit.close()
    finally:
        if first.poll() is None:
            first.kill()
        broker.close()
    events = list(audit.events.values())
    assert_complete(audit.seqs())
    boots = {e["boot"] for e in events}
    assert boots == {1, 2}
    assert {e["id"] for e in events if e["boot"] == 1} <= audit.historical
    assert max(e["seq"] for e in events if e["boot"] == 1) < min(e["seq"] for e in events if e["boot"] == 2)
