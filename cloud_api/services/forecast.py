"""Pick-ready forecast per shed and for the site, from what the system itself stored.

The forecast starts from the shed's latest counts (a count after a harvest today gives tomorrow's smaller
number) and predicts the mornings of the next 3 calendar days. Inputs, all read from the store: each
morning's stage counts (the counts at ``Settings.forecast_observe_hour``
local time, summed over the shed's cameras and rows), the harvest done marks (a shed marked done on a day
was picked after that morning's count), the shed's hourly temperatures, and a temperature forecast when one
was given (``PUT /climate/temperature-forecast``; otherwise the last day's temperatures are assumed to
repeat). The model is ``services.ripening``; each shed is refitted once per day (``FitCache``), or sooner
when a new morning's count arrives.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date as Date
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from cloud_api.core.config import Settings
from cloud_api.services.ripening import (
    TEMP_SD_ASSUMED,
    TEMP_SD_FORECAST,
    DayForecast,
    Fit,
    Observation,
    Reason,
    ThermalTime,
    assumed_temperatures,
    explain,
    fit,
    reason,
    fold,
    predict,
    stage_groups,
    thermal_rate,
)
from cloud_api.services.sheds import UnknownShed
from cloud_api.storage.base import Store

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
HISTORY_DAYS = 28
HORIZON_DAYS = 3
DEFAULT_TEMP_C = 20.0
RIPENESS_ORDERS = (
    ("green", "breaker", "turning", "pink", "light_red", "red"),  # USDA stages
    ("green", "half_ripe", "ripe"),  # collapsed by a model card
)


@dataclass(frozen=True)
class ForecastDay:
    date: str
    ts_ms: int
    ready: int
    low: int
    high: int


@dataclass(frozen=True)
class ShedForecast:
    shed: str
    site: str | None
    base_ts_ms: int  # the newest count the forecast starts from
    base_ready: int
    days: list[ForecastDay]
    explanation: str
    model: Fit
    history_days: int
    temperature_source: str  # "forecast" | "recent" | "none"
    reason: Reason | None = None  # the explanation's numbers


@dataclass(frozen=True)
class SiteForecast:
    days: list[ForecastDay]
    sheds: list[ShedForecast] = field(default_factory=list)


class NoCounts(LookupError):
    """The shed has no count yet to forecast from."""


class FitCache:
    """Fits by (shed, local date, base morning): refitted once a day, or when a newer morning count arrives."""

    def __init__(self) -> None:
        self._fits: dict[str, tuple[tuple[str, int], Fit]] = {}
        self._lock = threading.Lock()

    def get(self, shed: str, key: tuple[str, int]) -> Fit | None:
        with self._lock:
            found = self._fits.get(shed)
            return found[1] if found and found[0] == key else None

    def put(self, shed: str, key: tuple[str, int], model: Fit) -> None:
        with self._lock:
            self._fits[shed] = (key, model)


class ForecastService:
    def __init__(self, store: Store, settings: Settings, cache: FitCache | None = None) -> None:
        self._store = store
        self._settings = settings
        self._cache = cache or FitCache()
        self._tz = ZoneInfo(settings.timezone)

    # ------------------------------------------------------------ public

    def shed(self, shed_id: str, now_ms: int) -> ShedForecast:
        if not self._store.shed_exists(shed_id):
            raise UnknownShed(shed_id)
        mornings = self._mornings(now_ms)
        counts = [self._store.shed_counts_at(ts, DAY_MS) for _, ts in mornings]
        done = {day: {d.shed for d in self._store.list_done(day.isoformat())} for day, _ in mornings}
        result = self._forecast(shed_id, mornings, counts, done, now_ms, self._latest(now_ms))
        if result is None:
            raise NoCounts(shed_id)
        return result

    def site(self, now_ms: int) -> SiteForecast:
        """Every shed's forecast (sheds without a morning count are left out) and their sum per day.

        The site band adds the sheds' half-widths in quadrature (their errors are treated as independent;
        a shared weather error makes the true band somewhat wider)."""
        mornings = self._mornings(now_ms)
        counts = [self._store.shed_counts_at(ts, DAY_MS) for _, ts in mornings]
        done = {day: {d.shed for d in self._store.list_done(day.isoformat())} for day, _ in mornings}
        sheds = [s.id for s in self._store.list_sheds()]
        latest = self._latest(now_ms)
        results = [r for s in sheds if (r := self._forecast(s, mornings, counts, done, now_ms, latest)) is not None]
        days = []
        for k in range(HORIZON_DAYS):
            per = [r.days[k] for r in results if len(r.days) > k]
            if not per:
                continue
            ready = sum(d.ready for d in per)
            below = math.sqrt(sum((d.ready - d.low) ** 2 for d in per))
            above = math.sqrt(sum((d.high - d.ready) ** 2 for d in per))
            days.append(ForecastDay(date=per[0].date, ts_ms=per[0].ts_ms, ready=ready,
                                    low=max(0, round(ready - below)), high=round(ready + above)))
        return SiteForecast(days=days, sheds=results)

    # ------------------------------------------------------------ assembly

    def _morning(self, day: Date) -> int:
        local = datetime.combine(day, time(self._settings.forecast_observe_hour), tzinfo=self._tz)
        return int(local.timestamp() * 1000)

    def _mornings(self, now_ms: int) -> list[tuple[Date, int]]:
        """(date, morning ms) of the last HISTORY_DAYS mornings up to now, oldest first."""
        today = datetime.fromtimestamp(now_ms / 1000, self._tz).date()
        last = today if self._morning(today) <= now_ms else today - timedelta(days=1)
        return [(d, self._morning(d)) for d in (last - timedelta(days=i) for i in range(HISTORY_DAYS - 1, -1, -1))]

    def _latest(self, now_ms: int) -> dict[str, tuple[int, dict[str, int]]]:
        """Per shed: (newest count time, the counts now) over the keys that counted in the last day."""
        now_counts = self._store.shed_counts_at(now_ms, DAY_MS)
        newest: dict[str, int] = {}
        for item in self._store.latest_counts():
            if item.ts_ms <= now_ms:
                newest[item.shed] = max(newest.get(item.shed, 0), item.ts_ms)
        return {shed: (newest[shed], counts) for shed, counts in now_counts.items() if shed in newest}

    def _labels(self, shed: str) -> tuple[list[str], list[str], list[str]]:
        ready = self._settings.pick_ready_labels_by_shed.get(shed, self._settings.pick_ready_labels)
        order = next((o for o in RIPENESS_ORDERS if set(ready) <= set(o)), RIPENESS_ORDERS[1])
        return stage_groups(order, ready)

    def _forecast(self, shed: str, mornings: Sequence[tuple[Date, int]], counts: Sequence[dict[str, dict[str, int]]],
                  done: dict[Date, set[str]], now_ms: int,
                  latest: dict[str, tuple[int, dict[str, int]]]) -> ShedForecast | None:
        groups = self._labels(shed)
        history = []
        for (day, ts), by_shed in zip(mornings, counts, strict=True):
            if shed in by_shed:
                early, pre, ready = fold(by_shed[shed], groups)
                history.append(Observation(ts_ms=ts, early=early, pre=pre, ready=ready,
                                           harvested_after=shed in done[day]))
        if shed in latest and (not history or latest[shed][0] > history[-1].ts_ms):
            ts, now_counts = latest[shed]
            early, pre, ready = fold(now_counts, groups)
            base = Observation(ts_ms=ts, early=early, pre=pre, ready=ready)
        elif history:
            base = history[-1]
        else:
            return None
        fit_key_ts = history[-1].ts_ms if history else 0
        base_day = datetime.fromtimestamp(base.ts_ms / 1000, self._tz).date()
        targets = [self._morning(base_day + timedelta(days=k)) for k in range(1, HORIZON_DAYS + 1)]
        site = self._store.shed_sites().get(shed)
        clock, source, first_measured = self._clock(shed, site, mornings[0][1] - DAY_MS, base.ts_ms, targets[-1])
        key = (datetime.fromtimestamp(now_ms / 1000, self._tz).date().isoformat(), fit_key_ts)
        model = self._cache.get(shed, key)
        if model is None:
            model = fit(history or [base], clock)
            self._cache.put(shed, key, model)
        predicted = predict(base, model, targets, clock,
                            temp_sd=TEMP_SD_FORECAST if source == "forecast" else TEMP_SD_ASSUMED)
        week_before = (clock(base.ts_ms - 14 * DAY_MS, base.ts_ms - 7 * DAY_MS)
                       if first_measured <= base.ts_ms - 14 * DAY_MS + HOUR_MS else 0.0)  # only when measured
        last_week = clock(base.ts_ms - 7 * DAY_MS, base.ts_ms)
        line = explain(model, base, predicted, last_week, week_before)
        why = reason(model, base, predicted, last_week, week_before)
        if source == "none":
            line += f"; no temperature sensor in this shed: {DEFAULT_TEMP_C:g} °C assumed"
        days = [self._day(f, base_day + timedelta(days=k + 1)) for k, f in enumerate(predicted)]
        return ShedForecast(shed=shed, site=site, base_ts_ms=base.ts_ms, base_ready=round(base.ready), days=days,
                            explanation=line, model=model, history_days=len(history), temperature_source=source,
                            reason=why)

    @staticmethod
    def _day(f: DayForecast, day: Date) -> ForecastDay:
        return ForecastDay(date=day.isoformat(), ts_ms=f.ts_ms, ready=round(f.ready), low=math.floor(f.low),
                           high=math.ceil(f.high))

    def _clock(self, shed: str, site: str | None, start_ms: int, base_ms: int,
               end_ms: int) -> tuple[ThermalTime, str, int]:
        """Thermal time over [start, end]: measured hours up to ``base_ms``, then forecast or assumed ones;
        also where it came from and the first measured hour (earlier hours repeat the first reading)."""
        start = start_ms // HOUR_MS * HOUR_MS
        hours = (end_ms - start) // HOUR_MS + 2
        series = self._store.climate_series(shed, "temperature", start, base_ms, HOUR_MS)
        measured: dict[int, float] = {(b.ts_ms - start) // HOUR_MS: b.mean for b in series}
        base_hour = (base_ms - start) // HOUR_MS
        if not measured:
            return _hourly_clock(start, [DEFAULT_TEMP_C] * hours), "none", end_ms
        past: list[float] = []
        last = measured[min(measured)]
        for h in range(base_hour):
            last = measured.get(h, last)  # a gap keeps the last reading
            past.append(last)
        given = self._store.temperature_forecast(site, shed, base_ms, end_ms + HOUR_MS) if site else []
        future_hours = hours - base_hour
        if given:
            future = _interpolate([(ts - start) / HOUR_MS for ts, _ in given], [v for _, v in given],
                                  range(base_hour, hours))
            source = "forecast"
        else:
            future = assumed_temperatures(past, future_hours)
            source = "recent"
        return _hourly_clock(start, past + future), source, start + min(measured) * HOUR_MS


def _interpolate(xs: Sequence[float], ys: Sequence[float], at: range) -> list[float]:
    out = []
    for x in at:
        if x <= xs[0]:
            out.append(ys[0])
        elif x >= xs[-1]:
            out.append(ys[-1])
        else:
            i = next(j for j in range(1, len(xs)) if xs[j] >= x)
            w = (x - xs[i - 1]) / (xs[i] - xs[i - 1]) if xs[i] > xs[i - 1] else 1.0
            out.append(ys[i - 1] + w * (ys[i] - ys[i - 1]))
    return out


def _hourly_clock(start_ms: int, temps: Sequence[float]) -> ThermalTime:
    """(from_ms, to_ms) -> °C·d from hourly temperatures starting at ``start_ms`` (hours interpolated)."""
    cumulative = [0.0]
    for t in temps:
        cumulative.append(cumulative[-1] + thermal_rate(t) / 24.0)

    def at(ms: int) -> float:
        h = min(max((ms - start_ms) / HOUR_MS, 0.0), len(cumulative) - 1.0)
        i = int(h)
        if i >= len(cumulative) - 1:
            return cumulative[-1]
        return cumulative[i] + (cumulative[i + 1] - cumulative[i]) * (h - i)

    return lambda a, b: at(b) - at(a)
