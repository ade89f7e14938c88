"""Builders and small harnesses for the cloud API tests (real broker, real SQLite, real HTTP)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from cloud_api.core.config import Settings
from cloud_api.ingest.worker import IngestWorker
from cloud_api.serve import build_server
from fieldline.contract import Alert, DeviceStatus, Event, events_topic, status_topic
from tests.support.mosquitto import MosquittoBroker, free_port

TOKEN = "test-token"
SITE = "site-a"
T0 = 1_700_000_040_000  # a multiple of 60 000: bucket boundaries are easy to read


def settings_for(tmp_path: Path, broker: MosquittoBroker | None = None, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "api_tokens": [TOKEN],
        "ingest_enabled": broker is not None,
        "mqtt_client_id": f"api-{uuid.uuid4().hex[:8]}",
        "mqtt_reconnect_min_s": 0.2,
        "mqtt_reconnect_max_s": 1.0,
    }
    if broker is not None:
        values.update(mqtt_host=broker.host, mqtt_port=broker.port)
    values.update(overrides)
    return Settings(**values)


def event_payload(**overrides: Any) -> dict[str, Any]:
    """A contract-valid count event as a JSON-ready dict; keyword arguments replace top-level fields."""
    seq = overrides.pop("seq", 1)
    device = overrides.pop("device", "edge-1")
    payload: dict[str, Any] = {
        "schema": "fieldline.event/1",
        "id": f"{device}-0-{seq}",
        "device": device,
        "site": SITE,
        "camera": "cam-1",
        "boot": 0,
        "seq": seq,
        "ts_ms": T0,
        "zone": {"kind": "shed", "id": "shed-1", "row": "r1"},
        "kind": "count",
        "model": {"name": "tomato-ripeness", "version": "1.0", "sha256": "ab" * 32},
        "detections": [{"label": "ripe", "score": 0.9, "box": [0.1, 0.1, 0.2, 0.2], "track": None}],
        "counts": {"ripe": 1},
        "verdict": None,
        "track_state": None,
        "historical": False,
        "snapshot": None,
    }
    payload.update(overrides)
    return payload


def count_event(
    shed: str, ts_ms: int, counts: dict[str, int], *, device: str = "edge-1", camera: str = "cam-1",
    row: str | None = "r1", seq: int = 1, boot: int = 0,
) -> Event:
    return Event.model_validate(
        event_payload(
            id=f"{device}-{boot}-{seq}", device=device, seq=seq, boot=boot, camera=camera, ts_ms=ts_ms,
            zone={"kind": "shed", "id": shed, "row": row}, counts=counts,
        )
    )


def status_payload(state: str = "online", *, device: str = "edge-1", boot: int = 1, ts_ms: int = T0) -> bytes:
    return json.dumps({
        "state": state, "device": device, "site": SITE, "boot": boot, "ts_ms": ts_ms,
        "agent_version": "0.1.0", "model": None,
        "cameras": [{"name": "cam-1", "zone": {"kind": "shed", "id": "shed-1", "row": None}}],
        "config_hash": "c0ffee",
    }).encode()


SHED_V1_FIELDS = ("id", "name", "counts", "updated_ms")


def shed_v1(sheds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The fields /sheds items had before the overview fields were added (the rest is tested separately)."""
    return [{k: s[k] for k in SHED_V1_FIELDS} for s in sheds]


def wait_until(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


class Publisher:
    """A paho client publishing like an edge device would (QoS1, optional LWT)."""

    def __init__(self, broker: MosquittoBroker, *, will: tuple[str, bytes] | None = None, v5: bool = False) -> None:
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"pub-{uuid.uuid4().hex[:8]}",
            protocol=MQTTProtocolVersion.MQTTv5 if v5 else MQTTProtocolVersion.MQTTv311,
        )
        if will is not None:
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        self.client.connect(broker.host, broker.port, keepalive=10)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes | str, *, qos: int = 1, retain: bool = False) -> None:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(timeout=5)
        assert info.is_published(), f"publish to {topic} not acknowledged"

    def event(self, payload: dict[str, Any], *, site: str = SITE, device: str | None = None) -> None:
        self.publish(events_topic(site, device or payload["device"]), json.dumps(payload))

    def status(self, payload: bytes, *, device: str = "edge-1") -> None:
        self.publish(status_topic(SITE, device), payload, retain=True)

    def drop_connection(self) -> None:
        """Vanish without DISCONNECT, so the broker publishes the will."""
        self.client.loop_stop()
        sock = self.client.socket()
        if sock is not None:
            sock.close()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ApiServer:
    """The real app under uvicorn on a free port, with an authorised and an anonymous httpx client."""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        self.server = build_server(settings, "127.0.0.1", self.port, log_level="warning")
        self._thread = threading.Thread(target=self.server.run, name="test-uvicorn", daemon=True)
        self.root = f"http://127.0.0.1:{self.port}"
        base = f"{self.root}/api/v1"
        self.client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
        self.anon = httpx.Client(base_url=base, timeout=10)

    @property
    def worker(self) -> IngestWorker:
        worker = self.server.config.app.state.ingest
        assert worker is not None, "ingest is disabled in these settings"
        return worker

    def get(self, path: str, **params: Any) -> Any:
        response = self.client.get(path, params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def __enter__(self) -> ApiServer:
        self._thread.start()
        wait_until(lambda: self.server.started or not self._thread.is_alive(), 10, "uvicorn to start")
        assert self.server.started, "uvicorn did not start"
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.client.close()
        self.anon.close()
        self.server.should_exit = True
        self._thread.join(10)


# ---------------------------------------------------------------- users, alerts, statuses

PASSWORD = "correct horse battery"


def login(api: ApiServer, username: str, password: str = PASSWORD) -> httpx.Client:
    """An httpx client for /api/v1 carrying the bearer token of a fresh login."""
    response = api.anon.post("/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    return httpx.Client(base_url=f"{api.root}/api/v1", headers={"Authorization": f"Bearer {token}"}, timeout=10)


def alert(
    dedup_key: str = "overripe/shed-1", *, id: str | None = None, ts_ms: int = T0, severity: str = "warning",
    shed: str | None = "shed-1", code: str = "overripe", message: str = "overripe fruit", device: str = "edge-1",
) -> Alert:
    return Alert.model_validate({
        "id": id or f"{dedup_key}@{ts_ms}", "ts_ms": ts_ms, "device": device, "site": SITE,
        "zone": {"kind": "shed", "id": shed, "row": None} if shed else None,
        "severity": severity, "code": code, "message": message, "dedup_key": dedup_key,
    })


def device_status(
    state: str = "online", *, device: str = "edge-1", boot: int = 1, ts_ms: int = T0,
    cameras: dict[str, str] | None = None,
) -> DeviceStatus:
    """A status whose cameras map camera name -> shed id (default cam-1 -> shed-1)."""
    mapping = cameras if cameras is not None else {"cam-1": "shed-1"}
    return DeviceStatus.model_validate({
        "state": state, "device": device, "site": SITE, "boot": boot, "ts_ms": ts_ms, "agent_version": "0.1.0",
        "cameras": [{"name": name, "zone": {"kind": "shed", "id": shed}} for name, shed in mapping.items()],
    })
