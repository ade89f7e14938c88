"""Fixtures shared by every test folder: one real PostgreSQL per session (started on first use)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from tests.support.postgres import PostgresServer, reset_database

_databases = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A PostgreSQL cluster in a temp folder on a free port, stopped at the end of the session."""
    with PostgresServer() as server:
        yield server


@pytest.fixture(scope="session")
def _postgres_shared_db(postgres_server: PostgresServer) -> str:
    return postgres_server.create_database("fieldline_tests")


@pytest.fixture
def postgres_dsn(_postgres_shared_db: str) -> str:
    """DSN of a database with every FieldLine table empty (one database for the session, emptied per test:
    ~0.1 s instead of a new database that migrates again)."""
    reset_database(_postgres_shared_db)
    return _postgres_shared_db


@pytest.fixture
def fresh_postgres_dsn(postgres_server: PostgresServer) -> str:
    """DSN of a new, empty database (no schema yet): for migration tests."""
    return postgres_server.create_database(f"fresh{next(_databases)}")
