"""Simulated tomato sheds that ripen by temperature, for the forecast's tests and bench/forecast.py.

What is simulated (the truth the forecast is measured against; the forecast never reads it):

- Weather (fieldline.greenhouse_weather, as in the demo): a site-wide daily anomaly (AR(1), warm spells and
  cold snaps), a day/night cycle peaking at 14:00, and a per-shed offset (some sheds run hot). Hourly
  temperatures per shed.
- Fruit: a standing population at every maturity, plus fruit set every day (Poisson). Each fruit has its own
  speed (log-normal, sd 0.15) and matures by a temperature curve that is NOT the forecast's: it rises a
  little faster than linear above 20 °C and falls from 29 °C to zero at 38 °C.
- Stages by maturity: green < 0.84 <= half_ripe < 0.93 <= ripe (pick-ready).
- Harvests: a shed is picked on about half the days (after the morning count): 95 % of its ripe fruits go.
- Cameras: each fruit is seen with probability ~0.92 (a per-day factor on top), a seen fruit is put in the
  neighbouring stage 5 % of the time, and a few false detections are added.

``truth(d, k)``: pick-ready fruits on the morning of day d + k if nobody picks after the count of day d.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fieldline.greenhouse_weather import shed_temperatures, site_weather

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
STAGES = ("green", "half_ripe", "ripe")
HALF, RIPE = 0.84, 0.93
FRUIT_DD = 760.0  # °C·d from fruit set to maturity 1.0 at the simulator's rate
MORNING_HOUR = 7


def sim_rate(temp: np.ndarray) -> np.ndarray:
    """The simulator's own development curve (°C·d per day), deliberately unlike the forecast's."""
    t = np.asarray(temp, dtype=float)
    rising = np.clip(t - 10.0, 0.0, None) * (1.0 + 0.012 * np.clip(t - 20.0, 0.0, None))
    falling = np.clip((38.0 - t) / 9.0, 0.0, 1.0)
    return np.where(t <= 29.0, rising, rising * falling)


@dataclass
class SimShed:
    id: str
    temps: np.ndarray  # hourly °C from day 0 00:00, (days + horizon) * 24
    counts: list[dict[str, int]] = field(default_factory=list)  # observed, per morning
    harvested: list[bool] = field(default_factory=list)  # picked after the morning count of day d
    true_ready: list[int] = field(default_factory=list)  # true pick-ready, per morning
    _truth: np.ndarray | None = None  # [day, k] pick-ready with no picking after day's count
    morning_maturity: list[np.ndarray] = field(default_factory=list)  # per morning, every fruit so far
    morning_alive: list[np.ndarray] = field(default_factory=list)  # per morning: not yet picked

    def truth(self, day: int, k: int) -> int:
        assert self._truth is not None
        return int(self._truth[day, k])


def simulate_shed(rng: np.random.Generator, shed_id: str, site_daily: np.ndarray, history_days: int,
                  horizon: int = 3) -> SimShed:
    total_days = len(site_daily)
    temps = shed_temperatures(rng, site_daily)
    shed = SimShed(id=shed_id, temps=temps)

    standing = int(rng.integers(500, 1300))
    set_rate = standing / 55.0 * rng.uniform(0.7, 1.3)
    maturity = rng.uniform(0.0, 1.0, standing) * 0.97
    speed = rng.lognormal(0.0, 0.15, standing)
    alive = np.ones(standing, dtype=bool)
    rate = sim_rate(temps) / 24.0 / FRUIT_DD  # maturity per hour for speed 1
    morning_maturity: list[np.ndarray] = []
    morning_alive: list[np.ndarray] = []
    pick_prob = rng.uniform(0.35, 0.65)
    for day in range(total_days):
        start = day * 24 + MORNING_HOUR
        morning_maturity.append(maturity.copy())
        morning_alive.append(alive.copy())
        if day < history_days:
            shed.true_ready.append(int(np.sum(alive & (maturity >= RIPE))))
            shed.counts.append(_observe(rng, maturity[alive]))
            picked = bool(rng.random() < pick_prob)
            shed.harvested.append(picked)
            if picked:
                ripe = alive & (maturity >= RIPE)
                alive &= ~(ripe & (rng.random(maturity.size) < 0.95))
        # a day of growth, hour by hour, then today's fruit set (new green fruit)
        day_rate = rate[start:start + 24].sum() if start + 24 <= rate.size else rate[start:].sum()
        maturity = maturity + speed * day_rate
        new = int(rng.poisson(set_rate))
        maturity = np.concatenate([maturity, np.zeros(new)])
        speed = np.concatenate([speed, rng.lognormal(0.0, 0.15, new)])
        alive = np.concatenate([alive, np.ones(new, dtype=bool)])
    truth = np.zeros((history_days, horizon + 1), dtype=int)
    for day in range(history_days):
        seen = morning_alive[day]
        n = seen.size
        for k in range(horizon + 1):
            if day + k < total_days:
                truth[day, k] = int(np.sum(seen & (morning_maturity[day + k][:n] >= RIPE)))
    shed._truth = truth
    shed.morning_maturity, shed.morning_alive = morning_maturity[:history_days], morning_alive[:history_days]
    return shed


def _observe(rng: np.random.Generator, maturity: np.ndarray) -> dict[str, int]:
    stage = np.where(maturity >= RIPE, 2, np.where(maturity >= HALF, 1, 0))
    seen = rng.random(stage.size) < np.clip(0.92 * rng.normal(1.0, 0.03), 0.0, 1.0)
    stage = stage[seen]
    confuse = rng.random(stage.size) < 0.05
    shift = np.where(rng.random(stage.size) < 0.5, -1, 1)
    stage = np.where(confuse, np.clip(stage + shift, 0, 2), stage)
    counts = {name: int(np.sum(stage == i)) for i, name in enumerate(STAGES)}
    for name in STAGES:
        counts[name] += int(rng.poisson(0.01 * counts[name] + 0.3))
    return counts


def simulate_site(seed: int, sheds: int, history_days: int = 28, horizon: int = 3,
                  mean_c: float = 21.0) -> list[SimShed]:
    rng = np.random.default_rng(seed)
    weather = site_weather(rng, history_days + horizon + 1, mean_c)
    return [simulate_shed(rng, f"shed-{i + 1}", weather, history_days, horizon) for i in range(sheds)]
