"""Device commands through real Mosquitto and the real API: stored before publishing, replies matched by
request id, time-outs, late replies, replies from the wrong device, roles and the audit trail."""

from __future__ import annotations

import json
import queue
import time
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cloud_api.services.users import create_user
from fieldline.contract import Command, CommandReply, command_reply_topic, command_topic
from tests.cloud_api.cloudapi_builders import (
    PASSWORD,
    SITE,
    ApiServer,
    Publisher,
    login,
    settings_for,
    status_payload,
    wait_until,
)


class FakeDevice:
    """A bare MQTT client in a device's place: records the commands it gets, answers when told to."""

    def __init__(self, broker, device: str, api: ApiServer) -> None:
        self.device = device
        self.api = api
        self.received: queue.Queue[tuple[Command, str | None]] = queue.Queue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"dev-{uuid.uuid4().hex[:8]}")
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.subscribe(command_topic(SITE, device, "+"), qos=1)
        self.client.loop_start()
        time.sleep(0.3)

    def _on_message(self, client, userdata, message) -> None:
        command = Command.model_validate_json(message.payload)
        # what the API had stored at the moment the message reached the device
        stored = self.api.client.get(f"/commands/{command.request_id}")
        self.received.put((command, stored.json()["state"] if stored.status_code == 200 else None))

    def next_command(self, timeout: float = 10.0) -> tuple[Command, str | None]:
        return self.received.get(timeout=timeout)

    def reply(self, command: Command, ok: bool = True, error: str | None = None, device: str | None = None) -> None:
        reply = CommandReply(request_id=command.request_id, ok=ok, error=error, ts_ms=int(time.time() * 1000),
                             result={"snapshot": "s-1"} if ok else None)
        info = self.client.publish(command_reply_topic(SITE, device or self.device, command.name), reply.to_json(),
                                   qos=1)
        info.wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture()
def fleet(tmp_path, broker):
    with ApiServer(settings_for(tmp_path, broker)) as api:
        assert api.worker.wait_connected(10)
        store = api.server.config.app.state.store
        create_user(store, "olga", PASSWORD, "operator")
        create_user(store, "vic", PASSWORD, "viewer")
        with Publisher(broker) as publisher:
            for device in ("edge-1", "edge-2"):
                publisher.status(status_payload(device=device), device=device)
        wait_until(lambda: len(api.get("/devices")) == 2, what="devices known")
        devices = {name: FakeDevice(broker, name, api) for name in ("edge-1", "edge-2")}
        try:
            yield api, devices
        finally:
            for device in devices.values():
                device.close()


def command_state(api: ApiServer, command_id: str) -> dict:
    return api.get(f"/commands/{command_id}")


def test_a_command_is_stored_before_it_is_published_and_its_reply_is_matched(fleet):
    api, devices = fleet
    olga = login(api, "olga")
    response = olga.post(f"/devices/{SITE}/edge-1/commands", json={"name": "snapshot", "args": {"camera": "cam-1"}})
    assert response.status_code == 202, response.text
    created = response.json()
    assert created["state"] in ("pending", "sent") and created["created_by"] == "olga"
    command, state_on_arrival = devices["edge-1"].next_command()
    assert command.request_id == created["id"] and command.name == "snapshot" and command.args == {"camera": "cam-1"}
    assert state_on_arrival in ("pending", "sent")  # the row existed before the device saw the message
    wait_until(lambda: command_state(api, created["id"])["state"] == "sent", what="sent after the PUBACK")
    devices["edge-1"].reply(command)
    done = wait_until(lambda: (c := command_state(api, created["id"]))["state"] == "ok" and c, what="reply stored")
    assert done["reply"]["ok"] is True and done["reply"]["result"] == {"snapshot": "s-1"}
    assert done["attempts"] == 1 and done["replied_ms"] >= done["sent_ms"]
    assert devices["edge-2"].received.empty()  # addressed by (site, device)

    listed = login(api, "vic").get(f"/devices/{SITE}/edge-1/commands").json()  # viewers read
    assert [c["id"] for c in listed] == [created["id"]]
    assert login(api, "vic").get(f"/devices/{SITE}/edge-2/commands").json() == []
    audit = api.get("/audit", target=f"{SITE}/edge-1")
    assert [(a["action"], a["actor"], a["result"]) for a in reversed(audit)] == [
        ("command.snapshot", "olga", "pending"), ("command.snapshot.result", f"{SITE}/edge-1", "ok")]
    assert audit[0]["detail"]["requested_by"] == "olga" and audit[0]["detail"]["command_id"] == created["id"]


