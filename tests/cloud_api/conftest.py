from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cloud_api.storage.postgres_store import PostgresStore
from cloud_api.storage.sqlite_store import SqliteStore

from tests.support.mosquitto import MosquittoBroker


@pytest.fixture
def broker() -> Iterator[MosquittoBroker]:
    with MosquittoBroker() as running:
        yield running


StoreOpener = Callable[..., Any]


@pytest.fixture(params=["sqlite", "postgres"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreOpener]:
    """``open_store(**kwargs)`` opens the store under test: SQLite in tmp_path, or PostgreSQL (one suite, two
    backends). Opening again gives the same database; every store opened is closed at the end."""
    opened: list[Any] = []

    def opener(**kwargs: Any) -> Any:
        if request.param == "sqlite":
            store: Any = SqliteStore(tmp_path / "db" / "fieldline.db", **kwargs)
        else:
            store = PostgresStore(request.getfixturevalue("postgres_dsn"), **kwargs)
        store.open()
        opened.append(store)
        return store

    yield opener
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: StoreOpener) -> Any:
    """The store under test, open (SQLite and PostgreSQL)."""
    return open_store()


@pytest.fixture(params=["sqlite", "postgres"])
def storage(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings overrides choosing the store of an API under test: ``settings_for(tmp_path, **storage)``."""
    if request.param == "sqlite":
        return {}
    return {"storage": "postgres", "postgres_dsn": request.getfixturevalue("postgres_dsn")}
