"""The forecast through the real store and HTTP: seeded from simulated sheds, checked against their truth."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_api.services.forecast import FitCache, ForecastService
from cloud_api.storage.sqlite_store import SqliteStore
from tests.cloud_api.cloudapi_builders import ApiServer, settings_for
from tests.support.forecast_seed import count_event, seed
from tests.support.ripening_sim import SimShed, simulate_site

OBSERVE_HOUR = 8


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@pytest.fixture
def seeded_api(tmp_path: Path) -> Iterator[tuple[ApiServer, list[SimShed]]]:
    settings = settings_for(tmp_path, forecast_observe_hour=OBSERVE_HOUR)
    sheds = simulate_site(23, 4)
    store = SqliteStore(settings.database_file)
    store.open()
    seed(store, sheds, now_ms(), OBSERVE_HOUR)
    store.close()
    with ApiServer(settings) as api:
        yield api, sheds


def test_shed_forecast_tracks_the_simulated_truth_within_its_band(seeded_api: tuple[ApiServer, list[SimShed]]) -> None:
    api, sheds = seeded_api
    inside = errors = total = 0
    for shed in sheds:
        body = api.get(f"/sheds/{shed.id}/forecast")
        last = len(shed.counts) - 1
        assert body["base_ready"] == shed.counts[last]["ripe"]
        assert body["history_days"] == 28 and body["temperature_source"] == "forecast"
        assert [d["ready"] for d in body["days"]] == sorted(d["ready"] for d in body["days"])
        for k, day in enumerate(body["days"], start=1):
            truth = shed.truth(last, k)
            assert day["low"] <= day["ready"] <= day["high"]
            inside += day["low"] <= truth <= day["high"]
            errors += abs(day["ready"] - truth)
            total += truth
        assert "vs last week's pace" in body["explanation"] and "nearly ripe" in body["explanation"]
        assert 0.003 < body["model"]["a_per_degree_day"] < 0.05
    assert errors / total < 0.2, errors / total
    assert inside >= 8  # of 12 shed-days


def test_site_summary_adds_up_the_sheds(seeded_api: tuple[ApiServer, list[SimShed]]) -> None:
    api, sheds = seeded_api
    site = api.get("/forecast")
    assert sorted(s["shed"] for s in site["sheds"]) == sorted(s.id for s in sheds)
    for k in range(3):
        per_shed = sum(s["days"][k]["ready"] for s in site["sheds"])
        assert site["days"][k]["ready"] == per_shed
        assert site["days"][k]["low"] < per_shed < site["days"][k]["high"]
    assert api.client.get("/sheds/shed-99/forecast").status_code == 404
    assert api.anon.get("/forecast").status_code == 401


def test_without_sensors_or_forecast_the_explanation_says_what_was_assumed(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "f.db")
    store.open()
    sheds = simulate_site(5, 1)
    seed(store, sheds, now_ms(), OBSERVE_HOUR, temperature_forecast=False, sensors=False)
    service = ForecastService(store, settings_for(tmp_path, forecast_observe_hour=OBSERVE_HOUR), FitCache())
    result = service.shed("shed-1", now_ms())
    assert result.temperature_source == "none" and "20 °C assumed" in result.explanation
    store.close()


def test_fits_are_cached_per_day_and_base_morning(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "f.db")
    store.open()
    seed(store, simulate_site(5, 1), now_ms(), OBSERVE_HOUR)
    cache = FitCache()
    settings = settings_for(tmp_path, forecast_observe_hour=OBSERVE_HOUR)
    first = ForecastService(store, settings, cache).shed("shed-1", now_ms())
    again = ForecastService(store, settings, cache).shed("shed-1", now_ms())
    assert again.model is first.model  # same day, same morning: no refit
    tomorrow = ForecastService(store, settings, cache).shed("shed-1", now_ms() + 86_400_000)
    assert tomorrow.model is not first.model  # a new day refits
    store.close()


def test_a_count_after_todays_harvest_lowers_tomorrow(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "f.db")
    store.open()
    (shed,) = simulate_site(9, 1)
    seed(store, [shed], now_ms(), OBSERVE_HOUR)
    settings = settings_for(tmp_path, forecast_observe_hour=OBSERVE_HOUR)
    before = ForecastService(store, settings, FitCache()).shed("shed-1", now_ms())
    picked = dict(shed.counts[-1], ripe=2)  # the afternoon sweep after picking
    store.write_events([count_event("shed-1", 999, now_ms() - 1000, picked)], now_ms())
    after = ForecastService(store, settings, FitCache()).shed("shed-1", now_ms())
    assert after.base_ready == 2 and after.base_ts_ms > before.base_ts_ms
    earlier = {d.date: d.ready for d in before.days}
    common = [d for d in after.days if d.date in earlier]  # all three, or two before 08:00 UTC
    assert len(common) >= 2
    assert all(d.ready < earlier[d.date] - shed.counts[-1]["ripe"] // 2 for d in common)
    store.close()
