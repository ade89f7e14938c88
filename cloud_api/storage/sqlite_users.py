"""Users and login tokens in SQLite (only the SHA-256 of a token is stored)."""

from __future__ import annotations

import sqlite3

from cloud_api.storage.records import TokenRecord, UserRecord

TOKEN_TOUCH_INTERVAL_MS = 60_000  # last_used_ms is written at most once a minute per token


class UserExists(ValueError):
    """A user with this name already exists."""


def insert_user(conn: sqlite3.Connection, user: UserRecord) -> None:
    try:
        conn.execute(
            "INSERT INTO users (username, role, password_hash, created_ms) VALUES (?,?,?,?)",
            (user.username, user.role, user.password_hash, user.created_ms),
        )
    except sqlite3.IntegrityError as exc:
        if "UNIQUE" in str(exc) or "PRIMARY KEY" in str(exc):
            raise UserExists(user.username) from None
        raise


def get_user(conn: sqlite3.Connection, username: str) -> UserRecord | None:
    row = conn.execute(
        "SELECT username, role, password_hash, created_ms FROM users WHERE username = ?", (username,)
    ).fetchone()
    return UserRecord(*row) if row else None


def list_users(conn: sqlite3.Connection) -> list[UserRecord]:
    rows = conn.execute("SELECT username, role, password_hash, created_ms FROM users ORDER BY username")
    return [UserRecord(*row) for row in rows]


def insert_token(conn: sqlite3.Connection, token: TokenRecord, now_ms: int) -> None:
    conn.execute("DELETE FROM tokens WHERE expires_ms IS NOT NULL AND expires_ms <= ?", (now_ms,))
    conn.execute(
        "INSERT INTO tokens (token_sha256, username, created_ms, last_used_ms, expires_ms) VALUES (?,?,?,?,?)",
        (token.token_sha256, token.username, token.created_ms, token.last_used_ms, token.expires_ms),
    )


def token_owner(conn: sqlite3.Connection, token_sha256: str, now_ms: int) -> tuple[UserRecord, TokenRecord] | None:
    """The user of an unexpired token, touching its last_used_ms (at most once a minute)."""
    row = conn.execute(
        "SELECT t.token_sha256, t.username, t.created_ms, t.last_used_ms, t.expires_ms,"
        " u.username, u.role, u.password_hash, u.created_ms"
        " FROM tokens t JOIN users u ON u.username = t.username WHERE t.token_sha256 = ?",
        (token_sha256,),
    ).fetchone()
    if row is None:
        return None
    token, user = TokenRecord(*row[:5]), UserRecord(*row[5:])
    if token.expires_ms is not None and token.expires_ms <= now_ms:
        return None
    if token.last_used_ms is None or now_ms - token.last_used_ms >= TOKEN_TOUCH_INTERVAL_MS:
        conn.execute("UPDATE tokens SET last_used_ms = ? WHERE token_sha256 = ?", (now_ms, token_sha256))
    return user, token


def delete_token(conn: sqlite3.Connection, token_sha256: str) -> bool:
    return conn.execute("DELETE FROM tokens WHERE token_sha256 = ?", (token_sha256,)).rowcount == 1


def list_tokens(conn: sqlite3.Connection, username: str | None, now_ms: int) -> list[TokenRecord]:
    """Unexpired login tokens, newest first; of one user, or of everyone when ``username`` is None."""
    sql = ("SELECT token_sha256, username, created_ms, last_used_ms, expires_ms FROM tokens"
           " WHERE (expires_ms IS NULL OR expires_ms > ?)")
    args: tuple = (now_ms,)
    if username is not None:
        sql, args = sql + " AND username = ?", (now_ms, username)
    return [TokenRecord(*row) for row in conn.execute(sql + " ORDER BY created_ms DESC, token_sha256", args)]
