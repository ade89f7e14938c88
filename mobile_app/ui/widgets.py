"""Widget classes: properties and behaviour only; their layout lives in ``views/widgets.kv``."""

from __future__ import annotations

from kivy.graphics import Color, Line, Mesh, Rectangle
from kivy.metrics import dp
from kivy.properties import (
    BooleanProperty,
    ColorProperty,
    ListProperty,
    NumericProperty,
    StringProperty,
)
from kivy.uix.behaviors import ButtonBehavior
from kivy.uix.boxlayout import BoxLayout
from kivy.uix.label import Label
from kivy.uix.scrollview import ScrollView
from kivy.uix.widget import Widget

from mobile_app.ui import theme


class ShedTile(ButtonBehavior, BoxLayout):
    """One shed on the overview grid; the screen sets the texts and the urgency."""

    shed_id = StringProperty("")
    title = StringProperty("")
    big_text = StringProperty("")
    trend_arrow = StringProperty("")  # drawn with theme.SYMBOL_FONT
    sub_text = StringProperty("")
    camera_text = StringProperty("")
    tomorrow_text = StringProperty("")  # forecast pick-ready tomorrow, e.g. "tomorrow 57"
    urgency = StringProperty("unknown")
    bg_color = ColorProperty(theme.URGENCY["unknown"][0])
    fg_color = ColorProperty(theme.URGENCY["unknown"][1])
    mine = BooleanProperty(False)

    def on_urgency(self, _instance: object, value: str) -> None:
        self.bg_color, self.fg_color = theme.URGENCY.get(value, theme.URGENCY["unknown"])


class NavButton(ButtonBehavior, BoxLayout):
    text = StringProperty("")
    target = StringProperty("")
    active = BooleanProperty(False)
    badge = NumericProperty(0)


class CountBar(BoxLayout):
    """A label, a horizontal bar scaled to ``fraction`` and the number."""

    label = StringProperty("")
    value = NumericProperty(0)
    value_text = StringProperty("")  # shown instead of the whole number when set, e.g. "1.5 h"
    fraction = NumericProperty(0.0)
    highlight = BooleanProperty(False)


class AlertRow(BoxLayout):
    alert_id = StringProperty("")
    severity = StringProperty("info")
    severity_color = ColorProperty(theme.SEVERITY["info"])
    head_text = StringProperty("")
    message_text = StringProperty("")
    state_text = StringProperty("")
    can_ack = BooleanProperty(False)
    ack_text = StringProperty("")

    def on_severity(self, _instance: object, value: str) -> None:
        self.severity_color = theme.SEVERITY.get(value, theme.SEVERITY["info"])


class OperatorCard(BoxLayout):
    name_text = StringProperty("")
    summary_text = StringProperty("")
    detail_text = StringProperty("")
    is_me = BooleanProperty(False)


class PlanShedRow(BoxLayout):
    shed_id = StringProperty("")
    title = StringProperty("")
    done = BooleanProperty(False)
    button_text = StringProperty("")


class WrapLabel(Label):
    """A label that wraps to its width and grows to its text's height."""


class TrendChart(Widget):
    """Line chart of ``values`` (pick-ready per bucket) drawn with canvas instructions; ``points`` is the
    flat list the controller computed relative to (0, 0, 1, 1) so the widget only scales it."""

    points = ListProperty([])  # [fx0, fy0, fx1, fy1, ...] with fx, fy in 0..1
    peak = NumericProperty(0)
    day_ticks = ListProperty([])  # fractions along x where a day starts

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.bind(pos=self._redraw, size=self._redraw, points=self._redraw, day_ticks=self._redraw)

    def _redraw(self, *_args: object) -> None:
        pad = dp(6)
        x, y = self.x + pad, self.y + pad
        w, h = max(1.0, self.width - 2 * pad), max(1.0, self.height - 2 * pad)
        self.canvas.clear()
        with self.canvas:
            Color(*theme.SURFACE)
            Rectangle(pos=self.pos, size=self.size)
            Color(*theme.CHART_GRID)
            for i in range(5):
                gy = y + h * i / 4
                Line(points=[x, gy, x + w, gy], width=1)
            for fx in self.day_ticks:
                Line(points=[x + fx * w, y, x + fx * w, y + h], width=1)
            Color(*theme.INK)
            Line(rectangle=(x, y, w, h), width=1.2)
            if len(self.points) >= 2:
                scaled = [x + v * w if i % 2 == 0 else y + v * h for i, v in enumerate(self.points)]
                Color(*theme.CHART_LINE)
                if len(scaled) >= 4:
                    Line(points=scaled, width=dp(2))
                for i in range(0, len(scaled), 2):
                    Rectangle(pos=(scaled[i] - dp(2.5), scaled[i + 1] - dp(2.5)), size=(dp(5), dp(5)))


