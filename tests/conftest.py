"""Fixtures shared by every test folder: one real PostgreSQL per session (started on first use)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from tests.support.postgres import PostgresServer

_databases = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster in a temp folder on a free port, stopped at the end of the session."""
    with PostgresServer() as server:
        yield server


@pytest.fixture
def postgres_dsn(postgres_server: PostgresServer) -> str:
    """DSN of a fresh, empty database on the session's server (one per test)."""
    return postgres_server.create_database(f"t{next(_databases)}")
