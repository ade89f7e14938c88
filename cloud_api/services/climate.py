"""Climate alerts: too hot / too cold / too humid / too dry (checked on every reading) and sensor silent
(checked on a timer), and their clearing.

All go through the ordinary alert lifecycle as ``Alert`` payloads: repeats of one condition share a dedup key
(``climate:{code}:{site}:{shed}:{sensor}``), so they fold into one open alert whose count grows, and an
operator acknowledges and clears it like any other. A condition that persists re-sends an alert at most every
``repeat_ms`` (so one hot afternoon is a handful of payloads, not one per reading).

Alerts also clear themselves (``cleared_by`` = ``AUTO_CLEARED_BY``): a threshold alert once a reading is back
inside its limit by the hysteresis margin (a reading hovering at the limit neither re-opens nor clears it), a
sensor_silent alert with the sensor's next reading. Which keys may be open is remembered per key; after a
restart every key counts as possibly open, so the first good reading of each sensor looks its alerts up once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from fieldline.contract import Alert, Telemetry, Zone

from cloud_api.core.config import Settings
from cloud_api.storage.base import Store
from cloud_api.storage.records import AlertQuery
from cloud_api.storage.sqlite_climate import SensorState

log = logging.getLogger(__name__)

REPEAT_MS = 10 * 60_000
AUTO_CLEARED_BY = "fieldline:auto"


@dataclass(frozen=True)
class ClimateLimits:
    too_hot_c: float = 35.0
    too_cold_c: float = 5.0
    silent_after_ms: int = 30 * 60_000
    too_humid_pct: float = 95.0
    too_dry_pct: float = 30.0
    hysteresis_c: float = 1.0
    hysteresis_pct: float = 3.0


LimitsFor = Callable[[str, str], ClimateLimits]  # (site, shed) -> the limits there
ClearKeys = Callable[[str, str, set[str], int], int]  # (site, shed, dedup keys, at_ms) -> alerts cleared


@dataclass(frozen=True)
class _Band:
    high_code: str
    high: float
    low_code: str
    low: float
    margin: float
    unit: str


def _band(limits: ClimateLimits, quantity: str) -> _Band:
    if quantity == "humidity":
        return _Band("too_humid", limits.too_humid_pct, "too_dry", limits.too_dry_pct, limits.hysteresis_pct, "%")
    return _Band("too_hot", limits.too_hot_c, "too_cold", limits.too_cold_c, limits.hysteresis_c, "°C")


def _dedup_key(code: str, site: str, shed: str, sensor: str) -> str:
    return f"climate:{code}:{site}:{shed}:{sensor}"[:200]


def silent_key(s: SensorState | Telemetry) -> str:
    return _dedup_key("sensor_silent", s.site, s.shed, f"{s.sensor}:{s.quantity}")


class ThresholdAlerts:
    """Readings in, threshold alerts out; clears the alerts a reading shows are over (through ``clear``).

    ``limits``: one ``ClimateLimits`` for everywhere, or a function of (site, shed) (``Settings.climate_band``).
    """

    def __init__(self, limits: ClimateLimits | LimitsFor, repeat_ms: int = REPEAT_MS,
                 clear: ClearKeys | None = None) -> None:
        self._limits: LimitsFor = (lambda _site, _shed: limits) if isinstance(limits, ClimateLimits) else limits
        self._repeat_ms = repeat_ms
        self._clear = clear
        self._last_sent: dict[str, int] = {}
        self._settled: set[str] = set()  # keys known to have no open alert (the rest may have one)
        self._lock = threading.Lock()

    def note_opened(self, keys: Sequence[str]) -> None:
        """Alerts with these keys were written elsewhere (the silence watch): they may be open now."""
        with self._lock:
            self._settled.difference_update(keys)

    def check(self, readings: Sequence[Telemetry]) -> list[Alert]:
        alerts: dict[str, Alert] = {}
        to_clear: dict[str, tuple[str, str, int]] = {}  # key -> (site, shed, ts) of the reading that clears it
        for r in readings:
            value = r.canonical_value()
            band = _band(self._limits(r.site, r.shed), r.quantity)
            high_key = _dedup_key(band.high_code, r.site, r.shed, r.sensor)
            low_key = _dedup_key(band.low_code, r.site, r.shed, r.sensor)
            alert = self._alert(r, value, band, high_key, low_key)
            if alert is not None:
                alerts[alert.dedup_key] = alert
                to_clear.pop(alert.dedup_key, None)
            candidates = [silent_key(r)]
            if value <= band.high - band.margin:
                candidates.append(high_key)
            if value >= band.low + band.margin:
                candidates.append(low_key)
            with self._lock:
                for key in candidates:
                    if key not in self._settled and key not in alerts:
                        to_clear[key] = (r.site, r.shed, r.ts_ms)
        if to_clear:
            self._clear_keys(to_clear)
        return list(alerts.values())

    def _alert(self, r: Telemetry, value: float, band: _Band, high_key: str, low_key: str) -> Alert | None:
        if value > band.high:
            code, limit, word, key = band.high_code, band.high, "above", high_key
            severity = "critical" if value > limit + 5 else "warning"
        elif value < band.low:
            code, limit, word, key = band.low_code, band.low, "below", low_key
            severity = "critical" if value < limit - 5 else "warning"
        else:
            return None
        with self._lock:
            self._settled.discard(key)
            last = self._last_sent.get(key)
            if last is not None and abs(r.ts_ms - last) < self._repeat_ms:
                return None
            self._last_sent[key] = r.ts_ms
        return Alert(
            id=f"climate-{code}-{r.site}-{r.sensor}-{r.ts_ms}"[:200], ts_ms=r.ts_ms, device=r.device, site=r.site,
            zone=Zone(kind="shed", id=r.shed), severity=severity, code=code, dedup_key=key,
            message=f"{r.shed}: {value:.1f} {band.unit} at sensor {r.sensor}, {word} the {limit:g} {band.unit} limit",
        )

    def _clear_keys(self, to_clear: dict[str, tuple[str, str, int]]) -> None:
        by_place: dict[tuple[str, str], set[str]] = {}
        at = 0
        for key, (site, shed, ts_ms) in to_clear.items():
            by_place.setdefault((site, shed), set()).add(key)
            at = max(at, ts_ms)
        for (site, shed), keys in by_place.items():
            if self._clear is not None:
                try:
                    self._clear(site, shed, keys, at)
                except Exception:  # noqa: BLE001 - the next good reading tries again
                    log.exception("clearing climate alerts of %s/%s failed", site, shed)
                    continue
            with self._lock:
                self._settled.update(keys)
                for key in keys:
                    self._last_sent.pop(key, None)  # a new excursion alerts at once


def store_clearer(store: Store, by: str = AUTO_CLEARED_BY) -> ClearKeys:
    """Clear the open alerts of a shed whose dedup key is one of ``keys``, through the store's lifecycle."""

    def clear(site: str, shed: str, keys: set[str], at_ms: int) -> int:
        cleared = 0
        for state in ("active", "acknowledged"):
            for record in store.list_alerts(AlertQuery(state=state, site=site, zone=shed, limit=1000)):
                if record.dedup_key in keys:
                    _, changed = store.transition_alert(record.id, "cleared", ("active", "acknowledged"), by,
                                                        max(at_ms, record.last_ts_ms))
                    cleared += int(changed)
        return cleared

    return clear