class ClimateChart(Widget):
    """Temperature over 7 days: the hourly min-max band filled, the mean as a line, day ticks and a grid.
    ``line`` and ``band`` come from ``models.forecast.ClimateSeries.chart`` in the unit box."""

    line = ListProperty([])
    band = ListProperty([])  # upper edge left to right, then lower edge right to left
    day_ticks = ListProperty([])

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.bind(pos=self._redraw, size=self._redraw, line=self._redraw, band=self._redraw, day_ticks=self._redraw)

    def _redraw(self, *_args: object) -> None:
        pad = dp(6)
        x, y = self.x + pad, self.y + pad
        w, h = max(1.0, self.width - 2 * pad), max(1.0, self.height - 2 * pad)
        self.canvas.clear()
        with self.canvas:
            Color(*theme.SURFACE)
            Rectangle(pos=self.pos, size=self.size)
            n = len(self.band) // 4  # points per edge
            if n >= 2:
                upper, lower = self.band[:2 * n], self.band[2 * n:]
                lower_lr = [v for i in range(n - 1, -1, -1) for v in lower[2 * i:2 * i + 2]]
                vertices: list[float] = []
                indices: list[int] = []
                for i in range(n):  # a strip of quads between the edges
                    vertices += [x + upper[2 * i] * w, y + upper[2 * i + 1] * h, 0, 0,
                                 x + lower_lr[2 * i] * w, y + lower_lr[2 * i + 1] * h, 0, 0]
                    if i:
                        a = 2 * (i - 1)
                        indices += [a, a + 1, a + 2, a + 1, a + 3, a + 2]
                Color(*theme.CLIMATE_BAND)
                Mesh(vertices=vertices, indices=indices, mode="triangles")
            Color(*theme.CHART_GRID)
            for i in range(5):
                gy = y + h * i / 4
                Line(points=[x, gy, x + w, gy], width=1)
            for fx in self.day_ticks:
                Line(points=[x + fx * w, y, x + fx * w, y + h], width=1)
            Color(*theme.INK)
            Line(rectangle=(x, y, w, h), width=1.2)
            if len(self.line) >= 4:
                Color(*theme.CLIMATE_LINE)
                Line(points=[x + v * w if i % 2 == 0 else y + v * h for i, v in enumerate(self.line)], width=dp(1.6))


class ForecastBars(Widget):
    """The next mornings as bars with the 80 % band as a whisker; today's count as a dashed line.
    ``bars``: [(f_ready, f_low, f_high, f_today), ...] in the unit box (``ShedForecastView.bars``)."""

    bars = ListProperty([])

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.bind(pos=self._redraw, size=self._redraw, bars=self._redraw)

    def _redraw(self, *_args: object) -> None:
        pad = dp(6)
        x, y = self.x + pad, self.y + pad
        w, h = max(1.0, self.width - 2 * pad), max(1.0, self.height - 2 * pad)
        self.canvas.clear()
        with self.canvas:
            Color(*theme.SURFACE)
            Rectangle(pos=self.pos, size=self.size)
            Color(*theme.INK)
            Line(points=[x, y, x + w, y], width=1.2)
            if not self.bars:
                return
            slot = w / len(self.bars)
            today = self.bars[0][3]
            Color(*theme.TODAY_LINE)
            # Kivy draws dashes only on 1 px lines
            Line(points=[x, y + today * h, x + w, y + today * h], width=1, dash_length=dp(6), dash_offset=dp(4))
            for i, (ready, low, high, _) in enumerate(self.bars):
                cx = x + slot * (i + 0.5)
                bw = slot * 0.5
                Color(*theme.FORECAST_BAR)
                Rectangle(pos=(cx - bw / 2, y), size=(bw, ready * h))
                Color(*theme.FORECAST_BAND)
                Line(points=[cx, y + low * h, cx, y + high * h], width=dp(1.5))
                for edge in (low, high):
                    Line(points=[cx - bw / 4, y + edge * h, cx + bw / 4, y + edge * h], width=dp(1.5))


class PullScrollView(ScrollView):
    """A ScrollView that fires ``on_pull`` when the user drags down past the top (pull to refresh)."""

    pull_distance = NumericProperty(dp(90))
    pulling = BooleanProperty(False)

    __events__ = ("on_pull",)

    def on_touch_move(self, touch: object) -> bool:
        handled = super().on_touch_move(touch)
        if self.collide_point(*touch.opos) and self.scroll_y >= 0.999:  # type: ignore[attr-defined]
            self.pulling = (touch.oy - touch.y) > self.pull_distance  # type: ignore[attr-defined]
        return handled

    def on_touch_up(self, touch: object) -> bool:
        fire = (
            self.collide_point(*touch.opos)  # type: ignore[attr-defined]
            and self.scroll_y >= 0.999
            and (touch.oy - touch.y) > self.pull_distance  # type: ignore[attr-defined]
            and not touch.ud.get("pull_fired")  # type: ignore[attr-defined]
        )
        handled = super().on_touch_up(touch)
        self.pulling = False
        if fire:
            touch.ud["pull_fired"] = True  # type: ignore[attr-defined]
            self.dispatch("on_pull")
        return handled

    def on_pull(self) -> None:
        pass
