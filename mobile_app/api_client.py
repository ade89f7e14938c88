"""HTTP client for the FieldLine cloud API (``/api/v1``), with timeouts and retries.

Every method returns decoded JSON (plain dicts and lists); the models in ``mobile_app.models`` turn
them into typed objects. Network failures raise :class:`ApiUnreachable` (the caller falls back to the
offline cache); HTTP errors raise :class:`ApiError` with the status and the server's detail. All the
write calls of the contract are idempotent (acknowledging twice, marking done twice), so retrying a
request whose answer was lost is safe.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx

API_PREFIX = "/api/v1"
RETRY_STATUSES = frozenset({502, 503, 504})


class ApiError(RuntimeError):
    """The server answered with an error status."""

    def __init__(self, status: int, detail: str, method: str = "", path: str = "") -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {detail}".strip())
        self.status = status
        self.detail = detail


class AuthRequired(ApiError):
    """401: no token, or the token was refused; the user has to sign in."""


class ApiUnreachable(RuntimeError):
    """The server could not be reached (no network, DNS, refused, timeout)."""


@dataclass(frozen=True)
class SentRequest:
    method: str
    path: str
    status: int | None  # None when the request failed at the transport level


def normalise_base_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if not url:
        raise ValueError("server URL: empty")
    if "://" not in url:
        url = "http://" + url
    if url.endswith(API_PREFIX):
        url = url[: -len(API_PREFIX)]
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"server URL: {url!r} must start with http:// or https://")
    return url


class ApiClient:
    """Thin typed wrapper over httpx for the REST contract; one instance per server URL."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        connect_timeout: float = 3.0,
        read_timeout: float = 8.0,
        retries: int = 2,
        backoff_s: float = 0.3,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.base_url = normalise_base_url(base_url)
        self.token = token
        self.retries = retries
        self.backoff_s = backoff_s
        self._sleep = sleep
        self.sent: list[SentRequest] = []  # every request attempt, for diagnostics and tests
        self.fail_fast_s = 5.0  # after a request failed for good, don't retry (and wait) for this long
        self._failed_at: float | None = None
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            transport=transport,
            headers={"Accept": "application/json"},
        )

    def close(self) -> None:
        self._http.close()

    # ------------------------------------------------------------ plumbing

    def _request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
                 raw: bool = False) -> Any:
        url = API_PREFIX + path
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        last_error: Exception | None = None
        recently_failed = self._failed_at is not None and time.monotonic() - self._failed_at < self.fail_fast_s
        for attempt in range(1 if recently_failed else self.retries + 1):
            if attempt:
                self._sleep(self.backoff_s * (2 ** (attempt - 1)))
            try:
                response = self._http.request(method, url, json=json, params=clean or None, headers=headers)
            except httpx.TransportError as exc:
                self.sent.append(SentRequest(method, path, None))
                last_error = exc
                continue
            self.sent.append(SentRequest(method, path, response.status_code))
            self._failed_at = None
            if response.status_code in RETRY_STATUSES:
                last_error = ApiError(response.status_code, _detail(response), method, path)
                continue
            if response.status_code == 401:
                raise AuthRequired(401, _detail(response), method, path)
            if response.status_code >= 400:
                raise ApiError(response.status_code, _detail(response), method, path)
            if raw:
                return response.content
            if response.status_code == 204 or not response.content:
                return None
            return response.json()
        if isinstance(last_error, ApiError):
            raise last_error
        self._failed_at = time.monotonic()
        raise ApiUnreachable(f"{method} {self.base_url}{url}: {type(last_error).__name__}: {last_error}")

    def count_sent(self, method: str, path: str) -> int:
        """How many attempts of this request reached the server (got any HTTP status)."""
        return sum(1 for r in self.sent if r.method == method and r.path == path and r.status is not None)

    # ------------------------------------------------------------ auth

    def login(self, username: str, password: str) -> dict[str, Any]:
        """POST /auth/login; on success the client uses the returned token from then on."""
        body = self._request("POST", "/auth/login", json={"username": username, "password": password})
        self.token = body["access_token"]
        return body

    def logout(self) -> None:
        """POST /auth/logout: the server revokes this token."""
        self._request("POST", "/auth/logout")

    def me(self) -> dict[str, Any]:
        return self._request("GET", "/auth/me")

    def health(self) -> dict[str, Any]:
        return self._request("GET", "/health")

    # ------------------------------------------------------------ sheds

    def sheds(self) -> list[dict[str, Any]]:
        return self._request("GET", "/sheds")

    def shed(self, shed_id: str) -> dict[str, Any]:
        return self._request("GET", f"/sheds/{quote(shed_id, safe='')}")

    def shed_counts(self, shed_id: str, from_ms: int, to_ms: int, bucket_ms: int) -> dict[str, Any]:
        return self._request(
            "GET", f"/sheds/{quote(shed_id, safe='')}/counts", params={"from": from_ms, "to": to_ms, "bucket": bucket_ms}
        )

    def shed_climate(self, shed_id: str, days: int = 7) -> dict[str, Any]:
        return self._request("GET", f"/sheds/{quote(shed_id, safe='')}/climate", params={"days": days})

    def shed_forecast(self, shed_id: str) -> dict[str, Any]:
        return self._request("GET", f"/sheds/{quote(shed_id, safe='')}/forecast")

    def site_forecast(self) -> dict[str, Any]:
        return self._request("GET", "/forecast")

    def snapshot(self, event_id: str) -> bytes:
        return self._request("GET", f"/snapshots/{quote(event_id, safe='')}", raw=True)

    # ------------------------------------------------------------ alerts

    def alerts(self, state: str | None = None, severity: str | None = None) -> list[dict[str, Any]]:
        return self._request("GET", "/alerts", params={"state": state, "severity": severity})

    def alerts_summary(self) -> dict[str, Any]:
        return self._request("GET", "/alerts/summary")

    def ack_alert(self, alert_id: str) -> dict[str, Any] | None:
        return self._request("POST", f"/alerts/{quote(alert_id, safe='')}/ack")

    def clear_alert(self, alert_id: str) -> dict[str, Any] | None:
        return self._request("POST", f"/alerts/{quote(alert_id, safe='')}/clear")

    # ------------------------------------------------------------ harvest

    def harvest_plan(self) -> dict[str, Any]:
        return self._request("GET", "/harvest/plan")

    def harvest_outlook(self) -> list[dict[str, Any]]:
        return self._request("GET", "/harvest/outlook")

    def replan(self) -> dict[str, Any]:
        return self._request("POST", "/harvest/plan")

    def mark_done(self, shed_id: str, done: bool = True) -> dict[str, Any] | None:
        return self._request("POST" if done else "DELETE", f"/harvest/sheds/{quote(shed_id, safe='')}/done")

    def report_wrong_count(self, shed_id: str, note: str | None = None) -> dict[str, Any]:
        """POST /sheds/{id}/wrong-count: the camera watching the shed sends a fresh frame for labelling (202)."""
        return self._request("POST", f"/sheds/{quote(shed_id, safe='')}/wrong-count", json={"note": note})

    # ------------------------------------------------------------ live feed

    def websocket_url(self) -> str:
        return websocket_url(self.base_url)


def websocket_url(base_url: str) -> str:
    """``ws(s)://host/api/v1/ws`` for a server URL; the token goes in the first message (``LiveFeed``), never
    in the URL."""
    base = normalise_base_url(base_url)
    scheme = "wss" if base.startswith("https://") else "ws"
    host = base.split("://", 1)[1]
    return f"{scheme}://{host}{API_PREFIX}/ws"


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict) and "detail" in body:
        detail = body["detail"]
        return detail if isinstance(detail, str) else str(detail)[:300]
    return str(body)[:200]