def limits_from(settings: Settings) -> LimitsFor:
    """(site, shed) -> ``ClimateLimits`` from the settings' global, per-site and per-shed limits."""
    silent_ms = int(settings.climate_silent_after_s * 1000)

    def limits(site: str, shed: str) -> ClimateLimits:
        band = settings.climate_band(site, shed)
        assert band.too_hot_c is not None and band.too_cold_c is not None
        assert band.too_humid_pct is not None and band.too_dry_pct is not None
        return ClimateLimits(band.too_hot_c, band.too_cold_c, silent_ms, band.too_humid_pct, band.too_dry_pct,
                             settings.climate_hysteresis_c, settings.climate_hysteresis_pct)

    return limits


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
            dedup_key=silent_key(s),
            message=f"{s.shed}: {s.quantity} sensor {s.sensor} silent for {quiet_ms // 60_000} min",
        ))
    return alerts


class SilenceWatch:
    """A background thread that checks sensor silence every ``interval_s`` and writes the alerts."""

    def __init__(self, list_sensors: Callable[[], Sequence[SensorState]],
                 write_alerts: Callable[[list[Alert], int], object], silent_after_ms: int, interval_s: float,
                 on_written: Callable[[list[str]], None] | None = None) -> None:
        self._list_sensors = list_sensors
        self._on_written = on_written  # told the dedup keys written, so the sensor's next reading clears them
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
            if self._on_written is not None:
                self._on_written([a.dedup_key for a in alerts])
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
