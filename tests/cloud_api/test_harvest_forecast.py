"""Harvest plans on the forecast: tomorrow's plan, the re-plan when the morning's counts arrive, hours per day."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from cloud_api.storage.records import HarvestPlanRecord
from cloud_api.storage.sqlite_store import SqliteStore
from tests.cloud_api.cloudapi_builders import ApiServer, settings_for
from tests.support.forecast_seed import count_event, seed
from tests.support.ripening_sim import SimShed, simulate_site

OBSERVE_HOUR = 8


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def today() -> date:
    return datetime.now(timezone.utc).date()


@pytest.fixture
def seeded(tmp_path: Path) -> Iterator[tuple[ApiServer, list[SimShed]]]:
    settings = settings_for(tmp_path, forecast_observe_hour=OBSERVE_HOUR)  # timezone UTC
    sheds = simulate_site(31, 5)
    store = SqliteStore(settings.database_file)
    store.open()
    seed(store, sheds, now_ms(), OBSERVE_HOUR)
    store.close()
    with ApiServer(settings) as api:
        yield api, sheds


def test_tomorrows_plan_splits_the_forecast_between_two_operators(seeded: tuple[ApiServer, list[SimShed]]) -> None:
    api, sheds = seeded
    tomorrow = (today() + timedelta(days=1)).isoformat()
    plan = api.get("/harvest/plan", date=tomorrow)
    forecast = api.get("/forecast")
    expected = {s["shed"]: d["ready"] for s in forecast["sheds"] for d in s["days"] if d["date"] == tomorrow}
    assert len(expected) == len(sheds)
    assert [o["name"] for o in plan["operators"]] == ["operator-1", "operator-2"]
    assert sum(o["fruits"] for o in plan["operators"]) == sum(n for n in expected.values() if n > 0)
    assert all(o["sheds"] for o in plan["operators"])  # both operators have work
    assert plan["explanation"][0].startswith(f"Built on the forecast: {sum(expected.values())} pick-ready")
    assert api.get("/harvest/plan", date=tomorrow)["created_ms"] == plan["created_ms"]  # stored, no new counts


def test_a_forecast_plan_for_today_is_replanned_when_the_mornings_counts_arrive(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    store = SqliteStore(settings.database_file)
    store.open()
    midnight = int(datetime.combine(today(), datetime.min.time(), tzinfo=timezone.utc).timestamp() * 1000)
    store.write_events([count_event(f"shed-{i}", i, midnight - 3_600_000, {"ripe": 50, "green": 300})
                        for i in (1, 2)], midnight)
    forecast_plan = {"operators": [{"name": "operator-1", "sheds": ["shed-1"], "fruits": 70, "pick_minutes": 5.8,
                                    "walk_minutes": 1.3, "total_minutes": 7.1},
                                   {"name": "operator-2", "sheds": ["shed-2"], "fruits": 70, "pick_minutes": 5.8,
                                    "walk_minutes": 2.7, "total_minutes": 8.5}],
                     "makespan_minutes": 8.5, "contiguous": True, "explanation": ["Built on the forecast"],
                     "source": "forecast"}
    store.put_harvest_plan(HarvestPlanRecord(today().isoformat(), midnight - 7_200_000, "olga", forecast_plan),
                           replace=True)
    store.close()
    with ApiServer(settings) as api:
        unchanged = api.get("/harvest/plan")
        assert unchanged["created_ms"] == midnight - 7_200_000  # no count today yet: the forecast plan stands
        store = api.server.config.app.state.store
        store.write_events([count_event("shed-1", 10, now_ms(), {"ripe": 90, "green": 280}),
                            count_event("shed-2", 11, now_ms(), {"ripe": 120, "green": 260})], now_ms())
        replanned = api.get("/harvest/plan")
        assert replanned["created_ms"] > unchanged["created_ms"]
        assert sum(o["fruits"] for o in replanned["operators"]) == 210
        assert replanned["explanation"][0] == "Re-planned from this morning's counts: 210 fruit(s) to pick, " \
                                              "the forecast said 140."
        assert api.get("/harvest/plan")["created_ms"] == replanned["created_ms"]  # once


def test_outlook_gives_hours_per_day(seeded: tuple[ApiServer, list[SimShed]]) -> None:
    api, _ = seeded
    outlook = api.get("/harvest/outlook")
    assert outlook[0]["date"] == today().isoformat() and outlook[0]["source"] == "counts"
    forecast_days = [d for d in outlook if d["source"] == "forecast"]
    assert 2 <= len(forecast_days) <= 3 and all(d["date"] > today().isoformat() for d in forecast_days)
    for day in outlook:
        assert day["pick_hours"] == pytest.approx(day["fruits"] / 12 / 60, abs=0.01)
        assert day["total_hours"] >= day["pick_hours"] and day["makespan_hours"] <= day["total_hours"]
        assert day["low"] <= day["fruits"] <= day["high"]
    assert forecast_days[0]["fruits"] > 0 and forecast_days[0]["makespan_hours"] > 0
