"""/sheds and /sheds/{id}/counts on hand-made data written straight into the store (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloud_api.storage.factory import build_store
from cloud_api.storage.sqlite_store import SqliteStore
from fieldline.contract import Event
from tests.cloud_api.cloudapi_builders import T0, ApiServer, count_event, settings_for, shed_v1

MIN = 60_000


def _store_and_api(tmp_path: Path, storage: dict[str, Any]) -> Iterator[tuple[SqliteStore, ApiServer]]:
    settings = settings_for(tmp_path, **storage)
    store = build_store(settings)
    store.open()
    with ApiServer(settings) as api:
        yield store, api
    store.close()


@pytest.fixture
def store_and_api(tmp_path: Path, storage: dict[str, Any]) -> Iterator[tuple[SqliteStore, ApiServer]]:
    """The API on SQLite and on PostgreSQL, with a store on the same database to write into."""
    yield from _store_and_api(tmp_path, storage)


@pytest.fixture
def sqlite_api(tmp_path: Path) -> Iterator[tuple[SqliteStore, ApiServer]]:
    """Parameter checks do not touch the store: SQLite only."""
    yield from _store_and_api(tmp_path, {})


def write(store: SqliteStore, *events: Event) -> int:
    return store.write_events(list(events), received_ms=T0)


def test_sheds_sum_latest_count_per_device_camera_row(store_and_api: tuple[SqliteStore, ApiServer]) -> None:
    store, api = store_and_api
    write(
        store,
        count_event("shed-1", T0, {"ripe": 10, "green": 4}, row="r1", seq=1),
        count_event("shed-1", T0 + 5000, {"ripe": 12}, row="r1", seq=2),  # latest for r1: green is now 0
        count_event("shed-1", T0 + 1000, {"ripe": 3, "green": 1}, row="r2", seq=3),
        count_event("shed-1", T0 + 2000, {"ripe": 7}, device="edge-2", row="r1", seq=1),
        count_event("shed-10", T0, {"ripe": 1}, seq=4),
        count_event("shed-2", T0, {"ripe": 2}, seq=5),
    )
    # an older event replayed later (historical) must not replace the latest one
    write(store, count_event("shed-1", T0 - 60_000, {"ripe": 99}, row="r1", seq=0))

    sheds = api.get("/sheds")
    assert [s["id"] for s in sheds] == ["shed-1", "shed-2", "shed-10"]
    shed1 = shed_v1(sheds)[0]
    assert shed1 == {"id": "shed-1", "name": "shed-1", "counts": {"ripe": 22, "green": 1}, "updated_ms": T0 + 5000}


def test_empty_latest_count_zeroes_its_key(store_and_api: tuple[SqliteStore, ApiServer]) -> None:
    store, api = store_and_api
    write(store, count_event("shed-3", T0, {"ripe": 5}, seq=1), count_event("shed-3", T0 + 1, {}, seq=2))
    assert shed_v1(api.get("/sheds")) == [{"id": "shed-3", "name": "shed-3", "counts": {}, "updated_ms": T0 + 1}]


def test_counts_buckets_take_last_value_per_key_and_sum(store_and_api: tuple[SqliteStore, ApiServer]) -> None:
    store, api = store_and_api
    write(
        store,
        # bucket T0: r1 reports 3 then 5 (last wins), edge-2 reports 2 -> ripe 7; green only in the first r1 event
        count_event("shed-1", T0 + 1_000, {"ripe": 3, "green": 9}, seq=1),
        count_event("shed-1", T0 + 50_000, {"ripe": 5}, seq=2),
        count_event("shed-1", T0 + 10_000, {"ripe": 2}, device="edge-2", seq=1),
        # bucket T0+1min: only r1
        count_event("shed-1", T0 + MIN + 1_000, {"ripe": 4, "green": 1}, seq=3),
        # bucket T0+3min: two rows of the same camera
        count_event("shed-1", T0 + 3 * MIN, {"ripe": 1}, row="r1", seq=4),
        count_event("shed-1", T0 + 3 * MIN + 59_999, {"ripe": 6}, row="r2", seq=5),
        # outside the range and another shed: ignored
        count_event("shed-1", T0 + 10 * MIN, {"ripe": 100}, seq=6),
        count_event("shed-2", T0 + 1_000, {"ripe": 100}, seq=7),
    )
    body = api.get("/sheds/shed-1/counts", **{"from": T0, "to": T0 + 4 * MIN, "bucket": MIN})
    assert body["shed"] == "shed-1" and body["bucket_ms"] == MIN
    assert body["points"] == [
        {"ts_ms": T0, "counts": {"ripe": 7}},
        {"ts_ms": T0 + MIN, "counts": {"ripe": 4, "green": 1}},
        {"ts_ms": T0 + 3 * MIN, "counts": {"ripe": 7}},
    ]
    wide = api.get("/sheds/shed-1/counts", **{"from": T0, "to": T0 + 4 * MIN, "bucket": 4 * MIN})
    # one bucket: last of edge-1/r1 (1) + edge-1/r2 (6) + edge-2/r1 (2)
    assert wide["points"] == [{"ts_ms": T0, "counts": {"ripe": 9}}]
    shifted = api.get("/sheds/shed-1/counts", **{"from": T0 + 30_000, "to": T0 + 2 * MIN, "bucket": MIN})
    assert shifted["points"] == [  # buckets start at from, not at the epoch
        {"ts_ms": T0 + 30_000, "counts": {"ripe": 4, "green": 1}},  # edge-1/r1 at T0+61 s; edge-2 is before from
    ]


def test_counts_defaults_to_last_day_in_five_minute_buckets(store_and_api: tuple[SqliteStore, ApiServer]) -> None:
    store, api = store_and_api
    write(store, count_event("shed-1", T0, {"ripe": 1}))
    body = api.get("/sheds/shed-1/counts")
    assert body["bucket_ms"] == 300_000
    assert body["to_ms"] - body["from_ms"] == 24 * 3600 * 1000
    assert body["points"] == []  # T0 is in 2023, not in the last 24 h


def test_counts_unknown_shed_is_404(sqlite_api: tuple[SqliteStore, ApiServer]) -> None:
    _, api = sqlite_api
    response = api.client.get("/sheds/shed-404/counts")
    assert response.status_code == 404
    assert "shed-404" in response.json()["detail"]


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"from": T0, "to": T0}, "from"),
        ({"from": T0 + 1, "to": T0}, "from"),
        ({"from": T0, "to": T0 + MIN, "bucket": 999}, "bucket"),
        ({"from": T0, "to": T0 + 10_001_000, "bucket": 1000}, "bucket"),
        ({"from": "yesterday"}, "from"),
    ],
)
def test_counts_rejects_bad_parameters_with_422(
    sqlite_api: tuple[SqliteStore, ApiServer], params: dict[str, object], needle: str
) -> None:
    store, api = sqlite_api
    write(store, count_event("shed-1", T0, {"ripe": 1}))
    response = api.client.get("/sheds/shed-1/counts", params=params)
    assert response.status_code == 422
    assert needle in response.text


def test_events_filters_and_orders_newest_first(store_and_api: tuple[SqliteStore, ApiServer]) -> None:
    store, api = store_and_api
    write(
        store,
        count_event("shed-1", T0 + 1, {"ripe": 1}, seq=1),
        count_event("shed-1", T0 + 3, {"ripe": 1}, seq=2),
        count_event("shed-2", T0 + 2, {"ripe": 1}, seq=3),
        count_event("shed-2", T0 + 4, {"ripe": 1}, device="edge-2", seq=1),
    )
    assert [e["id"] for e in api.get("/events")] == ["edge-2-0-1", "edge-1-0-2", "edge-1-0-3", "edge-1-0-1"]
    assert [e["id"] for e in api.get("/events", device="edge-1", zone="shed-2")] == ["edge-1-0-3"]
    assert [e["id"] for e in api.get("/events", limit=2)] == ["edge-2-0-1", "edge-1-0-2"]
    assert [e["id"] for e in api.get("/events", **{"from": T0 + 2, "to": T0 + 4})] == ["edge-1-0-2", "edge-1-0-3"]
    assert api.get("/events", kind="inspection") == []
    first = api.get("/events", limit=1)[0]
    assert first["schema"] == "fieldline.event/1" and first["zone"] == {"kind": "shed", "id": "shed-2", "row": "r1"}
    assert api.client.get("/events", params={"limit": 1001}).status_code == 422
