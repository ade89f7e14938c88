"""Live updates: the pub/sub hub on its own, and /api/v1/ws fed by a real MQTT publish and a REST ack."""

from __future__ import annotations

import asyncio
import logging
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from starlette.websockets import WebSocketDisconnect

with warnings.catch_warnings():  # starlette's TestClient warns about httpx at import time
    warnings.simplefilter("ignore", UserWarning)  # StarletteDeprecationWarning is a UserWarning
    from fastapi.testclient import TestClient
    from starlette.testclient import WebSocketTestSession

from cloud_api.core.log_redaction import RedactQueryTokens
from cloud_api.main import create_app
from cloud_api.services.live import LiveHub
from fieldline.contract import alerts_topic, status_topic
from tests.cloud_api.cloudapi_builders import (
    SITE,
    T0,
    TOKEN,
    Publisher,
    alert,
    event_payload,
    settings_for,
    status_payload,
    wait_until,
)
from tests.support.mosquitto import MosquittoBroker

AUTH = {"Authorization": f"Bearer {TOKEN}"}  # /health's counters need a token


def test_hub_fans_out_across_threads_and_drops_oldest_for_laggards() -> None:
    async def scenario() -> tuple[list[Any], list[Any], Any]:
        hub = LiveHub(queue_size=2)
        hub.bind(asyncio.get_running_loop())
        reader, laggard = hub.subscribe(), hub.subscribe()
        read = []
        for i in range(5):
            await asyncio.to_thread(hub.publish, "count", {"n": i})  # from a foreign thread
            read.append(await asyncio.wait_for(reader.get(), 5))
        lagged = [await laggard.get(), await laggard.get()]
        hub.close()
        assert await laggard.get() is None  # end of stream after close
        return read, lagged, hub.counters()

    read, lagged, counters = asyncio.run(scenario())
    assert [m["data"]["n"] for m in read] == [0, 1, 2, 3, 4] and {m["dropped"] for m in read} == {0}
    assert read[0] == {"type": "count", "data": {"n": 0}, "dropped": 0}
    # the laggard's queue holds 2: the oldest three were dropped and counted
    assert [m["data"]["n"] for m in lagged] == [3, 4] and lagged[-1]["dropped"] == 3
    assert (counters.published, counters.dropped, counters.lost) == (5, 3, 0)


def next_message(ws: WebSocketTestSession, kind: str, timeout: float = 10.0) -> dict[str, Any]:
    """The next message of this type (others are skipped); fails after ``timeout`` instead of hanging."""
    with ThreadPoolExecutor(1) as pool:
        while True:
            message = pool.submit(ws.receive_json).result(timeout=timeout)
            if message["type"] == kind:
                return message


@pytest.fixture
def live_client(tmp_path: Path, broker: MosquittoBroker) -> Iterator[TestClient]:
    app = create_app(settings_for(tmp_path, broker))
    with TestClient(app) as client:
        assert app.state.ingest.wait_connected(10)
        yield client


@pytest.mark.timeout(60)
def test_ws_pushes_count_device_and_alert_changes(live_client: TestClient, broker: MosquittoBroker) -> None:
    with live_client.websocket_connect("/api/v1/ws") as ws, Publisher(broker) as edge:
        ws.send_json({"type": "auth", "token": TOKEN})  # the phone app's way: no header, no token in the URL
        assert ws.receive_json() == {"type": "auth", "ok": True, "username": "service", "role": "admin"}
        edge.event(event_payload(seq=5, counts={"ripe": 6}))
        count = next_message(ws, "count")
        assert count["data"]["id"] == "edge-1-0-5" and count["data"]["counts"] == {"ripe": 6}
        assert "detections" not in count["data"] and count["dropped"] == 0

        edge.status(status_payload("online", boot=2))
        device = next_message(ws, "device")
        assert (device["data"]["device"], device["data"]["state"], device["data"]["boot"]) == ("edge-1", "online", 2)

        edge.publish(alerts_topic(SITE, "edge-1"), alert("k1", ts_ms=T0).to_json())
        opened = next_message(ws, "alert")
        assert opened["data"]["change"] == "opened" and opened["data"]["state"] == "active"

        acked = live_client.post(f"/api/v1/alerts/{opened['data']['id']}/ack",
                                 headers={"Authorization": f"Bearer {TOKEN}"})
        assert acked.status_code == 200
        pushed = next_message(ws, "alert")
        assert pushed["data"]["change"] == "acknowledged" and pushed["data"]["id"] == opened["data"]["id"]
        assert pushed["data"]["acknowledged_by"] == "service"
        health = live_client.get("/api/v1/health", headers=AUTH).json()
        assert health["live"]["subscribers"] == 1 and health["live"]["dropped"] == 0
    wait_until(lambda: live_client.get("/api/v1/health", headers=AUTH).json()["live"]["subscribers"] == 0, 5,
               "unsubscribe")


