"""Climate readings are mirrored to InfluxDB like counts (real VictoriaMetrics as the line-protocol server)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from cloud_api.core.config import ClimateSensor
from fieldline.contract import Telemetry, telemetry_topic
from tests.cloud_api.cloudapi_builders import SITE, ApiServer, Publisher, settings_for, wait_until
from tests.cloud_api.test_influx_timeseries import exported_points, series
from tests.support.mosquitto import MosquittoBroker
from tests.support.victoria import VictoriaMetrics

Z2M = ClimateSensor(topic="zigbee2mqtt/shed4-th", style="zigbee2mqtt", site=SITE, shed="shed-4", sensor="z2m-4")


@pytest.fixture
def vm() -> Iterator[VictoriaMetrics]:
    with VictoriaMetrics() as server:
        yield server


def test_readings_from_two_styles_reach_influx_once_in_celsius(tmp_path: Path, broker: MosquittoBroker,
                                                               vm: VictoriaMetrics) -> None:
    settings = settings_for(tmp_path, broker, climate_sensors=[Z2M], timeseries="influx", influx_url=vm.url,
                            influx_token="t", influx_flush_interval_s=0.1)
    t = time.time_ns() // 1_000_000 - 60_000
    own = Telemetry(site=SITE, device="edge-1", sensor="probe-9", shed="shed-4", quantity="temperature", value=77.0,
                    unit="°F", ts_ms=t)
    with ApiServer(settings) as api, Publisher(broker) as pub:
        assert api.worker.wait_connected(10)
        pub.publish(telemetry_topic(SITE, "edge-1"), own.to_json())
        pub.publish(telemetry_topic(SITE, "edge-1"), own.to_json())  # a duplicate: stored and mirrored once
        pub.publish(Z2M.topic, json.dumps({"temperature": 18.5, "humidity": 80, "linkquality": 40}))
        wait_until(lambda: api.worker.counters().received == 3, 10, "3 messages")
        api.worker.flush(10)
        assert api.server.config.app.state.timeseries.flush(10)
        points = wait_until(lambda: exported_points(vm, "climate_value") == 3 and series(vm, "climate_value"), 10,
                            "3 climate points")
    by_sensor = {dict(labels)["sensor"] + "/" + dict(labels)["quantity"]: values for labels, values in points.items()}
    assert by_sensor["probe-9/temperature"] == [(t, 25.0)]
    assert [v for _, v in by_sensor["z2m-4/temperature"]] == [18.5]
    assert [v for _, v in by_sensor["z2m-4/humidity"]] == [80.0]
    assert all(dict(labels)["shed"] == "shed-4" and dict(labels)["site"] == SITE for labels in points)
