"""Phone-app models of the climate chart, the forecast bars, tomorrow per tile and hours per day (no window)."""

from __future__ import annotations

import pytest

from mobile_app.i18n import TABLE
from mobile_app.models.forecast import ClimateSeries, DayWork, Reason, ShedForecastView, tomorrow_by_shed

H = 3_600_000


def climate(points: list[tuple[int, float, float, float]]) -> ClimateSeries:
    return ClimateSeries.from_api({
        "from_ms": 0, "to_ms": 10 * H,
        "temperature": [{"ts_ms": t, "mean": m, "low": lo, "high": hi, "n": 1} for t, m, lo, hi in points],
        "humidity": [{"ts_ms": 0, "mean": 60.0, "low": 60.0, "high": 60.0, "n": 1}],
        "sensors": [{"silent": False}, {"silent": True}],
    })


def test_climate_chart_geometry_in_the_unit_box() -> None:
    series = climate([(5 * H, 20.0, 18.0, 22.0), (0, 12.0, 11.0, 13.0), (10 * H, 26.0, 25.0, 27.0)])
    assert series.temperature_range() == (10.0, 30.0)
    line, band = series.chart()
    assert line == pytest.approx([0.0, 0.1, 0.5, 0.5, 1.0, 0.8])  # sorted by time, (v - 10) / 20
    assert band[:6] == pytest.approx([0.0, 0.15, 0.5, 0.6, 1.0, 0.85])  # upper edge left to right
    assert band[6:] == pytest.approx([1.0, 0.75, 0.5, 0.4, 0.0, 0.05])  # lower edge right to left
    assert series.latest is not None and series.latest.mean == 26.0
    assert (series.sensors, series.silent_sensors, series.latest_humidity) == (2, 1, 60.0)
    assert climate([]).chart() == ([], [])


def test_forecast_bars_fit_the_largest_band_end() -> None:
    view = ShedForecastView.from_api({"base_ready": 40, "explanation": "x", "temperature_source": "recent", "days": [
        {"date": "2026-12-08", "ready": 50, "low": 45, "high": 55},
        {"date": "2026-12-09", "ready": 60, "low": 50, "high": 80}]})
    assert view.bars() == [(50 / 80, 45 / 80, 55 / 80, 40 / 80), (60 / 80, 50 / 80, 1.0, 40 / 80)]


def test_tomorrow_is_the_first_day_after_today_and_hours_parse() -> None:
    data = {"sheds": [{"shed": "shed-1", "days": [{"date": "2026-12-07", "ready": 5, "low": 4, "high": 6},
                                                  {"date": "2026-12-08", "ready": 9, "low": 7, "high": 11}]},
                      {"shed": "shed-2", "days": []}]}
    found = tomorrow_by_shed(data, "2026-12-07")
    assert list(found) == ["shed-1"] and found["shed-1"].ready == 9
    assert tomorrow_by_shed(None, "2026-12-07") == {}
    day = DayWork.from_api({"date": "2026-12-08", "source": "forecast", "fruits": 720, "low": 700, "high": 750,
                            "pick_hours": 1.0, "total_hours": 1.4, "makespan_hours": 0.7})
    assert (day.fruits, day.total_hours, day.makespan_hours) == (720, 1.4, 0.7)


def test_new_strings_exist_in_both_languages() -> None:
    for key in ("forecast_3d", "climate_7d", "climate_caption", "tomorrow_short", "hours_title", "hours_day"):
        en, zh = TABLE[key]
        assert en and zh and en != zh


def test_reason_numbers_pick_the_weeks_wording() -> None:
    def reason(change: int | None) -> Reason:
        found = Reason.from_api({"week_change_pct": change, "nearly_ripe": 120, "share_tomorrow_pct": 14,
                                 "gain_tomorrow": 17, "degree_days_tomorrow": 11.2})
        assert found is not None
        return found

    assert [reason(c).mood for c in (18, -25, 4, None)] == ["reason_warm", "reason_cool", "reason_steady",
                                                            "reason_first"]
    assert Reason.from_api(None) is None
    view = ShedForecastView.from_api({"base_ready": 1, "days": [], "reason": {
        "week_change_pct": 18, "nearly_ripe": 120, "share_tomorrow_pct": 14, "gain_tomorrow": 17,
        "degree_days_tomorrow": 11.2}})
    assert view.reason == reason(18)
