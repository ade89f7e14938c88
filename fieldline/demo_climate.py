"""Climate sensors for ``fieldline demo``: every shed publishes temperature and humidity over MQTT.

The values follow :mod:`fieldline.greenhouse_weather` (the weather the forecast tests' simulated sheds ripen
by) on the real clock: a day/night cycle peaking at 14:00 local time, fronts, sheds that run hot. Two payload
styles, as on a real site:

* odd sheds carry a FieldLine probe: ``Telemetry`` messages (one per quantity) from the climate gateway
  device ``CLIMATE_DEVICE`` on its ``telemetry`` topic;
* even sheds carry a Zigbee2MQTT sensor: ``zigbee2mqtt/<shed>-th`` with ``{"temperature", "humidity",
  "battery", "linkquality", "last_seen"}``, mapped to its shed by the API's ``climate_sensors``
  (``demo_climate_sensors``).

On start the feed first publishes ``history_days`` of hourly readings (both styles carry their time: the
contract's ``ts_ms``, Zigbee2MQTT's ``last_seen`` in epoch ms), so the 7-day chart and the forecast's thermal
time have a real series from the first minute; then it publishes the current readings every ``period_s``.
``forecast_points`` gives the coming days of a shed's pattern (with a forecast error) for
``PUT /climate/temperature-forecast``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import numpy as np
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cloud_api.core.config import ClimateSensor
from fieldline.contract import Telemetry, telemetry_topic
from fieldline.greenhouse_weather import shed_humidity, shed_temperatures, site_weather

log = logging.getLogger(__name__)
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
CLIMATE_DEVICE = "gh-climate"
MEAN_C = 21.0


def shed_name(n: int) -> str:
    return f"shed-{n:02d}"


def style_of(n: int) -> str:
    """The payload style of shed ``n`` (1-based): FieldLine telemetry on odd sheds, Zigbee2MQTT on even."""
    return "zigbee2mqtt" if n % 2 == 0 else "fieldline"


def z2m_topic(n: int) -> str:
    return f"zigbee2mqtt/{shed_name(n)}-th"


def demo_climate_sensors(site: str, sheds: int) -> list[ClimateSensor]:
    """The API's sensor-to-shed map of the demo: one Zigbee2MQTT sensor in every even shed."""
    return [ClimateSensor(topic=z2m_topic(n), style="zigbee2mqtt", site=site, shed=shed_name(n),
                          sensor=f"z2m-{shed_name(n)}") for n in range(1, sheds + 1) if style_of(n) == "zigbee2mqtt"]


