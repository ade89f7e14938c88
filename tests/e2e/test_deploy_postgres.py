"""deploy/compose.postgres.yaml (PostgreSQL, three API workers, nginx) checked as data: Docker cannot run here.

Each worker has its own MQTT client id and port, nginx balances exactly those ports, every variable is in
.env.example, and the API config the workers get (api.compose.yaml plus their environment) validates with
``storage: postgres``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from cloud_api.core.config import Settings
from fieldline.config import load_config

pytestmark = pytest.mark.e2e

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
OVERRIDE = DEPLOY / "compose.postgres.yaml"
WORKERS = ("api", "api-2", "api-3")


class _ComposeLoader(yaml.SafeLoader):
    """Compose's merge tags (``!override``, ``!reset``) read as their plain value."""


for _tag in ("!override", "!reset"):
    _ComposeLoader.add_constructor(_tag, lambda loader, node: (
        loader.construct_sequence(node) if isinstance(node, yaml.SequenceNode)
        else loader.construct_mapping(node) if isinstance(node, yaml.MappingNode) else loader.construct_scalar(node)))


def _override() -> dict[str, Any]:
    data = yaml.load(OVERRIDE.read_text(), Loader=_ComposeLoader)  # noqa: S506 - SafeLoader subclass
    assert isinstance(data, dict)
    return data


def _port(service: dict[str, Any]) -> int:
    return int(service["command"][service["command"].index("--port") + 1])


def test_workers_have_their_own_client_id_and_port_and_nginx_balances_them() -> None:
    services = _override()["services"]
    assert {"postgres", "nginx", *WORKERS} <= set(services)
    assert services["postgres"]["image"].startswith("postgres:")
    ids = [services[w]["environment"]["FIELDLINE__MQTT_CLIENT_ID"] for w in WORKERS]
    ports = [_port(services[w]) for w in WORKERS]
    assert len(set(ids)) == len(WORKERS) and len(set(ports)) == len(WORKERS)
    for worker in WORKERS:
        env = services[worker]["environment"]
        assert env["FIELDLINE__STORAGE"] == "postgres" and env["FIELDLINE__SHARED_GROUP"] == "fieldline-ingest"
        assert services[worker]["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert f":{_port(services[worker])}/api/v1/health" in " ".join(services[worker]["healthcheck"]["test"])
    for worker in WORKERS[1:]:
        assert services[worker]["extends"] == {"file": "compose.yaml", "service": "api"}
    assert (DEPLOY / services[WORKERS[1]]["extends"]["file"]).is_file()
    nginx_conf = (DEPLOY / "nginx" / "fieldline.conf").read_text()
    assert sorted(int(p) for p in re.findall(r"server mosquitto:(\d+)", nginx_conf)) == sorted(ports)
    assert "proxy_set_header Upgrade $http_upgrade" in nginx_conf  # the live feed is a WebSocket
    mount = services["nginx"]["volumes"][0].split(":")[0]
    assert (DEPLOY / mount).is_file()
    assert services["mosquitto"]["ports"] == ["8883:8883"]  # 8000 is nginx's
    assert services["nginx"]["ports"] == ["127.0.0.1:8000:8000"]


def test_every_variable_is_in_env_example() -> None:
    used = set(re.findall(r"\$\{([A-Z0-9_]+)", OVERRIDE.read_text()))
    documented = set(re.findall(r"^([A-Z0-9_]+)=", (DEPLOY / ".env.example").read_text(), re.M))
    assert "POSTGRES_PASSWORD" in used and used - documented == set()


def test_the_workers_api_config_validates_for_postgres(monkeypatch: pytest.MonkeyPatch) -> None:
    def fill(value: object) -> str:
        return re.sub(r"\$\{([A-Z0-9_]+)(?::?[-?][^}]*)?\}", lambda m: f"from-env-{m.group(1).lower()}", str(value))

    base = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]["api"]["environment"]
    worker = _override()["services"]["api-2"]["environment"]
    merged = {k: fill(v) for k, v in {**base, **worker}.items()}
    environ = {k: v for k, v in merged.items() if k.startswith("FIELDLINE__")}
    environ["FIELDLINE__TIMEZONE"] = "UTC"
    monkeypatch.setenv("FIELDLINE_POSTGRES_DSN", merged["FIELDLINE_POSTGRES_DSN"])
    settings = load_config(DEPLOY / "api.compose.yaml", Settings, environ=environ)
    assert settings.storage == "postgres" and settings.shared_group == "fieldline-ingest"
    assert settings.mqtt_protocol == "5" and settings.mqtt_client_id == "fieldline-api-2"
    assert settings.postgres_dsn is not None
    assert settings.postgres_dsn.get_secret_value().endswith("@postgres:5432/fieldline")
