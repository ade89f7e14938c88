"""Inspection path with real parts: image folder → shipped ONNX model → rule → Mosquitto → API.

The shipped tomato model stands in for a defect model here: its `ripe` label plays the defect, so a frame
with a confident ripe fruit is a reject. What is exercised is the real path: verdicts, evidence snapshots
sent before their event, camera-health alerts and the alert lifecycle in the API.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from cloud_api.core.config import Settings
from edge_agent.agent import Agent
from edge_agent.config import AgentConfig
from edge_agent.detectors import OnnxDetector, build_detector
from models.data.synth.tomato import random_scene, render
from tests.support.live_api import LiveApi, wait_until
from tests.support.mosquitto import MosquittoBroker

pytestmark = pytest.mark.e2e
MODEL = Path(__file__).resolve().parents[2] / "models" / "zoo" / "tomato-ripeness.int8.onnx"


def write_frames(folder: Path, count: int) -> None:
    folder.mkdir()
    for i in range(count):
        rendered = render(random_scene(np.random.default_rng(300 + i)), np.random.default_rng(i))
        cv2.imwrite(str(folder / f"part-{i:03d}.jpg"), rendered.image)
    (folder / "part-900-corrupt.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    for i in range(3):  # the lights go out at the end of the batch
        cv2.imwrite(str(folder / f"zz-dark-{i}.png"), np.zeros((480, 640, 3), np.uint8))


def test_inspection_events_snapshots_and_alerts_reach_the_api(tmp_path):
    write_frames(tmp_path / "frames", 8)
    with MosquittoBroker() as broker, LiveApi(Settings(data_dir=tmp_path / "api", mqtt_port=broker.port,
                                                       api_tokens=["t"])) as api:
        config = AgentConfig.model_validate({
            "device": "line-edge-1", "site": "plant", "data_dir": tmp_path / "edge",
            "mqtt": {"host": "127.0.0.1", "port": broker.port}, "model": {"path": MODEL},
            "cameras": [{"name": "cam-line", "source": {"type": "folder", "path": tmp_path / "frames"},
                         "zone": {"kind": "line", "id": "line-1"}, "fps": 20,
                         "rule": {"type": "inspection", "defect_labels": ["ripe"], "reject_score": 0.5}}],
        })
        agent = Agent(config, OnnxDetector(MODEL, 0.35, 0.5, 1))
        assert agent.run(duration_s=20) == 0
        with api.client() as client:
            def inspections() -> list[dict] | None:
                found = client.get("/api/v1/events", params={"kind": "inspection"}).json()
                return found if len(found) == 11 else None

            events = wait_until(inspections, what="11 inspection events (8 parts + 3 dark frames)")
            alerts = wait_until(lambda: client.get("/api/v1/alerts").json(), what="alerts")
            rejects = [e for e in events if e["verdict"] == "reject"]
            assert rejects, "some frames show ripe fruit"
            assert all(e["snapshot"] == e["id"] for e in rejects)
            image = client.get(f"/api/v1/snapshots/{rejects[0]['id']}")
            assert image.status_code == 200 and image.content[:2] == b"\xff\xd8"
            assert all(e["snapshot"] is None for e in events if e["verdict"] == "pass")
    assert agent.counters["cam-line"].skipped_frames == 1  # the corrupt file was skipped and counted
    assert [a["code"] for a in alerts] == ["camera_black"]
    assert alerts[0]["state"] == "active" and alerts[0]["zone"]["id"] == "line-1"


def test_shipped_steel_defect_model_rejects_defective_parts(tmp_path):
    """The zoo's steel-defect model (its default file) on a line of synthetic steel parts, through the agent,
    Mosquitto and the API: defect-free parts pass (up to the file's false-reject budget), clearly defective ones
    (patches, frayed edges) are rejected with their defect classes, evidence snapshots and the QA summary counting
    them."""
    from models.data.sources import DataSource
    from models.zoo_index import default_file

    model = default_file("steel-defect")
    folder = tmp_path / "parts"
    folder.mkdir()
    truth: dict[str, str] = {}
    for i, (img, _, labels) in enumerate(DataSource.parse("synth:surface").frames("test", 40, 606)):
        if labels and not {"patch", "fray"} & set(labels):
            continue  # thin cracks and pits are the model's weak spot (see its card); keep the clear cases
        name = f"part-{i:03d}.png"
        cv2.imwrite(str(folder / name), img)
        truth[name] = "reject" if labels else "pass"
    assert list(truth.values()).count("reject") >= 4 and list(truth.values()).count("pass") >= 3
    with MosquittoBroker() as broker, LiveApi(Settings(data_dir=tmp_path / "api", mqtt_port=broker.port,
                                                       api_tokens=["t"])) as api:
        config = AgentConfig.model_validate({
            "device": "steel-edge-1", "site": "plant", "data_dir": tmp_path / "edge",
            "mqtt": {"host": "127.0.0.1", "port": broker.port}, "model": {"path": model},
            "cameras": [{"name": "cam-strip", "source": {"type": "folder", "path": folder},
                         "zone": {"kind": "line", "id": "strip-1"}, "fps": 20,
                         "rule": {"type": "inspection"}}],  # rejects at the threshold calibrated into the file
        })
        agent = Agent(config, build_detector(config.model))  # as the CLI builds it
        assert agent.run(duration_s=20) == 0
        with api.client() as client:
            events = wait_until(lambda: (lambda found: found if len(found) == len(truth) else None)(
                client.get("/api/v1/events", params={"kind": "inspection", "limit": 100}).json()),
                what=f"{len(truth)} inspection events")
            verdicts = sorted(e["verdict"] for e in events)
            rejects = [e for e in events if e["verdict"] == "reject"]
            summary = client.get("/api/v1/qa/summary", params={"line": "strip-1"}).json()
    clean = list(truth.values()).count("pass")
    defective = len(truth) - clean
    assert len(rejects) >= defective - 1, (verdicts, truth)  # at most one defective part slips through ...
    # ... and at most one clean part is rejected: the file's threshold is calibrated to reject up to 5 % of clean
    # parts (steel-defect 1.2.0 rejects one of these 6, a crack-like streak scored 0.34 against its 0.24)
    assert len(rejects) <= defective + 1, (verdicts, truth)
    labels = {d["label"] for e in rejects for d in e["detections"]}
    assert labels and labels <= {"scratch", "crack", "pit", "inclusion", "patch", "fray"}
    assert all(e["snapshot"] == e["id"] for e in rejects)
    assert (summary["parts"], summary["rejects"]) == (len(truth), len(rejects))
    assert {d["label"] for d in summary["defects"]} == labels
