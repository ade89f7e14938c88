"""Config versions on a real agent over real Mosquitto: a merge patch applied live with the running config kept in
the previous-config slot on disk, a rollback to it, and a config that fails on the device undone by the device."""

from __future__ import annotations

import json

import yaml

from tests.edge_agent.test_commands import running_agent  # noqa: F401 - the shared agent fixture
from tests.support.live_api import wait_until


def test_a_patch_is_merged_the_old_config_kept_and_a_rollback_restores_it(running_agent):  # noqa: F811
    agent, operator, config_path = running_agent
    before_hash = agent.config_hash
    reply = operator.send("config", {"patch": {"stats_interval_s": 7, "cameras": [
        {"name": "cam-1", "source": {"type": "synthetic", "seed": 4, "ripening_per_hour": 0},
         "zone": {"kind": "shed", "id": "shed-22"}, "fps": 3}]}, "version": "v" * 64})
    assert reply["ok"] is True, reply
    assert reply["result"] == {"applied": "live", "config_hash": agent.config_hash}
    assert agent.config_hash != before_hash and agent.config.stats_interval_s == 7
    assert agent.config.model.path.name == "tomato-ripeness.int8.onnx"  # what the patch did not name is kept
    saved = yaml.safe_load(config_path.read_text())
    assert saved["cameras"][0]["zone"]["id"] == "shed-22" and saved["stats_interval_s"] == 7
    previous = json.loads(agent.config_slots.previous.read_text())
    assert previous["cameras"][0]["zone"]["id"] == "shed-01" and previous["stats_interval_s"] == 60

    same = operator.send("config", {"patch": {"stats_interval_s": 7}, "version": "v" * 64})
    assert same["result"] == {"applied": "unchanged", "unchanged": True, "config_hash": agent.config_hash}
    assert json.loads(agent.config_slots.previous.read_text()) == previous  # the slot still holds the old one

    back = operator.send("config", {"rollback": True})
    assert back["ok"] is True, back
    assert back["result"] == {"rolled_back": "live", "config_hash": before_hash} and agent.config_hash == before_hash
    assert yaml.safe_load(config_path.read_text())["cameras"][0]["zone"]["id"] == "shed-01"
    wait_until(lambda: agent.loops["cam-1"].camera.zone.id == "shed-01", what="camera loop back on shed-01")
    assert json.loads(agent.config_slots.previous.read_text())["stats_interval_s"] == 7  # swapped


def test_a_config_that_fails_on_the_device_is_undone_there_and_the_reply_says_why(running_agent,  # noqa: F811
                                                                                   tmp_path):
    agent, operator, config_path = running_agent
    before_hash = agent.config_hash
    missing = tmp_path / "no-such-video.mp4"
    reply = operator.send("config", {"patch": {"cameras": [
        {"name": "cam-2", "source": {"type": "video", "path": str(missing)}, "zone": {"id": "shed-02"}}]},
        "version": "b" * 64})
    assert reply["ok"] is False
    assert reply["error"].startswith("camera cam-2: ") and str(missing) in reply["error"], reply["error"]
    assert reply["error"].endswith("; the previous config is restored")
    assert agent.config_hash == before_hash
    assert [c["name"] for c in yaml.safe_load(config_path.read_text())["cameras"]] == ["cam-1"]
    wait_until(lambda: "cam-1" in agent.loops and agent.loops["cam-1"].latest_frame(), what="cam-1 running again")
    assert not agent.config_slots.previous.exists()  # the slot is as it was: there was no previous config

    refused = operator.send("config", {"patch": {"mqtt": {"port": 1}}, "version": "c" * 64})
    assert refused["ok"] is False and refused["error"].startswith("args.patch: mqtt: cannot be set")
    nothing = operator.send("config", {"rollback": True})
    assert nothing == {**nothing, "ok": False, "error": "rollback: there is no previous config"}
