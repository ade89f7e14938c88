"""The real Kivy app under Xvfb against a real seeded API and Mosquitto.

Kivy's App runs once per process, so one subprocess (``ui_scenario.py``) drives every screen and records
what it saw; the tests below assert on those observations. Screenshots of every screen are written to
``test-artifacts/mobile_app/*.png``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.mobile_app.seed import OFFLINE_SHEDS, OPERATORS
from tests.mobile_app.xvfb import Xvfb

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "mobile_app"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def obs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("ui")
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("*.png"):
        old.unlink()
    with Xvfb() as xvfb:
        env = dict(os.environ, DISPLAY=xvfb.display or "", KIVY_NO_ARGS="1", KIVY_LOG_MODE="PYTHON",
                   KIVY_HOME=str(out / "kivy"), PYTHONPATH=str(ROOT))
        proc = subprocess.run([sys.executable, "-m", "tests.mobile_app.ui_scenario", str(out), str(SHOTS)],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=150)
    path = out / "observations.json"
    assert path.exists(), f"scenario wrote nothing (exit {proc.returncode}):\n{proc.stderr[-4000:]}"
    data = json.loads(path.read_text())
    assert not data.get("crash"), data["crash"]
    assert not data.get("error"), data["error"] + "\n--- stderr tail ---\n" + proc.stderr[-3000:]
    return data


def test_sign_in_from_settings(obs: dict[str, Any]) -> None:
    assert obs["login_endpoint_status"] == 200
    assert obs["login_text"] == f"Signed in as {OPERATORS[0]} (operator)"


def test_overview_has_60_tiles_coloured_by_state(obs: dict[str, Any]) -> None:
    ov = obs["overview"]
    assert ov["tiles"] == ov["grid_children"] == 60
    for shed in OFFLINE_SHEDS:
        assert ov["urgency"][shed] == "alarm" and ov["camera"][shed] == "camera OFF"
    assert ov["urgency"]["shed-03"] == "alarm"  # open critical alert
    assert ov["bg"]["shed-03"][:3] == pytest.approx([0.74, 0.0, 0.0])
    assert {"pick", "ok"} <= set(ov["urgency"].values())
    green = [s for s, u in ov["urgency"].items() if u == "ok"]
    assert ov["bg"][green[0]][:3] == pytest.approx([0.09, 0.44, 0.16])
    assert ov["big"]["shed-01"].isdigit() and ov["arrow"]["shed-01"] in ("↑", "↓", "→")
    assert ov["min_tile_h"] >= 48 and ov["cols"] == 2
    assert ov["badge"] == 4 and ov["status"].startswith("Live")


def test_no_shown_text_has_a_glyph_its_font_lacks(obs: dict[str, Any]) -> None:
    """Every laid-out word of every label on screen, checked against the cmap of the font file Kivy drew it
    with (a missing glyph is drawn as an empty box). ``overview_no_cjk`` is the overview redrawn with Kivy's
    Roboto as the default font, as on a machine without a CJK font: Roboto has no arrows."""
    glyphs = obs["glyphs"]
    assert {"overview", "overview_no_cjk", "detail", "alerts", "plan", "settings_zh", "overview_zh",
            "detail_forecast", "detail_climate", "detail_forecast_zh"} <= set(glyphs)
    no_cjk = glyphs["overview_no_cjk"]
    assert set("↑↓→") & set(no_cjk["chars"]), "the trend arrows were not on screen, so not checked"
    assert {"Roboto-Regular.ttf", "Roboto-Bold.ttf", "DejaVuSans.ttf"} <= set(no_cjk["fonts"])
    assert all(g["runs"] > 0 for g in glyphs.values())
    assert {name: g["tofu"] for name, g in glyphs.items() if g["tofu"]} == {}


def test_pull_to_refresh_and_my_sheds_filter(obs: dict[str, Any]) -> None:
    assert obs["pull_refresh_requests"] == 1
    assert obs["mine"]["operator"] == OPERATORS[0]
    assert 0 < obs["mine"]["tiles"] < 60
    assert obs["plan"]["operators"][[o[0] for o in obs["plan"]["operators"]].index(OPERATORS[0])][1] == obs["mine"]["tiles"]


def test_shed_detail_screen(obs: dict[str, Any]) -> None:
    d = obs["detail"]
    assert d["screen"] == "detail" and d["title"] == "Shed shed-01"
    assert d["rows"] == 3 and d["ripeness_bars"] == 3 and d["chart_points"] >= 20
    assert d["snapshot"] and d["snapshot_texture"] and d["cameras"] == 1


def test_count_looks_wrong_asks_then_requests_a_frame_from_the_sheds_camera(obs: dict[str, Any]) -> None:
    w = obs["wrong_count"]
    assert w["button"] == "Count looks wrong?" and w["step_before"] == ""
    # the first tap only asks; the question and its Send button show, the first button folds away
    assert w["step_asked"] == "confirm" and w["question"].startswith("Send a fresh picture of this shed")
    assert w["send_height"] > 0 and w["button_height"] == 0
    # Send: one POST, the API answered 202 and queued a `sample` command for the device watching shed-01
    assert w["step"] == "sent", w
    assert w["shown"] == w["text"] == "Thanks: the camera sends a picture for labelling."
    assert w["posts"] == 1 and "sample" in w["commands"]


def test_overview_tiles_show_tomorrows_forecast(obs: dict[str, Any]) -> None:
    ov = obs["overview"]
    assert len(ov["api_forecast"]) == 60
    for shed, days in ov["api_forecast"].items():
        tomorrow = next(d for d in days if d["date"] > obs["today"])
        assert ov["tomorrow"][shed] == f"tomorrow {tomorrow['ready']}", shed


def test_shed_detail_forecast_bars_and_climate_chart(obs: dict[str, Any]) -> None:
    d = obs["detail"]
    api = d["api_forecast"]
    assert d["forecast_labels"] == [f"{x['date'][5:]}: {x['ready']} ({x['low']}-{x['high']})" for x in api["days"]]
    assert len(d["forecast_bars"]) == 3 and d["forecast_height"] > 0
    top = max([x["high"] for x in api["days"]] + [api["base_ready"]])
    for bar, day in zip(d["forecast_bars"], api["days"], strict=True):
        assert bar[:3] == pytest.approx([day["ready"] / top, day["low"] / top, day["high"] / top])
    assert d["explanation"].startswith(api["explanation"]) and "nearly ripe fruits" in d["explanation"]
    assert d["climate_points"] >= 160 and d["climate_band"] == 2 * d["climate_points"]  # hourly, 7 days
    assert d["climate_height"] > 0 and "°C over 7 days" in d["climate_caption"] and "% RH" in d["climate_caption"]


def test_plan_screen_shows_hours_needed_per_day(obs: dict[str, Any]) -> None:
    plan = obs["plan"]
    api = plan["api_outlook"]
    assert [day["source"] for day in api][0] == "counts" and len(api) >= 3
    assert plan["hour_bars"][:len(api)] == [["Today" if day["source"] == "counts" else day["date"][5:],
                                             f"{day['total_hours']:.1f} h"] for day in api]
    assert all(day["total_hours"] > 0 for day in api)


def test_alerts_by_severity_acknowledge_and_badge(obs: dict[str, Any]) -> None:
    severities = [row[1] for row in obs["alerts"]["rows"]]
    assert severities == ["critical", "critical", "warning", "info"]
    assert obs["alerts"]["nav_badge"] == 4
    ack = obs["ack"]
    assert ack["api"]["state"] == "acknowledged" and ack["api"]["acknowledged_by"] == OPERATORS[0]
    assert ack["badge"] == 3 and ack["row_text"].startswith(f"Acknowledged by {OPERATORS[0]}")


def test_harvest_plan_split_and_mark_done(obs: dict[str, Any]) -> None:
    plan = obs["plan"]
    assert sorted(o[0] for o in plan["operators"]) == sorted(OPERATORS)
    assert sum(o[1] for o in plan["operators"]) == 60 == plan["rows"]
    assert any(card.startswith(f"{OPERATORS[0]} (you) · ") for card in plan["cards"]) and len(plan["cards"]) == 2
    assert obs["plan_done"]["shed"] in obs["plan_done"]["api_done"]


def test_chinese_labels(obs: dict[str, Any]) -> None:
    zh = obs["zh"]
    assert zh["lang"] == "zh" and zh["font"]
    assert zh["nav"] == ["大棚", "告警", "采收计划", "设置"]
    assert zh["login_button"] == "登录" and zh["filter_mine"] == "我今天的大棚"
    assert zh["tile_sub"].startswith("可采")


def test_live_update_over_websocket(obs: dict[str, Any]) -> None:
    live = obs["live"]
    assert live["connected"] and live["received"] >= 1
    assert live["after"] != live["before"] and live["after"].split()[0] == str(live["api_pick"])


def test_offline_cache_with_age_and_queued_ack_sent_once(obs: dict[str, Any]) -> None:
    off = obs["offline"]
    assert off["offline"] and off["tiles"] == 60
    assert off["status"].startswith("OFFLINE · data from") and off["status"].endswith("s ago")
    assert len(off["queued"]) == 1 and off["queued"][0][0] == "ack"
    assert off["row_text"].startswith("Acknowledged - sending when online")
    assert off["status_with_queue"].endswith("· 1 queued")
    rec = obs["reconnect"]
    assert rec["api"]["state"] == "acknowledged" and rec["api"]["acknowledged_by"] == OPERATORS[0]
    assert rec["posts"] == 1, rec["all_posts"]
    assert rec["status"].startswith("Live")


def test_tablet_layout_and_screenshots(obs: dict[str, Any]) -> None:
    assert obs["tablet"]["cols"] >= 4 and obs["tablet"]["tiles"] == 60
    names = {p.stem for p in SHOTS.glob("*.png")}
    assert {"overview", "detail", "detail_forecast", "detail_climate", "alerts", "alerts_acked", "plan", "settings", "settings_zh", "overview_zh",
            "offline_overview", "offline_alerts", "overview_tablet"} <= names
