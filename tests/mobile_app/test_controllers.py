"""Models and controllers of the phone app against the real cloud API (uvicorn, temp SQLite), no window.

The site is seeded through the API's own SqliteStore (tests/mobile_app/seed.py); live updates come from
a real Mosquitto through the API's ingest worker.
"""

from __future__ import annotations

import ast
import json
import string
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
import pytest

from fieldline.contract import events_topic
from mobile_app.api_client import ApiClient, ApiUnreachable, AuthRequired, normalise_base_url, websocket_url
from mobile_app.cache import OfflineCache
from mobile_app.controllers import (
    AlertsController,
    HarvestController,
    OverviewController,
    Session,
    SettingsController,
    ShedDetailController,
)
from mobile_app.i18n import TABLE, Translator, find_cjk_font
from mobile_app.live_feed import LiveFeed
from mobile_app.models.sheds import ShedTile, TrendSeries, Urgency
from tests.mobile_app.api_server import RestartableApi
from tests.mobile_app.seed import API_TOKEN, OFFLINE_SHEDS, OPERATORS, PASSWORD, SITE, SeededSite, seed_site, settings_for
from tests.support.builders import event_dict
from tests.support.live_api import free_port, wait_until
from tests.support.mosquitto import MosquittoBroker

PACKAGE = Path(__file__).resolve().parents[2] / "mobile_app"


@pytest.fixture(scope="module")
def broker() -> Iterator[MosquittoBroker]:
    with MosquittoBroker() as running:
        yield running


@pytest.fixture(scope="module")
def site_api(tmp_path_factory: pytest.TempPathFactory, broker: MosquittoBroker) -> Iterator[tuple[RestartableApi, SeededSite]]:
    settings = settings_for(tmp_path_factory.mktemp("api"), ingest_enabled=True, mqtt_port=broker.port)
    site = seed_site(settings)
    with RestartableApi(settings) as api:
        yield api, site


@pytest.fixture
def session(site_api: tuple[RestartableApi, SeededSite], tmp_path: Path) -> Iterator[Session]:
    api, _ = site_api
    cache = OfflineCache(tmp_path / "cache.db")
    s = Session(cache, api_url=api.url)
    result = SettingsController(s).login(OPERATORS[0], PASSWORD)
    assert result.ok, result.message
    yield s
    cache.close()


def rest(api: RestartableApi) -> httpx.Client:
    return httpx.Client(base_url=api.url + "/api/v1", headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=10)


def alert_id_for(api: RestartableApi, shed: str) -> str:
    with rest(api) as client:
        return next(a["id"] for a in client.get("/alerts").json() if (a.get("zone") or {}).get("id") == shed)


# ------------------------------------------------------------------------------------------ no Kivy


def test_models_controllers_and_services_do_not_import_kivy() -> None:
    files = [*PACKAGE.glob("models/*.py"), *PACKAGE.glob("controllers/*.py"),
             *(PACKAGE / name for name in ("api_client.py", "cache.py", "i18n.py", "live_feed.py", "token_store.py"))]
    assert len(files) >= 10
    for path in files:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0] == "kivy" for n in names), f"{path.name} imports Kivy"


def test_translation_table_is_complete_in_both_languages() -> None:
    fields = string.Formatter()
    for key, (en, zh) in TABLE.items():
        assert en.strip() and zh.strip(), key
        assert {f for _, f, _, _ in fields.parse(en) if f} == {f for _, f, _, _ in fields.parse(zh) if f}, key
    zh = Translator("zh")
    assert zh.t("nav_alerts") == "告警"
    assert zh.age(125) == "2 分钟" and Translator("en").age(7200) == "2 h"
    with pytest.raises(ValueError, match="language"):
        Translator("fr")
    assert find_cjk_font() is not None, "apt-get install -y fonts-wqy-microhei"


def test_ui_strings_in_views_go_through_the_table() -> None:
    for kv in (PACKAGE / "views").glob("*.kv"):
        for key in __import__("re").findall(r"app\.tr\('([a-z0-9_]+)'", kv.read_text()):
            assert key in TABLE, f"{kv.name}: {key}"


# ------------------------------------------------------------------------------------------ pure models


def test_tile_urgency_rules() -> None:
    base = {"id": "shed-1", "counts": {"ripe": 3}, "updated_ms": 1, "camera_state": "online"}
    assert ShedTile.from_api(base).urgency() is Urgency.OK
    assert ShedTile.from_api({**base, "pick_ready": 55}).urgency() is Urgency.PICK
    assert ShedTile.from_api({**base, "open_alerts": 1}).urgency() is Urgency.PICK
    assert ShedTile.from_api({**base, "camera_state": "offline"}).urgency() is Urgency.ALARM
    assert ShedTile.from_api(base).with_alert_severity("critical").urgency() is Urgency.ALARM
    assert ShedTile.from_api({"id": "shed-2"}).urgency() is Urgency.UNKNOWN
    assert ShedTile.from_api({**base, "trend": -2}).trend_arrow == "↓"


