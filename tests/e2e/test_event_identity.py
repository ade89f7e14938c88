"""Event identity with real processes: one device name at two sites, a wiped data folder, and agents of the
old wire schema (1.0, ids ``{device}-{boot}-{seq}``) whose ids collide.

Real Mosquitto, the API as its own process, agents as their own processes. A probe subscribed to the broker
records every distinct event the broker carried (id and content, ``historical`` aside); the API must have
stored each one, a true duplicate once, and a collision visibly (derived id, counter, alert).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fieldline.contract import events_topic, subscription
from tests.support.api_process import ApiProcess
from tests.support.live_api import wait_until
from tests.support.mosquitto import MosquittoBroker
from tests.support.mqtt_probe import MqttProbe

pytestmark = pytest.mark.e2e
REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "models" / "zoo" / "tomato-ripeness.int8.onnx"


def _agent_yaml(tmp_path: Path, port: int, site: str, data_dir: Path, seed: int) -> Path:
    config = {
        "device": "box-a", "site": site, "data_dir": str(data_dir),
        "mqtt": {"host": "127.0.0.1", "port": port, "reconnect_min_s": 0.2, "reconnect_max_s": 1},
        "model": {"path": str(MODEL)},
        "cameras": [{"name": "cam-1", "source": {"type": "synthetic", "seed": seed, "ripening_per_hour": 0},
                     "zone": {"id": f"shed-{site}"}, "fps": 10, "publish_interval_s": 0.1, "smoothing_frames": 1}],
    }
    path = tmp_path / f"{site}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


class AgentProcess:
    def __init__(self, config: Path) -> None:
        self.command = [sys.executable, "-m", "fieldline.cli", "edge", "run", "--config", str(config)]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(self.command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # drains the spool before it exits
            self.process.wait(30)


def _distinct(payloads: list[bytes]) -> dict[str, set[str]]:
    """Per site, the distinct events seen (id + content without ``historical``)."""
    seen: dict[str, set[str]] = {}
    for raw in payloads:
        event = json.loads(raw)
        event.pop("historical", None)
        seen.setdefault(event["site"], set()).add(json.dumps(event, sort_keys=True))
    return seen


def _stored(api: ApiProcess, site: str) -> list[dict]:
    return api.get("/events", site=site, device="box-a", limit=1000)


def test_same_name_at_two_sites_and_a_wiped_folder_lose_nothing(tmp_path):
    broker = MosquittoBroker(persistent=True).start()
    (tmp_path / "api").mkdir()
    api = ApiProcess(tmp_path / "api", broker, client_id="identity-api")
    probe = MqttProbe(broker.port).connect()
    probe.subscribe(subscription(device="box-a").replace("/#", "/events"))
    one_dir, two_dir = tmp_path / "one-data", tmp_path / "two-data"
    one = AgentProcess(_agent_yaml(tmp_path, broker.port, "site-one", one_dir, seed=3))
    two = AgentProcess(_agent_yaml(tmp_path, broker.port, "site-two", two_dir, seed=4))
    try:
        api.start()

        def carried(site: str) -> int:
            return len(_distinct([m.payload for m in probe.messages]).get(site, set()))

        one.start()
        two.start()
        wait_until(lambda: carried("site-one") >= 15 and carried("site-two") >= 15, timeout=60,
                   what="events from both sites")
        one.stop()
        first_install = next(e for e in map(json.loads, (m.payload for m in probe.messages)) if e["site"] == "site-one")
        shutil.rmtree(one_dir)  # the SD card is replaced: boot and seq start again at 1
        before_wipe = carried("site-one")
        one.start()
        wait_until(lambda: carried("site-one") >= before_wipe + 15, timeout=60, what="events after the wipe")
        one.stop()
        two.stop()
        broker_saw = _distinct([m.payload for m in probe.messages])
        wait_until(lambda: all(len(_stored(api, site)) >= len(broker_saw[site]) for site in broker_saw),
                   timeout=30, what="the API to store every event the broker carried")
        stored = {site: _stored(api, site) for site in broker_saw}
        devices = api.get("/devices")
        audit_one = api.get("/devices/site-one/box-a/audit")
        audit_two = api.get("/devices/site-two/box-a/audit")
        alerts = api.get("/alerts", state="active")
        health = api.get("/health")
    finally:
        one.stop()
        two.stop()
        probe.close()
        api.stop()
        broker.close()

    for site, events in stored.items():
        assert len(events) == len({e["id"] for e in events}) == len(broker_saw[site]), site
        assert all(e["instance"] for e in events), "schema 1.1 agents put their instance in every event"
        contents = {json.dumps({k: v for k, v in e.items() if k != "historical"}, sort_keys=True) for e in events}
        assert contents == broker_saw[site], f"{site}: stored events differ from what the broker carried"
    assert not {e["id"] for e in stored["site-one"]} & {e["id"] for e in stored["site-two"]}
    assert sorted((d["site"], d["device"]) for d in devices if d["device"] == "box-a") == [
        ("site-one", "box-a"), ("site-two", "box-a")]
    # the wiped box is one device with two installs, each complete from seq 1
    assert audit_one["reinstalled"] is True and len(audit_one["installs"]) == 2
    assert audit_one["installs"][0]["instance"] == first_install["instance"]
    for install in audit_one["installs"] + audit_two["installs"]:
        assert install["first_seq"] == 1 and install["missing"] == 0 and install["gaps"] == [], install
    assert audit_two["reinstalled"] is False and audit_two["id_collisions"] == 0
    assert [a["code"] for a in alerts if a["site"] == "site-one"].count("instance_changed") == 1
    assert health["ingest"]["id_collisions"] == 0


def _v1_event(site: str, seq: int, ripe: int, historical: bool = False) -> bytes:
    """An event as agents before schema 1.1 sent it: no instance, id ``{device}-{boot}-{seq}``."""
    return json.dumps({
        "schema": "fieldline.event/1", "id": f"old-box-1-{seq}", "device": "old-box", "site": site,
        "camera": "cam-1", "boot": 1, "seq": seq, "ts_ms": 1_700_000_000_000 + seq, "zone": {"kind": "shed",
        "id": f"shed-{site}"}, "kind": "count", "model": {"name": "m", "version": "1", "sha256": "ab"},
        "counts": {"ripe": ripe}, "historical": historical,
    }).encode()


def test_schema_1_0_events_are_read_and_their_id_collisions_are_stored_and_alerted(tmp_path):
    broker = MosquittoBroker().start()
    api = ApiProcess(tmp_path, broker, client_id="identity-api-v1")
    try:
        api.start()
        with MqttProbe(broker.port).connect() as edge:
            for seq in (1, 2, 3):
                edge.publish(events_topic("farm-a", "old-box"), _v1_event("farm-a", seq, ripe=seq))
            edge.publish(events_topic("farm-a", "old-box"), _v1_event("farm-a", 2, ripe=2))  # a QoS1 resend
            edge.publish(events_topic("farm-a", "old-box"), _v1_event("farm-a", 3, ripe=3, historical=True))  # replay
            for seq in (1, 2):  # same device name and ids at another farm: other content
                edge.publish(events_topic("farm-b", "old-box"), _v1_event("farm-b", seq, ripe=10 + seq))
            edge.publish(events_topic("farm-b", "old-box"), _v1_event("farm-b", 1, ripe=11))  # collided, again
        wait_until(lambda: api.get("/health")["ingest"]["received"] >= 8, what="all eight messages received")
        wait_until(lambda: api.get("/health")["ingest"]["queue_depth"] == 0, what="ingest idle")
        a, b = (api.get("/events", site=site, device="old-box") for site in ("farm-a", "farm-b"))
        health = api.get("/health")["ingest"]
        alerts = api.get("/alerts", state="active")
        audit_b = api.get("/devices/farm-b/old-box/audit")
        letters = api.get("/dead-letters")
    finally:
        api.stop()
        broker.close()
    assert sorted(e["counts"]["ripe"] for e in a) == [1, 2, 3]
    assert sorted(e["counts"]["ripe"] for e in b) == [11, 12]
    assert all(e["instance"] is None for e in a + b)
    assert {e["id"] for e in a} == {"old-box-1-1", "old-box-1-2", "old-box-1-3"}
    assert all(e["id"].startswith("old-box-1-") and "~" in e["id"] for e in b), "stored under derived ids"
    assert health["id_collisions"] == 2 and health["duplicates"] == 3 and health["dead_letters"] == 0
    collision_alerts = [x for x in alerts if x["code"] == "id_collision"]
    assert len(collision_alerts) == 1 and collision_alerts[0]["site"] == "farm-b"
    assert collision_alerts[0]["count"] == 2 and "farm-a/old-box" in collision_alerts[0]["message"]
    assert audit_b["id_collisions"] == 2 and audit_b["installs"][0]["instance"] is None
    assert letters == []
