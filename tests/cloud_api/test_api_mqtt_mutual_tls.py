"""The API's own broker connection with a client certificate (mutual TLS) plus its user name and password,
against a real Mosquitto that requires both; certificates from deploy/mosquitto/make-certs.sh and openssl.

(CA-only TLS with a password is covered by tests/e2e/test_deploy.py::test_api_ingest_over_tls_with_its_broker_credentials.)
"""

from __future__ import annotations

import json
import logging
import ssl
import subprocess
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from cloud_api.core.config import Settings
from cloud_api.ingest.worker import IngestWorker
from cloud_api.services.devices_provisioning import MosquittoAuthFiles
from cloud_api.storage.records import EventQuery
from cloud_api.storage.sqlite_store import SqliteStore
from fieldline.contract import events_topic
from tests.support.builders import event_dict
from tests.support.mqtt_probe import broker_with_config

MAKE_CERTS = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto" / "make-certs.sh"


def make_ca(out: Path) -> None:
    subprocess.run(["bash", str(MAKE_CERTS), str(out), "broker.test"], check=True, capture_output=True)


def client_cert(ca_dir: Path, out: Path, name: str) -> tuple[Path, Path]:
    """A client certificate (extendedKeyUsage clientAuth) for ``name``, signed by the CA in ``ca_dir``."""
    out.mkdir(parents=True, exist_ok=True)
    key, csr, crt, ext = (out / f"{name}.{s}" for s in ("key", "csr", "crt", "ext"))
    ext.write_text("basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
                   "extendedKeyUsage=clientAuth\n")
    subprocess.run(["openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-sha256", "-subj", f"/CN={name}",
                    "-keyout", str(key), "-out", str(csr)], check=True, capture_output=True)
    subprocess.run(["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca_dir / "ca.crt"), "-CAkey",
                    str(ca_dir / "ca.key"), "-CAcreateserial", "-days", "2", "-sha256", "-extfile", str(ext),
                    "-out", str(crt)], check=True, capture_output=True)
    return crt, key


@pytest.mark.timeout(120)
def test_api_ingest_with_a_client_certificate_and_credentials(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    certs, other = tmp_path / "certs", tmp_path / "other-ca"
    make_ca(certs)
    make_ca(other)
    api_crt, api_key = client_cert(certs, tmp_path / "clients", "fieldline-api")
    edge_crt, edge_key = client_cert(certs, tmp_path / "clients", "gh-edge-03")
    rogue_crt, rogue_key = client_cert(other, tmp_path / "rogue", "fieldline-api")
    files = MosquittoAuthFiles(tmp_path / "auth")
    device = files.add_device("north", "gh-edge-03")
    api = files.ensure_api_user()
    assert api is not None

    broker = broker_with_config(lambda port: (
        f"listener {port} 127.0.0.1\n"
        f"cafile {certs / 'ca.crt'}\ncertfile {certs / 'server.crt'}\nkeyfile {certs / 'server.key'}\n"
        "require_certificate true\n"
        "user root\nallow_anonymous false\n"
        f"password_file {files.password_file}\nacl_file {tmp_path / 'auth' / 'acl'}\n"
        "persistence false\nlog_dest stderr\n"
    ))

    def settings(sub: str, cert: Path | None, key: Path | None, password: str = api.password) -> Settings:
        return Settings(data_dir=tmp_path / sub, mqtt_host="127.0.0.1", mqtt_port=broker.port,
                            mqtt_username=api.username, mqtt_password=password, mqtt_tls_ca_file=certs / "ca.crt",
                            mqtt_tls_cert_file=cert, mqtt_tls_key_file=key, mqtt_client_id=f"api-{sub}",
                            mqtt_reconnect_min_s=0.2, mqtt_reconnect_max_s=0.5)

    def worker(sub: str, cert: Path | None, key: Path | None, password: str = api.password) -> IngestWorker:
        return IngestWorker(settings(sub, cert, key, password), SqliteStore(tmp_path / f"{sub}.db"))

    caplog.set_level(logging.WARNING, logger="cloud_api.ingest.worker")
    with broker:
        store = SqliteStore(tmp_path / "api.db")
        store.open()
        good = IngestWorker(settings("good", api_crt, api_key), store)
        refused = {
            "no client certificate": worker("nocert", None, None),
            "a certificate another CA signed": worker("rogue", rogue_crt, rogue_key),
            "the right certificate, a wrong password": worker("badpw", api_crt, api_key, api.password + "x"),
        }
        try:
            good.start()
            for w in refused.values():
                w.start()
            assert good.wait_connected(15), broker.log()
            edge = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="edge-mtls")
            edge.tls_set(ca_certs=str(certs / "ca.crt"), certfile=str(edge_crt), keyfile=str(edge_key),
                         cert_reqs=ssl.CERT_REQUIRED)
            edge.username_pw_set(device.username, device.password)
            edge.connect("127.0.0.1", broker.port)
            edge.loop_start()
            payload = json.dumps(event_dict(device="gh-edge-03", site="north", id="gh-edge-03-1-1")).encode()
            edge.publish(events_topic("north", "gh-edge-03"), payload, qos=1).wait_for_publish(10)
            edge.loop_stop()
            edge.disconnect()
            deadline = time.time() + 10
            while time.time() < deadline and not store.list_events(EventQuery(device="gh-edge-03")):
                time.sleep(0.05)
            assert [e["id"] for e in store.list_events(EventQuery(device="gh-edge-03"))] == ["gh-edge-03-1-1"]
            time.sleep(2)  # several reconnect attempts each (backoff 0.2-0.5 s), all refused
            for what, w in refused.items():
                assert not w.connected, what
            assert "MQTT connect to 127.0.0.1:%d refused" % broker.port in caplog.text  # the wrong password
        finally:
            good.stop()
            for w in refused.values():
                w.stop(timeout=2)
            store.close()
