"""The demo's climate sensors: the simulator's weather, two payload styles through real Mosquitto into the API."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from cloud_api.core.config import Settings
from fieldline.demo_climate import (
    CLIMATE_DEVICE,
    HOUR_MS,
    ClimateFeed,
    DemoClimate,
    demo_climate_sensors,
    put_forecasts,
)
from fieldline.greenhouse_weather import shed_humidity, shed_temperatures, site_weather
from tests.cloud_api.cloudapi_builders import SITE, TOKEN, ApiServer, count_event, settings_for, wait_until
from tests.cloud_api.conftest import broker  # noqa: F401 - the real Mosquitto fixture
from tests.support.mosquitto import MosquittoBroker


def test_demo_climate_is_the_simulators_weather_and_stays_inside_the_default_limits() -> None:
    now = 1_796_000_000_000
    climate = DemoClimate("demo-greenhouse", 24, now)
    rng = np.random.default_rng(9)
    daily = site_weather(rng, 8 + 1 + 4, 21.0)
    first = shed_temperatures(rng, daily)
    assert np.array_equal(climate.temps[0], first) and climate.temps[0].size == 13 * 24
    assert climate.start_ms <= now - 8 * 24 * HOUR_MS and (now - climate.start_ms) < 9 * 24 * HOUR_MS
    temps, humidity = np.concatenate(climate.temps), np.concatenate(climate.humidity)
    limits = Settings().climate_band("demo-greenhouse", "shed-01")
    assert limits.too_cold_c < temps.min() < temps.max() < limits.too_hot_c  # type: ignore[operator]
    assert limits.too_dry_pct < humidity.min() < humidity.max() < limits.too_humid_pct  # type: ignore[operator]
    # warmer hours are drier: humidity follows the day/night cycle the other way round
    assert np.corrcoef(temps, humidity)[0, 1] < -0.5
    assert shed_humidity(np.random.default_rng(1), first).shape == first.shape
    hour = climate.start_ms + 30 * HOUR_MS
    assert climate.at(1, hour) == (climate.temps[0][30], climate.humidity[0][30])


def test_demo_sheds_publish_climate_in_two_styles_and_the_forecast_uses_it(
        tmp_path: Path, broker: MosquittoBroker) -> None:  # noqa: F811 - the fixture imported above
    sheds = 3
    settings = settings_for(tmp_path, broker, climate_sensors=demo_climate_sensors(SITE, sheds))
    now = time.time_ns() // 1_000_000
    climate = DemoClimate(SITE, sheds, now, history_days=2)
    hours = (now - climate.start_ms - 1) // HOUR_MS + 1  # the hourly history before now
    stop = threading.Event()
    with ApiServer(settings) as api:
        assert api.worker.wait_connected(10)
        store = api.server.config.app.state.store
        store.write_events([count_event(f"shed-0{n}", now - 60_000, {"green": 40, "half_ripe": 12, "ripe": 9},
                                        seq=n) for n in range(1, sheds + 1)], now)
        feed = ClimateFeed(climate, broker.host, broker.port, period_s=0.5)
        thread = feed.start(stop)
        try:
            assert feed.history_done.wait(30)

            def series(shed: str) -> dict | None:
                found = api.get(f"/sheds/{shed}/climate", days=4)
                return found if sum(p["n"] for p in found["humidity"]) > hours else None

            for n in range(1, sheds + 1):
                data = wait_until(lambda n=n: series(f"shed-0{n}"), 20, f"shed-0{n}'s history and a live reading")
                (sensor,) = {(s["sensor"], s["device"]) for s in data["sensors"]}
                assert sensor[0] == ("z2m-shed-02" if n == 2 else f"probe-shed-0{n}")
                assert (sensor[1] == CLIMATE_DEVICE) == (n != 2)
                first = data["temperature"][0]
                assert first["ts_ms"] <= climate.start_ms + HOUR_MS
                by_hour = {p["ts_ms"]: p for p in data["temperature"]}
                hour = climate.start_ms + 5 * HOUR_MS
                bucket = next(p for ts, p in by_hour.items() if ts <= hour < ts + HOUR_MS)
                assert bucket["low"] <= round(climate.at(n, hour)[0], 2) <= bucket["high"]
            assert put_forecasts(climate, api.root, TOKEN, now) == sheds
            forecast = api.get("/sheds/shed-02/forecast")
            assert forecast["temperature_source"] == "forecast"
            assert api.get("/sheds/shed-03/forecast")["temperature_source"] == "forecast"
        finally:
            stop.set()
            thread.join(10)
    assert not thread.is_alive()
