"""Edge sampling into the cloud datasets with real parts: an agent running the zoo's ONNX model on a synthetic
camera, real Mosquitto, the real API. Samples land in the model's dataset; while the broker is down they wait in
the spool and arrive after; an operator's request (API, "count looks wrong" on a shed) reaches the agent as the
`sample` command and comes back as a frame with reason on_demand; dataset changes reach the live WebSocket."""

from __future__ import annotations

import hashlib
import json
import threading

import pytest
from websockets.sync.client import connect

from edge_agent.agent import Agent
from edge_agent.config import AgentConfig
from edge_agent.detectors.factory import build_detector
from tests.cloud_api.cloudapi_builders import TOKEN, ApiServer, settings_for
from tests.support.fleet_rig import BASE_MODEL
from tests.support.live_api import wait_until
from tests.support.mosquitto import MosquittoBroker

SITE, DEVICE = "farm", "edge-7"


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("collect")
    # a persistent broker and session: what the agent re-sends before the API is back is queued for the API
    with MosquittoBroker(persistent=True) as broker, \
            ApiServer(settings_for(tmp, broker, mqtt_persistent_session=True)) as api:
        assert api.worker.wait_connected(10)
        config = AgentConfig.model_validate({
            "device": DEVICE, "site": SITE, "data_dir": str(tmp / "edge"), "stats_interval_s": 1.0,
            "mqtt": {"host": broker.host, "port": broker.port, "reconnect_min_s": 0.2, "reconnect_max_s": 1},
            "model": {"path": str(BASE_MODEL), "threads": 1},
            "cameras": [{
                "name": "cam-1", "fps": 4, "publish_interval_s": 1.0, "zone": {"kind": "shed", "id": "shed-7"},
                "source": {"type": "synthetic", "seed": 7, "width": 320, "height": 240, "ripening_per_hour": 5.0,
                           "time_scale": 600.0},
                "sampling": {"enabled": True, "random_rate": 1.0, "min_interval_s": 0.5, "dedup_distance": -1}}],
        })
        agent = Agent(config, build_detector(config.model))
        stop = threading.Event()
        thread = threading.Thread(target=agent.run, args=(stop,), daemon=True)
        thread.start()
        try:
            yield broker, api, agent
        finally:
            stop.set()
            thread.join(30)


def _frames(api: ApiServer, dataset: str) -> dict[str, dict]:
    return {f["id"]: f for f in api.get(f"/datasets/{dataset}/frames", limit=1000)["frames"]}


def _dataset(api: ApiServer) -> str:
    names = [d["name"] for d in api.get("/datasets") if d["frames"]]
    return names[0] if len(names) == 1 else ""


def test_samples_land_in_the_models_dataset_and_wait_in_the_spool_while_offline(rig):
    broker, api, agent = rig
    name = wait_until(lambda: _dataset(api), timeout=60, what="a dataset with frames")
    assert name == agent.model_ref.name  # the dataset named after the model, made on first use
    dataset = api.get(f"/datasets/{name}")
    assert set(agent.detector.labels) <= set(dataset["labels"])
    frame = next(iter(_frames(api, name).values()))
    assert (frame["source"]["device"], frame["source"]["camera"], frame["source"]["zone"]["id"]) == (
        DEVICE, "cam-1", "shed-7")
    assert frame["source"]["model"]["sha256"] == agent.model_ref.sha256 and frame["status"] == "new"
    assert frame["reason"] in ("uncertain_score", "count_flicker", "label_switch", "random")
    assert (frame["width"], frame["height"]) == (320, 240) and frame["predictions"]
    image = api.client.get(f"/datasets/{name}/frames/{frame['id']}/image")
    assert image.content[:3] == b"\xff\xd8\xff" and hashlib.sha256(image.content).hexdigest() == frame["image_sha256"]

    broker.stop()
    wait_until(lambda: not agent.publisher.connected, timeout=10, what="agent offline")
    waiting = wait_until(lambda: [i for i in agent.spool.pending(1000) if "/samples/" in i.topic][2:] and
                         [i for i in agent.spool.pending(1000) if "/samples/" in i.topic],
                         timeout=30, what="three samples in the spool")
    ids = {item.topic.rsplit("/", 1)[1] for item in waiting}
    assert not ids & set(_frames(api, name))
    broker.start()
    wait_until(lambda: ids <= set(_frames(api, name)), timeout=60, what="spooled samples in the dataset")
    stats = agent.stats()
    assert stats.samples and sum(stats.samples.values()) >= len(ids) + 1


def test_an_operator_request_comes_back_as_an_on_demand_frame_and_on_the_websocket(rig):
    broker, api, agent = rig
    wait_until(lambda: agent.publisher.connected, timeout=20, what="agent connected")
    name = wait_until(lambda: _dataset(api), timeout=60, what="a dataset with frames")
    ws_url = f"ws://127.0.0.1:{api.port}/api/v1/ws"
    with connect(ws_url, additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
        response = api.client.post("/datasets/requests", json={"site": SITE, "device": DEVICE, "note": "check"})
        assert response.status_code == 202, response.text
        request_id = response.json()["request_id"]
        done = wait_until(lambda: (r := api.get(f"/datasets/requests/{request_id}"))["frames"] and r,
                          timeout=30, what="the requested frame")
        assert done["state"] == "ok"
        frame = api.get(f"/datasets/{name}/frames/{done['frames'][0]['id']}")
        assert (frame["reason"], frame["request_id"], frame["note"]) == ("on_demand", request_id, "check")
        seen = []
        while not any(m["type"] == "dataset" and m["data"]["frame"] == frame["id"] for m in seen):
            seen.append(json.loads(ws.recv(timeout=10)))
        message = next(m for m in seen if m["type"] == "dataset" and m["data"]["frame"] == frame["id"])
        assert message["data"] == {"dataset": name, "frame": frame["id"], "status": "new", "reason": "on_demand"}

    wait_until(lambda: any(s["id"] == "shed-7" for s in api.get("/sheds")), timeout=20, what="shed counted")
    wrong = api.client.post("/sheds/shed-7/wrong-count", json={"note": "count looks wrong"})
    assert wrong.status_code == 202 and (wrong.json()["device"], wrong.json()["camera"]) == (DEVICE, "cam-1")
    done = wait_until(lambda: (r := api.get(f"/datasets/requests/{wrong.json()['request_id']}"))["frames"] and r,
                      timeout=30, what="the frame of the wrong count")
    frame = api.get(f"/datasets/{name}/frames/{done['frames'][0]['id']}")
    assert (frame["reason"], frame["note"]) == ("on_demand", "count looks wrong")
    assert api.client.post("/sheds/shed-99/wrong-count", json={}).status_code == 404
