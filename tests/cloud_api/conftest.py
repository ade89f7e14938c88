from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.mosquitto import MosquittoBroker


@pytest.fixture
def broker() -> Iterator[MosquittoBroker]:
    with MosquittoBroker() as running:
        yield running
