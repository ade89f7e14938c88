"""Harvest plan routes: computed on first GET and stored, re-plan, done/undo per day, role checks."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import httpx
import pytest

from cloud_api.services.users import create_user
from tests.cloud_api.cloudapi_builders import PASSWORD, ApiServer, count_event, login, settings_for

TZ = "Asia/Shanghai"


@pytest.fixture
def api(tmp_path) -> Iterator[ApiServer]:  # noqa: ANN001
    settings = settings_for(tmp_path, timezone=TZ)
    with ApiServer(settings) as server:
        store = server.server.config.app.state.store
        now = time.time_ns() // 1_000_000
        # four sheds of 120 ripe fruits = 10 min picking each, at 40/80/120/160 m (shed_spacing_m 40)
        store.write_events([count_event(f"shed-{i}", now, {"ripe": 120, "green": 50}, seq=i) for i in range(1, 5)], now)
        create_user(store, "olga", PASSWORD, "operator")
        create_user(store, "vic", PASSWORD, "viewer")
        yield server


@pytest.fixture
def users(api: ApiServer) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    with login(api, "olga") as olga, login(api, "vic") as vic:
        yield olga, vic


def test_first_get_computes_and_stores_todays_plan(api: ApiServer, users: tuple[httpx.Client, httpx.Client]) -> None:
    _, vic = users
    first = vic.get("/harvest/plan")
    assert first.status_code == 200
    plan = first.json()
    assert plan["date"] == datetime.now(ZoneInfo(TZ)).date().isoformat()
    assert [o["name"] for o in plan["operators"]] == ["operator-1", "operator-2"]
    assert [o["sheds"] for o in plan["operators"]] == [["shed-1", "shed-2"], ["shed-3", "shed-4"]]
    assert [o["fruits"] for o in plan["operators"]] == [240, 240]
    assert plan["operators"][1] == {"name": "operator-2", "sheds": ["shed-3", "shed-4"], "fruits": 240,
                                    "pick_minutes": 20.0, "walk_minutes": 5.33, "total_minutes": 25.33}
    assert plan["makespan_minutes"] == 25.33 and plan["contiguous"] is True and plan["done"] == []
    assert plan["explanation"] and plan["created_by"] == "vic"
    assert (plan["pick_rate_per_min"], plan["walk_speed_m_per_min"]) == (12.0, 60.0)
    again = api.get("/harvest/plan")
    assert again["created_ms"] == plan["created_ms"] and again["operators"] == plan["operators"]  # stored
    assert api.get("/harvest/plan", date=plan["date"])["created_ms"] == plan["created_ms"]
    assert api.client.get("/harvest/plan", params={"date": "2020-01-01"}).status_code == 404
    assert api.client.get("/harvest/plan", params={"date": "yesterday"}).status_code == 422


def test_done_undo_and_replan(api: ApiServer, users: tuple[httpx.Client, httpx.Client]) -> None:
    olga, vic = users
    planned = api.get("/harvest/plan")
    done = olga.post("/harvest/sheds/shed-4/done")
    assert done.status_code == 200
    mark = done.json()
    assert (mark["shed"], mark["done"], mark["done_by"], mark["date"]) == ("shed-4", True, "olga", planned["date"])
    assert api.client.post("/harvest/sheds/shed-4/done").json() == mark  # idempotent: the first mark is kept
    after = api.get("/harvest/plan")
    assert after["done"] == ["shed-4"] and after["operators"] == planned["operators"]  # no silent re-plan

    replanned = olga.post("/harvest/plan")
    assert replanned.status_code == 200
    body = replanned.json()
    # shed-1..3 at 40/80/120 m, 10 min each: {1,2} = 20 + 2.67, {3} = 10 + 4 -> 22.67
    assert [o["sheds"] for o in body["operators"]] == [["shed-1", "shed-2"], ["shed-3"]]
    assert body["makespan_minutes"] == 22.67 and body["done"] == ["shed-4"] and body["created_by"] == "olga"
    assert any("marked done" in line for line in body["explanation"])
    assert api.get("/harvest/plan")["created_ms"] == body["created_ms"]  # the re-plan replaced the stored one

    undone = olga.delete("/harvest/sheds/shed-4/done")
    assert undone.json() == {"date": planned["date"], "shed": "shed-4", "done": False, "done_by": None, "done_ms": None}
    assert olga.delete("/harvest/sheds/shed-4/done").status_code == 200  # idempotent
    assert api.get("/harvest/plan")["done"] == []

    assert vic.post("/harvest/sheds/shed-1/done").status_code == 403
    assert vic.delete("/harvest/sheds/shed-1/done").status_code == 403
    assert vic.post("/harvest/plan").status_code == 403
    assert api.get("/harvest/plan")["done"] == []
    assert olga.post("/harvest/sheds/shed-99/done").status_code == 404


def test_replan_with_body_and_validation(api: ApiServer, users: tuple[httpx.Client, httpx.Client]) -> None:
    olga, _ = users
    body = olga.post("/harvest/plan", json={"operators": ["li", "wang", "zhao", "sun"], "pick_rate_per_min": 24,
                                            "walk_speed_m_per_min": 80}).json()
    # one shed each: 5 min picking + walk 2 x 160 / 80 = 4 min for the farthest -> 9
    assert [o["name"] for o in body["operators"]] == ["li", "wang", "zhao", "sun"]
    assert body["makespan_minutes"] == 9.0 and body["pick_rate_per_min"] == 24
    for bad in ({"operators": []}, {"operators": ["a", "a"]}, {"pick_rate_per_min": 0}, {"speed": 3}):
        assert olga.post("/harvest/plan", json=bad).status_code == 422, bad
    db = api.server.config.app.state.settings.database_file
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM harvest_plans").fetchone() == (1,)