class DemoClimate:
    """Hourly temperature and humidity of every shed from ``history_days`` before today to ``ahead_days`` after.

    The default seed keeps the default demo's 24 sheds inside the API's default climate limits, so the demo's
    alerts stay those of its cameras.
    """

    def __init__(self, site: str, sheds: int, now_ms: int, timezone: str = "UTC", seed: int = 9,
                 history_days: int = 8, ahead_days: int = 4) -> None:
        if sheds < 1 or history_days < 0 or ahead_days < 1:
            raise ValueError(f"DemoClimate needs sheds >= 1, history_days >= 0, ahead_days >= 1: "
                             f"{sheds}, {history_days}, {ahead_days}")
        self.site, self.sheds, self.history_days = site, sheds, history_days
        today = datetime.fromtimestamp(now_ms / 1000, ZoneInfo(timezone)).replace(hour=0, minute=0, second=0,
                                                                                microsecond=0)
        self.start_ms = int((today - timedelta(days=history_days)).timestamp() * 1000)
        rng = np.random.default_rng(seed)
        daily = site_weather(rng, history_days + 1 + ahead_days, MEAN_C)
        self.temps = [shed_temperatures(rng, daily) for _ in range(sheds)]
        self.humidity = [shed_humidity(rng, t) for t in self.temps]
        self._rng = np.random.default_rng(seed + 1)

    @property
    def end_ms(self) -> int:
        return self.start_ms + self.temps[0].size * HOUR_MS

    def at(self, n: int, ts_ms: int) -> tuple[float, float]:
        """(°C, % RH) of shed ``n`` (1-based) at ``ts_ms``, interpolated between the hours."""
        h = min(max((ts_ms - self.start_ms) / HOUR_MS, 0.0), self.temps[0].size - 1.0)
        i = min(int(h), self.temps[0].size - 2)
        w = h - i
        temps, rh = self.temps[n - 1], self.humidity[n - 1]
        return (float(temps[i] + w * (temps[i + 1] - temps[i])), float(rh[i] + w * (rh[i + 1] - rh[i])))

    def messages(self, n: int, ts_ms: int) -> list[tuple[str, bytes]]:
        """The MQTT messages (topic, payload) shed ``n``'s sensor publishes for its reading at ``ts_ms``."""
        temp, rh = self.at(n, ts_ms)
        temp, rh = round(temp, 2), round(rh, 1)
        if style_of(n) == "zigbee2mqtt":
            body = {"temperature": temp, "humidity": rh, "battery": 97, "linkquality": 120, "last_seen": ts_ms}
            return [(z2m_topic(n), json.dumps(body).encode())]
        topic = telemetry_topic(self.site, CLIMATE_DEVICE)
        return [(topic, Telemetry(site=self.site, device=CLIMATE_DEVICE, sensor=f"probe-{shed_name(n)}",
                                  shed=shed_name(n), quantity=quantity, value=value, unit=unit,
                                  ts_ms=ts_ms).to_json())
                for quantity, value, unit in (("temperature", temp, "°C"), ("humidity", rh, "%"))]

    def history(self, now_ms: int, step_ms: int = HOUR_MS) -> Iterator[list[tuple[str, bytes]]]:
        """Every shed's readings from the start of the series up to (not including) ``now_ms``, one list per step."""
        ts = self.start_ms
        while ts < now_ms:
            yield [message for n in range(1, self.sheds + 1) for message in self.messages(n, ts)]
            ts += step_ms

    def forecast_points(self, n: int, now_ms: int, days: int = 3, error_c: float = 1.0) -> list[tuple[int, float]]:
        """Hourly (ts_ms, °C) for shed ``n`` over the next ``days``: its pattern plus a per-day forecast error."""
        first = (now_ms // HOUR_MS + 1) * HOUR_MS
        last = min(first + days * DAY_MS, self.end_ms - HOUR_MS)
        errors = self._rng.normal(0.0, error_c, days + 2)
        return [(ts, round(self.at(n, ts)[0] + float(errors[(ts - first) // DAY_MS]), 2))
                for ts in range(first, last + 1, HOUR_MS)]


class ClimateFeed:
    """Publishes a ``DemoClimate`` to the broker: the history once, then the current readings every ``period_s``."""

    def __init__(self, climate: DemoClimate, host: str, port: int, period_s: float = 30.0,
                 pace_s: float = 0.02) -> None:
        if period_s <= 0 or pace_s < 0:
            raise ValueError(f"climate feed: period_s must be > 0 and pace_s >= 0, got {period_s}, {pace_s}")
        self.climate, self.host, self.port, self.period_s = climate, host, port, period_s
        self.pace_s = pace_s  # pause after each hour of history, so the broker and the API's ingest keep up
        self.published = 0
        self.history_done = threading.Event()
        self._thread: threading.Thread | None = None

    def run(self, stop: threading.Event) -> None:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"demo-climate-{uuid.uuid4().hex[:6]}")
        client.max_queued_messages_set(0)
        try:
            client.connect(self.host, self.port, keepalive=30)
        except OSError as exc:
            log.error("demo climate: cannot reach the broker at %s:%s: %s", self.host, self.port, exc)
            return
        client.loop_start()  # reconnects by itself if the broker drops the connection
        try:
            started = time.time_ns() // 1_000_000
            for step in self.climate.history(started):
                infos = [client.publish(topic, payload, qos=1) for topic, payload in step]
                self.published += len(infos)
                while not all(i.is_published() for i in infos) and not stop.is_set():  # acknowledged by the broker
                    stop.wait(0.01)
                if stop.wait(self.pace_s):
                    return
            self.history_done.set()
            log.info("demo climate: %d history messages of %d sheds published", self.published, self.climate.sheds)
            while not stop.is_set():
                now = time.time_ns() // 1_000_000
                for n in range(1, self.climate.sheds + 1):
                    for topic, payload in self.climate.messages(n, now):
                        client.publish(topic, payload, qos=1)
                        self.published += 1
                stop.wait(self.period_s)
        finally:
            client.disconnect()
            client.loop_stop()

    def start(self, stop: threading.Event) -> threading.Thread:
        self._thread = threading.Thread(target=self.run, args=(stop,), name="demo-climate", daemon=True)
        self._thread.start()
        return self._thread


def put_forecasts(climate: DemoClimate, api_url: str, token: str, now_ms: int) -> int:
    """Give the API every shed's temperature forecast for the next 3 days; returns how many sheds took it."""
    done = 0
    with httpx.Client(base_url=api_url, headers={"Authorization": f"Bearer {token}"}, timeout=15) as client:
        for n in range(1, climate.sheds + 1):
            points = [{"ts_ms": ts, "value_c": value} for ts, value in climate.forecast_points(n, now_ms)]
            try:
                reply = client.put("/api/v1/climate/temperature-forecast",
                                   json={"site": climate.site, "shed": shed_name(n), "points": points})
            except httpx.HTTPError as exc:
                log.warning("demo climate: forecast of %s not given: %s", shed_name(n), exc)
                continue
            if reply.status_code != 200:
                log.warning("demo climate: forecast of %s refused: %s %s", shed_name(n), reply.status_code,
                            reply.text[:200])
                continue
            done += 1
    return done
