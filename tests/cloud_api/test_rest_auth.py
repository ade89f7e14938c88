"""Bearer-token auth: everything but /health's liveness answer needs a token from Settings.api_tokens."""

from __future__ import annotations

import pytest

from tests.cloud_api.cloudapi_builders import ApiServer, settings_for

PROTECTED = ["/devices", "/sheds", "/sheds/shed-1/counts", "/events", "/dead-letters"]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory):
    with ApiServer(settings_for(tmp_path_factory.mktemp("auth"))) as server:
        yield server


def test_health_is_open_for_liveness_and_reports_db_with_a_token(api: ApiServer) -> None:
    response = api.anon.get("/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    body = api.client.get("/health").json()
    assert body["status"] == "ok" and body["db_ok"] is True
    assert body["mqtt"]["enabled"] is False and body["ingest"] is None


@pytest.mark.parametrize("path", PROTECTED)
def test_missing_token_is_401_with_challenge(api: ApiServer, path: str) -> None:
    response = api.anon.get(path)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer wrong-token", "Basic dGVzdDp0ZXN0", "Bearer test-token-and-more"])
def test_wrong_token_is_401(api: ApiServer, header: str) -> None:
    response = api.anon.get("/sheds", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_right_token_is_accepted(api: ApiServer) -> None:
    assert api.client.get("/sheds").status_code == 200
    assert api.client.get("/devices").json() == []


def test_openapi_documents_response_models_and_bearer_auth(api: ApiServer) -> None:
    doc = api.anon.get(f"{api.root}/openapi.json").json()
    sheds = doc["paths"]["/api/v1/sheds"]["get"]
    assert sheds["responses"]["200"]["content"]["application/json"]["schema"]["items"]["$ref"].endswith("ShedOut")
    assert "HTTPBearer" in doc["components"]["securitySchemes"]
    assert doc["paths"]["/api/v1/health"]["get"]["security"] == [{"HTTPBearer": []}, {}]  # token optional
