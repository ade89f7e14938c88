"""A user's login tokens (listed by a short id, revocable) and one-time sign-in links for pages.

A sign-in code is stored like a token, keyed ``signin:<sha256 of the code>`` so that it can never be used as
a bearer token (those are looked up by their bare SHA-256). Exchanging it deletes that row first: the
delete succeeds once, so a code works once even when two requests race, and it expires after
``SIGNIN_CODE_TTL_S`` whether used or not.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from cloud_api.services.users import IssuedToken, issue_token, now_ms, token_digest
from cloud_api.storage.base import Store
from cloud_api.storage.records import TokenRecord, UserRecord

SIGNIN_PREFIX = "signin:"
SIGNIN_CODE_TTL_S = 300
SIGNIN_CODE_MAX_TTL_S = 900
TOKEN_ID_CHARS = 16  # the listed id: the first 16 hex digits of the token's SHA-256 (not enough to sign in)

__all__ = ["SIGNIN_CODE_TTL_S", "SigninCode", "TokenInfo", "exchange_signin_code", "issue_signin_code",
           "list_tokens", "revoke_token_by_id", "token_id"]


@dataclass(frozen=True)
class TokenInfo:
    id: str
    username: str
    created_ms: int
    last_used_ms: int | None
    expires_ms: int | None
    current: bool  # the token that made this request


@dataclass(frozen=True)
class SigninCode:
    code: str  # shown once, never stored
    username: str
    expires_ms: int


def token_id(token_sha256: str) -> str:
    return token_sha256[:TOKEN_ID_CHARS]


def _is_login_token(record: TokenRecord) -> bool:
    return not record.token_sha256.startswith(SIGNIN_PREFIX)


def list_tokens(store: Store, username: str | None, presented: str | None = None) -> list[TokenInfo]:
    """Unexpired login tokens of ``username`` (None: everyone's), newest first; sign-in codes left out."""
    current = token_digest(presented) if presented else None
    return [TokenInfo(id=token_id(r.token_sha256), username=r.username, created_ms=r.created_ms,
                      last_used_ms=r.last_used_ms, expires_ms=r.expires_ms, current=r.token_sha256 == current)
            for r in store.list_tokens(username, now_ms()) if _is_login_token(r)]


def revoke_token_by_id(store: Store, ident: str, username: str | None) -> bool:
    """Revoke the token with this id; only among ``username``'s tokens unless ``username`` is None (admin)."""
    if len(ident) != TOKEN_ID_CHARS:
        return False
    for record in store.list_tokens(username, now_ms()):
        if _is_login_token(record) and token_id(record.token_sha256) == ident.lower():
            return store.delete_token(record.token_sha256)
    return False


def issue_signin_code(store: Store, user: UserRecord, ttl_s: int = SIGNIN_CODE_TTL_S) -> SigninCode:
    code = secrets.token_urlsafe(24)
    created = now_ms()
    expires = created + ttl_s * 1000
    store.add_token(TokenRecord(token_sha256=SIGNIN_PREFIX + token_digest(code), username=user.username,
                                created_ms=created, last_used_ms=None, expires_ms=expires), created)
    return SigninCode(code=code, username=user.username, expires_ms=expires)


def exchange_signin_code(store: Store, code: str, session_ttl_s: int | None) -> IssuedToken | None:
    """A new login token for the code's user, or None if the code is unknown, used or expired."""
    key = SIGNIN_PREFIX + token_digest(code)
    found = store.token_owner(key, now_ms())
    if not store.delete_token(key) or found is None:  # delete first: single use even under a race
        return None
    user, _ = found
    return issue_token(store, user, session_ttl_s)
