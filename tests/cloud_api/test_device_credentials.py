"""An admin lists device broker credentials with when each device was last heard, and revokes one, against a
real Mosquitto that checks the passwd/acl files the API rewrites (reloaded by SIGHUP, as `systemctl reload`)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from cloud_api.services.devices_provisioning import MosquittoAuthFiles
from cloud_api.services.users import create_user
from fieldline.contract import events_topic, status_topic
from tests.cloud_api.cloudapi_builders import PASSWORD, SITE, ApiServer, event_payload, login, settings_for, wait_until
from tests.support.mosquitto import MosquittoBroker
from tests.support.mqtt_probe import MqttConnectRefused, MqttProbe, broker_with_config


def secured_broker(directory: Path) -> MosquittoBroker:
    return broker_with_config(lambda port: (
        f"listener {port} 127.0.0.1\n"
        "user root\n"  # as root, Mosquitto would drop to user mosquitto, which cannot read pytest's tmp dirs
        "allow_anonymous false\n"
        f"password_file {directory / 'passwd'}\n"
        f"acl_file {directory / 'acl'}\n"
        "persistence false\nlog_dest stderr\n"
    ))


def _status(device: str, ts_ms: int) -> bytes:
    return json.dumps({"state": "online", "device": device, "site": SITE, "boot": 1, "ts_ms": ts_ms,
                       "agent_version": "0.1.0", "model": None, "cameras": [], "config_hash": "c0ffee"}).encode()


@pytest.mark.timeout(90)
def test_admin_lists_and_revokes_device_credentials(tmp_path: Path) -> None:
    auth_dir = tmp_path / "mosquitto"
    files = MosquittoAuthFiles(auth_dir)
    heard, quiet = files.add_device(SITE, "edge-a"), files.add_device(SITE, "edge-b")
    api_login = files.ensure_api_user()
    assert api_login is not None
    with secured_broker(auth_dir) as broker:
        assert broker._process is not None  # noqa: SLF001 - the helper has no reload() of its own
        settings = settings_for(tmp_path, broker, mqtt_username=api_login.username, mqtt_password=api_login.password,
                                mosquitto_auth_dir=auth_dir,
                                mosquitto_reload_command=["kill", "-HUP", str(broker._process.pid)])  # noqa: SLF001
        with ApiServer(settings) as api:
            assert api.worker.wait_connected(10)
            create_user(api.server.config.app.state.store, "vic", PASSWORD, "viewer")
            edge = MqttProbe(broker.port, heard.username, heard.password).connect()
            login_ms = time.time_ns() // 1_000_000
            edge.publish(status_topic(SITE, "edge-a"), _status("edge-a", login_ms))
            edge.publish(events_topic(SITE, "edge-a"), json.dumps(event_payload(device="edge-a")).encode())

            def listed() -> dict[str, dict]:
                return {c["device"]: c for c in api.get("/devices/credentials")}

            rows = wait_until(lambda: (r := listed())["edge-a"]["last_message_ms"] and r, 10, "edge-a heard")
            assert rows["edge-a"]["username"] == heard.username and rows["edge-a"]["last_login_ms"] == login_ms
            assert rows["edge-b"] == {"site": SITE, "device": "edge-b", "username": quiet.username,
                                      "last_message_ms": None, "last_login_ms": None}
            viewer = login(api, "vic")
            assert viewer.get("/devices/credentials").status_code == 403
            assert viewer.delete(f"/devices/{SITE}/edge-a/credentials").status_code == 403

            revoked = api.client.delete(f"/devices/{SITE}/edge-a/credentials")
            assert revoked.status_code == 200 and revoked.json()["reloaded"] is True
            wait_until(lambda: not edge.client.is_connected(), 5, "the revoked device's session to end")
            edge.client.loop_stop()
            with pytest.raises(MqttConnectRefused):
                MqttProbe(broker.port, heard.username, heard.password).connect()
            MqttProbe(broker.port, quiet.username, quiet.password).connect().close()  # the other device is kept
            assert set(listed()) == {"edge-b"}
            again = api.client.delete(f"/devices/{SITE}/edge-a/credentials")
            assert again.status_code == 404 and "has no credentials" in again.json()["detail"]


def test_credentials_need_the_auth_dir(tmp_path: Path) -> None:
    with ApiServer(settings_for(tmp_path)) as api:
        answer = api.client.get("/devices/credentials")
        assert answer.status_code == 409 and "mosquitto_auth_dir" in answer.json()["detail"]
        assert api.client.delete(f"/devices/{SITE}/edge-a/credentials").status_code == 409
