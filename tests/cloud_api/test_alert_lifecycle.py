"""Alert lifecycle: grouping by dedup key, active -> acknowledged -> cleared, 409/404, summary, filters."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cloud_api.storage.records import AlertQuery
from cloud_api.storage.sqlite_store import SqliteStore
from fieldline.contract import alerts_topic
from tests.cloud_api.cloudapi_builders import (
    PASSWORD,
    SITE,
    T0,
    ApiServer,
    Publisher,
    alert,
    login,
    settings_for,
    wait_until,
)
from tests.support.mosquitto import MosquittoBroker

ALL = AlertQuery(limit=1000)


@pytest.fixture
def store_and_api(tmp_path: Path, storage: dict[str, Any]) -> Iterator[tuple[SqliteStore, ApiServer]]:
    settings = settings_for(tmp_path, **storage)
    with ApiServer(settings) as api:
        yield api.server.config.app.state.store, api


def test_repeats_of_a_dedup_key_group_into_one_open_alert(store: Any) -> None:
    changes: list[tuple[str, str, int]] = []
    store.add_change_listener(lambda c: changes.append((c.kind, c.change, c.subject.count)))
    first = alert("k1", ts_ms=T0, message="first", severity="warning")
    assert store.write_alerts([first, alert("k1", ts_ms=T0 + 5, message="newest", severity="info")], T0) == 2
    assert store.write_alerts([alert("k1", ts_ms=T0 + 2, message="late", severity="critical"), first], T0) == 1
    (record,) = store.list_alerts(ALL)
    assert (record.count, record.ts_ms, record.last_ts_ms) == (3, T0, T0 + 5)
    assert record.message == "newest"  # the newest payload's message, even when a late one arrives after it
    assert record.severity == "critical"  # the highest severity seen
    assert record.state == "active" and record.zone_id == "shed-1"
    assert changes == [("alert", "opened", 1), ("alert", "repeated", 2), ("alert", "repeated", 3)]
    store.close()


def test_after_clear_the_same_key_opens_a_new_alert(store: Any) -> None:
    store.write_alerts([alert("k1", ts_ms=T0)], T0)
    (opened,) = store.list_alerts(ALL)
    store.transition_alert(opened.id, "acknowledged", ("active",), "olga", T0 + 1)
    store.write_alerts([alert("k1", ts_ms=T0 + 2)], T0)  # a repeat while acknowledged stays in it
    (acked,) = store.list_alerts(ALL)
    assert (acked.state, acked.count, acked.acknowledged_by, acked.acknowledged_ms) == ("acknowledged", 2, "olga", T0 + 1)
    store.transition_alert(opened.id, "cleared", ("active", "acknowledged"), "boss", T0 + 3)
    store.write_alerts([alert("k1", ts_ms=T0 + 4)], T0)
    newest, old = store.list_alerts(ALL)
    assert (old.id, old.state, old.cleared_by, old.count) == (opened.id, "cleared", "boss", 2)
    assert (newest.state, newest.count, newest.ts_ms) == ("active", 1, T0 + 4) and newest.id != old.id
    store.close()


def test_ack_clear_transitions_and_conflicts(store_and_api: tuple[SqliteStore, ApiServer]) -> None:
    store, api = store_and_api
    store.write_alerts([alert("k1", ts_ms=T0), alert("k1", ts_ms=T0 + 1_000), alert("k2", ts_ms=T0 + 10)], T0)
    k1 = next(a for a in api.get("/alerts") if a["dedup_key"] == "k1")
    assert k1["count"] == 2 and k1["last_ts_ms"] == T0 + 1_000 and k1["state"] == "active"
    assert k1["zone"] == {"kind": "shed", "id": "shed-1", "row": None} and k1["zone_id"] == "shed-1"
    assert isinstance(k1["id"], str) and k1["id"].isdigit()

    acked = api.client.post(f"/alerts/{k1['id']}/ack")
    assert acked.status_code == 200
    body = acked.json()
    assert body["state"] == "acknowledged" and body["acknowledged_by"] == "service" and body["acknowledged_ms"] > T0
    assert api.client.post(f"/alerts/{k1['id']}/ack").status_code == 409  # already acknowledged
    cleared = api.client.post(f"/alerts/{k1['id']}/clear").json()
    assert cleared["state"] == "cleared" and cleared["cleared_by"] == "service"
    assert cleared["acknowledged_by"] == "service"  # history is kept
    conflict = api.client.post(f"/alerts/{k1['id']}/clear")
    assert conflict.status_code == 409 and "cleared" in conflict.json()["detail"]
    assert api.client.post(f"/alerts/{k1['id']}/ack").status_code == 409
    for unknown in ("999999", "abc", "-1"):
        assert api.client.post(f"/alerts/{unknown}/ack").status_code == 404

    k2 = next(a for a in api.get("/alerts") if a["dedup_key"] == "k2")
    assert api.client.post(f"/alerts/{k2['id']}/clear").json()["state"] == "cleared"  # active -> cleared directly


def test_list_filters_newest_first_and_summary(store_and_api: tuple[SqliteStore, ApiServer]) -> None:
    store, api = store_and_api
    store.write_alerts([
        alert("a", ts_ms=T0 + 1, severity="info"),
        alert("b", ts_ms=T0 + 3, severity="critical", shed="shed-2"),
        alert("c", ts_ms=T0 + 2, severity="warning", shed=None),
        alert("a", ts_ms=T0 + 9, severity="info"),  # repeat: "a" now has the newest activity
    ], T0)
    assert [a["dedup_key"] for a in api.get("/alerts")] == ["a", "b", "c"]
    assert [a["dedup_key"] for a in api.get("/alerts", limit=1)] == ["a"]
    assert [a["dedup_key"] for a in api.get("/alerts", severity="critical")] == ["b"]
    assert [a["dedup_key"] for a in api.get("/alerts", site=SITE)] == ["a", "b", "c"]
    assert api.get("/alerts", site="other-site") == []
    b_id = api.get("/alerts", severity="critical")[0]["id"]
    api.client.post(f"/alerts/{b_id}/ack")
    c_id = api.get("/alerts", severity="warning")[0]["id"]
    api.client.post(f"/alerts/{c_id}/clear")
    assert [a["dedup_key"] for a in api.get("/alerts", state="active")] == ["a"]
    assert [a["dedup_key"] for a in api.get("/alerts", state="acknowledged")] == ["b"]
    assert api.get("/alerts/summary") == {
        "active": 1, "acknowledged": 1, "by_severity": {"info": 1, "warning": 0, "critical": 1},
    }
    assert api.client.get("/alerts", params={"state": "open"}).status_code == 422


def test_alerts_ingested_over_mqtt_are_grouped_and_acked_by_user(tmp_path: Path, broker: MosquittoBroker) -> None:
    settings = settings_for(tmp_path, broker, bootstrap_admin={"username": "boss", "password": PASSWORD})
    with ApiServer(settings) as api, Publisher(broker) as edge:
        assert api.worker.wait_connected(10)
        topic = alerts_topic(SITE, "edge-1")
        for i in range(3):
            edge.publish(topic, alert("cam/offline", id=f"al-{i}", ts_ms=T0 + i, code="camera_offline").to_json())
        edge.publish(topic, alert("cam/offline", id="al-0", ts_ms=T0).to_json())  # redelivered payload id
        edge.publish(topic, json.dumps({"id": "bad"}))
        wait_until(lambda: api.worker.counters().received >= 5, 10, "5 alert messages")
        api.worker.flush(10)
        (grouped,) = api.get("/alerts")
        assert (grouped["count"], grouped["code"], grouped["last_ts_ms"]) == (3, "camera_offline", T0 + 2)
        assert api.worker.counters().duplicates == 1 and api.worker.counters().dead_letters == 1
        with login(api, "boss") as boss:
            assert boss.post(f"/alerts/{grouped['id']}/ack").json()["acknowledged_by"] == "boss"


def test_alerts_of_a_schema_1_database_are_grouped_on_open(tmp_path: Path) -> None:
    db = tmp_path / "v1.db"
    store = SqliteStore(db)
    store.open()
    store.write_alerts([alert("k1", ts_ms=T0), alert("k1", ts_ms=T0 + 1), alert("k2", ts_ms=T0 + 2)], T0)
    store.close()
    conn = sqlite3.connect(db)  # make it look like a file written by schema 1: alerts but no lifecycle
    conn.execute("DELETE FROM alert_lifecycle")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    store.open()
    assert [(a.dedup_key, a.count) for a in store.list_alerts(ALL)] == [("k2", 1), ("k1", 2)]
    store.close()
