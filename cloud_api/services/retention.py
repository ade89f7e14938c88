"""The periodic retention job: one daemon thread calling ``SqliteStore.apply_retention`` every interval."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from cloud_api.core.config import Settings
from cloud_api.storage.sqlite_retention import RetentionPolicy, RetentionResult

log = logging.getLogger(__name__)


def policy_from(settings: Settings) -> RetentionPolicy:
    return RetentionPolicy(
        events_days=settings.retention_events_days,
        minute_rollups_days=settings.retention_minute_rollups_days,
        hour_rollups_days=settings.retention_hour_rollups_days,
        climate_days=settings.retention_climate_days,
        climate_hour_rollups_days=settings.retention_climate_hour_rollups_days,
    )


class RetentionJob:
    """Runs ``apply(policy, now_ms)`` every ``interval_s`` (first run one interval after ``start``)."""

    def __init__(
        self, apply: Callable[[RetentionPolicy, int], RetentionResult], policy: RetentionPolicy, interval_s: float
    ) -> None:
        self._apply = apply
        self._policy = policy
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.runs = 0
        self.errors = 0
        self.last_result: RetentionResult | None = None

    @property
    def has_work(self) -> bool:
        p = self._policy
        return any(d is not None for d in (p.events_days, p.minute_rollups_days, p.hour_rollups_days,
                                           p.climate_days, p.climate_hour_rollups_days))

    def run_once(self, now_ms: int | None = None) -> RetentionResult | None:
        try:
            result = self._apply(self._policy, time.time_ns() // 1_000_000 if now_ms is None else now_ms)
        except Exception:  # noqa: BLE001 - a failed cleanup is retried next interval, the API keeps going
            self.errors += 1
            log.exception("retention cleanup failed")
            return None
        self.runs += 1
        self.last_result = result
        if any(vars(result).values()):
            log.info("retention cleanup deleted %s", vars(result))
        return result

    def start(self) -> None:
        if self._thread is None and self.has_work:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="fieldline-retention", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.run_once()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
