"""The Kivy App: loads the kv views, runs controller calls on one worker thread, applies results on the UI
thread, drains the live feed and keeps the status bar (live / offline + data age) current."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kivy.app import App
from kivy.clock import Clock
from kivy.core.text import DEFAULT_FONT, LabelBase
from kivy.lang import Builder
from kivy.properties import BooleanProperty, NumericProperty, StringProperty

from mobile_app.cache import now_ms
from mobile_app.controllers import (
    AlertsController,
    HarvestController,
    OverviewController,
    Session,
    SettingsController,
    ShedDetailController,
)
from mobile_app.i18n import TABLE, find_cjk_font, font_missing_message
from mobile_app.live_feed import LiveFeed
from mobile_app.models.sheds import ShedTile
from mobile_app.api_client import websocket_url
from mobile_app.ui import screens, widgets  # noqa: F401 - registers the widget classes used by the kv files

log = logging.getLogger("fieldline.app")

VIEWS_DIR = Path(__file__).resolve().parent.parent / "views"
KV_FILES = ("widgets.kv", "root.kv", "overview.kv", "detail.kv", "alerts.kv", "plan.kv", "settings.kv")


def register_fonts() -> str | None:
    """Make a CJK-capable font the default for every label; returns its path, or None (message logged)."""
    path = find_cjk_font()
    if path is None:
        log.warning(font_missing_message())
        return None
    LabelBase.register(DEFAULT_FONT, fn_regular=path, fn_bold=path)
    return path


class FieldLineApp(App):
    lang = StringProperty("en")
    badge = NumericProperty(0)
    status_text = StringProperty("")
    offline = BooleanProperty(False)
    busy = NumericProperty(0)  # controller calls in flight

    def __init__(self, session: Session, *, live_updates: bool = True, refresh_s: float = 30.0,
                 retry_s: float = 5.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.title = "FieldLine"
        self.session = session
        self.lang = session.lang
        self.overview = OverviewController(session)
        self.detail = ShedDetailController(session)
        self.alerts = AlertsController(session)
        self.harvest = HarvestController(session)
        self.settings_ctl = SettingsController(session)
        self.cjk_font: str | None = None
        self.live: LiveFeed | None = None
        self._live_enabled = live_updates
        self._refresh_s, self._retry_s = refresh_s, retry_s
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fieldline-api")
        self._freshness: tuple[int | None, bool, str | None] = (None, False, None)
        self._busy_lock = threading.Lock()
        self.last_error: str | None = None
        self._refresh_trigger = Clock.create_trigger(lambda _dt: self.refresh_overview(), 1.0)

    # ------------------------------------------------------------ lifecycle

    def build(self) -> screens.RootLayout:
        self.cjk_font = register_fonts()
        for name in KV_FILES:
            Builder.load_file(str(VIEWS_DIR / name))
        root = screens.RootLayout()
        self.root = root
        cached = self.overview.state()  # empty until loaded; the cache makes the first load fast offline
        root.ids.overview.show_state(self, cached)
        root.ids.settings.show_session(self)
        Clock.schedule_once(lambda _dt: self.refresh_overview(), 0)
        Clock.schedule_interval(self._tick, 1.0)
        Clock.schedule_interval(self._poll_live, 0.25)
        Clock.schedule_interval(lambda _dt: self._periodic(), self._refresh_s)
        Clock.schedule_interval(lambda _dt: self._retry(), self._retry_s)
        if self._live_enabled:
            self.live = LiveFeed(lambda: websocket_url(self.session.api_url) if self.session.api_url else None,
                                 token_provider=lambda: self.session.token)
            self.live.start()
        self._tick(0)
        return root

    def on_stop(self) -> None:
        if self.live is not None:
            self.live.stop()
        self._worker.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------ helpers for kv and screens

    def tr(self, key: str, _lang: str | None = None, **values: object) -> str:
        """Translate; kv passes ``app.lang`` as the second argument so labels re-evaluate on a switch."""
        return self.session.t(key, **values)

    def tr_or(self, key: str, fallback: str, **values: object) -> str:
        return self.session.t(key, **values) if key in TABLE else fallback

    def overview_tile(self, shed_id: str) -> ShedTile | None:
        return self.overview.tile(shed_id)

    def run_bg(self, call: Callable[[], Any], done: Callable[[Any], None]) -> Future[Any]:
        """Run a controller call on the worker thread; ``done(result)`` runs on the UI thread."""
        with self._busy_lock:
            self.busy += 1

        def finished(future: Future[Any]) -> None:
            def apply(_dt: float) -> None:
                with self._busy_lock:
                    self.busy -= 1
                try:
                    result = future.result()
                except Exception as exc:  # noqa: BLE001 - show any failure instead of crashing the app
                    log.exception("background call failed")
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    self._tick(0)
                    return
                done(result)

            Clock.schedule_once(apply, 0)

        future = self._worker.submit(call)
        future.add_done_callback(finished)
        return future

    def _set_freshness(self, fetched_ms: int | None, offline: bool, error: str | None) -> None:
        self._freshness = (fetched_ms, offline, error)
        self.offline = offline
        self._tick(0)

    def _tick(self, _dt: float) -> None:
        fetched_ms, offline, error = self._freshness
        age = self.session.translator.age((now_ms() - fetched_ms) / 1000 if fetched_ms else None)
        if not self.session.api_url or not self.session.token:
            text = self.tr("not_logged_in")
        elif offline:
            text = self.tr("offline_banner", age=age) if fetched_ms else self.tr("offline_no_cache")
        elif error:
            text = self.tr("error_prefix", message=error)
        else:
            text = f"{self.tr('live')} · {self.tr('updated_ago', age=age)}"
        pending = self.session.pending_count
        if pending:
            text += f" · {self.tr('queued_actions', n=pending)}"
        self.status_text = text

    # ------------------------------------------------------------ navigation and loading

    def show(self, name: str) -> None:
        self.root.ids.sm.current = name
        loaders = {"overview": self.refresh_overview, "alerts": self.refresh_alerts, "plan": self.refresh_plan,
                   "settings": lambda: self.root.ids.settings.show_session(self)}
        loaders.get(name, lambda: None)()

    def on_tile_release(self, tile: widgets.ShedTile) -> None:
        self.open_shed(tile.shed_id)

    def open_shed(self, shed_id: str) -> None:
        self.root.ids.sm.current = "detail"
        self.run_bg(lambda: self.detail.load(shed_id), self._show_detail)

    def _show_detail(self, state: Any) -> None:
        self.root.ids.detail.show_state(self, state)
        self._set_freshness(state.fetched_ms, state.offline, state.error)

    def refresh_overview(self) -> None:
        self.root.ids.overview.busy = True
        self.run_bg(self.overview.load, self._show_overview)

    def _show_overview(self, state: Any) -> None:
        screen = self.root.ids.overview
        screen.busy = False
        screen.show_state(self, state)
        self.badge = state.alert_badge
        self._set_freshness(state.fetched_ms, state.offline, state.error)

    def set_filter_mine(self, mine: bool) -> None:
        self.run_bg(lambda: self.overview.set_filter_mine(mine), self._show_overview)

    def refresh_alerts(self) -> None:
        self.run_bg(self.alerts.load, self._show_alerts)

    def _show_alerts(self, state: Any) -> None:
        self.root.ids.alerts.show_state(self, state)
        self.badge = state.summary.active
        self._set_freshness(state.fetched_ms, state.offline, state.error)

    def toggle_cleared_alerts(self) -> None:
        self._show_alerts(self.alerts.set_show_cleared(not self.alerts.show_cleared))

    def acknowledge(self, alert_id: str) -> None:
        self.run_bg(lambda: self.alerts.acknowledge(alert_id), self._show_alerts)

    def refresh_plan(self) -> None:
        self.run_bg(self.harvest.load, self._show_plan)

    def _show_plan(self, state: Any) -> None:
        self.root.ids.plan.show_state(self, state)
        self._set_freshness(state.fetched_ms, state.offline, state.error)

    def set_done(self, shed_id: str, done: bool) -> None:
        self.run_bg(lambda: self.harvest.set_done(shed_id, done), self._show_plan)

    def replan(self) -> None:
        self.run_bg(self.harvest.replan, self._show_plan)

    # ------------------------------------------------------------ settings

    def login(self, url: str, username: str, password: str) -> None:
        def done(result: Any) -> None:
            screen = self.root.ids.settings
            screen.login_text = result.message
            if result.ok:
                screen.ids.password.text = ""
                self.refresh_overview()

        self.run_bg(lambda: self.settings_ctl.login(username, password, url or None), done)

    def logout(self) -> None:
        self.settings_ctl.logout()
        self.root.ids.settings.show_session(self)
        self._tick(0)

    def set_operator(self, name: str) -> None:
        self.settings_ctl.set_operator(name.strip() or None)
        self.root.ids.settings.login_text = self.tr("saved")

    def set_language(self, lang: str) -> None:
        self.settings_ctl.set_language(lang)
        self.lang = lang
        ids = self.root.ids
        for screen in (ids.overview, ids.detail, ids.alerts, ids.plan):
            if screen.last_state is not None:
                screen.show_state(self, screen.last_state)
        ids.settings.show_session(self)
        self._tick(0)

    # ------------------------------------------------------------ live updates and retries

    def _poll_live(self, _dt: float) -> None:
        if self.live is None:
            return
        messages = self.live.drain()
        if not messages:
            return
        changed = refresh = alerts = False
        for message in messages:
            outcome = self.overview.apply_live(message)
            changed |= outcome == "changed"
            refresh |= outcome == "refresh"
            alerts |= message.get("type") == "alert"
        if changed:
            self.root.ids.overview.show_state(self, self.overview.state())
        if refresh:
            self._refresh_trigger()
        if alerts and self.root.ids.sm.current == "alerts":
            self.refresh_alerts()

    def _periodic(self) -> None:
        current = self.root.ids.sm.current
        if current == "detail" and self.root.ids.detail.last_state is not None:
            self.open_shed(self.root.ids.detail.last_state.shed_id)
        elif current != "settings":
            self.show(current)

    def _retry(self) -> None:
        """While offline or with queued actions, try the outbox; when it drains, reload what is shown."""
        if self.busy or not (self.offline or self.session.pending_count):
            return

        was_offline = self.offline

        def done(result: Any) -> None:
            if result.sent or (was_offline and self.session.online):
                self._periodic()
            self._tick(0)

        self.run_bg(self.session.reconnect, done)
