"""Climate chart, pick-ready forecast bars, tomorrow per shed and hours per day (plain Python, no Kivy).

Geometry is computed here in the unit box (0..1 on both axes) so the widgets only scale it and the
tests can check it without a window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class ClimatePoint:
    ts_ms: int
    mean: float
    low: float
    high: float


@dataclass(frozen=True)
class ClimateSeries:
    """Hourly temperature (°C) and humidity (%) of a shed, from ``GET /sheds/{id}/climate``."""

    from_ms: int
    to_ms: int
    temperature: list[ClimatePoint]
    humidity: list[ClimatePoint]
    sensors: int
    silent_sensors: int

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> ClimateSeries:
        def points(key: str) -> list[ClimatePoint]:
            return sorted((ClimatePoint(int(p["ts_ms"]), float(p["mean"]), float(p["low"]), float(p["high"]))
                           for p in data.get(key) or []), key=lambda p: p.ts_ms)

        sensors = data.get("sensors") or []
        return cls(from_ms=int(data.get("from_ms") or 0), to_ms=int(data.get("to_ms") or 0),
                   temperature=points("temperature"), humidity=points("humidity"), sensors=len(sensors),
                   silent_sensors=sum(1 for s in sensors if s.get("silent")))

    def temperature_range(self) -> tuple[float, float]:
        """The chart's y range in °C: the data's, widened to whole multiples of 5 and at least 10 °C tall."""
        if not self.temperature:
            return 10.0, 30.0
        low = min(p.low for p in self.temperature)
        high = max(p.high for p in self.temperature)
        bottom, top = 5 * (low // 5), 5 * -(-high // 5)
        if top - bottom < 10:
            top = bottom + 10
        return float(bottom), float(top)

    def chart(self) -> tuple[list[float], list[float]]:
        """(mean line, low-high band polygon) as flat [fx, fy, ...] lists in the unit box."""
        if not self.temperature or self.to_ms <= self.from_ms:
            return [], []
        bottom, top = self.temperature_range()
        span, height = self.to_ms - self.from_ms, top - bottom

        def fx(ts: int) -> float:
            return min(1.0, max(0.0, (ts - self.from_ms) / span))

        def fy(v: float) -> float:
            return min(1.0, max(0.0, (v - bottom) / height))

        line = [c for p in self.temperature for c in (fx(p.ts_ms), fy(p.mean))]
        upper = [c for p in self.temperature for c in (fx(p.ts_ms), fy(p.high))]
        lower = [c for p in reversed(self.temperature) for c in (fx(p.ts_ms), fy(p.low))]
        return line, upper + lower

    @property
    def latest(self) -> ClimatePoint | None:
        return self.temperature[-1] if self.temperature else None

    @property
    def latest_humidity(self) -> float | None:
        return self.humidity[-1].mean if self.humidity else None


@dataclass(frozen=True)
class ForecastBar:
    date: str
    ready: int
    low: int
    high: int


@dataclass(frozen=True)
class Reason:
    """The numbers behind the forecast's one-line explanation (``reason`` in the API)."""

    week_change_pct: int | None
    nearly_ripe: int
    share_tomorrow_pct: int
    gain_tomorrow: int
    degree_days_tomorrow: float

    @classmethod
    def from_api(cls, data: dict[str, Any] | None) -> Reason | None:
        if not data:
            return None
        change = data.get("week_change_pct")
        return cls(week_change_pct=None if change is None else int(change), nearly_ripe=int(data["nearly_ripe"]),
                   share_tomorrow_pct=int(data["share_tomorrow_pct"]), gain_tomorrow=int(data["gain_tomorrow"]),
                   degree_days_tomorrow=float(data["degree_days_tomorrow"]))

    @property
    def mood(self) -> str:
        """i18n key of the week's part: reason_warm / reason_cool / reason_steady / reason_first."""
        if self.week_change_pct is None:
            return "reason_first"
        return "reason_warm" if self.week_change_pct > 10 else "reason_cool" if self.week_change_pct < -10 \
            else "reason_steady"


@dataclass(frozen=True)
class ShedForecastView:
    """The next 3 mornings of one shed, from ``GET /sheds/{id}/forecast``."""

    base_ready: int
    days: list[ForecastBar]
    explanation: str
    temperature_source: str
    reason: Reason | None = None

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> ShedForecastView:
        days = [ForecastBar(str(d["date"]), int(d["ready"]), int(d["low"]), int(d["high"])) for d in data.get("days") or []]
        return cls(base_ready=int(data.get("base_ready") or 0), days=days,
                   explanation=str(data.get("explanation") or ""),
                   temperature_source=str(data.get("temperature_source") or ""),
                   reason=Reason.from_api(data.get("reason")))

    def bars(self) -> list[tuple[float, float, float, float]]:
        """Per day (f_ready, f_low, f_high, f_today) in the unit box: today's count is the first bar's base
        line. The top is the largest band end, so every band fits."""
        top = max([d.high for d in self.days] + [self.base_ready, 1])
        return [(d.ready / top, d.low / top, d.high / top, self.base_ready / top) for d in self.days]


@dataclass(frozen=True)
class Tomorrow:
    ready: int
    low: int
    high: int


def tomorrow_by_shed(data: dict[str, Any] | None, today: str) -> dict[str, Tomorrow]:
    """Each shed's forecast for the first morning after ``today`` (YYYY-MM-DD), from ``GET /forecast``."""
    result: dict[str, Tomorrow] = {}
    for shed in (data or {}).get("sheds") or []:
        for day in shed.get("days") or []:
            if str(day.get("date")) > today:
                result[str(shed["shed"])] = Tomorrow(int(day["ready"]), int(day["low"]), int(day["high"]))
                break
    return result


@dataclass(frozen=True)
class DayWork:
    date: str
    source: str  # counts | forecast
    fruits: int
    low: int
    high: int
    pick_hours: float
    total_hours: float
    makespan_hours: float

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> DayWork:
        return cls(date=str(data["date"]), source=str(data.get("source") or "forecast"), fruits=int(data["fruits"]),
                   low=int(data.get("low", data["fruits"])), high=int(data.get("high", data["fruits"])),
                   pick_hours=float(data.get("pick_hours") or 0), total_hours=float(data.get("total_hours") or 0),
                   makespan_hours=float(data.get("makespan_hours") or 0))


def outlook_from_api(data: list[dict[str, Any]] | None) -> list[DayWork]:
    return [DayWork.from_api(d) for d in data or []]
