"""``GET /api/v1/health``: anyone gets liveness only; the counters and connection details need a token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_api.services.users import create_user
from tests.cloud_api.cloudapi_builders import PASSWORD, ApiServer, login, settings_for, wait_until
from tests.support.mosquitto import free_port

DETAIL_KEYS = {"status", "db_ok", "mqtt", "ingest", "live"}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with ApiServer(settings_for(tmp_path_factory.mktemp("health"))) as server:
        create_user(server.server.config.app.state.store, "viewer1", PASSWORD, "viewer")
        yield server


def test_without_a_token_only_the_status(api: ApiServer) -> None:
    response = api.anon.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_a_non_bearer_authorization_is_no_token(api: ApiServer) -> None:
    response = api.anon.get("/health", headers={"Authorization": "Basic dGVzdDp0ZXN0"})
    assert response.status_code == 200 and response.json() == {"status": "ok"}


@pytest.mark.parametrize("token", ["wrong-token", "test-token-and-more"])
def test_a_wrong_token_is_401_not_a_quiet_liveness_answer(api: ApiServer, token: str) -> None:
    response = api.anon.get("/health", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_service_token_gets_the_details(api: ApiServer) -> None:
    body = api.get("/health")
    assert set(body) == DETAIL_KEYS
    assert body["status"] == "ok" and body["db_ok"] is True
    assert body["mqtt"] == {"enabled": False, "connected": False, "topic_filter": None}
    assert body["ingest"] is None
    assert body["live"] == {"subscribers": 0, "published": 0, "dropped": 0}


def test_any_role_gets_the_details(api: ApiServer) -> None:
    with login(api, "viewer1") as viewer:
        body = viewer.get("/health").json()
    assert set(body) == DETAIL_KEYS and body["db_ok"] is True


def test_degraded_ingest_shows_in_the_status_and_the_counters_need_a_token(tmp_path: Path) -> None:
    nothing_listens = free_port()  # ingest enabled, but no broker: the worker keeps retrying
    settings = settings_for(tmp_path, ingest_enabled=True, mqtt_host="127.0.0.1", mqtt_port=nothing_listens)
    with ApiServer(settings) as api:
        wait_until(lambda: api.anon.get("/health").json() == {"status": "degraded"}, 5, "the degraded status")
        body = api.get("/health")
        assert body["status"] == "degraded" and body["db_ok"] is True
        assert body["mqtt"]["enabled"] is True and body["mqtt"]["connected"] is False
        assert body["ingest"]["received"] == 0 and body["ingest"]["store_errors"] == 0


def test_openapi_documents_the_optional_token_and_both_answers(api: ApiServer) -> None:
    doc = api.anon.get(f"{api.root}/openapi.json").json()
    operation = doc["paths"]["/api/v1/health"]["get"]
    assert operation["security"] == [{"HTTPBearer": []}, {}]
    answers = operation["responses"]["200"]["content"]["application/json"]["schema"]["anyOf"]
    assert sorted(a["$ref"].rsplit("/", 1)[1] for a in answers) == ["HealthOut", "LivenessOut"]
    assert set(doc["components"]["schemas"]["LivenessOut"]["properties"]) == {"status"}
    assert "401" in operation["responses"]
    assert "token" in operation["description"]
