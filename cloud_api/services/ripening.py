"""The ripening model: pick-ready fruit in the next days from observed stage counts and thermal time.

Pure Python and numpy-free on purpose (a shed's history is a few dozen numbers); no storage, no FastAPI.

Thermal time. Tomato colour development runs on temperature: no progress below about 10 °C, faster as it
gets warmer, slowed again above about 30 °C. ``thermal_rate(T)`` is that curve in °C·d per day
(0 below 10 °C, T - 10 up to 30 °C, then falling linearly to 0 at 40 °C); the thermal time between two
moments is its mean over the hours between them, so a warm afternoon counts more than a cold night.

Stages. The counts of one shed are folded into three compartments along the ripening order: ``ready``
(the pick-ready labels), ``pre`` (the one or two stages just before them, e.g. half_ripe, or pink and
turning) and ``early`` (everything greener). Between two observations with thermal time D (°C·d):

    moved  = a · D · pre         (pre -> ready: a is the share of pre fruits turning ready per °C·d)
    ready += moved               (harvest takes fruit out of ready; the forecast assumes no picking)
    pre   += c · D · early - moved   (c: the share of early fruits entering pre per °C·d)

Fit per shed from its own history: least squares in (a, c) over every pair of consecutive mornings, using
the ready equation only where no harvest happened in between (a harvest empties ``ready``; it never
touches ``pre``), and the pre equation everywhere. A weak ridge pulls (a, c) towards site-typical values
so a shed with a short or flat history still gets a sensible model. Refit whenever the history grows.

Band: the 80 % band is ±1.28 σ, with σ² = k·s² + (0.06·forecast)² + (a·pre·u·k)², s the shed's one-step
residual of the ready equation (counts), the second term the counting error of the cameras (a few % per day)
and the third the temperature ahead being unknown: u °C of daily-mean error per day ahead
(TEMP_SD_FORECAST when a forecast was given, TEMP_SD_ASSUMED when the last day is assumed to repeat).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

BASE_C = 10.0
OPTIMUM_C = 30.0
ZERO_C = 40.0
DEFAULT_A = 1 / 70  # pre -> ready per °C·d: about a sixth of the half-ripe fruits a day at 22 °C
DEFAULT_C = 1 / 900  # early -> pre per °C·d
RIDGE = 0.5  # strength of the pull towards the defaults, in "transitions' worth" of evidence
Z80 = 1.2816
COUNT_ERROR = 0.06
TEMP_SD_FORECAST = 0.5  # °C per day ahead, with a temperature forecast
TEMP_SD_ASSUMED = 2.0  # °C per day ahead, when the last day's temperatures are assumed to repeat

ThermalTime = Callable[[int, int], float]  # (from_ms, to_ms) -> °C·d between the two moments


def thermal_rate(temp_c: float) -> float:
    """Development rate at ``temp_c`` in °C·d per day."""
    if temp_c <= BASE_C:
        return 0.0
    if temp_c <= OPTIMUM_C:
        return temp_c - BASE_C
    return max(0.0, (OPTIMUM_C - BASE_C) * (ZERO_C - temp_c) / (ZERO_C - OPTIMUM_C))


@dataclass(frozen=True)
class Observation:
    """One morning's counts of a shed, folded into compartments; ``harvested_after``: picked before the next."""

    ts_ms: int
    early: float
    pre: float
    ready: float
    harvested_after: bool = False


@dataclass(frozen=True)
class Fit:
    a: float  # pre -> ready per °C·d
    c: float  # early -> pre per °C·d
    residual: float  # one-step residual of the ready equation, fruits (standard deviation)
    transitions: int  # consecutive mornings used for the ready equation
    pace_per_day: float  # recent share of pre fruits turning ready per day (a x recent °C·d a day)


@dataclass(frozen=True)
class DayForecast:
    ts_ms: int
    ready: float
    low: float
    high: float
    thermal_time: float  # °C·d from the base observation to this day


