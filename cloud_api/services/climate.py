"""Climate alerts: too hot, too cold (checked on every reading) and sensor silent (checked on a timer).

All three go through the ordinary alert lifecycle as ``Alert`` payloads: repeats of one condition share a
dedup key (``climate:{code}:{site}:{shed}:{sensor}``), so they fold into one open alert whose count grows,
and an operator acknowledges and clears it like any other. A condition that persists re-sends an alert at
most every ``repeat_ms`` (so one hot afternoon is a handful of payloads, not one per reading).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fieldline.contract import Alert, Telemetry, Zone

from cloud_api.storage.sqlite_climate import SensorState

log = logging.getLogger(__name__)

REPEAT_MS = 10 * 60_000


@dataclass(frozen=True)
class ClimateLimits:
    too_hot_c: float = 35.0
    too_cold_c: float = 5.0
    silent_after_ms: int = 30 * 60_000


def _dedup_key(code: str, site: str, shed: str, sensor: str) -> str:
    return f"climate:{code}:{site}:{shed}:{sensor}"[:200]


class ThresholdAlerts:
    """Readings in, too_hot / too_cold alerts out; remembers when each condition last sent one."""

    def __init__(self, limits: ClimateLimits, repeat_ms: int = REPEAT_MS) -> None:
        self._limits = limits
        self._repeat_ms = repeat_ms
        self._last_sent: dict[str, int] = {}
        self._lock = threading.Lock()

    def check(self, readings: Sequence[Telemetry]) -> list[Alert]:
        alerts = []
        for r in readings:
            if r.quantity != "temperature":
                continue
            value = r.canonical_value()
            if value > self._limits.too_hot_c:
                code, limit, word = "too_hot", self._limits.too_hot_c, "above"
                severity = "critical" if value > limit + 5 else "warning"
            elif value < self._limits.too_cold_c:
                code, limit, word = "too_cold", self._limits.too_cold_c, "below"
                severity = "critical" if value < limit - 5 else "warning"
            else:
                continue
            key = _dedup_key(code, r.site, r.shed, r.sensor)
            with self._lock:
                last = self._last_sent.get(key)
                if last is not None and abs(r.ts_ms - last) < self._repeat_ms:
                    continue
                self._last_sent[key] = r.ts_ms
            alerts.append(Alert(
                id=f"climate-{code}-{r.site}-{r.sensor}-{r.ts_ms}"[:200], ts_ms=r.ts_ms, device=r.device, site=r.site,
                zone=Zone(kind="shed", id=r.shed), severity=severity, code=code, dedup_key=key,
                message=f"{r.shed}: {value:.1f} °C at sensor {r.sensor}, {word} the {limit:g} °C limit",
            ))
        return alerts


def silent_alerts(sensors: Sequence[SensorState], now_ms: int, silent_after_ms: int) -> list[Alert]:
    """One alert per sensor (per quantity) that sent nothing for ``silent_after_ms``.

    The id names the last reading, so checking again during the same silence stores nothing new (the
    payload id is a duplicate); after the sensor speaks and falls silent again, a new payload is sent.
    """
    alerts = []
    for s in sensors:
        quiet_ms = now_ms - s.last_received_ms
        if quiet_ms < silent_after_ms:
            continue
        alerts.append(Alert(
            id=f"climate-silent-{s.site}-{s.sensor}-{s.quantity}-{s.last_ts_ms}"[:200], ts_ms=now_ms, device=s.device,
            site=s.site, zone=Zone(kind="shed", id=s.shed), severity="warning", code="sensor_silent",
            dedup_key=_dedup_key("sensor_silent", s.site, s.shed, f"{s.sensor}:{s.quantity}"),
            message=f"{s.shed}: {s.quantity} sensor {s.sensor} silent for {quiet_ms // 60_000} min",
        ))
    return alerts


class SilenceWatch:
    """A background thread that checks sensor silence every ``interval_s`` and writes the alerts."""

    def __init__(self, list_sensors: Callable[[], Sequence[SensorState]],
                 write_alerts: Callable[[list[Alert], int], object], silent_after_ms: int, interval_s: float) -> None:
        self._list_sensors = list_sensors
        self._write_alerts = write_alerts
        self._silent_after_ms = silent_after_ms
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.failures = 0  # checks that raised (logged and counted; the next check runs anyway)

    def check_once(self, now_ms: int | None = None) -> int:
        now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
        alerts = silent_alerts(self._list_sensors(), now, self._silent_after_ms)
        if alerts:
            self._write_alerts(alerts, now)
        return len(alerts)

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="fieldline-climate-silence", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                self.check_once()
            except Exception:  # noqa: BLE001 - a failed check must not end the watch
                self.failures += 1
                log.exception("climate silence check failed")
