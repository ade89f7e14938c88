"""Drive the real app (one Kivy App per process) against a real seeded API and a real Mosquitto.

Run under Xvfb by ``test_ui.py``:  ``python -m tests.mobile_app.ui_scenario OUT_DIR SHOT_DIR``.
The scenario is a generator: it yields a number (seconds to wait) or a predicate (wait until true); it
records observations in ``OUT_DIR/observations.json`` that the pytest side asserts on, and saves a
screenshot of every screen.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

from tests.mobile_app.glyphs import missing_glyphs

Step = Generator[Any, None, None]


def main(out_dir: Path, shot_dir: Path) -> int:
    work = Path(tempfile.mkdtemp(prefix="fieldline-ui-"))
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_LOG_MODE", "PYTHON")
    os.environ.setdefault("KIVY_HOME", str(work / "kivy"))
    from mobile_app.main import configure_kivy

    configure_kivy((360, 780))
    import httpx
    import paho.mqtt.client as mqtt

    from fieldline.contract import events_topic
    from mobile_app.cache import OfflineCache
    from mobile_app.controllers import Session
    from tests.mobile_app.api_server import RestartableApi
    from tests.mobile_app.seed import API_TOKEN, OPERATORS, PASSWORD, SITE, seed_site, settings_for
    from tests.support.builders import event_dict
    from tests.support.mosquitto import MosquittoBroker

    broker = MosquittoBroker().__enter__()
    settings = settings_for(work / "api", ingest_enabled=True, mqtt_port=broker.port)
    t0 = time.monotonic()
    site = seed_site(settings)
    api = RestartableApi(settings).start()
    obs: dict[str, Any] = {"seed_s": round(time.monotonic() - t0, 2), "api_url": api.url, "steps": [],
                           "today": time.strftime("%Y-%m-%d", time.localtime())}
    rest = httpx.Client(base_url=api.url + "/api/v1", headers={"Authorization": f"Bearer {API_TOKEN}"}, timeout=10)
    login = rest.post("/auth/login", json={"username": OPERATORS[0], "password": PASSWORD})
    obs["login_endpoint_status"] = login.status_code
    # sign in through the Settings screen when the API has users; otherwise start with the API token
    start_token = None if login.status_code == 200 else API_TOKEN

    cache = OfflineCache(work / "app" / "cache.db")
    session = Session(cache, api_url=api.url, token=start_token, lang="en")
    from kivy.clock import Clock
    from kivy.core.window import Window
    from kivy.tests.common import UnitTestTouch
    from kivy.uix.label import Label

    from kivy.core.text import DEFAULT_FONT, LabelBase

    from mobile_app.ui.app import FieldLineApp

    # Kivy's own default (Roboto): what every label is drawn with on a machine without a CJK font
    kivy_default_font = LabelBase._fonts[DEFAULT_FONT]
    app = FieldLineApp(session, refresh_s=3600, retry_s=1.0)
    obs["glyphs"] = {}

    def use_default_font(files: tuple[str, ...]) -> None:
        """Re-register the default font (as ``register_fonts`` does) and redraw every label with it."""
        LabelBase.register(DEFAULT_FONT, *files)
        for widget in Window.children[0].walk():
            if isinstance(widget, Label):
                widget.texture_update()

    def check_glyphs(name: str) -> None:
        """Every character of every label on screen against the cmap of the font file it was drawn with."""
        runs = _text_runs(Window)
        tofu = sorted({f"{char!r} of {text!r} in {Path(font).name}"
                       for text, font in runs for char in missing_glyphs(text, font)})
        obs["glyphs"][name] = {"runs": len(runs), "fonts": sorted({Path(f).name for _, f in runs}),
                               "chars": "".join(sorted({c for text, _ in runs for c in text})), "tofu": tofu}

    def shot(name: str) -> None:
        check_glyphs(name)
        Window.screenshot(str(shot_dir / f"{name}.png"))
        # Window.screenshot appends a counter; rename to a stable name
        for found in shot_dir.glob(f"{name}*.png"):
            if found.name != f"{name}.png":
                found.replace(shot_dir / f"{name}.png")

    def idle() -> bool:
        return app.busy == 0

    def tiles() -> dict[str, Any]:
        return app.root.ids.overview.tiles

    def scenario() -> Step:
        ids = app.root.ids
        # ---------------------------------------------------------------- sign in
        if start_token is None:
            ids.sm.current = "settings"
            yield idle
            ids.settings.ids.username.text = OPERATORS[0]
            ids.settings.ids.password.text = PASSWORD
            ids.settings.ids.login_button.dispatch("on_release")
            yield lambda: session.username == OPERATORS[0]
            yield 0.3
            shot("settings")
            obs["login_text"] = ids.settings.login_text
            app.show("overview")
        # ---------------------------------------------------------------- overview
        yield lambda: len(tiles()) == len(site.sheds) and idle()
        yield 0.3
        obs["overview"] = {
            "tiles": len(tiles()),
            "grid_children": len(ids.overview.ids.grid.children),
            "urgency": {sid: t.urgency for sid, t in tiles().items()},
            "bg": {sid: list(t.bg_color) for sid, t in tiles().items()},
            "big": {sid: t.big_text for sid, t in tiles().items()},
            "arrow": {sid: t.trend_arrow for sid, t in tiles().items()},
            "camera": {sid: t.camera_text for sid, t in tiles().items()},
            "min_tile_h": min(t.height for t in tiles().values()),
            "tomorrow": {sid: t.tomorrow_text for sid, t in tiles().items()},
            "api_forecast": {s["shed"]: s["days"] for s in rest.get("/forecast").json()["sheds"]},
            "badge": app.badge,
            "status": app.status_text,
            "cols": ids.overview.ids.grid.cols,
        }
        shot("overview")
        # the same screen where no CJK font was found: every label falls back to Kivy's Roboto
        app_font = LabelBase._fonts[DEFAULT_FONT]
        use_default_font(kivy_default_font)
        yield 0.3
        shot("overview_no_cjk")
        use_default_font(app_font)
        yield 0.2
        # pull to refresh with a real touch drag from the top of the grid
        before = session.client.count_sent("GET", "/sheds")
        scroll = ids.overview.ids.scroll
        x, top = scroll.to_window(scroll.center_x, scroll.top - 20)
        touch = UnitTestTouch(x, top)
        touch.touch_down()
        for dy in range(20, 181, 20):
            touch.touch_move(x, top - dy)
        touch.touch_up()
        yield lambda: session.client.count_sent("GET", "/sheds") > before and idle()
        obs["pull_refresh_requests"] = session.client.count_sent("GET", "/sheds") - before
        # ---------------------------------------------------------------- my sheds today
        ids.overview.ids.filter_mine.dispatch("on_release")
        yield 0.2
        yield idle
        obs["mine"] = {"tiles": len(ids.overview.ids.grid.children), "operator": session.operator}
        shot("overview_mine")
        ids.overview.ids.filter_all.dispatch("on_release")
        yield idle
        yield lambda: len(ids.overview.ids.grid.children) == len(site.sheds)
        # ---------------------------------------------------------------- shed detail (tap a tile)
        tiles()["shed-01"].dispatch("on_release")
        yield lambda: ids.detail.last_state is not None and idle()
        yield 0.5
        d = ids.detail
        obs["detail"] = {
            "title": d.title_text, "pick": d.pick_text, "rows": len(d.ids.rows_box.children),
            "ripeness_bars": len(d.ids.ripeness_box.children), "chart_points": len(d.ids.chart.points) // 2,
            "snapshot": bool(d.ids.snapshot.source) and Path(d.ids.snapshot.source).is_file(),
            "snapshot_texture": d.ids.snapshot.texture is not None, "cameras": len(d.ids.cameras_box.children),
            "screen": ids.sm.current,
        }
        shot("detail")
        obs["detail"].update({
            "forecast_bars": [list(b) for b in d.ids.forecast_bars.bars],
            "forecast_labels": [w.text for w in reversed(d.ids.forecast_labels.children)],
            "explanation": d.forecast_explanation, "climate_points": len(d.ids.climate_chart.line) // 2,
            "climate_band": len(d.ids.climate_chart.band) // 2, "climate_caption": d.climate_caption,
            "climate_height": d.ids.climate_chart.height, "forecast_height": d.ids.forecast_bars.height,
            "api_forecast": rest.get("/sheds/shed-01/forecast").json(),
        })
        d.ids.scroll.scroll_to(d.ids.forecast_bars, padding=40, animate=False)
        yield 0.4
        shot("detail_forecast")
        d.ids.scroll.scroll_to(d.ids.climate_chart, padding=60, animate=False)
        yield 0.4
        shot("detail_climate")
        shed_60 = rest.get("/sheds/shed-60/climate")
        obs["detail"]["no_sensor_status"] = shed_60.status_code
        # "count looks wrong?": a question first, then the request to the camera watching the shed
        d.ids.scroll.scroll_y = 1
        wrong: dict[str, Any] = {"button": d.ids.wrong_button.text, "step_before": d.wrong_step}
        d.ids.wrong_button.dispatch("on_release")
        yield 0.3
        wrong.update({"step_asked": d.wrong_step, "question": d.ids.wrong_question.text,
                      "send_height": d.ids.wrong_send.height, "button_height": d.ids.wrong_button.height})
        shot("detail_wrong_count_confirm")
        d.ids.wrong_send.dispatch("on_release")
        yield lambda: d.wrong_step in ("sent", "queued", "refused") and idle()
        yield 0.3
        wrong.update({"step": d.wrong_step, "text": d.wrong_text, "shown": d.ids.wrong_question.text,
                      "posts": session.client.count_sent("POST", "/sheds/shed-01/wrong-count"),
                      "commands": [c.get("name") for c in rest.get("/devices/farm/edge-01/commands").json()]})
        obs["wrong_count"] = wrong
        shot("detail_wrong_count_sent")
        ids.detail.ids.back_button.dispatch("on_release")
        yield idle
        # ---------------------------------------------------------------- alerts
        ids.nav_alerts.dispatch("on_release")
        yield lambda: ids.alerts.last_state is not None and idle()
        yield 0.3
        rows = list(reversed(ids.alerts.ids.list.children))
        obs["alerts"] = {"rows": [(r.alert_id, r.severity, r.can_ack) for r in rows], "badge": app.badge,
                         "nav_badge": ids.nav_alerts.badge}
        shot("alerts")
        ids_by_zone = {a.zone_id: a.id for a in ids.alerts.last_state.items}
        obs["alert_ids"] = ids_by_zone
        overripe, behind = ids_by_zone.get("shed-03", "?"), ids_by_zone.get("shed-12", "?")
        target = next((r for r in rows if r.alert_id == overripe), None)
        if target is not None:
            button = [w for w in target.walk() if w.__class__.__name__ == "BigButton"][0]
            button.dispatch("on_release")
            yield idle
            yield lambda: _alert(rest, overripe).get("state") == "acknowledged"
            yield idle
            yield 0.3
            obs["ack"] = {"api": _alert(rest, overripe), "badge": app.badge,
                          "row_text": next(r.state_text for r in ids.alerts.ids.list.children
                                           if r.alert_id == overripe)}
            shot("alerts_acked")
        # ---------------------------------------------------------------- harvest plan
        ids.nav_plan.dispatch("on_release")
        yield lambda: ids.plan.last_state is not None and idle()
        yield 0.3
        plan = ids.plan.last_state.plan
        obs["plan"] = None if plan is None else {
            "operators": [(o.name, len(o.sheds), o.fruits, o.total_minutes) for o in plan.operators],
            "cards": [c.name_text for c in ids.plan.ids.body.children if c.__class__.__name__ == "OperatorCard"],
            "rows": len([c for c in ids.plan.ids.body.children if c.__class__.__name__ == "PlanShedRow"]),
            "outlook": [vars(day) for day in ids.plan.last_state.outlook],
            "hour_bars": [(c.label, c.value_text) for c in reversed(ids.plan.ids.body.children)
                          if c.__class__.__name__ == "CountBar"],
            "api_outlook": rest.get("/harvest/outlook").json(),
        }
        shot("plan")
        if plan is not None and plan.all_sheds:
            first = plan.all_sheds[0]
            row = next(c for c in ids.plan.ids.body.children
                       if c.__class__.__name__ == "PlanShedRow" and c.shed_id == first)
            [w for w in row.walk() if w.__class__.__name__ == "BigButton"][0].dispatch("on_release")
            yield idle
            yield lambda: first in (rest.get("/harvest/plan").json().get("done") or [])
            obs["plan_done"] = {"shed": first, "api_done": rest.get("/harvest/plan").json().get("done")}
            yield idle
            shot("plan_done")
        # ---------------------------------------------------------------- settings + Chinese
        ids.nav_settings.dispatch("on_release")
        yield idle
        shot("settings")
        ids.settings.ids.lang_zh.dispatch("on_release")
        yield 0.3
        obs["zh"] = {"nav": [ids.nav_overview.text, ids.nav_alerts.text, ids.nav_plan.text, ids.nav_settings.text],
                     "login_button": ids.settings.ids.login_button.text, "lang": app.lang,
                     "font": app.cjk_font}
        shot("settings_zh")
        ids.nav_overview.dispatch("on_release")
        yield idle
        yield 0.3
        obs["zh"]["tile_sub"] = tiles()["shed-01"].sub_text
        obs["zh"]["filter_mine"] = ids.overview.ids.filter_mine.text
        shot("overview_zh")
        ids.nav_alerts.dispatch("on_release")
        yield idle
        yield 0.2
        shot("alerts_zh")
        ids.nav_plan.dispatch("on_release")
        yield idle
        yield 0.2
        shot("plan_zh")
        ids.nav_overview.dispatch("on_release")
        tiles()["shed-03"].dispatch("on_release")
        yield lambda: ids.detail.last_state is not None and ids.detail.last_state.shed_id == "shed-03" and idle()
        yield 0.3
        shot("detail_zh")
        ids.detail.ids.scroll.scroll_to(ids.detail.ids.climate_chart, padding=60, animate=False)
        yield 0.4
        shot("detail_forecast_zh")  # the glyph check covers the forecast and climate strings in Chinese
        app.set_language("en")
        ids.nav_overview.dispatch("on_release")
        yield idle
        # ---------------------------------------------------------------- live update over the WebSocket
        obs["live"] = {"connected": bool(app.live and app.live.connected)}
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ui-scenario-pub")
        pub.connect(broker.host, broker.port)
        pub.loop_start()
        ev = event_dict(id="edge-05-1-500", device="edge-05", site=SITE, camera="cam-1", seq=500,
                        ts_ms=time.time_ns() // 1_000_000, zone={"kind": "shed", "id": "shed-05", "row": "r1"},
                        counts={"ripe": 77, "green": 1, "half_ripe": 0})
        before_text = tiles()["shed-05"].big_text
        info = pub.publish(events_topic(SITE, "edge-05"), json.dumps(ev), qos=1)
        info.wait_for_publish(5)
        started = time.monotonic()
        deadline = started + 12
        yield lambda: tiles()["shed-05"].big_text != before_text or time.monotonic() > deadline
        obs["live"].update({"before": before_text, "after": tiles()["shed-05"].big_text,
                            "seconds": round(time.monotonic() - started, 2),
                            "received": app.live.received if app.live else 0,
                            "api_pick": next(s["pick_ready"] for s in rest.get("/sheds").json() if s["id"] == "shed-05")})
        pub.loop_stop()
        pub.disconnect()
        # ---------------------------------------------------------------- API down: cache + queued ack
        api.stop()
        app.refresh_overview()
        yield lambda: app.offline and idle()
        yield 1.2  # let the shown age grow
        obs["offline"] = {"status": app.status_text, "tiles": len(tiles()), "offline": app.offline}
        shot("offline_overview")
        ids.nav_alerts.dispatch("on_release")
        yield idle
        yield 0.2
        row = next((r for r in ids.alerts.ids.list.children if r.alert_id == behind), None)
        obs["offline"]["alert_rows"] = len(ids.alerts.ids.list.children)
        if row is not None:
            button = [w for w in row.walk() if w.__class__.__name__ == "BigButton"][0]
            button.dispatch("on_release")
            yield idle
            app.acknowledge(behind)  # a second press (e.g. impatient user) must not queue twice
            yield idle
            obs["offline"]["queued"] = [(a.kind, a.target) for a in cache.pending()]
            obs["offline"]["row_text"] = next(r.state_text for r in ids.alerts.ids.list.children
                                              if r.alert_id == behind)
            obs["offline"]["status_with_queue"] = app.status_text
            shot("offline_alerts")
            api.start()
            yield lambda: not cache.pending() and idle()
            yield lambda: not app.offline
            yield idle
            path = f"/alerts/{behind}/ack"
            obs["reconnect"] = {"api": _alert(rest, behind), "posts": session.client.count_sent("POST", path),
                                "all_posts": [(r.method, r.path, r.status) for r in session.client.sent
                                              if r.method == "POST"], "status": app.status_text}
            yield 0.3
            shot("reconnected_alerts")
        # ---------------------------------------------------------------- tablet size
        ids.nav_overview.dispatch("on_release")
        Window.size = (800, 1280)
        yield 0.6
        obs["tablet"] = {"cols": ids.overview.ids.grid.cols, "tiles": len(tiles())}
        shot("overview_tablet")

    runner = _Runner(scenario, obs, on_finish=app.stop)
    Clock.schedule_once(lambda _dt: runner.start(), 0.5)
    code = 0
    try:
        app.run()
    except Exception:  # noqa: BLE001
        obs["crash"] = traceback.format_exc()
        code = 1
    finally:
        try:
            api.stop()
        finally:
            broker.__exit__(None, None, None)
    obs["steps"] = runner.log
    obs["error"] = runner.error
    (out_dir / "observations.json").write_text(json.dumps(obs, indent=1, default=str))
    return code


def _text_runs(window: Any) -> list[tuple[str, str]]:
    """(text, font file) of every laid-out word of every label in the window; markup may switch fonts."""
    from kivy.uix.label import Label

    runs = []
    for root in window.children:
        for widget in root.walk():
            if not isinstance(widget, Label) or not widget.text:
                continue
            for line in widget._label._cached_lines:
                for word in line.words:
                    font = word.options.get("font_name_r")
                    if word.text.strip():
                        if not font:
                            raise RuntimeError(f"label {widget.text!r}: no font file resolved")
                        runs.append((word.text, font))
    return runs


def _alert(rest: Any, alert_id: str) -> dict[str, Any]:
    response = rest.get("/alerts")
    if response.status_code != 200:
        return {"http": response.status_code}
    return next((a for a in response.json() if a["id"] == alert_id), {})


class _Runner:
    """Steps a scenario generator from the Kivy clock; a predicate that stays false for 20 s fails it."""

    def __init__(self, scenario: Callable[[], Step], obs: dict[str, Any], on_finish: Callable[[], None],
                 wait_timeout: float = 20.0) -> None:
        self._gen = scenario()
        self._finish = on_finish
        self._timeout = wait_timeout
        self._waiting: Any = None
        self._since = 0.0
        self.log: list[str] = []
        self.error: str | None = None

    def start(self) -> None:
        from kivy.clock import Clock

        self._event = Clock.schedule_interval(self._tick, 0.05)

    def _tick(self, _dt: float) -> None:
        now = time.monotonic()
        try:
            if self._waiting is not None:
                if isinstance(self._waiting, (int, float)):
                    if now < self._since + self._waiting:
                        return
                elif not self._waiting():
                    if now - self._since > self._timeout:
                        raise TimeoutError(f"waited {self._timeout}s for {self._waiting}")
                    return
            self._waiting = next(self._gen)
            self._since = now
        except StopIteration:
            self._done()
        except Exception:  # noqa: BLE001
            self.error = traceback.format_exc()
            self._done()

    def _done(self) -> None:
        self._event.cancel()
        self._finish()


if __name__ == "__main__":
    out, shots = Path(sys.argv[1]), Path(sys.argv[2])
    out.mkdir(parents=True, exist_ok=True)
    shots.mkdir(parents=True, exist_ok=True)
    sys.exit(main(out, shots))
