"""Climate telemetry end to end: sensor payload styles through real Mosquitto into SQLite, REST and alerts."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from typing import Any

import pytest

from cloud_api.core.config import ClimateSensor
from cloud_api.ingest.climate_adapters import SensorMap
from cloud_api.ingest.messages import DeadLetterItem, IgnoredItem, MessageClassifier, TelemetryItem
from cloud_api.core.config import Settings
from cloud_api.services.climate import (
    AUTO_CLEARED_BY,
    ClimateLimits,
    ThresholdAlerts,
    limits_from,
    silent_alerts,
    store_clearer,
)
from cloud_api.storage.records import AlertQuery
from cloud_api.storage.sqlite_store import SqliteStore
from fieldline.contract import ContractError, Telemetry, parse_topic, telemetry_topic
from tests.cloud_api.cloudapi_builders import SITE, T0, ApiServer, Publisher, settings_for, wait_until
from tests.support.mosquitto import MosquittoBroker

HA = ClimateSensor(topic="homeassistant/sensor/shed1_temp/state", style="home_assistant", site=SITE, shed="shed-1",
                   sensor="ha-shed1-temp", quantity="temperature")
HA_F = ClimateSensor(topic="ha/shed3/temp", style="home_assistant", site=SITE, shed="shed-3", quantity="temperature",
                     value_key="temp", unit="°F")
ESP = ClimateSensor(topic="greenhouse-node/sensor/shed_2_humidity/state", style="esphome", site=SITE, shed="shed-2",
                    quantity="humidity")
Z2M = ClimateSensor(topic="zigbee2mqtt/shed2-th", style="zigbee2mqtt", site=SITE, shed="shed-2", sensor="z2m-shed2")


def reading(value: float, *, ts_ms: int = T0, unit: str = "°C", shed: str = "shed-1", sensor: str = "t1",
            quantity: str = "temperature") -> Telemetry:
    return Telemetry(site=SITE, device="gw-1", sensor=sensor, shed=shed, quantity=quantity, value=value,
                     unit=unit, ts_ms=ts_ms)


# ------------------------------------------------------------ contract and adapters (no I/O)


def test_telemetry_topic_and_payload_round_trip_and_unknown_fields_are_ignored() -> None:
    topic = telemetry_topic(SITE, "gw-1")
    assert parse_topic(topic).kind == "telemetry"
    data = json.loads(reading(21.5).to_json()) | {"battery": 80}  # a newer minor may add fields
    item = MessageClassifier(1000).classify(topic, json.dumps(data).encode())
    assert isinstance(item, TelemetryItem) and item.readings[0].value == 21.5


def test_telemetry_with_a_wrong_unit_or_origin_is_dead_lettered_with_the_field_named() -> None:
    classifier = MessageClassifier(1000)
    bad_unit = json.loads(reading(21.5).to_json()) | {"unit": "%"}
    item = classifier.classify(telemetry_topic(SITE, "gw-1"), json.dumps(bad_unit).encode())
    assert isinstance(item, DeadLetterItem) and "unit" in item.reason
    item = classifier.classify(telemetry_topic(SITE, "gw-2"), reading(21.5).to_json())
    assert isinstance(item, DeadLetterItem) and item.reason.startswith("device:")


def test_fahrenheit_and_kelvin_are_stored_in_celsius() -> None:
    assert reading(77.0, unit="°F").canonical_value() == pytest.approx(25.0)
    assert reading(298.15, unit="K").canonical_value() == pytest.approx(25.0)


def test_adapters_read_each_stack_style() -> None:
    sensors = SensorMap([HA, HA_F, ESP, Z2M])
    (ha,) = sensors.adapt(HA.topic, b"23.4", T0)
    assert (ha.shed, ha.sensor, ha.quantity, ha.value, ha.unit, ha.ts_ms) == ("shed-1", "ha-shed1-temp", "temperature",
                                                                               23.4, "°C", T0)
    state_object = json.dumps({"state": "71.6", "attributes": {"unit_of_measurement": "°F"}}).encode()
    (ha2,) = sensors.adapt(HA.topic, state_object, T0)
    assert ha2.canonical_value() == pytest.approx(22.0)
    (keyed,) = sensors.adapt(HA_F.topic, b'{"temp": 86, "rssi": -60}', T0)
    assert keyed.canonical_value() == pytest.approx(30.0) and keyed.sensor == HA_F.topic
    (esp,) = sensors.adapt(ESP.topic, b"61.50", T0)
    assert (esp.quantity, esp.value, esp.unit) == ("humidity", 61.5, "%")
    z2m = sensors.adapt(Z2M.topic, b'{"temperature": 19.8, "humidity": 70.1, "battery": 97, "linkquality": 120,'
                                   b' "last_seen": 1700000000123}', T0)
    assert [(r.quantity, r.value, r.ts_ms) for r in z2m] == [("temperature", 19.8, 1_700_000_000_123),
                                                            ("humidity", 70.1, 1_700_000_000_123)]


def test_adapters_skip_missing_values_and_reject_garbage_with_reasons() -> None:
    sensors = SensorMap([HA, ESP, Z2M])
    assert sensors.adapt(ESP.topic, b"nan", T0) == []
    assert sensors.adapt(HA.topic, b"unavailable", T0) == []
    with pytest.raises(ContractError, match="expected a number"):
        sensors.adapt(HA.topic, b"warm", T0)
    with pytest.raises(ContractError, match="neither temperature nor humidity"):
        sensors.adapt(Z2M.topic, b'{"battery": 90}', T0)
    classifier = MessageClassifier(1000, sensors)
    assert isinstance(classifier.classify(ESP.topic, b"nan"), IgnoredItem)
    dead = classifier.classify(Z2M.topic, b"[1, 2]")
    assert isinstance(dead, DeadLetterItem) and "JSON object" in dead.reason


def test_a_topic_mapped_twice_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="mapped twice"):
        SensorMap([HA, HA])


def test_threshold_alerts_fire_once_per_repeat_window_and_only_outside_the_limits() -> None:
    alerts = ThresholdAlerts(ClimateLimits(too_hot_c=32, too_cold_c=8), repeat_ms=600_000)
    assert alerts.check([reading(25.0), reading(31.9, ts_ms=T0 + 1)]) == []
    (hot,) = alerts.check([reading(33.0, ts_ms=T0 + 2), reading(34.0, ts_ms=T0 + 60_000)])
    assert (hot.code, hot.severity, hot.zone.id if hot.zone else None) == ("too_hot", "warning", "shed-1")
    assert "33.0 °C" in hot.message
    (again,) = alerts.check([reading(40.0, ts_ms=T0 + 700_000)])
    assert again.severity == "critical" and again.dedup_key == hot.dedup_key
    (cold,) = alerts.check([reading(39.2, unit="°F", ts_ms=T0)])  # 4 °C
    assert cold.code == "too_cold"


def test_humidity_limits_per_site_and_shed_and_alerts_clear_with_hysteresis(tmp_path: Path, store: Any) -> None:
    """The alerts go through the store under test (SQLite and PostgreSQL)."""
    settings = Settings(data_dir=tmp_path, climate_too_humid_pct=95, climate_too_dry_pct=30,
                        climate_limits_by_site={SITE: {"too_humid_pct": 90}},
                        climate_limits_by_shed={"shed-2": {"too_humid_pct": 85, "too_hot_c": 28}})
    limits = limits_from(settings)
    assert (limits(SITE, "shed-1").too_humid_pct, limits(SITE, "shed-2").too_humid_pct) == (90, 85)
    assert (limits("other", "shed-1").too_humid_pct, limits(SITE, "shed-2").too_dry_pct) == (95, 30)
    checker = ThresholdAlerts(limits, clear=store_clearer(store))

    def check(*readings: Telemetry) -> list[str]:
        alerts = checker.check(readings)
        store.write_alerts(alerts, T0)
        return [a.code for a in alerts]

    def open_codes() -> list[str]:
        return sorted(a.code for a in store.list_alerts(AlertQuery(limit=100)) if a.state != "cleared")

    rh = "humidity"
    assert check(reading(88, quantity=rh, unit="%")) == []  # under the site's 90 %
    assert check(reading(88, quantity=rh, unit="%", shed="shed-2", sensor="t2", ts_ms=T0 + 1)) == ["too_humid"]
    assert check(reading(29, shed="shed-2", sensor="t2", ts_ms=T0 + 2)) == ["too_hot"]
    assert check(reading(25, quantity=rh, unit="%", sensor="t3", ts_ms=T0 + 3)) == ["too_dry"]
    assert open_codes() == ["too_dry", "too_hot", "too_humid"]
    # back under the limit but inside the hysteresis (3 % RH, 1 °C): nothing clears, nothing new opens
    assert check(reading(83, quantity=rh, unit="%", shed="shed-2", sensor="t2", ts_ms=T0 + 10),
                 reading(27.5, shed="shed-2", sensor="t2", ts_ms=T0 + 11)) == []
    assert open_codes() == ["too_dry", "too_hot", "too_humid"]
    assert check(reading(81.9, quantity=rh, unit="%", shed="shed-2", sensor="t2", ts_ms=T0 + 20),
                 reading(26.9, shed="shed-2", sensor="t2", ts_ms=T0 + 21)) == []
    assert open_codes() == ["too_dry"]
    cleared = [a for a in store.list_alerts(AlertQuery(state="cleared", limit=100))]
    assert {(a.code, a.cleared_by, a.cleared_ms) for a in cleared} == {("too_humid", AUTO_CLEARED_BY, T0 + 21),
                                                                       ("too_hot", AUTO_CLEARED_BY, T0 + 21)}
    # a new excursion right after the clear opens a new alert at once (no repeat window left over)
    assert check(reading(30, shed="shed-2", sensor="t2", ts_ms=T0 + 30)) == ["too_hot"]
    assert open_codes() == ["too_dry", "too_hot"]
    store.close()


# ------------------------------------------------------------ store


def test_store_dedups_readings_and_buckets_the_series(store: Any) -> None:
    """SQLite and PostgreSQL (the ``store`` fixture)."""
    hour = 3_600_000
    readings = [reading(20.0 + i, ts_ms=T0 + i * 600_000) for i in range(12)]  # two hours, every 10 min
    assert store.write_telemetry(readings, T0) == 12
    assert store.write_telemetry(readings[:3], T0) == 0
    start = T0 // hour * hour
    buckets = store.climate_series("shed-1", "temperature", start, start + 3 * hour, hour)
    assert sum(b.n for b in buckets) == 12
    assert buckets[0].low == 20.0 and buckets[-1].high == 31.0
    (sensor,) = store.climate_sensors("shed-1")
    assert (sensor.last_value, sensor.last_ts_ms) == (31.0, T0 + 11 * 600_000)
    assert silent_alerts([sensor], sensor.last_received_ms + 1_799_999, 1_800_000) == []
    (silent,) = silent_alerts([sensor], sensor.last_received_ms + 1_800_000, 1_800_000)
    assert silent.code == "sensor_silent" and "silent for 30 min" in silent.message
    store.close()


# ------------------------------------------------------------ real broker, real API


def test_two_sensor_styles_and_fieldline_telemetry_arrive_through_mosquitto(tmp_path: Path,
                                                                             broker: MosquittoBroker) -> None:
    settings = settings_for(tmp_path, broker, climate_sensors=[HA, ESP, Z2M], climate_too_hot_c=30.0,
                            climate_silent_after_s=2.0, climate_check_interval_s=0.2)
    with ApiServer(settings) as api, Publisher(broker) as pub:
        assert api.worker.wait_connected(10)
        pub.publish(HA.topic, b"22.5")
        pub.publish(Z2M.topic, json.dumps({"temperature": 31.5, "humidity": 64.0, "battery": 90}))
        pub.publish(ESP.topic, b"58.25")
        now = time.time_ns() // 1_000_000
        own = Telemetry(site=SITE, device="edge-1", sensor="probe-1", shed="shed-1", quantity="temperature",
                        value=23.5, unit="°C", ts_ms=now)
        pub.publish(telemetry_topic(SITE, "edge-1"), own.to_json())
        api.worker.flush()
        shed1 = wait_until(lambda: (d := api.get("/sheds/shed-1/climate")) and len(d["sensors"]) == 2 and d,
                           what="both shed-1 sensors")
        assert sorted(s["sensor"] for s in shed1["sensors"]) == ["ha-shed1-temp", "probe-1"]
        assert sum(p["n"] for p in shed1["temperature"]) == 2
        assert {p["low"] for p in shed1["temperature"]} | {p["high"] for p in shed1["temperature"]} >= {22.5, 23.5}
        shed2 = api.get("/sheds/shed-2/climate")
        assert [p["mean"] for p in shed2["temperature"]] == [31.5]
        assert [(p["low"], p["high"], p["n"]) for p in shed2["humidity"]] == [(58.25, 64.0, 2)]
        alerts = api.get("/alerts", state="active")
        hot = [a for a in alerts if a["code"] == "too_hot"]
        assert len(hot) == 1 and hot[0]["zone_id"] == "shed-2"
        # nothing more arrives: every sensor falls silent and each gets one sensor_silent alert
        silent = wait_until(lambda: len([a for a in api.get("/alerts", state="active")
                                         if a["code"] == "sensor_silent"]) == 5, 10, "5 sensor_silent alerts")
        assert silent
        time.sleep(0.5)  # further checks during the same silence add nothing
        store: SqliteStore = api.server.config.app.state.store
        assert all(a.count == 1 for a in store.list_alerts(AlertQuery(limit=100)) if a.code == "sensor_silent")
        assert api.anon.get("/sheds/shed-1/climate").status_code == 401
        assert api.client.get("/sheds/nowhere/climate").status_code == 404


def test_climate_alerts_clear_themselves_through_mosquitto(tmp_path: Path, broker: MosquittoBroker) -> None:
    settings = settings_for(tmp_path, broker, climate_sensors=[HA, Z2M], climate_too_hot_c=30.0,
                            climate_limits_by_shed={"shed-2": {"too_humid_pct": 90}},
                            climate_silent_after_s=2.0, climate_check_interval_s=0.2)

    def open_alerts(api: ApiServer) -> list[tuple[str, str]]:
        return sorted((a["code"], a["zone_id"]) for a in api.get("/alerts") if a["state"] != "cleared")

    with ApiServer(settings) as api, Publisher(broker) as pub:
        assert api.worker.wait_connected(10)
        pub.publish(HA.topic, b"31.0")
        pub.publish(Z2M.topic, json.dumps({"temperature": 22.0, "humidity": 93.0}))
        wait_until(lambda: open_alerts(api) == [("too_hot", "shed-1"), ("too_humid", "shed-2")], 10, "two alerts")
        pub.publish(HA.topic, b"29.5")  # below 30 but inside the 1 °C hysteresis: the alert stays
        pub.publish(Z2M.topic, json.dumps({"temperature": 22.0, "humidity": 88.0}))  # inside the 3 % RH one
        api.worker.flush()
        wait_until(lambda: len(api.get("/sheds/shed-2/climate")["humidity"]) >= 1, what="shed-2 humidity")
        silent = wait_until(lambda: len(s := [a for a in open_alerts(api) if a[0] == "sensor_silent"]) == 3 and s,
                            10, "three silent sensors")
        assert silent == [("sensor_silent", "shed-1"), ("sensor_silent", "shed-2"),
                                  ("sensor_silent", "shed-2")]
        assert ("too_hot", "shed-1") in open_alerts(api) and ("too_humid", "shed-2") in open_alerts(api)
        # the sensors speak again, well inside their bands: every alert clears itself
        pub.publish(HA.topic, b"28.5")
        pub.publish(Z2M.topic, json.dumps({"temperature": 21.0, "humidity": 70.0}))
        wait_until(lambda: open_alerts(api) == [], 10, "every climate alert cleared")
        cleared = api.get("/alerts", state="cleared")
        assert {a["code"] for a in cleared} == {"too_hot", "too_humid", "sensor_silent"} and len(cleared) == 5
        store: SqliteStore = api.server.config.app.state.store
        assert {a.cleared_by for a in store.list_alerts(AlertQuery(state="cleared"))} == {AUTO_CLEARED_BY}


def test_the_climate_methods_of_the_store_protocol_on_every_store(store: Any) -> None:
    """SQLite and PostgreSQL answer the protocol's climate methods alike."""
    hour = 3_600_000
    start = T0 // hour * hour
    readings = [reading(20.0 + i, ts_ms=start + i * 1_200_000) for i in range(6)]  # two hours, every 20 min
    readings.append(reading(60.0, ts_ms=start, quantity="humidity", unit="%", sensor="h1"))
    assert store.write_telemetry(readings, start) == 7
    assert store.write_telemetry(readings[:2], start) == 0
    series = store.climate_series("shed-1", "temperature", start, start + 3 * hour, hour)
    assert [(b.ts_ms, b.mean, b.low, b.high, b.n) for b in series] == [(start, 21.0, 20.0, 22.0, 3),
                                                                      (start + hour, 24.0, 23.0, 25.0, 3)]
    assert [b.mean for b in store.climate_series("shed-1", "humidity", start, start + hour, hour)] == [60.0]
    assert {(s.sensor, s.quantity, s.last_value) for s in store.climate_sensors("shed-1")} == {
        ("t1", "temperature", 25.0), ("h1", "humidity", 60.0)}
    assert store.climate_sheds() == {"shed-1": SITE}
    store.put_temperature_forecast(SITE, "", [(start + 5 * hour, 18.0), (start + 6 * hour, 19.0)], start)
    assert store.temperature_forecast(SITE, "shed-1", start, start + 7 * hour) == [(start + 5 * hour, 18.0),
                                                                                   (start + 6 * hour, 19.0)]
