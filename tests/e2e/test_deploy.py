"""deploy/: the compose file and what it references, the systemd units, and the production Mosquitto config
run for real (TLS certificates from make-certs.sh, device credentials from provisioning, an edge publisher).

Docker cannot run here: compose.yaml is checked as data (well-formed, every referenced file present), not
started.
"""

from __future__ import annotations

import configparser
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from cloud_api.core.config import Settings
from cloud_api.services.devices_provisioning import MosquittoAuthFiles
from edge_agent.config import MqttConfig, TlsConfig
from edge_agent.publisher import Publisher
from edge_agent.spool import Spool
from fieldline.config import load_config
from fieldline.contract import events_topic, status_topic
from tests.support.builders import event_dict
from tests.support.mosquitto import MosquittoBroker, free_port
from tests.support.mqtt_probe import MqttConnectRefused, MqttProbe, broker_with_config

pytestmark = pytest.mark.e2e

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
MOSQUITTO_CONF = DEPLOY / "mosquitto" / "mosquitto.conf"
MAKE_CERTS = DEPLOY / "mosquitto" / "make-certs.sh"


# ------------------------------------------------------------------ compose


def _compose() -> dict:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def _host_path(source: str) -> Path | None:
    """A bind-mount source relative to deploy/ (named volumes return None)."""
    if source.startswith(("./", "../", "/")):
        return (DEPLOY / source).resolve()
    return None


def test_compose_is_well_formed_and_references_only_existing_files() -> None:
    compose = _compose()
    services = compose["services"]
    assert set(services) == {"mosquitto", "influxdb", "api", "grafana"}
    assert services["grafana"]["profiles"] == ["grafana"]
    assert all("profiles" not in services[name] for name in ("mosquitto", "influxdb", "api"))
    assert services["influxdb"]["image"].startswith("influxdb:2")
    assert services["influxdb"]["environment"]["DOCKER_INFLUXDB_INIT_MODE"] == "setup"
    assert "8883:8883" in services["mosquitto"]["ports"]
    assert services["api"]["network_mode"] == "service:mosquitto"  # reaches the loopback-only 1883 listener
    named_volumes = set(compose.get("volumes") or {})
    checked = 0
    for name, service in services.items():
        build = service.get("build")
        if build:
            context = (DEPLOY / build["context"]).resolve()
            assert (context / build["dockerfile"]).is_file(), f"{name}: Dockerfile missing"
            checked += 1
        for env_file in service.get("env_file", []):
            assert (DEPLOY / env_file).is_file(), f"{name}: env_file {env_file} missing"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            path = _host_path(source)
            if path is None:
                assert source in named_volumes, f"{name}: volume {source} is not declared"
            else:
                assert path.exists(), f"{name}: {source} does not exist"
                checked += 1
        if "network_mode" in service and service["network_mode"].startswith("service:"):
            assert service["network_mode"].split(":", 1)[1] in services
        for dep in service.get("depends_on", []):
            assert dep in services
    assert checked >= 5


def test_every_compose_variable_is_documented_in_env_example() -> None:
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", COMPOSE.read_text()))
    example = (DEPLOY / ".env.example").read_text()
    documented = set(re.findall(r"^([A-Z0-9_]+)=", example, re.M))
    assert used - documented == set()
    assert {"FIELDLINE_API_TOKEN", "FIELDLINE_MQTT_API_PASSWORD", "INFLUXDB_TOKEN"} <= used


def test_dockerfile_copies_existing_paths_and_runs_unprivileged() -> None:
    root = DEPLOY.parent
    text = (DEPLOY / "Dockerfile").read_text()
    for line in text.splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (root / source).exists(), source
    assert re.search(r"^USER fieldline$", text, re.M)
    assert (DEPLOY / "Dockerfile.dockerignore").is_file()


def test_api_config_of_compose_validates_with_the_compose_environment() -> None:
    """api.compose.yaml plus the FIELDLINE__ variables compose passes must be valid Settings (key names too)."""

    def fill(value: object) -> str:  # ${VAR:-default} / ${VAR:?message} / ${VAR} -> a stand-in value
        return re.sub(r"\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}", lambda m: f"from-env-{m.group(1).lower()}", str(value))

    environment = _compose()["services"]["api"]["environment"]
    environ = {k: fill(v) for k, v in environment.items() if k.startswith("FIELDLINE__")}
    environ["FIELDLINE__TIMEZONE"] = "Asia/Shanghai"  # a real zone instead of the stand-in
    settings = load_config(DEPLOY / "api.compose.yaml", Settings, environ=environ)
    assert settings.api_tokens == ["from-env-fieldline_api_token"]
    assert settings.mqtt_username == "api" and settings.mqtt_password == "from-env-fieldline_mqtt_api_password"
    assert settings.mqtt_host == "127.0.0.1" and settings.mqtt_port == 1883 and settings.mqtt_persistent_session
    assert settings.timeseries == "influx" and settings.influx_url == "http://influxdb:8086"
    assert settings.influx_token is not None


