"""Security headers on every page and API answer, and CORS: off by default, an allow-list when configured."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cloud_api.api.security_headers import no_framing
from tests.cloud_api.cloudapi_builders import ApiServer, settings_for

PAGES = ["/", "/qa", "/docs", "/redoc"]
OTHERS = ["/api/v1/health", "/api/v1/sheds", "/openapi.json", "/qa/static/qa.js", "/docs/assets/redoc/redoc.standalone.js",
          "/signin/not-a-code", "/no-such-path"]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with ApiServer(settings_for(tmp_path_factory.mktemp("headers"))) as server:
        yield server


def _directives(policy: str) -> dict[str, str]:
    return {part.strip().split(" ", 1)[0]: part.strip().partition(" ")[2] for part in policy.split(";") if part.strip()}


@pytest.mark.parametrize("path", PAGES + OTHERS)
def test_every_answer_carries_the_headers(api: ApiServer, path: str) -> None:
    response = httpx.get(f"{api.root}{path}")
    assert response.status_code < 500
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert len(headers.get_list("content-security-policy")) == 1
    policy = _directives(headers["content-security-policy"])
    assert policy["frame-ancestors"] == "'none'"
    assert "strict-transport-security" not in headers  # plain http: HSTS only over TLS
    assert "access-control-allow-origin" not in headers


@pytest.mark.parametrize("path", ["/", "/qa", "/docs", "/redoc"])
def test_pages_allow_no_inline_script(api: ApiServer, path: str) -> None:
    response = httpx.get(f"{api.root}{path}")
    policy = _directives(response.headers["content-security-policy"])
    script = policy.get("script-src", policy.get("default-src", ""))
    assert "'unsafe-inline'" not in script and "'unsafe-eval'" not in script and "sha256-" not in script
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", response.text, re.I)  # and the page has none
    assert not re.search(r"\son[a-z]+\s*=", response.text, re.I)  # nor inline event handlers


def test_swagger_ui_starts_from_its_own_script_file(api: ApiServer) -> None:
    page = httpx.get(f"{api.root}/docs").text
    assert '<script src="/docs/swagger-init.js"></script>' in page
    assert page.index("swagger-ui-bundle.js") < page.index("swagger-init.js")  # the bundle loads first
    init = httpx.get(f"{api.root}/docs/swagger-init.js")
    assert init.status_code == 200 and init.headers["content-type"].startswith("text/javascript")
    assert "SwaggerUIBundle(" in init.text and "'/openapi.json'" in init.text


def test_api_answers_allow_nothing_to_run(api: ApiServer) -> None:
    policy = _directives(httpx.get(f"{api.root}/api/v1/sheds").headers["content-security-policy"])
    assert policy["default-src"] == "'none'"


def test_cors_is_off_by_default(api: ApiServer) -> None:
    preflight = httpx.options(f"{api.root}/api/v1/sheds", headers={
        "Origin": "https://ops.example.org", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization"})
    assert "access-control-allow-origin" not in preflight.headers
    simple = httpx.get(f"{api.root}/api/v1/health", headers={"Origin": "https://ops.example.org"})
    assert "access-control-allow-origin" not in simple.headers


def test_cors_allow_list_when_configured(tmp_path: Path) -> None:
    with ApiServer(settings_for(tmp_path, cors_allow_origins=["https://ops.example.org"])) as server:
        def preflight(origin: str) -> httpx.Response:
            return httpx.options(f"{server.root}/api/v1/sheds", headers={
                "Origin": origin, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "authorization"})

        allowed = preflight("https://ops.example.org")
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == "https://ops.example.org"
        assert "access-control-allow-credentials" not in allowed.headers  # bearer only, never the cookie
        assert allowed.headers["x-content-type-options"] == "nosniff"
        refused = preflight("https://evil.example")
        assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers


def test_no_framing_rewrites_or_adds_the_directive() -> None:
    assert no_framing(b"default-src 'self'; frame-ancestors 'self'; base-uri 'none'") == \
        b"default-src 'self'; frame-ancestors 'none'; base-uri 'none'"
    assert no_framing(b"default-src 'self';") == b"default-src 'self'; frame-ancestors 'none'"


# ---------------------------------------------------------------- request size and type


def test_oversized_bodies_are_refused_with_413_naming_the_limit(tmp_path: Path) -> None:
    with ApiServer(settings_for(tmp_path, max_request_bytes=4096)) as server:
        big = b'{"username": "' + b"a" * 10_000 + b'", "password": "x"}'
        declared = httpx.post(f"{server.root}/api/v1/auth/login", content=big,
                              headers={"Content-Type": "application/json"})
        assert declared.status_code == 413
        assert declared.json()["detail"] == f"request body is {len(big)} bytes, the limit is 4096"
        assert declared.headers["x-content-type-options"] == "nosniff"

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
            yield b'{"username": "'
            for _ in range(10):
                yield b"a" * 1000
            yield b'", "password": "x"}'

        chunked = httpx.post(f"{server.root}/api/v1/auth/login", content=chunks(),
                             headers={"Content-Type": "application/json"})
        assert chunked.status_code == 413 and "larger than the limit of 4096 bytes" in chunked.json()["detail"]
        small = httpx.post(f"{server.root}/api/v1/auth/login", json={"username": "a", "password": "b"})
        assert small.status_code == 401  # under the limit: the route answers


def test_model_uploads_have_their_own_cap_and_type_checks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cloud_api.api.routes import fleet_models

    monkeypatch.setattr(fleet_models, "MAX_MODEL_BYTES", 20_000)  # the registry's 200 MB, scaled down
    with ApiServer(settings_for(tmp_path, max_request_bytes=4096)) as server:
        # past the general cap, under the model cap: the route reads it and says what is wrong with it
        not_onnx = server.client.post("/models", content=b"\x00" * 10_000,
                                      headers={"Content-Type": "application/octet-stream"})
        assert not_onnx.status_code == 422 and "not an ONNX file" in not_onnx.json()["detail"]
        too_big = server.client.post("/models", content=b"\x00" * 30_000,
                                     headers={"Content-Type": "application/octet-stream"})
        assert too_big.status_code == 413 and "the limit is 20000" in too_big.json()["detail"]
        text = server.client.post("/models", content=b"hello", headers={"Content-Type": "text/plain"})
        assert text.status_code == 415 and "application/octet-stream" in text.json()["detail"]