def test_trend_chart_geometry() -> None:
    series = TrendSeries.from_api({"bucket_ms": 10, "points": [
        {"ts_ms": 100, "counts": {"ripe": 5}}, {"ts_ms": 150, "counts": {"ripe": 10, "green": 99}}]})
    assert series.chart_line(0, 0, 100, 50, from_ms=100, to_ms=200) == [0, 25, 50, 50]
    assert TrendSeries(10, []).chart_line(0, 0, 1, 1, 0, 10) == []


# ------------------------------------------------------------------------------------------ client


def test_client_errors_and_urls(site_api: tuple[RestartableApi, SeededSite]) -> None:
    api, _ = site_api
    assert normalise_base_url("10.0.0.5:8000/api/v1/") == "http://10.0.0.5:8000"
    assert websocket_url("https://x.org/") == "wss://x.org/api/v1/ws"  # no token in the URL: a first message
    with pytest.raises(AuthRequired):
        ApiClient(api.url, "wrong-token").sheds()
    dead = ApiClient(f"http://127.0.0.1:{free_port()}", "t", retries=1, backoff_s=0.01)
    started = time.monotonic()
    with pytest.raises(ApiUnreachable):
        dead.sheds()
    assert time.monotonic() - started < 3
    assert len(dead.sent) == 2 and dead.count_sent("GET", "/sheds") == 0


# ------------------------------------------------------------------------------------------ screens


def test_overview_shows_every_shed_with_urgency_and_badge(session: Session, site_api: tuple[RestartableApi, SeededSite]) -> None:
    _, site = site_api
    ctl = OverviewController(session)
    state = ctl.load()
    assert state.total == 60 and len(state.tiles) == 60 and not state.offline
    assert [t.id for t in state.tiles][:3] == ["shed-01", "shed-02", "shed-03"]
    by_id = {t.id: t for t in state.tiles}
    assert by_id["shed-10"].pick_ready == site.pick_ready["shed-10"]
    for shed in OFFLINE_SHEDS:
        assert by_id[shed].camera_state == "offline" and ctl.urgency(by_id[shed]) == "alarm"
    assert ctl.urgency(by_id["shed-03"]) == "alarm"  # critical alert
    assert ctl.urgency(by_id["shed-12"]) == "pick"  # warning alert
    assert state.alert_badge >= 3


def test_my_sheds_today_follows_the_plan(session: Session) -> None:
    ctl = OverviewController(session)
    ctl.load()
    mine = ctl.set_filter_mine(True)
    plan = HarvestController(session).load().plan
    assert plan is not None and session.operator == OPERATORS[0]
    expected = set(plan.sheds_of(OPERATORS[0]))
    assert expected and {t.id for t in mine.tiles} == expected and mine.total == 60
    assert len(ctl.set_filter_mine(False).tiles) == 60


def test_shed_detail_rows_trend_snapshot_cameras(session: Session) -> None:
    state = ShedDetailController(session).load("shed-01")
    assert state.detail is not None and not state.offline
    assert [r.row for r in state.detail.rows] == ["r1", "r2", "r3"]
    assert state.detail.pick_ready == sum(r.counts.get("ripe", 0) for r in state.detail.rows)
    assert len(state.trend.points) >= 20  # 7 days of 6-hour buckets
    assert state.snapshot_path and Path(state.snapshot_path).read_bytes()[:2] == b"\xff\xd8"
    assert state.detail.cameras[0].state == "online"


def test_acknowledge_shows_who(session: Session, site_api: tuple[RestartableApi, SeededSite]) -> None:
    api, _ = site_api
    ctl = AlertsController(session)
    before = ctl.load()
    target = alert_id_for(api, "shed-25")
    assert [a.severity for a in before.items] == sorted((a.severity for a in before.items),
                                                        key=["critical", "warning", "info"].index)
    after = ctl.acknowledge(target)
    item = next(a for a in after.items if a.id == target)
    assert item.state == "acknowledged" and item.acknowledged_by == OPERATORS[0]
    assert after.summary.active == before.summary.active - 1
    assert session.client.count_sent("POST", f"/alerts/{target}/ack") == 1


def test_harvest_plan_split_done_and_replan(session: Session) -> None:
    ctl = HarvestController(session)
    state = ctl.load()
    assert state.plan is not None
    assert sorted(o.name for o in state.plan.operators) == sorted(OPERATORS)
    assert sorted(state.plan.all_sheds) == sorted(f"shed-{i:02d}" for i in range(1, 61))
    assert all(o.fruits > 0 and o.total_minutes > 0 for o in state.plan.operators)
    shed = state.plan.operators[1].sheds[0]
    assert shed in ctl.set_done(shed).plan.done
    assert shed not in ctl.set_done(shed, False).plan.done
    replanned = ctl.replan()
    assert replanned.plan is not None and not replanned.offline and replanned.error is None


