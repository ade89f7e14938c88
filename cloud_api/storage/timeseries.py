"""The ``TimeSeriesStore`` protocol: where stored count and inspection events go as time series.

SQLite is always the source of truth (dedup, metadata, the REST reads). The time-series store receives
each event once, AFTER the SQLite transaction that stored it committed (it is fed by the store's change
listener, which only fires for new, non-duplicate events). Its ``write`` never blocks ingestion and never
raises: a backend that is down buffers, retries with backoff and counts what it could not write.

- ``sqlite``: the count series already live in the SQLite store (``count_points`` and the minute/hour
  rollups written in the same transaction), so this backend has nothing more to do.
- ``influx``: ``cloud_api.storage.influx_store.InfluxTimeSeries`` mirrors the events to InfluxDB.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from fieldline.contract import Event, Telemetry

from cloud_api.core.config import Settings
from cloud_api.storage.records import StoreChange


@dataclass(frozen=True)
class TimeSeriesStats:
    backend: str
    points_written: int = 0  # points the server accepted
    points_dropped: int = 0  # points given up: buffer full while the server was down, or rejected (4xx)
    write_failures: int = 0  # failed write requests (each is retried with backoff, unless rejected)
    pending: int = 0  # points waiting in the buffer
    last_error: str | None = None


class TimeSeriesStore(Protocol):
    backend: str

    def start(self) -> None: ...

    def write(self, events: Sequence[Event | Telemetry]) -> None:
        """Accept newly stored events and climate readings; returns at once (buffered), never raises."""
        ...

    def flush(self, timeout: float) -> bool:
        """Wait until everything accepted so far is written; False on timeout."""
        ...

    def close(self, timeout: float = 5.0) -> None: ...

    def stats(self) -> TimeSeriesStats: ...


class SqliteTimeSeries:
    """The default: the series are the SQLite store's own tables, so there is nothing extra to write."""

    backend = "sqlite"

    def start(self) -> None:
        pass

    def write(self, events: Sequence[Event | Telemetry]) -> None:
        pass

    def flush(self, timeout: float) -> bool:
        return True

    def close(self, timeout: float = 5.0) -> None:
        pass

    def stats(self) -> TimeSeriesStats:
        return TimeSeriesStats(backend=self.backend)


def build_timeseries(settings: Settings) -> TimeSeriesStore:
    """The backend ``settings.timeseries`` selects (not started)."""
    if settings.timeseries == "influx":
        from cloud_api.storage.influx_store import InfluxTimeSeries

        return InfluxTimeSeries.from_settings(settings)
    return SqliteTimeSeries()


def change_feeder(timeseries: TimeSeriesStore):  # noqa: ANN201 - a store change listener
    """A ``Store.add_change_listener`` callback passing newly stored count/inspection events on."""

    def feed(change: StoreChange) -> None:
        if change.kind in ("count", "inspection", "telemetry") and change.change == "stored":
            timeseries.write((change.subject,))

    return feed
