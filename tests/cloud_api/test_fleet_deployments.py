"""Deployment REST over real HTTP and SQLite (no broker: nothing is published, so no device moves past
``installing``): targets, stages, refusals, operator actions and their audit entries.

The rollouts themselves, with real agents, are in tests/e2e/test_fleet_rollout.py.
"""

from __future__ import annotations

import hashlib

import pytest

from cloud_api.services.users import create_user
from tests.cloud_api.cloudapi_builders import PASSWORD, SITE, ApiServer, device_status, login, settings_for, wait_until
from tests.support.api_process import REPO

INT8 = REPO / "models" / "zoo" / "tomato-ripeness.int8.onnx"


@pytest.fixture()
def api(tmp_path):
    with ApiServer(settings_for(tmp_path)) as server:
        store = server.server.config.app.state.store
        create_user(store, "olga", PASSWORD, "operator")
        create_user(store, "vic", PASSWORD, "viewer")
        for i, state in enumerate(["online", "offline", "online", "online", "online"], start=1):
            store.write_status(device_status(state, device=f"edge-{i}"), 1000 + i)
        yield server


def upload(client) -> str:
    response = client.post("/models", content=INT8.read_bytes(), headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 201, response.text
    return hashlib.sha256(INT8.read_bytes()).hexdigest()


def test_a_rollout_puts_online_devices_first_in_a_canary_then_batches(api):
    olga = login(api, "olga")
    sha = upload(olga)
    response = olga.post("/deployments", json={"sha256": sha, "target": {"site": SITE}, "canary": 2, "batch_size": 2})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["state"] == "running" and body["stages"] == 3 and body["created_by"] == "olga"
    order = [(d["device"], d["stage"]) for d in body["devices"]]
    # online devices by name first (edge-1, edge-3 canaries), the offline edge-2 last
    assert order == [("edge-1", 0), ("edge-3", 0), ("edge-4", 1), ("edge-5", 1), ("edge-2", 2)]
    # the engine starts the online canaries: a model command each, stored with the move
    detail = wait_until(lambda: (d := olga.get(f"/deployments/{body['id']}").json())["devices_by_state"]
                        .get("installing") == 2 and d, 10, "canaries installing")
    canaries = [d for d in detail["devices"] if d["stage"] == 0]
    for row in canaries:
        command = olga.get(f"/commands/{row['command_id']}").json()
        assert command["name"] == "model" and command["args"]["sha256"] == sha and command["state"] == "pending"
    assert all(d["state"] == "waiting" for d in detail["devices"] if d["stage"] > 0)
    assert [h["to_state"] for h in detail["history"]][:1] == ["running"]
    audit = olga.get("/audit", params={"target": sha}).json()
    assert [a["action"] for a in audit if a["action"].startswith("deployment")] == ["deployment.create"]

    # the same devices cannot be in two running rollouts
    again = olga.post("/deployments", json={"sha256": sha, "target": {"devices": [f"{SITE}/edge-4"]}})
    assert again.status_code == 409 and "edge-4" in again.json()["detail"]


def test_targets_by_tag_and_refusals(api):
    olga, vic = login(api, "olga"), login(api, "vic")
    sha = upload(olga)
    assert olga.put(f"/devices/{SITE}/edge-3/tags", json={"tags": ["line:3", "greenhouse"]}).json() == [
        "greenhouse", "line:3"]
    assert olga.put(f"/devices/{SITE}/edge-4/tags", json={"tags": ["line:3"]}).status_code == 200
    assert olga.put(f"/devices/{SITE}/edge-4/tags", json={"tags": ["no spaces"]}).status_code == 422
    assert olga.put(f"/devices/{SITE}/nope/tags", json={"tags": ["a"]}).status_code == 404
    fleet = {d["device"]: d for d in olga.get("/fleet").json()}
    assert fleet["edge-3"]["tags"] == ["greenhouse", "line:3"] and fleet["edge-2"]["online"] is False

    created = olga.post("/deployments", json={"sha256": sha, "target": {"tag": "line:3"}}).json()
    assert sorted(d["device"] for d in created["devices"]) == ["edge-3", "edge-4"]

    cases = [
        (vic, {"sha256": sha, "target": {"site": SITE}}, 403, "operator"),
        (olga, {"sha256": "0" * 64, "target": {"site": SITE}}, 404, "no model"),
        (olga, {"sha256": sha, "target": {"tag": "line:9"}}, 404, "no device with tag 'line:9'"),
        (olga, {"sha256": sha, "target": {"devices": ["farm/ghost"]}}, 404, "farm/ghost"),
        (olga, {"sha256": sha, "target": {"site": SITE, "tag": "x"}}, 422, "exactly one"),
    ]
    for client, body, code, words in cases:
        response = client.post("/deployments", json=body)
        assert response.status_code == code and words in response.text, (body, response.text)
    refused = [a for a in olga.get("/audit").json() if a["action"] == "deployment.create" and a["result"] == "refused"]
    assert len(refused) == 3  # the 404s; a 422 body never reaches the service, a viewer never the route


def test_pause_resume_abort_and_rollback_are_checked_and_audited(api):
    olga, vic = login(api, "olga"), login(api, "vic")
    sha = upload(olga)
    deployment = olga.post("/deployments", json={"sha256": sha, "target": {"site": SITE}}).json()["id"]

    def act(action, client=olga):
        return client.post(f"/deployments/{deployment}/{action}")

    assert act("pause").json()["state"] == "paused"
    assert act("pause").status_code == 409 and "paused" in act("pause").json()["detail"]
    assert act("resume", vic).status_code == 403
    assert act("resume").json()["state"] == "running"
    aborted = act("abort").json()
    assert aborted["state"] == "aborted" and aborted["reason"] == "aborted by olga"
    assert act("resume").status_code == 409
    # waiting devices never start; the canary's command was already stored, so it finishes (here: nothing)
    wait_until(lambda: olga.get(f"/deployments/{deployment}").json()["devices_by_state"].get("skipped") == 4, 10,
               "waiting devices skipped")
    rolled = act("rollback").json()
    assert rolled["state"] == "rolling_back" and rolled["reason"] == "rolled back by olga"
    assert olga.post(f"/deployments/{deployment}/explode").status_code == 422
    actions = [(a["action"], a["result"]) for a in olga.get("/audit", params={"target": sha}).json()]
    assert actions.count(("deployment.pause", "ok")) == 1 and actions.count(("deployment.pause", "refused")) == 2
    assert ("deployment.abort", "ok") in actions and ("deployment.rollback", "ok") in actions
    history = olga.get(f"/deployments/{deployment}").json()["history"]
    assert [h["to_state"] for h in history if h["device"] is None] == [
        "running", "paused", "running", "aborted", "rolling_back"]
