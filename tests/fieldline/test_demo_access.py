"""The demo login against a real API: created once, kept across runs, replaced when its password is lost;
and the start-up text names every address."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cloud_api.core.config import Settings
from fieldline.demo_access import DEMO_USER, DemoLoginError, addresses, ensure_demo_login, ready_text
from tests.support.live_api import LiveApi

SERVICE = "service-token-for-the-demo-test"


@pytest.fixture()
def api(tmp_path: Path) -> Iterator[LiveApi]:
    with LiveApi(Settings(data_dir=tmp_path, api_tokens=[SERVICE], ingest_enabled=False)) as live:
        yield live


def _me(api: LiveApi, token: str) -> dict:
    response = httpx.get(f"{api.url}/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def test_demo_login_is_created_then_reused(api: LiveApi) -> None:
    user, password, token = ensure_demo_login(api.url, SERVICE, DEMO_USER, "first-password")
    assert (user, password) == (DEMO_USER, "first-password")
    assert _me(api, token) == {"username": DEMO_USER, "role": "operator", "kind": "user"}
    again = ensure_demo_login(api.url, SERVICE, DEMO_USER, "first-password")  # the next demo run
    assert again[:2] == (DEMO_USER, "first-password") and again[2] != token
    assert _me(api, token)["username"] == DEMO_USER  # the earlier link keeps working


def test_a_lost_password_gets_a_new_demo_user(api: LiveApi) -> None:
    ensure_demo_login(api.url, SERVICE, DEMO_USER, "first-password")
    user, password, token = ensure_demo_login(api.url, SERVICE, DEMO_USER, "forgotten-and-new")
    assert user.startswith(f"{DEMO_USER}-") and password == "forgotten-and-new"
    assert _me(api, token)["username"] == user
    login = httpx.post(f"{api.url}/api/v1/auth/login", json={"username": user, "password": password}, timeout=10)
    assert login.status_code == 200


def test_a_wrong_service_token_is_a_clear_error(api: LiveApi) -> None:
    with pytest.raises(DemoLoginError, match="creating user 'demo': HTTP 401"):
        ensure_demo_login(api.url, "not-the-token", DEMO_USER, "first-password")


def test_ready_text_names_every_address() -> None:
    info = {"api_url": "http://127.0.0.1:8000", "token": "svc", "mqtt_host": "127.0.0.1", "mqtt_port": 1883,
            "user": "demo", "password": "pw-123456", "sheds": 24, "site": "demo-greenhouse", "lines": ["line-1"],
            "factory_site": "demo-factory", "data_dir": "/d", "model": "m.onnx", "line_models": ["s.onnx"],
            **addresses("http://127.0.0.1:8000", "user-token", "/signin/one-time-code")}
    text = ready_text(info)
    for expected in ("http://127.0.0.1:8000/ ", "http://127.0.0.1:8000/docs", "http://127.0.0.1:8000/qa ",
                     "user demo  password pw-123456", "http://127.0.0.1:8000/signin/one-time-code#window=1h",
                     "fieldline app --api http://127.0.0.1:8000 --token user-token", "pip install -e '.[app]'"):
        assert expected in text, expected
