"""Seed a real cloud-API database with a greenhouse site: 60 sheds, rows, 7 days of history, camera
statuses, alerts, a snapshot and two operator users. Writes go through the API's own ``SqliteStore``
(the same code the ingest worker uses), using contract models — no mocks.

Also used by ``bench/app_start.py``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from cloud_api.core.config import Settings
from cloud_api.storage.sqlite_store import SqliteStore
from fieldline.contract import Alert, DeviceStatus, Event
from tests.support.builders import event_dict

SITE = "farm"
OPERATORS = ("li", "wang")
PASSWORD = "tomato-harvest-1"
API_TOKEN = "mobile-test-token"
OFFLINE_SHEDS = ("shed-07", "shed-19")
HOUR_MS = 3_600_000


@dataclass
class SeededSite:
    sheds: list[str]
    pick_ready: dict[str, int]
    alerts: dict[str, Alert] = field(default_factory=dict)
    snapshot_event: str = ""


def shed_id(i: int) -> str:
    return f"shed-{i:02d}"


def settings_for(data_dir: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir, "ingest_enabled": False, "api_tokens": [API_TOKEN],
    }
    optional = {"harvest_operators": list(OPERATORS), "pick_ready_labels": ["ripe"]}
    for key, value in optional.items():  # newer API settings; keep working with an older API
        if key in Settings.model_fields:
            values[key] = value
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def snapshot_jpeg() -> bytes:
    import cv2
    import numpy as np

    img = np.full((240, 320, 3), (60, 120, 40), np.uint8)
    for k, (x, y) in enumerate([(60, 80), (150, 60), (240, 110), (110, 170), (220, 190)]):
        colour = (40, 40, 210) if k % 2 == 0 else (60, 170, 90)
        cv2.circle(img, (x, y), 28, colour, -1)
        cv2.rectangle(img, (x - 32, y - 32), (x + 32, y + 32), (255, 255, 255), 2)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 80])
    assert ok
    return buf.tobytes()


def _count(shed: str, device: str, seq: int, ts_ms: int, counts: dict[str, int], row: str | None,
           snapshot: str | None = None) -> Event:
    return Event.model_validate(event_dict(
        id=f"{device}-1-{seq}", device=device, site=SITE, camera="cam-1", seq=seq, ts_ms=ts_ms,
        zone={"kind": "shed", "id": shed, "row": row}, counts=counts, snapshot=snapshot,
    ))


def seed_site(settings: Settings, n_sheds: int = 60, history_sheds: int = 6) -> SeededSite:
    """Write the site into the settings' database (create users if the API has them)."""
    now = time.time_ns() // 1_000_000
    store = SqliteStore(settings.database_file)
    store.open()
    site = SeededSite(sheds=[], pick_ready={})
    try:
        events: list[Event] = []
        statuses: list[DeviceStatus] = []
        for i in range(1, n_sheds + 1):
            shed, device = shed_id(i), f"edge-{i:02d}"
            site.sheds.append(shed)
            seq = 1
            ripe_total = 0
            for r in range(1, 4):
                ripe = (i * 7 + r * 5) % 29
                ripe_total += ripe
                snap = f"{device}-1-snap" if (i, r) == (1, 1) else None
                events.append(_count(shed, device, seq, now - 60_000 + r, {
                    "green": (i + r * 3) % 17, "half_ripe": (i * 3 + r) % 11, "ripe": ripe}, f"r{r}", snapshot=snap))
                seq += 1
            site.pick_ready[shed] = ripe_total
            if i <= history_sheds:
                for h in range(7 * 24, 0, -6):  # every 6 h for 7 days, older than the latest rows
                    ripe = 10 + int(12 * (1 + ((h // 6 + i) % 7) / 3))
                    events.append(_count(shed, device, seq, now - h * HOUR_MS, {"ripe": ripe, "green": 5}, "r1"))
                    seq += 1
            statuses.append(DeviceStatus.model_validate({
                "state": "offline" if shed in OFFLINE_SHEDS else "online", "device": device, "site": SITE,
                "boot": 1, "ts_ms": now - 30_000, "agent_version": "0.1.0",
                "cameras": [{"name": "cam-1", "zone": {"kind": "shed", "id": shed, "row": None}}],
            }))
        snap_id = "edge-01-1-snap"
        site.snapshot_event = snap_id
        store.write_events(events, received_ms=now)
        for status in statuses:
            store.write_status(status, received_ms=now)
        store.write_snapshot(SITE, "edge-01", snap_id, snapshot_jpeg(), received_ms=now)
        alerts = [
            ("a-overripe-03", "shed-03", "critical", "overripe", "Overripe fruit in rows r1-r2: pick today"),
            ("a-camera-07", "shed-07", "critical", "camera_offline", "Camera cam-1 stopped sending frames"),
            ("a-behind-12", "shed-12", "warning", "shed_behind", "Shed is 2 days behind the picking plan"),
            ("a-disease-25", "shed-25", "info", "leaf_spots", "Possible leaf spots seen on row r3"),
        ]
        for aid, shed, severity, code, message in alerts:
            alert = Alert(id=aid, ts_ms=now - 600_000, device=f"edge-{int(shed[-2:]):02d}", site=SITE,
                          zone={"kind": "shed", "id": shed, "row": None}, severity=severity, code=code,  # type: ignore[arg-type]
                          message=message, dedup_key=f"{shed}:{code}")
            site.alerts[aid] = alert
        store.write_alerts(list(site.alerts.values()), received_ms=now)
        _climate(store, site.sheds[:-1], now)  # the last shed has no sensor
        _create_users(store)
    finally:
        store.close()
    return site


def _climate(store: SqliteStore, sheds: list[str], now: int) -> None:
    """Hourly temperature and humidity for 7 days per shed: a day/night cycle and a warm spell at the end."""
    import math

    try:
        from fieldline.contract import Telemetry
    except ImportError:  # an API without climate telemetry
        return
    readings = []
    for i, shed in enumerate(sheds):
        for h in range(7 * 24, 0, -1):
            ts = now - h * HOUR_MS
            hour_of_day = (ts // HOUR_MS) % 24
            warm = 3.0 if h < 48 else 0.0
            temp = 19.0 + (i % 5) * 0.4 + warm + 6.0 * math.sin((hour_of_day - 8) / 24 * 2 * math.pi)
            for quantity, value, unit in (("temperature", round(temp, 1), "°C"),
                                          ("humidity", round(72 - 2.2 * (temp - 19), 1), "%")):
                readings.append(Telemetry(site=SITE, device=f"edge-{i + 1:02d}", sensor=f"th-{shed}", shed=shed,
                                          quantity=quantity, value=value, unit=unit, ts_ms=ts))
    store.write_telemetry(readings, now)


def _create_users(store: SqliteStore) -> None:
    try:
        from cloud_api.services.users import create_user
    except ImportError:  # an API without users: the app then uses an API token
        return
    for name in OPERATORS:
        create_user(store, name, PASSWORD, "operator")
