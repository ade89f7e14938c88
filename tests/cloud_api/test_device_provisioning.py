"""Device provisioning against a real Mosquitto: per-device passwords ($7$ PBKDF2-SHA512) and ACL."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cloud_api.services.devices_provisioning import (
    MosquittoAuthFiles,
    ProvisioningError,
    hash_password,
    verify_password,
)
from fieldline.cli import app
from fieldline.contract import command_topic, events_topic, status_topic
from tests.support.mosquitto import MosquittoBroker
from tests.support.mqtt_probe import MqttConnectRefused, MqttProbe, broker_with_config, settle

MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"


def secured_broker(directory: Path) -> MosquittoBroker:
    return broker_with_config(lambda port: (
        f"listener {port} 127.0.0.1\n"
        "user root\n"  # as root, Mosquitto would drop to user mosquitto, which cannot read pytest's tmp dirs
        "allow_anonymous false\n"
        f"password_file {directory / 'passwd'}\n"
        f"acl_file {directory / 'acl'}\n"
        "persistence false\nlog_dest stderr\n"
    ))


def test_hash_matches_mosquitto_passwd_format(tmp_path: Path) -> None:
    pwfile = tmp_path / "pw"
    subprocess.run([MOSQUITTO_PASSWD, "-c", "-b", str(pwfile), "someone", "s3cret pass"], check=True)
    user, hashed = pwfile.read_text().strip().split(":", 1)
    assert user == "someone" and hashed.startswith("$7$")
    assert verify_password("s3cret pass", hashed)
    assert not verify_password("s3cret pasS", hashed)
    # re-hashing with mosquitto_passwd's own salt and iteration count gives its exact string
    import base64

    _, _, iterations, salt, _ = hashed.split("$")
    assert hash_password("s3cret pass", salt=base64.b64decode(salt), iterations=int(iterations)) == hashed
    ours = hash_password("other")
    assert ours.startswith("$7$101$") and len(ours.split("$")[3]) == 16 and verify_password("other", ours)


def test_device_may_publish_only_its_own_topics(tmp_path: Path) -> None:
    files = MosquittoAuthFiles(tmp_path / "mosquitto")
    dev_a = files.add_device("north", "edge-a")
    dev_b = files.add_device("north", "edge-b")
    api = files.ensure_api_user()
    assert api is not None and files.ensure_api_user() is None  # created once, then kept
    # a user added by hand with mosquitto_passwd survives our rewrites (and gets no ACL: may do nothing)
    subprocess.run([MOSQUITTO_PASSWD, "-b", str(files.password_file), "ops", "ops-password"], check=True)
    files.add_device("south", "edge-c")
    assert "ops" in files.users()

    with secured_broker(files.directory) as broker:
        with MqttProbe(broker.port, api.username, api.password) as cloud, \
                MqttProbe(broker.port, dev_a.username, dev_a.password) as edge_a, \
                MqttProbe(broker.port, dev_b.username, dev_b.password) as edge_b:
            assert not any(r.is_failure for r in cloud.subscribe("fieldline/v1/#"))
            edge_b.subscribe(command_topic("north", "edge-b", "#"))
            edge_a.subscribe(command_topic("north", "edge-a", "#"))
            edge_a.subscribe(command_topic("north", "edge-b", "#"))  # not its own: nothing will arrive

            own = events_topic("north", "edge-a")
            assert not edge_a.publish(own, b'{"n": 1}').is_failure
            assert not edge_a.publish(status_topic("north", "edge-a"), b'{"state": "online"}').is_failure
            refused = edge_a.publish(events_topic("north", "edge-b"), b'{"spoofed": true}')
            assert refused.is_failure and "authori" in str(refused).lower()  # MQTT 5 PUBACK: Not authorized
            assert edge_a.publish(command_topic("north", "edge-a", "restart"), b"{}").is_failure  # no self-commands
            assert edge_a.publish("other/topic", b"x").is_failure
            assert not edge_a.publish(own, b'{"n": 2}').is_failure  # sentinel after the refused ones

            cloud.wait_for(lambda msgs: len([m for m in msgs if m.topic == own]) == 2, what="edge-a's events")
            settle()
            topics = {m.topic for m in cloud.messages}
            assert topics == {own, status_topic("north", "edge-a")}, topics

            # the api user may send commands; only the addressed device receives them
            assert not cloud.publish(command_topic("north", "edge-b", "snapshot"), b'{"request_id": "r1"}').is_failure
            edge_b.wait_for(lambda msgs: len(msgs) == 1, what="edge-b's command")
            assert cloud.publish(events_topic("north", "edge-b"), b"{}").is_failure  # but may not fake events
            settle()
            assert edge_a.messages == []

        with pytest.raises(MqttConnectRefused):
            MqttProbe(broker.port, dev_a.username, dev_a.password + "x").connect()
        with pytest.raises(MqttConnectRefused):
            MqttProbe(broker.port).connect()  # anonymous
        with pytest.raises(MqttConnectRefused):
            MqttProbe(broker.port, dev_b.username, dev_a.password).connect()  # another device's password

        # remove + reload (SIGHUP, what `systemctl reload mosquitto` sends): the open session ends at once
        still_there = MqttProbe(broker.port, dev_a.username, dev_a.password).connect()
        kept = MqttProbe(broker.port, dev_b.username, dev_b.password).connect()
        files.remove_device("north", "edge-a")
        assert broker._process is not None  # noqa: SLF001 - the helper has no reload() of its own
        broker._process.send_signal(signal.SIGHUP)  # noqa: SLF001
        deadline = time.monotonic() + 5
        while still_there.client.is_connected() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not still_there.client.is_connected() and kept.client.is_connected()
        still_there.client.loop_stop()
        kept.close()
        with pytest.raises(MqttConnectRefused):
            MqttProbe(broker.port, dev_a.username, dev_a.password).connect()
        MqttProbe(broker.port, dev_b.username, dev_b.password).connect().close()


def test_rotate_replaces_the_password_and_keeps_local_acl_rules(tmp_path: Path) -> None:
    files = MosquittoAuthFiles(tmp_path)
    first = files.add_device("site-1", "cam-box")
    with pytest.raises(ProvisioningError, match="already has credentials"):
        files.add_device("site-1", "cam-box")
    files.acl_file.write_text(files.acl_file.read_text() + "user ops\ntopic read $SYS/#\n")
    second = files.add_device("site-1", "cam-box", rotate=True)
    hashed = files.users()["site-1.cam-box"]
    assert verify_password(second.password, hashed) and not verify_password(first.password, hashed)
    assert files.acl_file.read_text().endswith("user ops\ntopic read $SYS/#\n")
    assert oct(files.password_file.stat().st_mode & 0o777) == "0o640"
    with pytest.raises(ProvisioningError, match="must match"):
        files.add_device("Site 1", "cam-box")
    with pytest.raises(ProvisioningError, match="has no credentials"):
        files.remove_device("site-1", "nope")


def test_cli_add_list_remove(tmp_path: Path) -> None:
    runner = CliRunner()
    directory = tmp_path / "mosquitto"
    added = runner.invoke(app, ["device", "add", "gh-edge-01", "--site", "shouguang", "--mosquitto-dir",
                                str(directory), "--host", "broker.farm.lan"])
    assert added.exit_code == 0, added.output
    password = next(line.split(": ", 1)[1] for line in added.output.splitlines() if line.startswith("password"))
    assert f'password: "{password}"' in added.output and "host: broker.farm.lan" in added.output
    assert "mqtt_username: api" in added.output  # first device: the api user is created and shown once
    files = MosquittoAuthFiles(directory)
    assert verify_password(password, files.users()["shouguang.gh-edge-01"])
    assert password not in files.password_file.read_text()

    again = runner.invoke(app, ["device", "add", "gh-edge-02", "--site", "shouguang",
                                "--mosquitto-dir", str(directory)])
    assert again.exit_code == 0 and "mqtt_username: api" not in again.output
    listed = runner.invoke(app, ["device", "list", "--mosquitto-dir", str(directory)])
    assert "gh-edge-01" in listed.output and "gh-edge-02" in listed.output
    dup = runner.invoke(app, ["device", "add", "gh-edge-01", "--site", "shouguang", "--mosquitto-dir", str(directory)])
    assert dup.exit_code == 2 and "already has credentials" in dup.output
    removed = runner.invoke(app, ["device", "remove", "gh-edge-01", "--site", "shouguang", "--mosquitto-dir",
                                  str(directory)])
    assert removed.exit_code == 0, removed.output
    assert [e.device for e in files.devices()] == ["gh-edge-02"]
    assert "gh-edge-01" not in files.acl_file.read_text()
