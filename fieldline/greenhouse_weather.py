"""Simulated greenhouse climate: the temperature pattern the demo's sensors publish and the forecast tests'
simulated sheds ripen by (tests/support/ripening_sim.py), so both see the same kind of weather.

- Site weather: a daily mean temperature with AR(1) anomalies and the odd front (a warm spell or cold snap).
- Per shed: a fixed offset (a few sheds run 3 °C hot), a day/night cycle of 4..8 °C peaking at 14:00 and
  hourly noise.
- Humidity: relative humidity falls as the air warms over the day (1.5 % RH per °C above the day's mean)
  around a per-shed level of 62..74 %, within 35..98 %.

Everything is hourly from a day's 00:00 and drawn from one ``numpy.random.Generator``, in a fixed order, so
a seed gives the same weather everywhere.
"""

from __future__ import annotations

import math

import numpy as np

PEAK_HOUR = 14


def site_weather(rng: np.random.Generator, days: int, mean_c: float) -> np.ndarray:
    """Daily mean temperature of the site: AR(1) anomalies with occasional fronts (±5 °C)."""
    anomaly = np.zeros(days)
    value = 0.0
    for d in range(days):
        value = 0.8 * value + rng.normal(0.0, 1.6)
        if rng.random() < 0.06:
            value += rng.choice([-5.0, 5.0])  # a front comes through
        anomaly[d] = value
    return mean_c + anomaly


def shed_temperatures(rng: np.random.Generator, site_daily: np.ndarray) -> np.ndarray:
    """Hourly °C of one shed from the site's daily means: its offset, the day/night cycle, noise."""
    offset = rng.normal(0.0, 1.5) + (3.0 if rng.random() < 0.15 else 0.0)  # a few sheds run hot
    amplitude = rng.uniform(4.0, 8.0)
    hours = np.arange(len(site_daily) * 24)
    daily = np.repeat(site_daily, 24) + offset
    cycle = np.sin((hours % 24 - (PEAK_HOUR - 6)) / 24 * 2 * math.pi)
    return daily + amplitude * cycle + rng.normal(0, 0.5, hours.size)


def shed_humidity(rng: np.random.Generator, temps: np.ndarray) -> np.ndarray:
    """Hourly % RH of one shed from its hourly temperatures (drier when warmer than the day's mean)."""
    level = rng.uniform(62.0, 74.0)
    days = temps.size // 24
    day_mean = np.repeat(temps[:days * 24].reshape(days, 24).mean(axis=1), 24)
    day_mean = np.concatenate([day_mean, np.full(temps.size - day_mean.size, day_mean[-1] if days else 20.0)])
    rh = level - 1.5 * (temps - day_mean) + rng.normal(0.0, 1.5, temps.size)
    return np.clip(rh, 35.0, 98.0)