def test_live_feed_delivers_ingested_counts(session: Session, broker: MosquittoBroker) -> None:
    refused = LiveFeed(lambda: websocket_url(session.api_url or ""), token_provider=lambda: "not-a-token",
                       min_backoff_s=0.2)
    refused.start()
    try:
        wait_until(lambda: refused.last_error and "4401" in refused.last_error, timeout=10, what="4401 for a bad token")
        assert not refused.connected
    finally:
        refused.stop()
    feed = LiveFeed(lambda: websocket_url(session.api_url or ""), token_provider=lambda: session.token,
                    min_backoff_s=0.2)
    feed.start()
    try:
        wait_until(lambda: feed.connected, timeout=10, what="WebSocket connected and signed in by first message")
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="mobile-live-test")
        pub.connect(broker.host, broker.port)
        pub.loop_start()
        ev = event_dict(id="edge-09-1-900", device="edge-09", site=SITE, seq=900, ts_ms=time.time_ns() // 1_000_000,
                        zone={"kind": "shed", "id": "shed-09", "row": "r2"}, counts={"ripe": 50})
        pub.publish(events_topic(SITE, "edge-09"), json.dumps(ev), qos=1).wait_for_publish(5)
        messages = wait_until(lambda: [m for m in feed.drain() if m["type"] == "count"], timeout=10,
                              what="count message on the WebSocket")
        pub.loop_stop()
        pub.disconnect()
        assert OverviewController(session).apply_live(messages[0]) in ("changed", "refresh")
    finally:
        feed.stop()


def test_offline_shows_cache_with_age_and_sends_queued_actions_once(
    session: Session, site_api: tuple[RestartableApi, SeededSite], tmp_path: Path
) -> None:
    api, _ = site_api
    OverviewController(session).load()
    AlertsController(session).load()
    HarvestController(session).load()
    target = alert_id_for(api, "shed-12")
    api.stop()
    try:
        time.sleep(1.1)
        # a restarted phone: new session on the same cache file, server gone
        offline = Session(session.cache)
        state = OverviewController(offline).load()
        assert state.offline and len(state.tiles) == 60 and state.fetched_ms is not None
        assert 1.0 <= (time.time_ns() // 1_000_000 - state.fetched_ms) / 1000 < 60
        alerts = AlertsController(offline)
        alerts.load()
        alerts.acknowledge(target)
        pending_view = alerts.acknowledge(target)  # pressed twice: still one queued action
        assert next(a for a in pending_view.items if a.id == target).ack_pending
        plan = HarvestController(offline)
        plan.load()
        plan.set_done("shed-33")
        assert "shed-33" in plan.set_done("shed-34").plan.done
        plan.set_done("shed-34", False)  # undo replaces the queued "done"
        assert [(a.kind, a.target, a.payload) for a in offline.cache.pending()] == [
            ("ack", target, {}), ("done", "shed-33", {"done": True}), ("done", "shed-34", {"done": False})]
    finally:
        api.start()
    result = offline.reconnect()
    assert (result.sent, result.remaining) == (3, 0)
    assert offline.reconnect().sent == 0
    assert offline.client.count_sent("POST", f"/alerts/{target}/ack") == 1
    with rest(api) as client:
        alert = next(a for a in client.get("/alerts").json() if a["id"] == target)
        assert alert["state"] == "acknowledged" and alert["acknowledged_by"] == OPERATORS[0]
        done = client.get("/harvest/plan").json()["done"]
        assert "shed-33" in done and "shed-34" not in done


def test_count_looks_wrong_asks_the_sheds_camera_queues_offline_and_says_when_refused(
    session: Session, site_api: tuple[RestartableApi, SeededSite]
) -> None:
    api, _ = site_api
    detail = ShedDetailController(session)

    def samples(device: str) -> list[dict[str, Any]]:
        with rest(api) as client:
            return [c for c in client.get(f"/devices/farm/{device}/commands").json() if c["name"] == "sample"]

    sent = detail.report_wrong_count("shed-02")
    assert (sent.outcome, sent.detail) == ("sent", None)
    [command] = samples("edge-02")
    assert command["args"]["note"] == f"count looks wrong ({OPERATORS[0]}, phone app)"
    assert command["args"]["camera"] == "cam-1" and command["created_by"] == OPERATORS[0]

    refused = detail.report_wrong_count("shed-99")  # no camera has ever counted there
    assert refused.outcome == "refused" and "no camera has counted in shed 'shed-99'" in (refused.detail or "")
    assert not session.cache.pending()  # a refusal is not retried

    api.stop()
    try:
        queued = detail.report_wrong_count("shed-03")
        assert queued.outcome == "queued"
        assert [(a.kind, a.target) for a in session.cache.pending()] == [("wrong_count", "shed-03")]
    finally:
        api.start()
    assert session.reconnect().sent == 1
    assert len(samples("edge-03")) == 1 and not session.cache.pending()