@pytest.mark.timeout(60)
def test_ws_accepts_the_authorization_header_and_rejects_bad_tokens(live_client: TestClient, broker: MosquittoBroker) -> None:
    with live_client.websocket_connect("/api/v1/ws", headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
        with Publisher(broker) as edge:
            edge.publish(status_topic(SITE, "edge-7"), status_payload("offline", device="edge-7"), retain=True)
        assert next_message(ws, "device")["data"]["state"] == "offline"
    refusals = {
        "a wrong token in the first message": ("/api/v1/ws", {"type": "auth", "token": "wrong"}),
        "a first message that is not auth": ("/api/v1/ws", {"type": "hello"}),
        "a valid token in the URL": (f"/api/v1/ws?token={TOKEN}", None),
    }
    for what, (url, first) in refusals.items():
        with pytest.raises(WebSocketDisconnect) as closed, live_client.websocket_connect(url) as ws:
            if first is not None:
                ws.send_json(first)
            ws.receive_json()
        assert closed.value.code == 4401, what
        if "URL" in what:
            assert "tokens in the URL are refused" in closed.value.reason


@pytest.mark.timeout(60)
def test_ws_takes_a_pages_session_cookie_only_from_its_own_origin(live_client: TestClient, broker: MosquittoBroker) -> None:
    live_client.post("/api/v1/auth/users", headers=AUTH, json={"username": "wall", "password": "wall screen pw",
                                                               "role": "viewer"}).raise_for_status()
    signed = live_client.post("/api/v1/auth/session", json={"username": "wall", "password": "wall screen pw"})
    assert signed.status_code == 200 and "access_token" not in signed.json()
    cookie = {"Cookie": f"fieldline_session={signed.cookies['fieldline_session']}"}
    live_client.cookies.clear()  # sent explicitly below, with and without a matching Origin
    with live_client.websocket_connect("/api/v1/ws", headers={**cookie, "Origin": "http://testserver"}) as ws:
        with Publisher(broker) as edge:
            edge.publish(status_topic(SITE, "edge-8"), status_payload("offline", device="edge-8"), retain=True)
        assert next_message(ws, "device")["data"]["device"] == "edge-8"
    # cross-site WebSocket hijacking: another site's page opening the socket with the user's cookie
    with pytest.raises(WebSocketDisconnect) as closed, \
            live_client.websocket_connect("/api/v1/ws", headers={**cookie, "Origin": "http://evil.example"}) as ws:
        ws.send_json({"type": "hello"})
        ws.receive_json()
    assert closed.value.code == 4401


def test_ws_tokens_are_redacted_from_server_logs() -> None:
    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, '%s - "WebSocket %s" [accepted]',
                               ("127.0.0.1:5", "/api/v1/ws?token=s3cr3t&x=1"), None)
    RedactQueryTokens().filter(record)
    assert record.getMessage() == '127.0.0.1:5 - "WebSocket /api/v1/ws?token=<redacted>&x=1" [accepted]'


@pytest.mark.timeout(60)
def test_an_open_socket_closes_once_its_token_is_revoked(tmp_path: Path, broker: MosquittoBroker) -> None:
    app = create_app(settings_for(tmp_path, broker, ws_auth_recheck_s=0.3))
    with TestClient(app) as client:
        client.post("/api/v1/auth/users", headers=AUTH, json={"username": "phone", "password": "pocket phone pw",
                                                              "role": "viewer"}).raise_for_status()
        token = client.post("/api/v1/auth/login", json={"username": "phone", "password": "pocket phone pw"}).json()[
            "access_token"]
        with client.websocket_connect("/api/v1/ws") as ws:
            ws.send_json({"type": "auth", "token": token})
            assert ws.receive_json()["ok"] is True
            time.sleep(1.0)  # several re-checks pass while the token is valid: the socket stays open
            with Publisher(broker) as edge:
                edge.publish(status_topic(SITE, "edge-9"), status_payload("online", device="edge-9"))
            assert next_message(ws, "device")["data"]["device"] == "edge-9"
            # the phone is lost: its token is revoked (here by its own sign-out)
            assert client.post("/api/v1/auth/logout", headers={"Authorization": f"Bearer {token}"}).status_code == 204
            with pytest.raises(WebSocketDisconnect) as closed:
                next_message(ws, "never", timeout=10)
            assert closed.value.code == 4401 and "revoked" in closed.value.reason
