"""Users, roles and login tokens: login/me/logout, the 401/403 matrix per role, hashing, token storage."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from cloud_api.services.users import (
    InvalidUser,
    UserExists,
    create_user,
    ensure_user,
    hash_password,
    token_digest,
    verify_password,
)
from cloud_api.storage.records import TokenRecord
from cloud_api.storage.sqlite_store import SqliteStore
from tests.cloud_api.cloudapi_builders import PASSWORD, ApiServer, login, settings_for

ROLES = ("viewer", "operator", "admin")
USERS = {"viewer": "vic", "operator": "olga", "admin": "boss"}


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    settings = settings_for(
        tmp_path_factory.mktemp("users"), bootstrap_admin={"username": "boss", "password": PASSWORD}
    )
    store = SqliteStore(settings.database_file)
    store.open()
    create_user(store, "olga", PASSWORD, "operator")
    create_user(store, "vic", PASSWORD, "viewer")
    store.close()
    with ApiServer(settings) as server:
        yield server


@pytest.fixture(scope="module")
def clients(api: ApiServer) -> Iterator[dict[str, httpx.Client]]:
    made = {role: login(api, name) for role, name in USERS.items()}
    yield made
    for client in made.values():
        client.close()


def test_login_returns_a_bearer_token_and_me_names_the_user(api: ApiServer) -> None:
    for role, name in USERS.items():
        body = api.anon.post("/auth/login", json={"username": name, "password": PASSWORD}).json()
        assert (body["token_type"], body["username"], body["role"]) == ("bearer", name, role)
        assert len(body["access_token"]) >= 40 and body["expires_ms"] is not None
        me = api.anon.get("/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
        assert me.json() == {"username": name, "role": role, "kind": "user"}
    assert api.get("/auth/me") == {"username": "service", "role": "admin", "kind": "service"}  # static token


@pytest.mark.parametrize(("username", "password"), [("olga", "wrong password"), ("nobody", PASSWORD), ("olga", "")])
def test_wrong_credentials_are_401(api: ApiServer, username: str, password: str) -> None:
    response = api.anon.post("/auth/login", json={"username": username, "password": password})
    assert response.status_code in (401, 422)  # an empty password fails validation first
    if password:
        assert response.status_code == 401 and "access_token" not in response.text


@pytest.mark.parametrize("header", [None, "Bearer not-a-token", "Bearer " + "x" * 43, "Basic dmljOnBhc3N3b3Jk"])
def test_missing_or_wrong_token_is_401_everywhere(api: ApiServer, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    for method, path in [("GET", "/auth/me"), ("GET", "/alerts"), ("POST", "/alerts/1/ack"), ("GET", "/harvest/plan")]:
        response = api.anon.request(method, path, headers=headers)
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


# (method, path, json) -> expected status for viewer, operator, admin
MATRIX = [
    ("GET", "/sheds", None, (200, 200, 200)),
    ("GET", "/alerts", None, (200, 200, 200)),
    ("GET", "/alerts/summary", None, (200, 200, 200)),
    ("GET", "/harvest/plan", None, (200, 200, 200)),
    ("POST", "/alerts/999/ack", None, (403, 404, 404)),
    ("POST", "/alerts/999/clear", None, (403, 404, 404)),
    ("POST", "/harvest/plan", {"operators": ["a", "b"]}, (403, 200, 200)),
    ("POST", "/harvest/sheds/shed-404/done", None, (403, 404, 404)),
    ("DELETE", "/harvest/sheds/shed-404/done", None, (403, 404, 404)),
    ("GET", "/auth/users", None, (403, 403, 200)),
]


@pytest.mark.parametrize(("method", "path", "body", "expected"), MATRIX, ids=[f"{m} {p}" for m, p, _, _ in MATRIX])
def test_role_matrix(
    clients: dict[str, httpx.Client], method: str, path: str, body: object, expected: tuple[int, int, int]
) -> None:
    got = tuple(clients[role].request(method, path, json=body).status_code for role in ROLES)
    assert got == expected


def test_only_admins_create_users_and_new_users_can_log_in(api: ApiServer, clients: dict[str, httpx.Client]) -> None:
    new = {"username": "nina", "password": PASSWORD, "role": "viewer"}
    assert clients["viewer"].post("/auth/users", json=new).status_code == 403
    assert clients["operator"].post("/auth/users", json=new).status_code == 403
    created = clients["admin"].post("/auth/users", json=new)
    assert created.status_code == 201 and created.json()["role"] == "viewer"
    assert clients["admin"].post("/auth/users", json=new).status_code == 409
    assert clients["admin"].post("/auth/users", json={**new, "username": "x", "password": "short"}).status_code == 422
    with login(api, "nina") as nina:
        assert nina.get("/auth/me").json()["role"] == "viewer"
    names = [u["username"] for u in clients["admin"].get("/auth/users").json()]
    assert {"boss", "olga", "vic", "nina"} <= set(names)


def test_tokens_are_stored_as_sha256_only_and_logout_revokes(api: ApiServer) -> None:
    token = api.anon.post("/auth/login", json={"username": "olga", "password": PASSWORD}).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    assert api.anon.get("/auth/me", headers=headers).status_code == 200
    db = api.server.config.app.state.settings.database_file
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT token_sha256, username, last_used_ms FROM tokens").fetchall()
    conn.close()
    digest = hashlib.sha256(token.encode()).hexdigest()
    assert (digest, "olga") in [(r[0], r[1]) for r in rows]
    assert next(r[2] for r in rows if r[0] == digest) is not None  # last_used_ms recorded
    for path in Path(db).parent.iterdir():  # the plain token is nowhere on disk (db, WAL)
        assert token.encode() not in path.read_bytes()
    assert api.anon.post("/auth/logout", headers=headers).status_code == 204
    assert api.anon.get("/auth/me", headers=headers).status_code == 401


def test_expired_token_is_401(api: ApiServer) -> None:
    store = api.server.config.app.state.store
    store.add_token(TokenRecord(token_digest("old-token"), "olga", 1, None, expires_ms=1000), now_ms=0)
    assert api.anon.get("/auth/me", headers={"Authorization": "Bearer old-token"}).status_code == 401


def test_password_hashes_are_salted_scrypt() -> None:
    first, second = hash_password("s3cret-pass", n=2**10), hash_password("s3cret-pass", n=2**10)
    assert first.startswith("scrypt$1024$8$1$") and first != second
    assert verify_password("s3cret-pass", first) and verify_password("s3cret-pass", second)
    assert not verify_password("s3cret-pasS", first)
    assert not verify_password("s3cret-pass", "pbkdf2$garbage") and not verify_password("x", "scrypt$1$2")


def test_create_user_checks_input_and_ensure_user_keeps_the_password(store: Any) -> None:
    """On SQLite and PostgreSQL (the ``store`` fixture)."""
    with pytest.raises(InvalidUser, match="role"):
        create_user(store, "ann", PASSWORD, "root")
    with pytest.raises(InvalidUser, match="password"):
        create_user(store, "ann", "short", "viewer")
    with pytest.raises(InvalidUser, match="username"):
        create_user(store, "ann smith", PASSWORD, "viewer")
    user = create_user(store, "ann", PASSWORD, "operator")
    assert user.password_hash.startswith("scrypt$") and PASSWORD not in user.password_hash
    with pytest.raises(UserExists):
        create_user(store, "ann", PASSWORD, "viewer")
    assert ensure_user(store, "ann", "another password", "admin") is False
    stored = store.get_user("ann")
    assert stored is not None and stored.role == "operator" and verify_password(PASSWORD, stored.password_hash)
    store.close()


def test_repeated_wrong_passwords_lock_that_login_out_for_a_while(tmp_path: Path) -> None:
    settings = settings_for(tmp_path, bootstrap_admin={"username": "boss", "password": PASSWORD},
                            login_max_failures=3, login_lockout_s=1.5)
    with ApiServer(settings) as api:
        def attempt(password: str, username: str = "boss") -> httpx.Response:
            return api.anon.post("/auth/login", json={"username": username, "password": password})

        assert [attempt("guess-1").status_code, attempt("guess-2").status_code] == [401, 401]
        assert attempt("guess-3").status_code == 401  # the third failure starts the lockout
        locked = attempt(PASSWORD)  # even the right password waits: guessing must not be confirmed
        assert locked.status_code == 429 and 1 <= int(locked.headers["Retry-After"]) <= 2
        assert "too many failed logins for 'boss'" in locked.json()["detail"]
        assert attempt("whatever", username="someone-else").status_code == 401  # other names are not locked
        import time

        time.sleep(1.6)
        assert attempt(PASSWORD).status_code == 200
        assert attempt("guess-4").status_code == 401  # a success reset the count: one failure is not a lockout
        assert attempt(PASSWORD).status_code == 200


def test_login_throttle_window_and_memory_bound() -> None:
    from cloud_api.services.login_throttle import LoginThrottle

    now = [0.0]
    throttle = LoginThrottle(max_failures=2, window_s=10, lockout_s=5, clock=lambda: now[0], max_keys=50)
    throttle.failed("Ann", "10.0.0.1")
    now[0] = 11.0  # the first failure left the window
    throttle.failed("ann", "10.0.0.1")
    assert throttle.retry_after("ann", "10.0.0.1") == 0
    throttle.failed("ANN", "10.0.0.1")  # names are case-insensitive
    assert throttle.retry_after("ann", "10.0.0.1") == pytest.approx(5)
    assert throttle.retry_after("ann", "10.0.0.2") == 0  # per address
    for i in range(500):
        throttle.failed(f"random-{i}", "10.0.0.9")
        now[0] += 20  # each old entry has left the window by the next flood step
    assert len(throttle._states) <= 53  # noqa: SLF001 - three counters per failure (pair, user, address)
