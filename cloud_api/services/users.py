"""Users, roles, password hashing (salted scrypt from the stdlib) and login tokens.

Usable from a CLI without the web app::

    store = SqliteStore(Settings().database_file); store.open()
    create_user(store, "li", "a long password", "operator")
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass
from typing import Literal, get_args

from cloud_api.storage.base import Store
from cloud_api.storage.records import TokenRecord, UserRecord
from cloud_api.storage.sqlite_users import UserExists

Role = Literal["admin", "operator", "viewer"]
ROLES: tuple[str, ...] = get_args(Role)
ROLE_RANK = {"viewer": 0, "operator": 1, "admin": 2}
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
MIN_PASSWORD_LENGTH = 8
# refused whatever their length: the passwords guessed first (lower-cased comparison)
COMMON_PASSWORDS = frozenset({
    "password", "password1", "password123", "passw0rd", "12345678", "123456789", "1234567890", "11111111",
    "00000000", "87654321", "qwertyuiop", "qwerty123", "1q2w3e4r", "1qaz2wsx", "abc12345", "abcdefgh",
    "iloveyou", "sunshine", "princess", "football", "baseball", "welcome1", "letmein1", "trustno1",
    "superman", "starwars", "changeme", "administrator", "admin123", "fieldline", "greenhouse",
})

# scrypt cost: n=2**14, r=8, p=1 (16 MiB, ~60 ms here); stored with the hash so it can be raised later
SCRYPT_N, SCRYPT_R, SCRYPT_P, KEY_BYTES = 2**14, 8, 1, 32
_DUMMY_HASH: str | None = None

__all__ = [
    "COMMON_PASSWORDS", "ROLES", "ROLE_RANK", "InvalidUser", "check_password", "IssuedToken", "Role", "UserExists",
    "authenticate", "create_user", "ensure_user", "hash_password", "issue_token", "resolve_token",
    "revoke_token", "token_digest", "verify_password",
]


class InvalidUser(ValueError):
    """A user name, password or role that cannot be accepted; the message names which."""


@dataclass(frozen=True)
class IssuedToken:
    token: str  # shown once to the client, never stored
    user: UserRecord
    expires_ms: int | None


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def hash_password(password: str, *, n: int = SCRYPT_N, r: int = SCRYPT_R, p: int = SCRYPT_P) -> str:
    """``scrypt$n$r$p$salt$key`` with a random 16-byte salt (base64 fields)."""
    salt = secrets.token_bytes(16)
    key = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=128 * r * n * 2, dklen=KEY_BYTES)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(key)
        n_, r_, p_ = int(n), int(r), int(p)
        actual = hashlib.scrypt(
            password.encode("utf-8"), salt=base64.b64decode(salt), n=n_, r=r_, p=p_,
            maxmem=128 * r_ * n_ * 2, dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _check(username: str, password: str, role: str) -> None:
    if not USERNAME_RE.match(username):
        raise InvalidUser(f"username: {username!r} must match {USERNAME_RE.pattern}")
    check_password(username, password)
    if role not in ROLES:
        raise InvalidUser(f"role: {role!r} is not one of {', '.join(ROLES)}")


def check_password(username: str, password: str) -> None:
    """Raise ``InvalidUser`` naming the rule a password breaks: length, the user name, a common password."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidUser(f"password: must be at least {MIN_PASSWORD_LENGTH} characters")
    lowered = password.lower()
    if lowered == username.lower() or lowered == username.lower()[::-1]:
        raise InvalidUser("password: must not be the user name")
    if lowered in COMMON_PASSWORDS:
        raise InvalidUser("password: is one of the most common passwords; choose another")


def create_user(store: Store, username: str, password: str, role: str) -> UserRecord:
    """Create a user; raises ``InvalidUser`` for a bad name/password/role and ``UserExists`` if taken."""
    _check(username, password, role)
    user = UserRecord(username=username, role=role, password_hash=hash_password(password), created_ms=now_ms())
    store.create_user(user)
    return user


def ensure_user(store: Store, username: str, password: str, role: str) -> bool:
    """Create the user unless one of that name exists (its password is then left alone); True if created."""
    if store.get_user(username) is not None:
        return False
    try:
        create_user(store, username, password, role)
    except UserExists:
        return False  # created concurrently
    return True


def authenticate(store: Store, username: str, password: str) -> UserRecord | None:
    """The user when the password matches; the same scrypt work is done for unknown users (no timing oracle)."""
    global _DUMMY_HASH
    user = store.get_user(username)
    if user is None:
        if _DUMMY_HASH is None:
            _DUMMY_HASH = hash_password(secrets.token_urlsafe(16))
        verify_password(password, _DUMMY_HASH)
        return None
    return user if verify_password(password, user.password_hash) else None


def issue_token(store: Store, user: UserRecord, ttl_s: int | None) -> IssuedToken:
    """A new random bearer token for the user; only its SHA-256 is stored."""
    token = secrets.token_urlsafe(32)
    created = now_ms()
    expires = created + ttl_s * 1000 if ttl_s is not None else None
    store.add_token(
        TokenRecord(token_sha256=token_digest(token), username=user.username, created_ms=created,
                    last_used_ms=None, expires_ms=expires),
        created,
    )
    return IssuedToken(token=token, user=user, expires_ms=expires)


def resolve_token(store: Store, token: str) -> tuple[UserRecord, TokenRecord] | None:
    """The user and token record of a valid, unexpired login token."""
    return store.token_owner(token_digest(token), now_ms())


def revoke_token(store: Store, token: str) -> bool:
    return store.delete_token(token_digest(token))
