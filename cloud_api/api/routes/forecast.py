"""Pick-ready forecast REST: one shed's next 3 days, and the site summary."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request, status
from pydantic import BaseModel, Field

from cloud_api.api.deps import HarvestServiceDep, SettingsDep, StoreDep
from cloud_api.services.forecast import FitCache, ForecastDay, ForecastService, NoCounts, ShedForecast
from cloud_api.services.sheds import UnknownShed

router = APIRouter(tags=["forecast"])


class ForecastDayOut(BaseModel):
    date: str = Field(description="Local date (Settings.timezone) of the morning forecast")
    ts_ms: int = Field(description="That morning at Settings.forecast_observe_hour, epoch ms")
    ready: int = Field(description="Pick-ready fruits expected that morning if nobody picks before")
    low: int = Field(description="Lower end of the 80 % band")
    high: int = Field(description="Upper end of the 80 % band")


class ForecastModelOut(BaseModel):
    a_per_degree_day: float = Field(description="Share of nearly ripe fruits turning pick-ready per °C·d")
    c_per_degree_day: float = Field(description="Share of green fruits turning nearly ripe per °C·d")
    transitions: int = Field(description="Mornings without a harvest in between used for the fit")
    residual: float = Field(description="One-step error of the fit, fruits")


class ReasonOut(BaseModel):
    week_change_pct: int | None = Field(description="Thermal time of the last 7 days vs the 7 before, %; null when"
                                                    " the week before was not measured")
    nearly_ripe: int = Field(description="Fruits one stage before pick-ready at the base count")
    share_tomorrow_pct: int = Field(description="Share of them expected to turn pick-ready by tomorrow morning, %")
    gain_tomorrow: int = Field(description="Pick-ready tomorrow minus pick-ready at the base count")
    degree_days_tomorrow: float = Field(description="Thermal time until tomorrow morning, °C·d")


class ShedForecastOut(BaseModel):
    shed: str
    site: str | None
    base_ts_ms: int = Field(description="The newest count the forecast starts from (the morning count or later)")
    base_ready: int = Field(description="Pick-ready fruits in that count")
    days: list[ForecastDayOut]
    explanation: str = Field(description="One line on why, e.g. 'warm week: +18 % vs last week's pace; ...'")
    reason: ReasonOut | None = Field(default=None, description="The explanation's numbers, to word it in another"
                                                               " language")
    temperature_source: str = Field(description="forecast (given), recent (last day repeated) or none (assumed)")
    history_days: int = Field(description="Mornings with counts used for the fit")
    model: ForecastModelOut


class DayWorkOut(BaseModel):
    date: str
    source: str = Field(description="counts (today, sheds marked done left out) or forecast")
    fruits: int = Field(description="Pick-ready fruits to pick that day")
    low: int = Field(description="Lower end of the forecast's 80 % band (= fruits for today)")
    high: int = Field(description="Upper end of the forecast's 80 % band (= fruits for today)")
    pick_hours: float = Field(description="Picking time for one person: fruits / Settings.harvest_pick_rate_per_min")
    total_hours: float = Field(description="Picking and walking, summed over the operators of the day's plan")
    makespan_hours: float = Field(description="Until the last operator is done, with Settings.harvest_operators")


class SiteForecastOut(BaseModel):
    days: list[ForecastDayOut] = Field(description="Sum over the sheds; band combined in quadrature")
    sheds: list[ShedForecastOut]


def get_forecast_service(request: Request, store: StoreDep, settings: SettingsDep) -> ForecastService:
    cache = getattr(request.app.state, "forecast_fits", None)
    if cache is None:  # one cache per app: fits are refitted once a day (see services.forecast.FitCache)
        cache = request.app.state.forecast_fits = FitCache()
    return ForecastService(store, settings, cache)


ForecastDep = Annotated[ForecastService, Depends(get_forecast_service)]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _day(d: ForecastDay) -> ForecastDayOut:
    return ForecastDayOut(date=d.date, ts_ms=d.ts_ms, ready=d.ready, low=d.low, high=d.high)


def shed_forecast_out(f: ShedForecast) -> ShedForecastOut:
    return ShedForecastOut(
        shed=f.shed, site=f.site, base_ts_ms=f.base_ts_ms, base_ready=f.base_ready, days=[_day(d) for d in f.days],
        explanation=f.explanation, temperature_source=f.temperature_source, history_days=f.history_days,
        reason=ReasonOut(**vars(f.reason)) if f.reason else None,
        model=ForecastModelOut(a_per_degree_day=round(f.model.a, 5), c_per_degree_day=round(f.model.c, 6),
                               transitions=f.model.transitions, residual=round(f.model.residual, 2)),
    )


@router.get("/sheds/{shed_id}/forecast", response_model=ShedForecastOut,
            responses={404: {"description": "Unknown shed, or no morning count yet"}},
            summary="Pick-ready fruits for each of the next 3 mornings, with an 80 % band and a one-line reason")
def shed_forecast(service: ForecastDep, shed_id: Annotated[str, Path(min_length=1, max_length=64)]) -> ShedForecastOut:
    try:
        return shed_forecast_out(service.shed(shed_id, _now_ms()))
    except UnknownShed:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown shed {shed_id!r}") from None
    except NoCounts:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"shed {shed_id!r} has no count from the last 28 mornings") \
            from None


@router.get("/forecast", response_model=SiteForecastOut,
            summary="Site summary: pick-ready fruits for the next 3 mornings, summed and per shed")
def site_forecast(service: ForecastDep) -> SiteForecastOut:
    result = service.site(_now_ms())
    return SiteForecastOut(days=[_day(d) for d in result.days], sheds=[shed_forecast_out(s) for s in result.sheds])


@router.get("/harvest/outlook", response_model=list[DayWorkOut], tags=["harvest"],
            summary="Hours of picking each day needs: today from the counts, the next 3 days from the forecast")
def harvest_outlook(service: HarvestServiceDep) -> list[DayWorkOut]:
    return [DayWorkOut(**vars(day)) for day in service.outlook()]
