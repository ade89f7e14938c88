"""Screens: turn a controller's state into widget properties. Layout is in ``views/*.kv``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kivy.factory import Factory
from kivy.properties import BooleanProperty, ColorProperty, StringProperty
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.label import Label
from kivy.uix.screenmanager import Screen

from mobile_app.cache import now_ms
from mobile_app.controllers import AlertsState, DetailState, OverviewState, PlanState
from mobile_app.controllers.detail import WrongCountResult
from mobile_app.models.sheds import PICK_READY_LABELS, ordered_labels
from mobile_app.ui import theme
from mobile_app.ui.widgets import AlertRow, CountBar, OperatorCard, PlanShedRow, ShedTile, WrapLabel

if TYPE_CHECKING:
    from mobile_app.ui.app import FieldLineApp


class RootLayout(BoxLayout):
    pass


class OverviewScreen(Screen):
    filter_mine = BooleanProperty(False)
    busy = BooleanProperty(False)
    summary_text = StringProperty("")

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tiles: dict[str, ShedTile] = {}
        self.last_state: OverviewState | None = None

    def show_state(self, app: FieldLineApp, state: OverviewState) -> None:
        """Update tiles in place (new sheds get a tile, gone ones are removed) so refreshes stay cheap."""
        self.last_state = state
        self.filter_mine = state.filter_mine
        grid = self.ids.grid
        wanted = [t.id for t in state.tiles]
        if list(self.tiles) != wanted:
            grid.clear_widgets()
            old, self.tiles = self.tiles, {}
            for shed_id in wanted:
                tile = old.get(shed_id) or ShedTile(shed_id=shed_id, on_release=app.on_tile_release)
                self.tiles[shed_id] = tile
                grid.add_widget(tile)
        for shed in state.tiles:
            tile = self.tiles[shed.id]
            tile.title = shed.name if len(shed.name) <= 18 else shed.name[:16] + "..."  # one line on a phone
            tile.big_text = str(shed.pick_ready)
            tile.trend_arrow = shed.trend_arrow
            alerts = app.tr("open_alerts_short", n=shed.open_alerts) if shed.open_alerts else app.tr("no_alerts_short")
            tile.sub_text = f"{app.tr('pick_ready')} · {alerts}"
            tile.camera_text = app.tr(f"camera_{shed.camera_state}" if shed.camera_state in
                                      ("online", "offline", "unknown") else "camera_unknown")
            ahead = state.tomorrow.get(shed.id)
            tile.tomorrow_text = app.tr("tomorrow_short", n=ahead.ready) if ahead else ""
            tile.urgency = app.overview.urgency(shed)
            tile.mine = shed.id in state.mine and not state.filter_mine
        shown = app.tr("shed_count", n=len(state.tiles))
        self.summary_text = f"{shown} · {app.tr('legend')}"


class DetailScreen(Screen):
    title_text = StringProperty("")
    pick_text = StringProperty("")
    chart_caption = StringProperty("")
    has_trend = BooleanProperty(False)
    has_forecast = BooleanProperty(False)
    has_climate = BooleanProperty(False)
    forecast_explanation = StringProperty("")
    climate_caption = StringProperty("")
    header_color = ColorProperty(theme.URGENCY["unknown"][0])
    header_fg = ColorProperty(theme.URGENCY["unknown"][1])
    wrong_step = StringProperty("")  # "" | "confirm" | "sending" | "sent" | "queued" | "refused"
    wrong_text = StringProperty("")

    last_state: DetailState | None = None
    wrong_result: WrongCountResult | None = None

    def ask_wrong_count(self) -> None:
        """First tap on "Count looks wrong?": ask before sending (a picture costs the farm's uplink)."""
        self.wrong_step = "confirm"
        self.wrong_text = ""

    def cancel_wrong_count(self) -> None:
        self.wrong_step = ""

    def send_wrong_count(self, app: FieldLineApp) -> None:
        if self.last_state is None or self.wrong_step == "sending":
            return
        self.wrong_step = "sending"
        shed_id = self.last_state.shed_id
        app.run_bg(lambda: app.detail.report_wrong_count(shed_id), lambda result: self.show_wrong_count(app, result))

    def show_wrong_count(self, app: FieldLineApp, result: WrongCountResult) -> None:
        self.wrong_result = result
        self.wrong_step = result.outcome
        if result.outcome == "refused":
            self.wrong_text = app.tr("wrong_count_refused", reason=result.detail or "")
        else:
            self.wrong_text = app.tr(f"wrong_count_{result.outcome}")

    def show_state(self, app: FieldLineApp, state: DetailState) -> None:
        if self.last_state is None or self.last_state.shed_id != state.shed_id:
            self.wrong_step, self.wrong_text = "", ""  # another shed: the question starts afresh
        self.last_state = state
        detail = state.detail
        self.title_text = app.tr("detail_title", name=detail.name if detail else state.shed_id)
        tile = app.overview_tile(state.shed_id)
        urgency = app.overview.urgency(tile) if tile else "unknown"
        self.header_color, self.header_fg = theme.URGENCY[urgency]
        self.pick_text = f"{app.tr('pick_ready_long')}: {detail.pick_ready if detail else '-'}"
        box = self.ids.ripeness_box
        box.clear_widgets()
        counts = detail.counts if detail else {}
        top = max(counts.values(), default=0) or 1
        for label in ordered_labels(counts):
            box.add_widget(CountBar(label=app.session.translator.label(label), value=counts[label],
                                    fraction=counts[label] / top, highlight=label in PICK_READY_LABELS))
        rows = self.ids.rows_box
        rows.clear_widgets()
        row_top = max((r.total for r in detail.rows), default=0) or 1 if detail else 1
        for row in detail.rows if detail else []:
            text = f"{row.row} · {row.pick_ready} {app.tr('pick_ready')}"
            rows.add_widget(CountBar(label=text, value=row.total, fraction=row.total / row_top))
        chart = self.ids.chart
        chart.points = state.trend.chart_line(0, 0, 1, 1, state.trend_from_ms, state.trend_to_ms)
        span = state.trend_to_ms - state.trend_from_ms
        chart.day_ticks = [i / 7 for i in range(1, 7)] if span > 0 else []
        self.has_trend = bool(state.trend.points)
        self.chart_caption = app.tr("chart_caption", peak=state.trend.peak) if state.trend.points else ""
        self._show_forecast(app, state)
        self._show_climate(app, state)
        self.ids.snapshot.source = state.snapshot_path or ""
        cams = self.ids.cameras_box
        cams.clear_widgets()
        for cam in detail.cameras if detail else []:
            seen = (now_ms() - cam.last_seen_ms) / 1000 if cam.last_seen_ms else None
            state_key = f"camera_{cam.state}" if cam.state in ("online", "offline", "unknown") else "camera_unknown"
            label = WrapLabel(text=f"{cam.device} / {cam.camera}: {app.tr(state_key)} · "
                                   f"{app.tr('last_seen', age=app.session.translator.age(seen))}",
                              font_size="15sp", bold=cam.state != "online")
            if cam.state == "offline":
                label.color = theme.OFFLINE_BG
            cams.add_widget(label)
        self.ids.scroll.scroll_y = 1


    def _show_forecast(self, app: FieldLineApp, state: DetailState) -> None:
        forecast = state.forecast
        self.has_forecast = forecast is not None
        self.ids.forecast_bars.bars = forecast.bars() if forecast else []
        labels = self.ids.forecast_labels
        labels.clear_widgets()
        for day in forecast.days if forecast else []:
            labels.add_widget(Label(text=app.tr("forecast_day", day=day.date[5:], ready=day.ready, low=day.low,
                                                high=day.high), font_size="13sp", bold=True, color=theme.INK))
        if forecast:
            source = app.tr_or(f"forecast_source_{forecast.temperature_source}", forecast.temperature_source)
            why = forecast.reason
            if why is None:  # an API without the numbers: its English line
                line = forecast.explanation
            else:
                pct = f"{why.week_change_pct:+d}" if why.week_change_pct is not None else ""
                line = (app.tr(why.mood, pct=pct) if pct else app.tr(why.mood)) + "; " + app.tr(
                    "reason_tail", n=why.nearly_ripe, share=why.share_tomorrow_pct, gain=f"{why.gain_tomorrow:+d}",
                    dd=f"{why.degree_days_tomorrow:.1f}")
            self.forecast_explanation = f"{line} ({source})"
        else:
            self.forecast_explanation = ""

    def _show_climate(self, app: FieldLineApp, state: DetailState) -> None:
        climate = state.climate
        self.has_climate = bool(climate and climate.temperature)
        line, band = climate.chart() if climate else ([], [])
        chart = self.ids.climate_chart
        chart.line, chart.band = line, band
        chart.day_ticks = [i / 7 for i in range(1, 7)] if line else []
        latest = climate.latest if climate else None
        if climate is None or latest is None:
            self.climate_caption = ""
            return
        low, high = min(p.low for p in climate.temperature), max(p.high for p in climate.temperature)
        rh = climate.latest_humidity
        extra = app.tr("climate_humidity", rh=round(rh)) if rh is not None else ""
        if climate.silent_sensors:
            extra += app.tr("climate_silent", n=climate.silent_sensors)
        self.climate_caption = app.tr("climate_caption", low=round(low), high=round(high), now=round(latest.mean, 1),
                                      rh=extra)


class AlertsScreen(Screen):
    show_cleared = BooleanProperty(False)
    empty = BooleanProperty(False)
    last_state: AlertsState | None = None

    def show_state(self, app: FieldLineApp, state: AlertsState) -> None:
        self.last_state = state
        self.show_cleared = state.show_cleared
        self.empty = not state.items
        box = self.ids.list
        box.clear_widgets()
        tr, age = app.tr, app.session.translator.age
        for alert in state.items:
            where = alert.zone_id or alert.device
            count = f" {tr('alert_count', n=alert.count)}" if alert.count > 1 else ""
            if alert.ack_pending:
                status = tr("ack_pending")
            elif alert.acknowledged_by:
                seen = (now_ms() - alert.acknowledged_ms) / 1000 if alert.acknowledged_ms else None
                status = tr("acked_by", who=alert.acknowledged_by, age=age(seen))
            else:
                status = app.tr_or(f"state_{alert.state}", alert.state)
            status += f" · {age((now_ms() - alert.last_ts_ms) / 1000)}"
            box.add_widget(AlertRow(
                alert_id=alert.id, severity=alert.severity, can_ack=alert.needs_ack, ack_text=tr("ack"),
                head_text=f"{app.tr_or('severity_' + alert.severity, alert.severity)} · {where} · {alert.code}{count}",
                message_text=alert.message, state_text=status,
            ))


class PlanScreen(Screen):
    title_text = StringProperty("")
    last_state: PlanState | None = None

    def show_state(self, app: FieldLineApp, state: PlanState) -> None:
        self.last_state = state
        body = self.ids.body
        body.clear_widgets()
        plan = state.plan
        tr = app.tr
        if plan is None:
            self.title_text = tr("plan_title", date="")
            body.add_widget(WrapLabel(text=tr("plan_none"), font_size="17sp", bold=True))
            return
        self.title_text = tr("plan_title", date=plan.date)
        total = len(plan.all_sheds)
        done = len([s for s in plan.all_sheds if s in plan.done])
        body.add_widget(WrapLabel(text=f"{tr('plan_progress', done=done, total=total)} · "
                                       f"{tr('makespan', minutes=round(plan.makespan_minutes))}",
                                  font_size="16sp", bold=True))
        self._show_hours(app, state, len(plan.operators))
        names = {t.id: t for t in (app.overview_tile(s) for s in plan.all_sheds) if t is not None}
        # the split first (one card per operator), then each operator's sheds, the phone owner's first
        for op in plan.operators:
            me = op.name == state.me
            body.add_widget(OperatorCard(
                name_text=" ".join([op.name] + ([tr("you")] if me else []) + ["·", tr("shed_count", n=len(op.sheds))]),
                is_me=me, summary_text=tr("operator_summary", fruits=op.fruits, minutes=round(op.total_minutes)),
                detail_text=tr("operator_detail", pick=round(op.pick_minutes), walk=round(op.walk_minutes)),
            ))
        for op in sorted(plan.operators, key=lambda o: o.name != state.me):
            me = op.name == state.me
            body.add_widget(Factory.SectionTitle(text=f"{op.name} {tr('you') if me else ''}".strip()))
            for shed in op.sheds:
                is_done = shed in plan.done
                tile = names.get(shed)
                label = tile.name if tile else shed
                extra = f" · {tile.pick_ready} {tr('pick_ready')}" if tile else ""
                if is_done:
                    extra += f" · {tr('done_label')}"
                body.add_widget(PlanShedRow(shed_id=shed, title=label + extra, done=is_done,
                                            button_text=tr("undo_done") if is_done else tr("mark_done")))
        for line in plan.explanation:
            body.add_widget(WrapLabel(text="· " + line, font_size="14sp", color=theme.INK_SOFT))

    def _show_hours(self, app: FieldLineApp, state: PlanState, operators: int) -> None:
        """Hours of work today (counts) and the next days (forecast), as bars scaled to the busiest day."""
        if not state.outlook:
            return
        body, tr = self.ids.body, app.tr
        body.add_widget(Factory.SectionTitle(text=tr("hours_title")))
        top = max(d.total_hours for d in state.outlook) or 1.0
        for day in state.outlook:
            name = tr("hours_today") if day.source == "counts" else day.date[5:]
            body.add_widget(CountBar(label=name, value=day.total_hours, value_text=f"{day.total_hours:.1f} h",
                                     fraction=day.total_hours / top, highlight=day.source == "counts"))
            text = tr("hours_day", day=name, fruits=day.fruits, hours=day.total_hours, span=day.makespan_hours,
                      n=operators)
            if day.source == "forecast":
                text += " · " + tr("hours_band", low=day.low, high=day.high)
            body.add_widget(WrapLabel(text=text, font_size="14sp", color=theme.INK_SOFT))


class SettingsScreen(Screen):
    login_text = StringProperty("")
    font_text = StringProperty("")

    def show_session(self, app: FieldLineApp) -> None:
        session = app.session
        self.ids.server_url.text = session.api_url or ""
        if session.username:
            self.ids.username.text = session.username
        self.ids.operator.text = session.operator or ""
        if session.username:
            self.login_text = app.tr("logged_in_as", user=session.username, role=session.role or "-")
        elif session.token:
            self.login_text = app.tr("logged_in_as", user="token", role="-")
        else:
            self.login_text = app.tr("not_logged_in")
        self.font_text = "" if app.cjk_font else app.tr("font_missing")