def stage_groups(order: Sequence[str], ready_labels: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
    """(early, pre, ready) labels: ``pre`` is the (up to two) stages just before the first pick-ready one.

    With the collapsed labels green / half_ripe / ripe that is early=[green], pre=[half_ripe], ready=[ripe];
    with the six USDA stages and ready=[light_red, red]: pre=[turning, pink]. Labels outside ``order`` are
    ignored (not ripeness stages).
    """
    ready = [label for label in order if label in set(ready_labels)]
    first = min((order.index(label) for label in ready), default=len(order))
    width = 1 if first <= 2 else 2
    pre = list(order[max(0, first - width):first])
    early = list(order[:max(0, first - width)])
    return early, pre, ready


def fold(counts: dict[str, int], groups: tuple[list[str], list[str], list[str]]) -> tuple[float, float, float]:
    early, pre, ready = groups
    return (float(sum(counts.get(x, 0) for x in early)), float(sum(counts.get(x, 0) for x in pre)),
            float(sum(counts.get(x, 0) for x in ready)))


def _solve2(m: list[list[float]], v: list[float]) -> tuple[float, float]:
    det = m[0][0] * m[1][1] - m[0][1] * m[1][0]
    if abs(det) < 1e-12:
        return DEFAULT_A, DEFAULT_C
    return (v[0] * m[1][1] - m[0][1] * v[1]) / det, (m[0][0] * v[1] - m[1][0] * v[0]) / det


def fit(history: Sequence[Observation], thermal_time: ThermalTime) -> Fit:
    """Least-squares (a, c) of one shed from consecutive observations (see the module docstring)."""
    rows: list[tuple[float, float, float]] = []  # (x_a, x_c, y): y = x_a * a + x_c * c
    ready_rows: list[tuple[float, float]] = []  # (D * pre, observed gain of ready)
    scale = max(1.0, sum(o.pre for o in history) / max(1, len(history)))
    days = []
    for before, after in zip(history, history[1:]):
        dd = thermal_time(before.ts_ms, after.ts_ms)
        days.append((after.ts_ms - before.ts_ms) / 86_400_000)
        if dd <= 0:
            continue
        if not before.harvested_after:
            rows.append((dd * before.pre, 0.0, after.ready - before.ready))
            ready_rows.append((dd * before.pre, after.ready - before.ready))
        rows.append((dd * before.pre, -dd * before.early, before.pre - after.pre))
    # ridge towards the defaults, weighted like RIDGE transitions of a typical shed
    weight_a = RIDGE * (12 * scale) ** 2
    weight_c = RIDGE * (12 * scale) ** 2
    m = [[weight_a, 0.0], [0.0, weight_c * (DEFAULT_A / DEFAULT_C) ** 2]]
    v = [weight_a * DEFAULT_A, weight_c * (DEFAULT_A / DEFAULT_C) ** 2 * DEFAULT_C]
    for xa, xc, y in rows:
        m[0][0] += xa * xa
        m[0][1] += xa * xc
        m[1][0] += xc * xa
        m[1][1] += xc * xc
        v[0] += xa * y
        v[1] += xc * y
    a, c = _solve2(m, v)
    a, c = min(max(a, 0.0), 0.2), min(max(c, 0.0), 0.02)
    residuals = [y - a * x for x, y in ready_rows]
    floor = 1.0 + 0.03 * scale  # few transitions: do not claim more certainty than this
    spread = math.sqrt(sum(r * r for r in residuals) / len(residuals)) if len(residuals) >= 3 else 0.0
    recent = history[-4:]
    if len(recent) >= 2:
        span_days = max(1e-9, (recent[-1].ts_ms - recent[0].ts_ms) / 86_400_000)
        dd_day = thermal_time(recent[0].ts_ms, recent[-1].ts_ms) / span_days
    else:
        dd_day = 12.0
    return Fit(a=a, c=c, residual=max(spread, floor), transitions=len(ready_rows), pace_per_day=min(1.0, a * dd_day))


def predict(base: Observation, model: Fit, targets: Sequence[int], thermal_time: ThermalTime,
            step_ms: int = 3_600_000 * 6, temp_sd: float = 0.0) -> list[DayForecast]:
    """Pick-ready fruit at each target time (ascending), assuming no picking after ``base``.

    The compartments are stepped every ``step_ms`` (6 h) so that a fruit entering ``pre`` early on can still
    turn ready within the horizon.
    """
    early, pre, ready = base.early, base.pre, base.ready
    t = base.ts_ms
    out: list[DayForecast] = []
    total_dd = 0.0
    for k, target in enumerate(targets, start=1):
        while t < target:
            nxt = min(target, t + step_ms)
            dd = thermal_time(t, nxt)
            total_dd += dd
            moved = min(pre, model.a * dd * pre)
            entered = min(early, model.c * dd * early)
            ready += moved
            pre += entered - moved
            early -= entered
            t = nxt
        days = max(1.0, (target - base.ts_ms) / 86_400_000)
        weather = model.a * base.pre * temp_sd * days
        sigma = math.sqrt(days * model.residual ** 2 + (COUNT_ERROR * ready) ** 2 + weather ** 2)
        out.append(DayForecast(ts_ms=target, ready=ready, low=max(0.0, ready - Z80 * sigma), high=ready + Z80 * sigma,
                               thermal_time=total_dd))
        del k
    return out


def persistence(history: Sequence[Observation], horizons: int) -> list[float]:
    """Baseline: today's pick-ready stays as it is."""
    return [history[-1].ready] * horizons


def linear_trend(history: Sequence[Observation], horizons: int) -> list[float]:
    """Baseline: the straight line through the last three mornings, extended (never below zero)."""
    last = history[-3:]
    if len(last) < 2:
        return persistence(history, horizons)
    n = len(last)
    mean_x = (n - 1) / 2
    mean_y = sum(o.ready for o in last) / n
    slope = sum((i - mean_x) * (o.ready - mean_y) for i, o in enumerate(last)) / sum((i - mean_x) ** 2 for i in range(n))
    return [max(0.0, last[-1].ready + slope * k) for k in range(1, horizons + 1)]


@dataclass(frozen=True)
class Reason:
    """What the one-line explanation says, as numbers (the phone app words it in its own language)."""

    week_change_pct: int | None  # thermal time of the last 7 days vs the 7 before, %; None: not measured
    nearly_ripe: int  # fruits in ``pre`` at the base count
    share_tomorrow_pct: int  # of them, the share expected to turn pick-ready by tomorrow morning
    gain_tomorrow: int  # pick-ready tomorrow minus pick-ready at the base count
    degree_days_tomorrow: float  # °C·d until tomorrow morning


def reason(model: Fit, base: Observation, forecast: Sequence[DayForecast], dd_last_week: float,
           dd_week_before: float) -> Reason:
    change = round((dd_last_week / dd_week_before - 1) * 100) if dd_week_before > 0 else None
    tomorrow = forecast[0]
    return Reason(week_change_pct=change, nearly_ripe=round(base.pre),
                  share_tomorrow_pct=round(min(1.0, model.a * tomorrow.thermal_time) * 100),
                  gain_tomorrow=round(tomorrow.ready - base.ready), degree_days_tomorrow=round(tomorrow.thermal_time, 1))


def explain(model: Fit, base: Observation, forecast: Sequence[DayForecast], dd_last_week: float,
            dd_week_before: float) -> str:
    """One line: how warm it is against last week and what drives tomorrow's number."""
    if not forecast:
        return "no forecast: no count yet"
    why = reason(model, base, forecast, dd_last_week, dd_week_before)
    if why.week_change_pct is not None:
        change = why.week_change_pct
        mood = "warm week" if change > 10 else "cool week" if change < -10 else "steady week"
        pace = f"{mood}: {change:+d} % vs last week's pace"
    else:
        pace = "first week of climate data"
    return (f"{pace}; {why.nearly_ripe} nearly ripe fruits, {why.share_tomorrow_pct} % of them ready by tomorrow "
            f"({why.gain_tomorrow:+d}) at {why.degree_days_tomorrow:.1f} °C·d")


def assumed_temperatures(past_hourly: Sequence[float], hours: int, keep: float = 1.0) -> list[float]:
    """Hourly temperatures to assume when no forecast is given: the last day's shape, its level drifting back
    to the week's mean by ``keep`` per day. Default 1.0 (the last day repeated): on bench/forecast.py's
    weather, drifting back did worse (+3 d MAPE 22.1 % with keep 0.9, 22.7 % with 0.8, against 21.7 %)."""
    if not past_hourly:
        return [20.0] * hours
    last = list(past_hourly[-24:])
    week = list(past_hourly[-24 * 7:])
    last_mean, week_mean = sum(last) / len(last), sum(week) / len(week)
    shape = [t - last_mean for t in last]
    out = []
    for h in range(hours):
        level = week_mean + (last_mean - week_mean) * keep ** ((h + 1) / 24)
        out.append(level + shape[h % len(shape)])
    return out
