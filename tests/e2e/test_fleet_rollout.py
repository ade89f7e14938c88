"""Staged rollouts end to end: real Mosquitto, the API as its own process, 20 real agents (3 OS processes, 17
in-process: 20 processes do not fit on 2 cores) with synthetic cameras at 1 fps.

The fleet is shared by the tests of this module (starting it costs more than a test), in this order:

1. bad models stop at the canary, which rolls back by itself, and no other device ever gets them: one with
   garbage outputs (counts jump), one ten times slower (the fps is capped by the camera rate, so the p95 latency
   gate catches it), a corrupt file (the device's sha256 check);
2. a good model reaches every device, in stages; a device offline during the rollout gets it when it returns;
3. the API killed with ``kill -9`` mid-rollout carries on after its restart, no device left half-way;
4. config versions: a good one reaches every device; one that miscounts stops at the canary, which returns to its
   previous config; one that fails on the device is undone there and goes no further.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.api_process import REPO, ApiProcess
from tests.support.bad_models import corrupt_stored_file, garbage_model, slow_model
from tests.support.fleet_rig import BASE_MODEL, Api, FleetRig
from tests.support.live_api import wait_until
from tests.support.mosquitto import MosquittoBroker

pytestmark = pytest.mark.e2e
ZOO = REPO / "models" / "zoo"
BASE_SHA = hashlib.sha256(BASE_MODEL.read_bytes()).hexdigest()
FAST_GATE = {"hold_s": 4, "settle_s": 3, "stats_grace_s": 15, "command_timeout_s": 90, "min_stats_samples": 3}
# a good model's mean count over a few seconds of a synthetic shed can differ by half from its last hour's
# (seen at 51 % in CI), and ten devices loading a model at once on 2 shared cores slow each other's first frames:
# good rollouts allow both; the garbage model's jump is hundreds of per cent, the slow model's latency ~900 %.
# 17 agents in one process share its GIL: in CI a good model's p95 read 480 % above before (88.8 ms against 15.3),
# so good rollouts leave latency wide open; the slow-model test checks the latency gate alone.
GOOD = {"max_count_jump_pct": 150, "max_latency_pct": 5000, "min_fps_pct": 50}


class Fleet:
    def __init__(self, broker: MosquittoBroker, api: ApiProcess, rig: FleetRig, client: Api, models: Path) -> None:
        self.broker, self.api, self.rig, self.client, self.models = broker, api, rig, client, models


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    tmp = tmp_path_factory.mktemp("rollout")
    (tmp / "api").mkdir()
    (tmp / "edge").mkdir()
    with MosquittoBroker() as broker:
        api = ApiProcess(tmp / "api", broker, client_id="rollout-api")
        api.start()
        rig = FleetRig(tmp / "edge", broker.port, processes=3, in_process=17, fps=1)
        try:
            rig.start()
            client = Api(api.url, api.token)
            client.wait_fleet(rig.devices, timeout=90)
            yield Fleet(broker, api, rig, client, tmp)
        finally:
            rig.stop()
            api.stop()


def start(fleet: Fleet, sha: str, **gate: object) -> str:
    body = {"sha256": sha, "target": {"site": "farm"}, "canary": 1, "batch_size": 10, **FAST_GATE, **gate}
    return fleet.client.ok("POST", "/deployments", json=body)["id"]


def model_commands(fleet: Fleet, device: str, sha: str) -> list[dict]:
    commands = fleet.client.ok("GET", f"/devices/{device}/commands")
    return [c for c in commands if c["name"] == "model" and c["args"].get("sha256") == sha]


def assert_stopped_at_canary(fleet: Fleet, deployment_id: str, sha: str, reason: str) -> dict:
    done = fleet.client.wait_state(deployment_id, ("failed",), timeout=60)
    canary = [d for d in done["devices"] if d["stage"] == 0]
    others = [d for d in done["devices"] if d["stage"] > 0]
    assert done["reason"].startswith(f"canary {canary[0]['site']}/{canary[0]['device']} failed its gate: ")
    assert reason in done["reason"], done["reason"]
    assert {d["state"] for d in others} == {"skipped"}
    for device in fleet.rig.devices[1:]:  # nobody else was even asked to load it
        assert model_commands(fleet, device, sha) == []
    fleet_now = fleet.client.fleet()
    assert {k: d["sha256"] for k, d in fleet_now.items()} == {k: BASE_SHA for k in fleet.rig.devices}
    downloads = [a for a in fleet.client.ok("GET", "/audit", params={"target": sha}) if a["action"] == "model.download"]
    assert {a["actor"] for a in downloads} <= {fleet.rig.devices[0]}
    return done


def test_bad_models_stop_at_the_canary_which_rolls_back_by_itself(fleet: Fleet) -> None:
    client = fleet.client
    garbage = client.push(garbage_model(BASE_MODEL, fleet.models / "garbage.onnx"))
    slow = client.push(slow_model(BASE_MODEL, fleet.models / "slow.onnx", matmuls=20))  # ~10x the latency
    corrupt = client.push(ZOO / "tomato-ripeness-fast.int8.onnx")
    corrupt_stored_file(fleet.api.data_dir, corrupt)
    canary = fleet.rig.devices[0]  # an agent process: online devices come first, then by name

    began = time.monotonic()
    # garbage boxes also cost the tracker time: a loose frame-rate gate lets the count gate speak
    done = assert_stopped_at_canary(fleet, start(fleet, garbage, min_fps_pct=30, max_latency_pct=1000), garbage,
                                    "counts jumped")
    row = done["devices"][0]
    assert row["state"] == "rolled_back" and row["gate"]["loaded"] is True and row["gate"]["self_test"] == "ok"
    assert row["gate"]["counts"]["jump_pct"] > 50
    rollback = client.ok("GET", f"/commands/{row['rollback_command_id']}")
    assert rollback["args"] == {"rollback": True} and rollback["state"] == "ok"
    assert rollback["reply"]["result"]["model"]["sha256"] == BASE_SHA
    garbage_s = time.monotonic() - began

    done = assert_stopped_at_canary(fleet, start(fleet, slow, min_fps_pct=50, max_latency_pct=300,
                                                           max_count_jump_pct=1000), slow,
                                    "p95 latency")
    gate = done["devices"][0]["gate"]
    assert gate["latency"]["above_pct"] > 300 and done["devices"][0]["state"] == "rolled_back", gate
    assert gate["fps"]["pct"] >= 50, gate  # the 1 fps camera hides the slower model from the frame rate

    done = assert_stopped_at_canary(fleet, start(fleet, corrupt), corrupt, "sha256 mismatch")
    assert done["devices"][0]["state"] == "failed" and done["devices"][0]["rollback_command_id"] is None

    actions = [a["action"] for a in client.ok("GET", "/audit", params={"target": garbage})]
    assert {"deployment.create", "deployment.gate_failed", "deployment.failed"} <= set(actions), actions
    device_audit = client.ok("GET", "/audit", params={"target": canary})
    assert any(a["action"] == "deployment.device_rollback" for a in device_audit)
    print(f"garbage model: start to rolled back {garbage_s:.1f} s")


def test_a_good_model_reaches_every_device_and_an_offline_one_when_it_returns(fleet: Fleet) -> None:
    client, rig = fleet.client, fleet.rig
    good = client.push(ZOO / "tomato-ripeness.onnx")
    late = rig.devices[-1]  # in-process: stopped before the rollout
    rig.stop_device(late)
    wait_until(lambda: not client.fleet()[late]["online"], timeout=15, what=f"{late} offline")
    deployment_id = start(fleet, good, hold_s=2, settle_s=1.5, **GOOD)
    created = client.deployment(deployment_id)
    assert created["stages"] == 3 and [d["stage"] for d in created["devices"]] == [0] + [1] * 10 + [2] * 9
    assert created["devices"][-1]["device"] == late.split("/")[1]  # the offline device goes last

    # every online device passes its gate; the rollout waits for the offline one
    try:
        wait_until(lambda: client.deployment(deployment_id)["devices_by_state"] == {"healthy": 19, "queued": 1},
                   timeout=120, interval=0.3, what="19 healthy, the offline one queued")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{client.describe(deployment_id)}") from None
    assert client.deployment(deployment_id)["state"] == "running"
    assert model_commands(fleet, late, good) == []
    rig.start_device(late)
    done = client.wait_state(deployment_id, ("succeeded",), timeout=60)
    assert {d["state"] for d in done["devices"]} == {"healthy"}
    assert {k: d["sha256"] for k, d in client.fleet().items()} == {k: good for k in rig.devices}
    assert rig.agent(late).detector.sha256 == good
    for row in done["devices"]:
        assert row["gate"]["fps"]["pct"] >= 50 and row["gate"]["model_errors"] == 0, row
        assert row["gate"]["fps"]["samples"] >= 3 and row["gate"]["before"]["samples"] >= 3, row
    stages = [h["detail"]["stage_passed"] for h in done["history"] if "stage_passed" in h["detail"]]
    assert stages == ["canary", "batch 1", "batch 2"]

    # an operator rolls the finished rollout back: every device returns to the model it ran before
    assert client.ok("POST", f"/deployments/{deployment_id}/rollback")["state"] == "rolling_back"
    back = client.wait_state(deployment_id, ("rolled_back",), timeout=60)
    assert {d["state"] for d in back["devices"]} == {"rolled_back"} and back["reason"] == "rolled back by service"
    wait_until(lambda: {d["sha256"] for d in client.fleet().values()} == {BASE_SHA}, timeout=20,
               what="every device back on the INT8 model")
    assert client.call("POST", f"/deployments/{deployment_id}/rollback").status_code == 409


def test_the_api_killed_mid_rollout_resumes_with_no_device_left_half_way(fleet: Fleet) -> None:
    client, api = fleet.client, fleet.api
    target = client.push(ZOO / "tomato-ripeness-fast.onnx")
    deployment_id = start(fleet, target, hold_s=2, settle_s=1.5, batch_size=19,  # canary, then one batch of 19
                          **GOOD)
    wait_until(lambda: client.deployment(deployment_id)["stage"] >= 1
               and any(d["state"] in ("installing", "verifying") for d in client.deployment(deployment_id)["devices"]
                       if d["stage"] == 1), timeout=40, interval=0.1, what="batch 1 half-way")
    api.kill()
    time.sleep(2)  # the agents go on; replies and stats reach the broker while the API is dead
    api.start()
    done = client.wait_state(deployment_id, ("succeeded",), timeout=120)
    assert {d["state"] for d in done["devices"]} == {"healthy"}
    assert {k: d["sha256"] for k, d in client.fleet().items()} == {k: target for k in fleet.rig.devices}
    starts = [h for h in done["history"] if h["from_state"] == "queued" and h["to_state"] == "installing"]
    assert len(starts) == len(fleet.rig.devices)  # each device started once, across the restart
    for device in fleet.rig.devices:
        commands = model_commands(fleet, device, target)
        # a download cut by the kill is tried again (nothing was loaded); exactly one install succeeded
        assert [c["state"] for c in commands].count("ok") == 1, (device, commands)
        assert all("download" in c["reply"]["error"] for c in commands if c["state"] == "error"), commands


def config_commands(fleet: Fleet, device: str, sha: str) -> list[dict]:
    commands = fleet.client.ok("GET", f"/devices/{device}/commands")
    return [c for c in commands if c["name"] == "config" and c["args"].get("version") == sha]


def test_config_versions_roll_out_and_a_bad_one_stops_at_the_canary(fleet: Fleet) -> None:
    client, rig = fleet.client, fleet.rig
    in_process = rig.devices[3:]
    hashes = {k: rig.agent(k).config_hash for k in in_process}
    good = client.push_config("farm-settings", {"snapshot_budget_bytes_per_min": 1_500_000,
                                                "model": {"iou_threshold": 0.45}})
    body = {"kind": "config", "sha256": good, "target": {"site": "farm"}, "canary": 1, "batch_size": 10,
            **FAST_GATE, "hold_s": 2, "settle_s": 1.5, **GOOD}
    deployment_id = client.ok("POST", "/deployments", json=body)["id"]
    done = client.wait_state(deployment_id, ("succeeded",), timeout=120)
    assert {d["state"] for d in done["devices"]} == {"healthy"} and done["kind"] == "config"
    for key in in_process:  # every agent runs the merged config: the version's keys, its own cameras and model
        agent = rig.agent(key)
        assert agent.config.model.iou_threshold == 0.45 and agent.config.snapshot_budget_bytes_per_min == 1_500_000
        assert agent.config.cameras[0].source.seed == int(key.split("-")[1]) and agent.config_hash != hashes[key]
    for row in done["devices"]:
        assert row["gate"]["loaded"] is True and row["gate"]["config_hash"] != row["before_sha256"], row
    canary = done["devices"][0]
    assert canary["device"] == "dev-01" and canary["gate"]["before"]["samples"] >= 3

    # a config that miscounts (every faint box counts): the canary returns to its previous config by itself
    miscount = client.push_config("farm-settings", {"model": {"conf_threshold": 0.01}})
    body.update(sha256=miscount, min_fps_pct=20, max_latency_pct=1000)
    failed = client.wait_state(client.ok("POST", "/deployments", json=body)["id"], ("failed",), timeout=90)
    row = failed["devices"][0]
    assert "counts jumped" in failed["reason"] and row["state"] == "rolled_back", client.describe(failed["id"])
    rollback = client.ok("GET", f"/commands/{row['rollback_command_id']}")
    assert rollback["args"] == {"rollback": True} and rollback["state"] == "ok"
    assert rollback["reply"]["result"]["config_hash"] == canary["gate"]["config_hash"]  # the good version again
    assert {d["state"] for d in failed["devices"][1:]} == {"skipped"}
    assert all(config_commands(fleet, k, miscount) == [] for k in rig.devices[1:])

    # a config that cannot run on the device (its camera file is missing): undone there, the reply says why
    broken = client.push_config("farm-settings", {"cameras": [
        {"name": "cam-1", "source": {"type": "video", "path": "/nonexistent/cam.mp4"}, "zone": {"id": "shed-01"}}]})
    body.update(sha256=broken)
    failed = client.wait_state(client.ok("POST", "/deployments", json=body)["id"], ("failed",), timeout=60)
    assert "apply failed (the device kept its config): camera cam-1: " in failed["reason"], failed["reason"]
    assert failed["reason"].endswith("the previous config is restored"), failed["reason"]
    assert failed["devices"][0]["state"] == "failed" and failed["devices"][0]["rollback_command_id"] is None
    assert all(config_commands(fleet, k, broken) == [] for k in rig.devices[1:])
    assert {rig.agent(k).config.model.iou_threshold for k in in_process} == {0.45}
    actions = {a["action"] for a in client.ok("GET", "/audit", params={"target": miscount})}
    assert {"config.upload", "deployment.create", "deployment.gate_failed", "deployment.failed"} <= actions