def test_grafana_provisioning_points_at_the_dashboard_and_datasource() -> None:
    datasources = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/influxdb.yaml").read_text())
    uid = datasources["datasources"][0]["uid"]
    assert datasources["datasources"][0]["jsonData"]["version"] == "Flux"
    providers = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/fieldline.yaml").read_text())
    assert providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    dashboards = list((DEPLOY / "grafana/dashboards").glob("*.json"))
    assert dashboards
    for path in dashboards:
        dashboard = json.loads(path.read_text())
        assert dashboard["uid"] and dashboard["panels"]
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] == uid
            assert all(t["query"] for t in panel["targets"])


# ------------------------------------------------------------------ systemd


@pytest.mark.parametrize("unit", ["fieldline-api.service", "fieldline-edge.service"])
def test_systemd_units_restart_and_are_hardened(unit: str) -> None:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[method-assign]
    parser.read(DEPLOY / "systemd" / unit)
    service = parser["Service"]
    assert service["Restart"] == "always"
    assert service["User"] == "fieldline"
    assert service["NoNewPrivileges"] == "yes" and service["ProtectSystem"] == "strict"
    assert "/var/lib/fieldline" in service["ReadWritePaths"]
    assert service["ExecStart"].startswith("/opt/fieldline/.venv/bin/fieldline ")
    assert parser["Install"]["WantedBy"] == "multi-user.target"
    analyze = shutil.which("systemd-analyze")
    if analyze:  # syntax and key names; the ExecStart binary does not exist on a test machine
        result = subprocess.run([analyze, "verify", str(DEPLOY / "systemd" / unit)], capture_output=True, text=True)
        problems = [line for line in (result.stderr + result.stdout).splitlines()
                    if line.strip() and "is not executable" not in line]
        assert problems == []


# ------------------------------------------------------------------ Mosquitto with TLS, for real


def _make_certs(out: Path, *names: str) -> None:
    subprocess.run(["bash", str(MAKE_CERTS), str(out), *names], check=True, capture_output=True)


def _production_broker(config_dir: Path, data_dir: Path, tls_port: int) -> MosquittoBroker:
    text = MOSQUITTO_CONF.read_text()
    assert "listener 1883 127.0.0.1" in text and re.search(r"^listener 8883$", text, re.M)
    assert re.search(r"^allow_anonymous false$", text, re.M)
    queued = int(re.search(r"^max_queued_messages (\d+)$", text, re.M).group(1))
    assert queued >= 100_000  # the default 1000 would drop what arrives while the API restarts

    def render(port: int) -> str:
        out = text.replace("/mosquitto/config/", f"{config_dir}/").replace("/mosquitto/data/", f"{data_dir}/")
        out = out.replace("listener 1883 127.0.0.1", f"listener {port} 127.0.0.1")
        out = re.sub(r"^listener 8883$", f"listener {tls_port} 127.0.0.1", out, flags=re.M)
        return "user root\n" + out  # as root, Mosquitto would drop to user mosquitto (no access to tmp dirs)

    return broker_with_config(render)


def test_production_mosquitto_config_with_tls_acl_and_an_edge_publisher(tmp_path: Path) -> None:
    config_dir, data_dir = tmp_path / "mosquitto", tmp_path / "data"
    data_dir.mkdir()
    _make_certs(config_dir / "certs", "broker.test")
    files = MosquittoAuthFiles(config_dir)
    device = files.add_device("north", "gh-edge-01")
    api = files.ensure_api_user()
    assert api is not None
    referenced = re.findall(r"^(?:cafile|certfile|keyfile|password_file|acl_file) /mosquitto/config/(\S+)$",
                            MOSQUITTO_CONF.read_text(), re.M)
    assert len(referenced) == 5 and all((config_dir / name).is_file() for name in referenced)

    tls_port = free_port()
    ca_file = config_dir / "certs" / "ca.crt"
    with _production_broker(config_dir, data_dir, tls_port) as broker, \
            MqttProbe(broker.port, api.username, api.password) as cloud:  # the API on the loopback listener
        cloud.subscribe("fieldline/v1/#")

        # the edge agent's own publisher, configured the way `fieldline device add` prints it
        config = MqttConfig(host="127.0.0.1", port=tls_port, username=device.username, password=device.password,
                            tls=TlsConfig(ca_file=ca_file), reconnect_min_s=0.2, reconnect_max_s=1)
        spool = Spool(tmp_path / "spool.db")
        publisher = Publisher(config, "gh-edge-01", spool, status_topic("north", "gh-edge-01"),
                              lambda: b'{"state": "online"}', b'{"state": "offline"}')
        try:
            publisher.start()
            payload = json.dumps(event_dict(device="gh-edge-01", site="north", id="gh-edge-01-1-1")).encode()
            spool.append(events_topic("north", "gh-edge-01"), payload)
            publisher.notify()
            assert publisher.wait_drained(15), broker.log()
            cloud.wait_for(lambda msgs: any(m.topic == events_topic("north", "gh-edge-01") for m in msgs),
                           what="the event sent over TLS")
            [received] = cloud.received_on(events_topic("north", "gh-edge-01"))
            assert json.loads(received)["id"] == "gh-edge-01-1-1"
        finally:
            publisher.stop()
            spool.close()

        # the same over TLS with a probe; a CA that did not sign the server certificate is refused
        MqttProbe(tls_port, device.username, device.password, ca_file=ca_file).connect().close()
        _make_certs(tmp_path / "other-ca", "broker.test")
        with pytest.raises(MqttConnectRefused):
            MqttProbe(tls_port, device.username, device.password, ca_file=tmp_path / "other-ca" / "ca.crt").connect()
        with pytest.raises(MqttConnectRefused):
            MqttProbe(tls_port, device.username, device.password + "x", ca_file=ca_file).connect()
        with pytest.raises(MqttConnectRefused):
            MqttProbe(broker.port).connect()  # anonymous on the loopback listener


