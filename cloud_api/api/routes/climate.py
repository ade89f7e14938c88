"""Climate REST: a shed's temperature / humidity series, every sensor's state, and temperature forecasts."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Body, HTTPException, Path, Query, status
from pydantic import BaseModel, Field

from cloud_api.api.deps import OperatorDep, SettingsDep, StoreDep
from cloud_api.api.errors import MAX_EPOCH_MS
from cloud_api.storage.sqlite_climate import ClimateBucket, SensorState

router = APIRouter(tags=["climate"])

DAY_MS = 86_400_000


class ClimatePointOut(BaseModel):
    ts_ms: int = Field(description="Bucket start, epoch ms")
    mean: float = Field(description="Mean over the bucket and the shed's sensors (°C or %)")
    low: float = Field(description="Lowest reading in the bucket")
    high: float = Field(description="Highest reading in the bucket")
    n: int = Field(description="Readings in the bucket")


class SensorOut(BaseModel):
    site: str
    sensor: str
    quantity: str
    shed: str
    device: str = Field(description="Publishing device or adapter gateway name")
    last_ts_ms: int
    last_value: float = Field(description="Last reading, °C or %")
    last_received_ms: int
    silent: bool = Field(description="Nothing received for Settings.climate_silent_after_s")


class ShedClimateOut(BaseModel):
    shed: str
    from_ms: int
    to_ms: int
    bucket_ms: int
    temperature: list[ClimatePointOut] = Field(description="°C per bucket")
    humidity: list[ClimatePointOut] = Field(description="% relative humidity per bucket")
    sensors: list[SensorOut]


class ForecastPointIn(BaseModel):
    ts_ms: int = Field(ge=0, le=MAX_EPOCH_MS, description="Time of the forecast value, epoch ms (hourly or daily points)")
    value_c: float = Field(ge=-50, le=70, description="Forecast air temperature in the shed, °C")


class TemperatureForecastIn(BaseModel):
    site: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    shed: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                             description="One shed, or null for the whole site")
    points: list[ForecastPointIn] = Field(min_length=1, max_length=24 * 14)


class TemperatureForecastOut(BaseModel):
    site: str
    shed: str | None
    stored: int


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _points(buckets: list[ClimateBucket]) -> list[ClimatePointOut]:
    return [ClimatePointOut(ts_ms=b.ts_ms, mean=round(b.mean, 2), low=round(b.low, 2), high=round(b.high, 2), n=b.n)
            for b in buckets]


def _sensor_out(s: SensorState, now_ms: int, silent_after_s: float) -> SensorOut:
    return SensorOut(site=s.site, sensor=s.sensor, quantity=s.quantity, shed=s.shed, device=s.device,
                     last_ts_ms=s.last_ts_ms, last_value=round(s.last_value, 2), last_received_ms=s.last_received_ms,
                     silent=now_ms - s.last_received_ms >= silent_after_s * 1000)


@router.get("/sheds/{shed_id}/climate", response_model=ShedClimateOut, responses={404: {"description": "Unknown shed"}},
            summary="Temperature and humidity of a shed over the last days, bucketed (default 7 days, hourly)")
def shed_climate(
    store: StoreDep, settings: SettingsDep, shed_id: Annotated[str, Path(min_length=1, max_length=64)],
    days: Annotated[float, Query(gt=0, le=90, description="How far back, days")] = 7,
    bucket: Annotated[int, Query(ge=60_000, le=DAY_MS, description="Bucket size, ms")] = 3_600_000,
) -> ShedClimateOut:
    sensors = store.climate_sensors(shed_id)
    if not sensors and not store.shed_exists(shed_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown shed {shed_id!r}")
    now = _now_ms()
    to_ms = (now // bucket + 1) * bucket
    from_ms = to_ms - int(days * DAY_MS) // bucket * bucket
    return ShedClimateOut(
        shed=shed_id, from_ms=from_ms, to_ms=to_ms, bucket_ms=bucket,
        temperature=_points(store.climate_series(shed_id, "temperature", from_ms, to_ms, bucket)),
        humidity=_points(store.climate_series(shed_id, "humidity", from_ms, to_ms, bucket)),
        sensors=[_sensor_out(s, now, settings.climate_silent_after_s) for s in sensors],
    )


@router.get("/climate/sensors", response_model=list[SensorOut], summary="Every climate sensor with its last reading")
def list_sensors(store: StoreDep, settings: SettingsDep) -> list[SensorOut]:
    now = _now_ms()
    return [_sensor_out(s, now, settings.climate_silent_after_s) for s in store.climate_sensors()]


@router.put("/climate/temperature-forecast", response_model=TemperatureForecastOut,
            summary="Give a temperature forecast (operator): the ripening forecast uses it instead of recent weather")
def put_forecast(store: StoreDep, _: OperatorDep,
                 body: Annotated[TemperatureForecastIn, Body()]) -> TemperatureForecastOut:
    points = sorted((p.ts_ms, p.value_c) for p in body.points)
    store.put_temperature_forecast(body.site, body.shed or "", points, _now_ms())
    return TemperatureForecastOut(site=body.site, shed=body.shed, stored=len(points))