def test_an_error_reply_and_a_reply_from_another_device(fleet):
    api, devices = fleet
    olga = login(api, "olga")
    created = olga.post(f"/devices/{SITE}/edge-1/commands", json={"name": "restart"}).json()
    command, _ = devices["edge-1"].next_command()
    devices["edge-2"].reply(command, device="edge-2")  # same request id, wrong device: not this command's reply
    time.sleep(0.5)
    assert command_state(api, created["id"])["state"] == "sent"
    devices["edge-1"].reply(command, ok=False, error="restart refused: updating")
    done = wait_until(lambda: (c := command_state(api, created["id"]))["state"] == "error" and c, what="error")
    assert done["reply"]["error"] == "restart refused: updating"
    devices["edge-1"].reply(command)  # a second reply does not overwrite the first
    time.sleep(0.5)
    assert command_state(api, created["id"])["state"] == "error"


def test_no_reply_times_out_and_a_late_reply_is_still_kept(fleet):
    api, devices = fleet
    olga = login(api, "olga")
    created = olga.post(f"/devices/{SITE}/edge-2/commands", json={"name": "snapshot", "timeout_s": 1}).json()
    command, _ = devices["edge-2"].next_command()
    timed_out = wait_until(lambda: (c := command_state(api, created["id"]))["state"] == "timed_out" and c,
                           timeout=5, what="time-out")
    assert timed_out["timed_out_ms"] >= timed_out["deadline_ms"] and timed_out["reply"] is None
    results = [a for a in api.get("/audit", target=f"{SITE}/edge-2") if a["action"] == "command.snapshot.result"]
    assert [(a["actor"], a["result"]) for a in results] == [("api", "timed_out")]
    devices["edge-2"].reply(command)
    late = wait_until(lambda: (c := command_state(api, created["id"]))["state"] == "ok" and c, what="late reply")
    assert late["timed_out_ms"] == timed_out["timed_out_ms"]
    results = [a for a in api.get("/audit", target=f"{SITE}/edge-2") if a["action"] == "command.snapshot.result"]
    assert results[0]["result"] == "ok" and results[0]["detail"]["late_by_ms"] > 0


def test_refusals_roles_and_redaction(fleet):
    api, devices = fleet
    olga, vic = login(api, "olga"), login(api, "vic")
    assert vic.post(f"/devices/{SITE}/edge-1/commands", json={"name": "restart"}).status_code == 403
    unknown = olga.post(f"/devices/{SITE}/edge-9/commands", json={"name": "restart"})
    assert unknown.status_code == 404 and "edge-9" in unknown.json()["detail"]
    no_model = olga.post(f"/devices/{SITE}/edge-1/commands", json={"name": "model", "args": {"sha256": "a" * 64}})
    assert no_model.status_code == 404 and "push it first" in no_model.json()["detail"]
    bad = olga.post(f"/devices/{SITE}/edge-1/commands", json={"name": "config", "args": {"cfg": {}}})
    assert bad.status_code == 422 and "args.config" in bad.json()["detail"]
    assert olga.post(f"/devices/{SITE}/edge-1/commands", json={"name": "reboot"}).status_code == 422
    refused = [a for a in api.get("/audit") if a["result"] == "refused"]
    assert {a["action"] for a in refused} == {"command.restart", "command.model", "command.config"}
    assert all(a["actor"] == "olga" for a in refused)

    config = {"device": "edge-1", "site": SITE, "mqtt": {"host": "h", "password": "s3cret"}}
    created = olga.post(f"/devices/{SITE}/edge-1/commands", json={"name": "config", "args": {"config": config}})
    assert created.status_code == 202
    command, _ = devices["edge-1"].next_command()
    assert command.args["config"]["mqtt"]["password"] == "s3cret"  # the device gets it...
    shown = command_state(api, created.json()["id"])
    assert shown["args"]["config"]["mqtt"]["password"] == "<redacted>"  # ...the API's readers do not
    assert "s3cret" not in json.dumps(api.get("/audit"))


def test_a_command_sent_while_the_broker_is_down_goes_out_when_it_returns(tmp_path, broker):
    with ApiServer(settings_for(tmp_path, broker)) as api:
        assert api.worker.wait_connected(10)
        with Publisher(broker) as publisher:
            publisher.status(status_payload(device="edge-1"), device="edge-1")
        wait_until(lambda: len(api.get("/devices")) == 1, what="device known")
        broker.stop()
        wait_until(lambda: not api.worker.connected, what="the API noticed the broker is gone")
        created = api.client.post(f"/devices/{SITE}/edge-1/commands", json={"name": "restart"})
        assert created.status_code == 202, created.text
        time.sleep(1.5)  # a few dispatcher passes without a broker
        pending = command_state(api, created.json()["id"])
        assert (pending["state"], pending["attempts"]) == ("pending", 0)
        broker.start()
        device = FakeDevice(broker, "edge-1", api)
        try:
            command, _ = device.next_command(timeout=20)
            assert command.request_id == created.json()["id"]
            device.reply(command)
            done = wait_until(lambda: (c := command_state(api, command.request_id))["state"] == "ok" and c,
                              timeout=10, what="reply after the broker came back")
            assert done["attempts"] == 1
        finally:
            device.close()
