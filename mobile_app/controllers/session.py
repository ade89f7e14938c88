"""The session: server, sign-in, language, the API client, the offline cache and the outbox."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mobile_app.api_client import ApiClient, ApiError, ApiUnreachable, AuthRequired
from mobile_app.cache import OfflineCache, now_ms
from mobile_app.i18n import Translator
from mobile_app.token_store import TokenStore, TokenStoreError, default_token_store


@dataclass(frozen=True)
class Fetched:
    """A value from the server, or from the cache when the server could not be reached."""

    value: Any
    fetched_ms: int | None
    offline: bool = False
    error: str | None = None

    def age_s(self, at_ms: int | None = None) -> float | None:
        if self.fetched_ms is None:
            return None
        return max(0.0, ((now_ms() if at_ms is None else at_ms) - self.fetched_ms) / 1000)


@dataclass(frozen=True)
class FlushResult:
    sent: int
    dropped: int
    remaining: int


class Session:
    """State shared by all screens. Settings persist in the cache database; the token only encrypted, in
    ``token_store`` (the Android Keystore, or a sealed value whose key is kept apart: ``token_store.py``)."""

    def __init__(self, cache: OfflineCache, api_url: str | None = None, token: str | None = None,
                 lang: str | None = None, client_factory: Callable[..., ApiClient] = ApiClient,
                 token_store: TokenStore | None = None) -> None:
        self.cache = cache
        self._client_factory = client_factory
        self._flush_lock = threading.Lock()
        self._tokens = token_store or default_token_store(cache)
        legacy = cache.setting("token")  # a clear-text token from an older version of the app: seal it
        if legacy:
            self._tokens.save(legacy)
            cache.set_setting("token", None)
            cache.scrub()
        if api_url:
            cache.set_setting("api_url", api_url)
        if token:
            self._tokens.save(token)
        if lang:
            cache.set_setting("lang", lang)
        self.translator = Translator(cache.setting("lang", "en") or "en")
        self._client: ApiClient | None = None
        self.online: bool | None = None  # None until the first request
        self.last_error: str | None = None
        self.dropped_actions: list[str] = []

    # ------------------------------------------------------------ settings

    @property
    def api_url(self) -> str | None:
        return self.cache.setting("api_url")

    @property
    def token(self) -> str | None:
        try:
            return self._tokens.load()
        except TokenStoreError as exc:  # tampered with, or its key is gone: as good as signed out
            self.last_error = str(exc)
            return None

    @property
    def username(self) -> str | None:
        return self.cache.setting("username")

    @property
    def role(self) -> str | None:
        return self.cache.setting("role")

    @property
    def operator(self) -> str | None:
        """The harvest-plan operator this phone's user is; defaults to the signed-in user name."""
        return self.cache.setting("operator") or self.username

    @property
    def lang(self) -> str:
        return self.translator.lang

    def t(self, key: str, **values: object) -> str:
        return self.translator.t(key, **values)

    def set_api_url(self, url: str) -> None:
        client = self._client_factory(url)  # validates the URL
        self.cache.set_setting("api_url", client.base_url)
        client.close()
        self._reset_client()

    def set_language(self, lang: str) -> None:
        self.translator.set_language(lang)
        self.cache.set_setting("lang", lang)

    def set_operator(self, name: str | None) -> None:
        self.cache.set_setting("operator", name or None)

    def set_token(self, token: str | None, username: str | None = None, role: str | None = None) -> None:
        if token:
            self._tokens.save(token)
        else:
            self._tokens.wipe()
        self.cache.set_setting("username", username)
        self.cache.set_setting("role", role)
        self._reset_client()

    def sign_out(self) -> None:
        """Revoke the token on the server if it can be reached, then wipe it and everything cached here:
        responses, queued actions, snapshot files (the next user of this phone sees nothing of this one's)."""
        if self.token and self.api_url:
            try:
                self.client.logout()
            except (ApiError, ApiUnreachable):  # offline or already invalid: wiping locally is what matters
                pass
        self.set_token(None)
        self.cache.set_setting("operator", None)
        self.cache.wipe()

    def _reset_client(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = None

    @property
    def client(self) -> ApiClient:
        if self._client is None:
            if not self.api_url:
                raise ApiUnreachable("no server URL set")
            self._client = self._client_factory(self.api_url, self.token)
        return self._client

    # ------------------------------------------------------------ reading

    def fetch(self, key: str, call: Callable[[ApiClient], Any]) -> Fetched:
        """Ask the server; on a network failure return the cached value of ``key`` marked offline."""
        try:
            value = call(self.client)
        except ApiUnreachable as exc:
            self.online = False
            self.last_error = str(exc)
            cached = self.cache.get(key)
            if cached is None:
                return Fetched(None, None, offline=True, error=str(exc))
            return Fetched(cached.value, cached.fetched_ms, offline=True, error=str(exc))
        except ApiError as exc:
            self.online = True
            self.last_error = str(exc)
            cached = self.cache.get(key)
            return Fetched(cached.value if cached else None, cached.fetched_ms if cached else None,
                           offline=False, error=exc.detail if isinstance(exc, AuthRequired) else str(exc))
        self.online = True
        self.last_error = None
        stored = self.cache.put(key, value)
        return Fetched(value, stored.fetched_ms)

    # ------------------------------------------------------------ actions

    def submit(self, kind: str, target: str, payload: dict[str, Any] | None = None) -> FlushResult:
        """Queue an action (deduplicated per kind and target) and try to send the queue now."""
        self.cache.enqueue(kind, target, payload)
        return self.flush_outbox()

    def flush_outbox(self) -> FlushResult:
        """Send queued actions in order; stop at the first network failure, keep the rest for later."""
        sent = dropped = 0
        with self._flush_lock:
            for action in self.cache.pending():
                try:
                    self._send(action.kind, action.target, action.payload)
                except ApiUnreachable as exc:
                    self.online = False
                    self.last_error = str(exc)
                    self.cache.record_failure(action.id, str(exc))
                    break
                except AuthRequired as exc:
                    self.online = True
                    self.last_error = str(exc)
                    self.cache.record_failure(action.id, str(exc))
                    break
                except ApiError as exc:
                    # the server refused it (unknown alert, bad shed): retrying would never succeed
                    self.cache.complete(action.id)
                    self.dropped_actions.append(f"{action.kind} {action.target}: {exc}")
                    dropped += 1
                    continue
                self.online = True
                self.cache.complete(action.id)
                sent += 1
        return FlushResult(sent, dropped, len(self.cache.pending()))

    def reconnect(self) -> FlushResult:
        """When offline, probe the server (``/health``, no token needed); then send the outbox."""
        if self.online is False:
            try:
                self.client.health()
            except ApiUnreachable:
                return FlushResult(0, 0, self.pending_count)
            except ApiError:
                pass  # it answered: the network is back
            self.online = True
        return self.flush_outbox()

    def _send(self, kind: str, target: str, payload: dict[str, Any]) -> None:
        if kind == "ack":
            self.client.ack_alert(target)
        elif kind == "done":
            self.client.mark_done(target, bool(payload.get("done", True)))
        elif kind == "wrong_count":
            self.client.report_wrong_count(target, payload.get("note"))
        else:
            raise ApiError(400, f"unknown queued action kind {kind!r}")

    @property
    def pending_count(self) -> int:
        return len(self.cache.pending())
