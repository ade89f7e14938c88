"""Shed detail: counts by ripeness and row, the 7-day pick-ready trend, the 7-day climate, the next 3 days'
pick-ready forecast, snapshot and cameras. Climate and forecast are optional: an API without them (or a shed
without sensors or counts) leaves those sections empty, never the rest of the screen."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from pathlib import Path

from mobile_app.api_client import ApiError, ApiUnreachable
from mobile_app.cache import now_ms
from mobile_app.controllers.session import Fetched, Session
from mobile_app.models.forecast import ClimateSeries, ShedForecastView
from mobile_app.models.sheds import ShedDetail, TrendSeries

DAY_MS = 86_400_000
TREND_DAYS = 7
TREND_BUCKET_MS = 6 * 3600 * 1000


@dataclass(frozen=True)
class DetailState:
    shed_id: str
    detail: ShedDetail | None
    trend: TrendSeries
    trend_from_ms: int
    trend_to_ms: int
    snapshot_path: str | None
    fetched_ms: int | None
    offline: bool
    error: str | None
    climate: ClimateSeries | None = None
    forecast: ShedForecastView | None = None


class ShedDetailController:
    def __init__(self, session: Session) -> None:
        self.session = session

    def load(self, shed_id: str, at_ms: int | None = None) -> DetailState:
        to_ms = now_ms() if at_ms is None else at_ms
        # align the window to whole buckets so the cached key stays stable for a while
        to_ms = (to_ms // TREND_BUCKET_MS + 1) * TREND_BUCKET_MS
        from_ms = to_ms - TREND_DAYS * DAY_MS
        detail = self.session.fetch(f"shed:{shed_id}", lambda c: c.shed(shed_id))
        series = self.session.fetch(
            f"shed_counts:{shed_id}", lambda c: c.shed_counts(shed_id, from_ms, to_ms, TREND_BUCKET_MS)
        )
        parsed = ShedDetail.from_api(detail.value) if detail.value else None
        trend = TrendSeries.from_api(series.value) if series.value else TrendSeries(TREND_BUCKET_MS, [])
        snapshot = self._snapshot(parsed.latest_snapshot) if parsed and parsed.latest_snapshot else None
        climate = _value(self.session.fetch(f"shed_climate:{shed_id}", lambda c: c.shed_climate(shed_id, TREND_DAYS)))
        forecast = _value(self.session.fetch(f"shed_forecast:{shed_id}", lambda c: c.shed_forecast(shed_id)))
        return DetailState(
            shed_id=shed_id, detail=parsed, trend=trend, trend_from_ms=from_ms, trend_to_ms=to_ms,
            snapshot_path=snapshot, fetched_ms=detail.fetched_ms, offline=detail.offline, error=detail.error,
            climate=ClimateSeries.from_api(climate) if climate else None,
            forecast=ShedForecastView.from_api(forecast) if forecast and forecast.get("days") else None,
        )

    def _snapshot(self, event_id: str) -> str | None:
        """Path of the snapshot JPEG on disk, downloading it once (snapshots never change)."""
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in event_id)
        path: Path = self.session.cache.files_dir / f"snapshot-{safe}.jpg"
        if path.is_file() and path.stat().st_size:
            return str(path)
        try:
            data = self.session.client.snapshot(event_id)
        except (ApiUnreachable, ApiError):
            return None
        tmp = path.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(path)
        return str(path)


    def report_wrong_count(self, shed_id: str) -> WrongCountResult:
        """Ask for a fresh frame of the shed for labelling ("count looks wrong"); queued when offline."""
        operator = self.session.operator
        note = f"count looks wrong ({operator}, phone app)" if operator else "count looks wrong (phone app)"
        dropped = len(self.session.dropped_actions)
        self.session.submit("wrong_count", shed_id, {"note": note})
        if len(self.session.dropped_actions) > dropped:  # the server refused it (no camera on it, no rights)
            return WrongCountResult(shed_id, "refused", self.session.dropped_actions[-1].split(": ", 1)[-1])
        if shed_id in self.session.cache.pending_for("wrong_count"):
            return WrongCountResult(shed_id, "queued", None)
        return WrongCountResult(shed_id, "sent", None)


@dataclass(frozen=True)
class WrongCountResult:
    shed_id: str
    outcome: Literal["sent", "queued", "refused"]
    detail: str | None


def _value(fetched: Fetched) -> Any:
    """The fetched JSON object, or None (a 404 for a shed without sensors or counts keeps no stale value)."""
    if fetched.error and not fetched.offline:
        return None
    return fetched.value if isinstance(fetched.value, dict) else None
