"""Device online/offline from the retained status and from the broker-published LWT."""

from __future__ import annotations

from pathlib import Path

from fieldline.contract import status_topic
from tests.cloud_api.cloudapi_builders import SITE, T0, ApiServer, Publisher, settings_for, status_payload, wait_until
from tests.support.mosquitto import MosquittoBroker


def device_state(api: ApiServer, device: str = "edge-1") -> str | None:
    states = {d["device"]: d["state"] for d in api.get("/devices")}
    return states.get(device)


def test_retained_status_then_lwt_offline(tmp_path: Path, broker: MosquittoBroker) -> None:
    topic = status_topic(SITE, "edge-1")
    # the edge connects with its LWT and publishes "online" retained *before* the API exists
    edge = Publisher(broker, will=(topic, status_payload("offline", boot=3, ts_ms=T0)))
    edge.status(status_payload("online", boot=3, ts_ms=T0 + 1))

    with ApiServer(settings_for(tmp_path, broker)) as api:
        wait_until(lambda: device_state(api) == "online", 10, "the retained online status")
        (device,) = api.get("/devices")
        assert device["boot"] == 3 and device["agent_version"] == "0.1.0"
        assert device["cameras"][0]["zone"]["id"] == "shed-1"

        edge.drop_connection()  # no DISCONNECT: Mosquitto publishes the will (retained offline)
        wait_until(lambda: device_state(api) == "offline", 10, "the LWT offline status")

        # a late offline from an older boot must not override a newer online
        with Publisher(broker) as other:
            other.status(status_payload("online", boot=4, ts_ms=T0 + 10))
            wait_until(lambda: device_state(api) == "online", 10, "boot 4 online")
            other.status(status_payload("offline", boot=3, ts_ms=T0 + 20))
            wait_until(lambda: api.worker.counters().ignored == 1, 10, "the stale status to be ignored")
            assert device_state(api) == "online"


def test_status_for_another_device_is_dead_lettered(tmp_path: Path, broker: MosquittoBroker) -> None:
    with ApiServer(settings_for(tmp_path, broker)) as api, Publisher(broker) as edge:
        assert api.worker.wait_connected(10)
        edge.publish(status_topic(SITE, "edge-2"), status_payload("online", device="edge-1"))
        wait_until(lambda: api.worker.counters().dead_letters == 1, 10, "a dead letter")
        assert "payload says 'edge-1'" in api.get("/dead-letters")[0]["reason"]
        assert api.get("/devices") == []