def test_api_ingest_over_tls_with_its_broker_credentials(tmp_path: Path) -> None:
    """An API worker on another host reaches the broker on the TLS listener (mqtt_tls_ca_file)."""
    from cloud_api.ingest.worker import IngestWorker
    from cloud_api.storage.records import EventQuery
    from cloud_api.storage.sqlite_store import SqliteStore

    config_dir, data_dir = tmp_path / "mosquitto", tmp_path / "data"
    data_dir.mkdir()
    _make_certs(config_dir / "certs", "broker.test")
    _make_certs(tmp_path / "other-ca", "broker.test")
    files = MosquittoAuthFiles(config_dir)
    device = files.add_device("north", "gh-edge-02")
    api = files.ensure_api_user()
    assert api is not None
    tls_port = free_port()
    ca_file = config_dir / "certs" / "ca.crt"

    def settings(ca: Path, sub: str) -> Settings:
        return Settings(data_dir=tmp_path / sub, mqtt_host="127.0.0.1", mqtt_port=tls_port, mqtt_username=api.username,
                        mqtt_password=api.password, mqtt_tls_ca_file=ca, mqtt_client_id=f"api-{sub}",
                        mqtt_reconnect_min_s=0.2, mqtt_reconnect_max_s=0.5)

    with _production_broker(config_dir, data_dir, tls_port):
        store = SqliteStore(tmp_path / "api.db")
        store.open()
        worker = IngestWorker(settings(ca_file, "good"), store)
        impostor = IngestWorker(settings(tmp_path / "other-ca" / "ca.crt", "bad"), SqliteStore(tmp_path / "bad.db"))
        try:
            worker.start()
            impostor.start()
            assert worker.wait_connected(10)
            with MqttProbe(tls_port, device.username, device.password, ca_file=ca_file) as edge:
                payload = json.dumps(event_dict(device="gh-edge-02", site="north", id="gh-edge-02-1-1")).encode()
                edge.publish(events_topic("north", "gh-edge-02"), payload)
            deadline = time.time() + 10
            while time.time() < deadline and not store.list_events(EventQuery(device="gh-edge-02")):
                time.sleep(0.05)
            assert [e["id"] for e in store.list_events(EventQuery(device="gh-edge-02"))] == ["gh-edge-02-1-1"]
            assert not impostor.connected  # a broker certificate its CA did not sign is refused
        finally:
            worker.stop()
            impostor.stop(timeout=2)
            store.close()
    with pytest.raises(ValueError, match="mqtt_tls_ca_file: .* is not a readable file"):
        Settings(data_dir=tmp_path, mqtt_tls_ca_file=tmp_path / "missing.crt")
    with pytest.raises(ValueError, match="need mqtt_tls_ca_file"):
        Settings(data_dir=tmp_path, mqtt_tls_cert_file=ca_file, mqtt_tls_key_file=ca_file)


def test_make_certs_renews_the_server_certificate_but_keeps_the_ca(tmp_path: Path) -> None:
    _make_certs(tmp_path, "broker.test", "10.0.0.5")
    ca_before = (tmp_path / "ca.crt").read_bytes()
    time.sleep(1.1)
    _make_certs(tmp_path, "broker.test")
    assert (tmp_path / "ca.crt").read_bytes() == ca_before
    sans = subprocess.run(["openssl", "x509", "-in", str(tmp_path / "server.crt"), "-noout", "-ext", "subjectAltName"],
                          capture_output=True, text=True, check=True).stdout
    assert "DNS:broker.test" in sans and "IP Address:127.0.0.1" in sans
    assert oct((tmp_path / "server.key").stat().st_mode & 0o777) == "0o640"
    assert oct((tmp_path / "ca.key").stat().st_mode & 0o777) == "0o600"
