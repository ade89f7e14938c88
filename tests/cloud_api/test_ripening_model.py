"""The ripening model: temperature curve, stage grouping, fitting, prediction, and a small backtest."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from cloud_api.services.ripening import (
    Fit,
    Observation,
    explain,
    fit,
    linear_trend,
    persistence,
    predict,
    stage_groups,
    thermal_rate,
)
from tests.support.ripening_sim import simulate_site

DAY = 86_400_000


def load_bench() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "bench" / "forecast.py"
    spec = importlib.util.spec_from_file_location("bench_forecast", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["bench_forecast"] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def constant_clock(dd_per_day: float):  # noqa: ANN201
    return lambda a, b: dd_per_day * (b - a) / DAY


def test_thermal_rate_has_no_progress_when_cold_and_slows_when_hot() -> None:
    assert thermal_rate(5.0) == thermal_rate(10.0) == 0.0
    assert thermal_rate(15.0) < thermal_rate(25.0) < thermal_rate(30.0) == 20.0
    assert thermal_rate(35.0) == pytest.approx(10.0) and thermal_rate(41.0) == 0.0


def test_stage_groups_for_collapsed_and_usda_labels() -> None:
    assert stage_groups(["green", "half_ripe", "ripe"], ["ripe"]) == (["green"], ["half_ripe"], ["ripe"])
    usda = ["green", "breaker", "turning", "pink", "light_red", "red"]
    assert stage_groups(usda, ["light_red", "red"]) == (["green", "breaker"], ["turning", "pink"],
                                                        ["light_red", "red"])


def test_fit_recovers_the_rates_of_a_noise_free_shed_and_ignores_harvest_days() -> None:
    a, c, dd = 0.02, 0.001, 10.0
    early, pre, ready = 1000.0, 120.0, 30.0
    history = []
    for day in range(20):
        picked = day % 3 == 2
        history.append(Observation(ts_ms=day * DAY, early=early, pre=pre, ready=ready, harvested_after=picked))
        moved, entered = a * dd * pre, c * dd * early
        ready = (0.0 if picked else ready) + moved  # a harvest empties ready before the night's ripening
        pre += entered - moved
        early += 20 - entered
    model = fit(history, constant_clock(dd))
    assert model.a == pytest.approx(a, rel=0.05) and model.c == pytest.approx(c, rel=0.1)
    assert model.transitions == 13  # 19 pairs, 6 of them across a harvest


def test_prediction_goes_faster_when_warmer_and_has_a_band() -> None:
    model = Fit(a=0.02, c=0.001, residual=4.0, transitions=10, pace_per_day=0.2)
    base = Observation(ts_ms=0, early=800, pre=100, ready=20)
    cool = predict(base, model, [DAY, 2 * DAY, 3 * DAY], constant_clock(4.0))
    warm = predict(base, model, [DAY, 2 * DAY, 3 * DAY], constant_clock(14.0))
    assert [f.ready for f in cool] == sorted(f.ready for f in cool)
    assert all(w.ready > c.ready for w, c in zip(warm, cool, strict=True))
    assert warm[0].ready == pytest.approx(20 + 100 * 0.02 * 14, rel=0.05)
    assert all(f.low < f.ready < f.high for f in warm)
    assert warm[2].high - warm[2].low > warm[0].high - warm[0].low
    line = explain(model, base, warm, dd_last_week=14 * 7, dd_week_before=10 * 7)
    assert line.startswith("warm week: +40 % vs last week's pace")


def test_baselines() -> None:
    history = [Observation(ts_ms=d * DAY, early=0, pre=0, ready=r) for d, r in enumerate([10, 12, 14])]
    assert persistence(history, 3) == [14, 14, 14]
    assert linear_trend(history, 3) == [16, 18, 20]


def test_simulated_truth_is_the_no_picking_counterfactual() -> None:
    (shed,) = simulate_site(3, 1, history_days=10)
    for day in range(10):
        assert shed.truth(day, 0) == shed.true_ready[day]
        assert shed.truth(day, 0) <= shed.truth(day, 1) <= shed.truth(day, 3)  # ripe fruit stays ripe unpicked
    assert any(shed.harvested) and not all(shed.harvested)


def test_backtest_beats_both_baselines_on_unseen_simulated_sheds() -> None:
    bench = load_bench()
    sheds = simulate_site(101, 12)  # a seed the bench does not use
    result = bench.backtest(sheds, np.random.default_rng(5), with_forecast=True)
    mape = result["mape"]
    for k in range(3):
        best = min(mape["persist"][k], mape["trend"][k])
        assert mape["model"][k] <= 0.7 * best, (k, mape)
    assert mape["model"][2] <= 16.0, mape
    assert all(60 <= c <= 97 for c in result["coverage"]), result["coverage"]
