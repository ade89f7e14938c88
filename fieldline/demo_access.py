"""How a user gets into ``fieldline demo``: a demo login, the addresses and the text printed at start-up.

The demo user is created through the API itself (``POST /api/v1/auth/users`` with the demo's service token)
and signed in through ``POST /api/v1/auth/login``; its password is kept in ``demo.json`` so a re-run of the
demo on the same data folder keeps the same login.
"""

from __future__ import annotations

import secrets

import httpx

DEMO_USER = "demo"
DEMO_ROLE = "operator"  # can acknowledge alerts and mark sheds done in the phone app
QA_HASH = "#window=1h"  # the dashboard's 1 h view: 2-minute subgroups, so a fresh demo's drift shows soon


class DemoLoginError(RuntimeError):
    """The API refused to create or sign in the demo user (the message says what it answered)."""


def new_password() -> str:
    return secrets.token_urlsafe(12)


def _create(client: httpx.Client, username: str, password: str) -> bool:
    """True if created, False if the name is taken."""
    response = client.post("/api/v1/auth/users", json={"username": username, "password": password,
                                                        "role": DEMO_ROLE})
    if response.status_code == 409:
        return False
    if response.status_code != 201:
        raise DemoLoginError(f"creating user {username!r}: HTTP {response.status_code} {response.text[:200]}")
    return True


def _login(client: httpx.Client, username: str, password: str) -> str | None:
    response = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    if response.status_code == 401:
        return None
    if response.status_code != 200:
        raise DemoLoginError(f"signing in {username!r}: HTTP {response.status_code} {response.text[:200]}")
    return str(response.json()["access_token"])


def ensure_demo_login(api_url: str, service_token: str, username: str, password: str) -> tuple[str, str, str]:
    """(username, password, login token) of a working operator login.

    The user is created if missing. When a user of that name exists with a password the demo no longer knows
    (demo.json was deleted, the database kept), a new user with a random suffix is made instead.
    """
    with httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {service_token}"}, timeout=15) as client:
        _create(client, username, password)
        token = _login(client, username, password)
        if token is None:
            username = f"{DEMO_USER}-{secrets.token_hex(3)}"
            if not _create(client, username, password):
                raise DemoLoginError(f"user {username!r} appeared while the demo was creating it")
            token = _login(client, username, password)
            if token is None:
                raise DemoLoginError(f"the API refused the password it just set for {username!r}")
    return username, password, token


SIGNIN_LINK_TTL_S = 900  # the longest the API allows: time to read the start-up text and click


def signin_path(api_url: str, user_token: str) -> str:
    """A one-time ``/signin/<code>`` path that signs a browser in as the token's user (no token in the URL)."""
    with httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {user_token}"}, timeout=15) as client:
        response = client.post("/api/v1/auth/signin-links", json={"ttl_s": SIGNIN_LINK_TTL_S})
    if response.status_code != 201:
        raise DemoLoginError(f"making a sign-in link: HTTP {response.status_code} {response.text[:200]}")
    return str(response.json()["path"])


def addresses(api_url: str, user_token: str, signin: str) -> dict[str, str]:
    """Every address the demo prints, by name (``signin``: a path from ``signin_path``)."""
    return {
        "home_url": f"{api_url}/",
        "docs_url": f"{api_url}/docs",
        "qa_url": f"{api_url}/qa",
        # works once, for minutes: exchanged for the page's session cookie, then on to /qa (the #view is kept)
        "qa_signin_url": f"{api_url}{signin}{QA_HASH}",
        "app_command": f"fieldline app --api {api_url} --token {user_token}",
    }


def ready_text(info: dict) -> str:
    """What ``fieldline demo`` prints once everything runs (plain text: print it without markup)."""
    lines = info.get("lines") or []
    return "\n".join([
        "FieldLine demo is up",
        f"  home       {info['home_url']}   (links to everything below)",
        f"  API        {info['api_url']}   docs: {info['docs_url']}",
        f"  QA         {info['qa_url']}   user {info['user']}  password {info['password']}",
        f"             one-time sign-in link (15 min): {info['qa_signin_url']}",
        f"  phone app  {info['app_command']}   (needs the app extra: pip install -e '.[app]')",
        f"  token      {info['token']}   (service token, role admin)",
        f"  MQTT       {info['mqtt_host']}:{info['mqtt_port']}",
        f"  models     {info['model']} (sheds); {', '.join(info.get('line_models') or [])} (lines)",
        f"  sheds      {info['sheds']} in site {info['site']}; lines {', '.join(lines)} in site {info['factory_site']}",
        f"  details    {info['data_dir']}/demo.json",
        f"  try        curl -H 'Authorization: Bearer {info['token']}' {info['api_url']}/api/v1/sheds",
        "Ctrl-C stops everything.",
    ])
