"""Chaos with real processes: kill -9 of the broker mid-stream, kill -9 of the agent with events spooled.

An audit subscriber keeps a persistent MQTT session, dedups by event id and checks ``seq`` for gaps.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from edge_agent.agent import Agent
from edge_agent.config import AgentConfig
from edge_agent.detectors.onnx_detector import OnnxDetector
from tests.support.live_api import wait_until
from tests.support.audit import AuditSubscriber
from tests.support.mosquitto import MosquittoBroker

pytestmark = pytest.mark.e2e
MODEL = Path(__file__).resolve().parents[2] / "models" / "zoo" / "tomato-ripeness.int8.onnx"


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
