"""Put simulated sheds' histories into a real SqliteStore, as the ingest and the phone app would have.

Each simulated morning becomes one count event (30 min before the observe hour), each simulated hour one
temperature reading of the shed's sensor, each harvest a done mark; the last simulated morning is the most
recent observe hour before ``now``. The simulator's truth stays with the caller.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from cloud_api.storage.records import HarvestDoneRecord
from cloud_api.storage.sqlite_store import SqliteStore
from fieldline.contract import Event, Telemetry
from tests.support.ripening_sim import HOUR_MS, MORNING_HOUR, SimShed

SITE = "site-a"


@dataclass(frozen=True)
class Seeded:
    last_morning_ms: int  # the observe time of the last simulated morning
    sim_origin_ms: int  # real time of the simulator's hour 0

    def sim_hour_ms(self, hour: int) -> int:
        return self.sim_origin_ms + hour * HOUR_MS


def last_observe_ms(now_ms: int, observe_hour: int) -> int:
    now = datetime.fromtimestamp(now_ms / 1000, timezone.utc)
    morning = now.replace(hour=observe_hour, minute=0, second=0, microsecond=0)
    if morning > now:
        morning -= timedelta(days=1)
    return int(morning.timestamp() * 1000)


def count_event(shed: str, seq: int, ts_ms: int, counts: dict[str, int]) -> Event:
    return Event.model_validate({
        "id": f"cam-{shed}-{seq}", "device": f"edge-{shed}", "site": SITE, "camera": "cam-1", "boot": 1, "seq": seq,
        "ts_ms": ts_ms, "zone": {"kind": "shed", "id": shed, "row": None}, "kind": "count",
        "model": {"name": "tomato-ripeness", "version": "1", "sha256": "ab" * 32}, "counts": counts,
    })


def seed(store: SqliteStore, sheds: list[SimShed], now_ms: int, observe_hour: int, *,
         temperature_forecast: bool = True, sensors: bool = True) -> Seeded:
    days = len(sheds[0].counts)
    last_morning = last_observe_ms(now_ms, observe_hour)
    count_offset = 30 * 60_000  # the morning sweep lands half an hour before the observe hour
    origin = last_morning - count_offset - ((days - 1) * 24 + MORNING_HOUR) * HOUR_MS
    seeded = Seeded(last_morning_ms=last_morning, sim_origin_ms=origin)
    for shed in sheds:
        events = [count_event(shed.id, d + 1, seeded.sim_hour_ms(d * 24 + MORNING_HOUR), c)
                  for d, c in enumerate(shed.counts)]
        store.write_events(events, now_ms)
        for d, picked in enumerate(shed.harvested):
            if picked:
                day = datetime.fromtimestamp(seeded.sim_hour_ms(d * 24 + MORNING_HOUR) / 1000, timezone.utc).date()
                store.mark_shed_done(HarvestDoneRecord(date=day.isoformat(), shed=shed.id, done_by="olga",
                                                       done_ms=seeded.sim_hour_ms(d * 24 + 12)))
        now_hour = (now_ms - origin) // HOUR_MS
        if sensors:
            readings = [
                Telemetry(site=SITE, device=f"edge-{shed.id}", sensor=f"t-{shed.id}", shed=shed.id,
                          quantity="temperature", value=round(float(shed.temps[h]), 2), unit="°C",
                          ts_ms=seeded.sim_hour_ms(h) + 60_000)
                for h in range(min(int(now_hour), shed.temps.size))
            ]
            store.write_telemetry(readings, now_ms)
        if temperature_forecast:
            base_hour = (days - 1) * 24 + MORNING_HOUR
            points = [(seeded.sim_hour_ms(h) + 30 * 60_000, float(shed.temps[h]))
                      for h in range(base_hour, shed.temps.size)]
            store.put_temperature_forecast(SITE, shed.id, points, now_ms)
    return seeded
