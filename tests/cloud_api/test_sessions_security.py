"""Page sessions over real HTTP: the cookie, CSRF by Origin, one-time sign-in links, token list/revocation,
password rules and the login throttle's back-off (per user, per address)."""

from __future__ import annotations

import logging
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cloud_api.main import create_app
from cloud_api.services.login_throttle import LoginThrottle
from cloud_api.services.sessions import exchange_signin_code
from cloud_api.services.users import InvalidUser, check_password, create_user
from tests.cloud_api.cloudapi_builders import PASSWORD, ApiServer, login, settings_for

COOKIE = "fieldline_session"


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    with ApiServer(settings_for(tmp_path_factory.mktemp("sessions"), token_ttl_s=86_400,
                                session_ttl_s=3600)) as server:
        store = server.server.config.app.state.store
        for name, role in (("ann", "viewer"), ("bob", "operator"), ("root", "admin")):
            create_user(store, name, PASSWORD, role)
        yield server


def _session(api: ApiServer, username: str) -> str:
    response = api.anon.post("/auth/session", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    assert response.json()["username"] == username and "access_token" not in response.text
    # a page's session lives session_ttl_s (shorter than the app's tokens, token_ttl_s)
    assert abs(response.json()["expires_ms"] - (time.time() + 3600) * 1000) < 60_000
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie and "Max-Age=3600" in cookie
    assert "Secure" not in cookie  # plain http here; behind TLS the flag is set (test below)
    return response.cookies[COOKIE]


def test_session_cookie_reads_and_changes_only_from_its_own_origin(api: ApiServer) -> None:
    cookies = {COOKIE: _session(api, "bob")}
    page = httpx.Client(base_url=f"{api.root}/api/v1", cookies=cookies, timeout=10)
    assert page.get("/auth/me").json() == {"username": "bob", "role": "operator", "kind": "user"}
    # a state-changing request on the cookie needs this site's Origin (CSRF)
    forged = page.post("/alerts/999/ack", headers={"Origin": "https://evil.example"})
    assert forged.status_code == 403 and "cross-site request refused" in forged.json()["detail"]
    assert page.post("/alerts/999/ack").status_code == 403  # no Origin at all
    same = page.post("/alerts/999/ack", headers={"Origin": api.root})
    assert same.status_code == 404, same.text  # past auth and CSRF: the route answers (no such alert)
    # behind a reverse proxy that rewrites Host, its X-Forwarded-Host names the site
    proxied = page.post("/alerts/999/ack", headers={"Origin": "https://farm.example",
                                                    "X-Forwarded-Host": "farm.example"})
    assert proxied.status_code == 404, proxied.text
    assert page.post("/alerts/999/ack", headers={"Origin": "https://evil.example",
                                                 "X-Forwarded-Host": "farm.example"}).status_code == 403
    # a bearer header is not a cookie: scripts need no Origin
    assert login(api, "bob").post("/alerts/999/ack").status_code == 404
    # logging out over the cookie clears it and revokes the token
    out = page.post("/auth/logout", headers={"Origin": api.root})
    assert out.status_code == 204 and f'{COOKIE}=""' in out.headers["set-cookie"]
    assert httpx.get(f"{api.root}/api/v1/auth/me", cookies=cookies).status_code == 401
    # a cross-site sign-in form is refused too (login CSRF)
    cross = api.anon.post("/auth/session", json={"username": "bob", "password": PASSWORD},
                          headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403 and "set-cookie" not in cross.headers


def test_session_cookie_is_secure_when_served_over_tls(tmp_path: Path) -> None:
    with warnings.catch_warnings():  # starlette's TestClient warns about httpx at import time
        warnings.simplefilter("ignore", UserWarning)
        from fastapi.testclient import TestClient
    app = create_app(settings_for(tmp_path))
    with TestClient(app, base_url="https://fieldline.test") as tls:  # what uvicorn --proxy-headers sees behind TLS
        create_user(app.state.store, "ann", PASSWORD, "viewer")
        response = tls.post("/api/v1/auth/session", json={"username": "ann", "password": PASSWORD})
    assert response.status_code == 200 and "Secure" in response.headers["set-cookie"]
    assert response.headers["strict-transport-security"].startswith("max-age=")


def test_signin_link_works_once_and_only_for_whom_it_was_made(api: ApiServer) -> None:
    ann = login(api, "ann")
    link = ann.post("/auth/signin-links", json={})
    assert link.status_code == 201 and link.json()["username"] == "ann"
    path = link.json()["path"]
    first = httpx.get(f"{api.root}{path}", params={"next": "/fleet"})
    assert first.status_code == 303 and first.headers["location"] == "/fleet"
    assert first.headers["cache-control"] == "no-store" and "HttpOnly" in first.headers["set-cookie"]
    me = httpx.get(f"{api.root}/api/v1/auth/me", cookies={COOKIE: first.cookies[COOKIE]})
    assert me.json()["username"] == "ann"
    again = httpx.get(f"{api.root}{path}")
    assert again.status_code == 400 and "used or expired" in again.text and "set-cookie" not in again.headers
    # the code is not a bearer token, and next= cannot leave this server
    code = path.rsplit("/", 1)[1]
    assert httpx.get(f"{api.root}/api/v1/auth/me", headers={"Authorization": f"Bearer {code}"}).status_code == 401
    fresh = ann.post("/auth/signin-links", json={}).json()["path"]
    assert httpx.get(f"{api.root}{fresh}", params={"next": "https://evil.example/"}).status_code == 422
    # a viewer cannot make links for others; an admin can; a service token must name the user
    assert ann.post("/auth/signin-links", json={"username": "bob"}).status_code == 403
    assert login(api, "root").post("/auth/signin-links", json={"username": "bob"}).status_code == 201
    assert api.client.post("/auth/signin-links", json={}).status_code == 422
    assert api.client.post("/auth/signin-links", json={"username": "nobody"}).status_code == 404
    assert ann.post("/auth/signin-links", json={"ttl_s": 3600}).status_code == 422  # minutes, not hours


def test_a_signin_code_expires_unused(api: ApiServer) -> None:
    store = api.server.config.app.state.store
    from cloud_api.services.sessions import issue_signin_code

    code = issue_signin_code(store, store.get_user("ann"), ttl_s=0)  # expired on creation
    assert exchange_signin_code(store, code.code, 60) is None


def test_signin_link_is_single_use_under_concurrent_requests(api: ApiServer) -> None:
    path = login(api, "ann").post("/auth/signin-links", json={}).json()["path"]
    results: list[int] = []
    barrier = threading.Barrier(8)

    def open_link() -> None:
        barrier.wait()
        results.append(httpx.get(f"{api.root}{path}").status_code)

    threads = [threading.Thread(target=open_link) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert sorted(results) == [303] + [400] * 7


def test_tokens_listed_and_revoked_by_owner_or_admin(api: ApiServer) -> None:
    bob_a, bob_b = login(api, "bob"), login(api, "bob")
    mine = bob_a.get("/auth/tokens").json()
    assert {t["username"] for t in mine} == {"bob"} and len(mine) >= 2
    assert [t["current"] for t in mine].count(True) == 1
    assert all(len(t["id"]) == 16 and t["expires_ms"] for t in mine)
    assert min(t["expires_ms"] for t in mine) > (time.time() + 86_000) * 1000  # bearer logins: token_ttl_s
    assert bob_a.get("/auth/tokens", params={"username": "ann"}).status_code == 403
    # bob revokes his other session
    other = next(t for t in bob_b.get("/auth/tokens").json() if t["current"])
    assert bob_a.delete(f"/auth/tokens/{other['id']}").status_code == 204
    assert bob_b.get("/auth/me").status_code == 401
    assert bob_a.delete(f"/auth/tokens/{other['id']}").status_code == 404  # gone
    # bob cannot touch ann's tokens; an admin can
    ann = login(api, "ann")
    ann_id = next(t for t in ann.get("/auth/tokens").json() if t["current"])["id"]
    assert bob_a.delete(f"/auth/tokens/{ann_id}").status_code == 404
    admin = login(api, "root")
    everyone = admin.get("/auth/tokens").json()
    assert {"ann", "bob", "root"} <= {t["username"] for t in everyone}
    assert {t["username"] for t in admin.get("/auth/tokens", params={"username": "ann"}).json()} == {"ann"}
    assert admin.delete(f"/auth/tokens/{ann_id}").status_code == 204
    assert ann.get("/auth/me").status_code == 401 and bob_a.get("/auth/me").status_code == 200


@pytest.mark.parametrize(("username", "password", "problem"), [
    ("li", "short", "at least 8 characters"),
    ("greenhouse-01", "GREENHOUSE-01", "must not be the user name"),
    ("li", "Password123", "most common passwords"),
    ("li", "qwertyuiop", "most common passwords"),
])
def test_password_rules_name_the_problem(api: ApiServer, username: str, password: str, problem: str) -> None:
    with pytest.raises(InvalidUser, match=problem):
        check_password(username, password)
    answer = api.client.post("/auth/users", json={"username": username, "password": password, "role": "viewer"})
    assert answer.status_code == 422 and problem in answer.text


def test_password_rules_accept_a_reasonable_password() -> None:
    check_password("li", "tomato vines in row 4")  # raises if refused


def test_throttle_backs_off_per_user_and_per_address_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    throttle = LoginThrottle(max_failures=2, window_s=100, lockout_s=10, clock=lambda: now[0], spread_factor=2,
                             max_lockout_s=35)
    caplog.set_level(logging.INFO, logger="cloud_api.services.login_throttle")
    # pair lock-outs back off: 10 s, then 20 s, then capped at 35 s
    lengths = []
    for _ in range(3):
        throttle.failed("ann", "10.0.0.1")
        throttle.failed("ann", "10.0.0.1")
        lengths.append(throttle.retry_after("ann", "10.0.0.1"))
        now[0] += lengths[-1] + 1
    assert lengths == [10, 20, 35]
    assert "login locked out for 20 s (pair 'ann' from 10.0.0.1" in caplog.text
    assert "login failed for user name 'ann' from 10.0.0.1" in caplog.text and "password" not in caplog.text.lower()

    # one user name guessed from many addresses: locked for every address
    fresh = LoginThrottle(max_failures=2, window_s=100, lockout_s=10, clock=lambda: now[0], spread_factor=2)
    for i in range(4):
        fresh.failed("bob", f"10.1.0.{i}")
    assert fresh.retry_after("bob", "10.9.9.9") == 10
    assert "login locked out for 10 s (user 'bob'" in caplog.text
    # one address trying many names: locked for every name, and a success elsewhere does not clear it
    for i in range(4):
        fresh.failed(f"name-{i}", "10.2.0.1")
    assert fresh.retry_after("carol", "10.2.0.1") == 10 and fresh.retry_after("carol", "10.2.0.2") == 0
    fresh.succeeded("carol", "10.2.0.1")
    assert fresh.retry_after("dave", "10.2.0.1") == 10


def test_address_lockout_over_http(tmp_path: Path) -> None:
    with ApiServer(settings_for(tmp_path, login_max_failures=2, login_lockout_s=30)) as server:
        answers = [server.anon.post("/auth/login", json={"username": f"user-{i}", "password": "wrong guess"}).status_code
                   for i in range(9)]
    assert answers[:8] == [401] * 8  # one guess per name; the 8th failure (2 x 4) from this address ...
    assert answers[8] == 429  # ... locks it: every name waits from here
