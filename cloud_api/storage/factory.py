"""The store the settings ask for (``storage: sqlite | postgres``), not yet opened."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cloud_api.storage.sqlite_store import SqliteStore

if TYPE_CHECKING:
    from cloud_api.core.config import Settings


class StoreUnavailable(RuntimeError):
    """The database server cannot be reached or refused us (the message names it, never with a password)."""


def build_store(settings: Settings) -> SqliteStore:
    """A ``SqliteStore`` on ``database_file``, or a ``PostgresStore`` (same interface) on ``postgres_dsn``."""
    if settings.storage == "postgres":
        from cloud_api.storage.postgres_store import PostgresStore  # psycopg: the postgres extra

        assert settings.postgres_dsn is not None  # checked by Settings
        return PostgresStore(settings.postgres_dsn.get_secret_value(), settings.dead_letter_max_bytes,
                             pool_size=settings.postgres_pool_size, partition_days=settings.postgres_partition_days)
    return SqliteStore(settings.database_file, dead_letter_max_bytes=settings.dead_letter_max_bytes)


def describe(settings: Settings) -> str:
    """Where the data is, for messages (a PostgreSQL DSN without its password)."""
    if settings.storage == "postgres":
        from cloud_api.storage.postgres_store import redact_dsn

        assert settings.postgres_dsn is not None
        return redact_dsn(settings.postgres_dsn.get_secret_value())
    return str(settings.database_file)
