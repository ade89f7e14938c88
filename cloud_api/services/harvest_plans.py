"""Today's harvest plan: gather pick-ready counts and done marks, run the planner, keep the plan in the store.

"Today" is the calendar date in ``Settings.timezone``. ``GET`` computes today's plan on first request and
returns the stored one afterwards; a re-plan replaces it. Done marks are per date and shown live with the
plan (marking a shed done does not re-plan by itself; a re-plan leaves done sheds out).

Tomorrow's plan is built on the forecast (``services.forecast``: pick-ready expected tomorrow morning) and
stored; it is recomputed when newer counts arrive. When tomorrow comes, the first GET after that day's
first count re-plans it from the counts themselves ("re-planned when the morning's counts arrive").
``outlook`` gives the hours of work each day needs: today from the counts, the next days from the forecast.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import date as Date
from datetime import datetime, time as clock_time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cloud_api.core.config import Settings
from cloud_api.services.forecast import ForecastService
from cloud_api.services.harvest import HarvestPlan, PlanParams, ShedLoad, default_positions, plan_harvest
from cloud_api.services.sheds import ShedService, UnknownShed
from cloud_api.storage.base import Store
from cloud_api.storage.records import HarvestDoneRecord, HarvestPlanRecord


class NoPlan(LookupError):
    """No plan is stored for that date (plans are only computed for today)."""


@dataclass(frozen=True)
class DayWork:
    """The work one day needs: pick-ready fruits (with the forecast's band) and hours."""

    date: str
    source: str  # "counts" (today) | "forecast"
    fruits: int
    low: int
    high: int
    pick_hours: float  # fruits / pick rate, for one person
    total_hours: float  # picking + walking over all operators
    makespan_hours: float  # until the last operator is done, with the configured operators


@dataclass(frozen=True)
class PlanRequest:
    """Optional overrides for a re-plan; ``None`` means the configured default."""

    operators: list[str] | None = None
    pick_rate_per_min: float | None = None
    walk_speed_m_per_min: float | None = None


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class HarvestPlanService:
    def __init__(self, store: Store, settings: Settings, sheds: ShedService) -> None:
        self._store = store
        self._settings = settings
        self._sheds = sheds

    def today(self) -> str:
        return datetime.now(ZoneInfo(self._settings.timezone)).date().isoformat()

    def tomorrow(self) -> str:
        return (Date.fromisoformat(self.today()) + timedelta(days=1)).isoformat()

    def get(self, day: Date | None, user: str) -> tuple[HarvestPlanRecord, list[HarvestDoneRecord]]:
        """The stored plan of ``day`` (default today); today's is computed on the first request, tomorrow's
        from the forecast; a forecast-built plan for today is re-planned once today's counts arrive."""
        today = self.today()
        key = today if day is None else day.isoformat()
        stored = self._store.get_harvest_plan(key)
        if key == self.tomorrow():
            if stored is None or stored.created_ms < self._latest_count_ms():
                stored = self._store.put_harvest_plan(self._compute(key, PlanRequest(), user), replace=True)
            return stored, self._store.list_done(key)
        if stored is None:
            if key != today:
                raise NoPlan(key)
            stored = self._store.put_harvest_plan(self._compute(today, PlanRequest(), user), replace=False)
        elif key == today and stored.plan.get("source") == "forecast" and self._latest_count_ms() >= self._midnight_ms():
            stored = self._store.put_harvest_plan(self._compute(today, PlanRequest(), user, replanned=stored),
                                                  replace=True)
        return stored, self._store.list_done(key)

    def outlook(self, days: int = 3) -> list[DayWork]:
        """Today (from the counts, sheds marked done left out) and the next ``days`` (from the forecast)."""
        params = self._params(PlanRequest())
        created = now_ms()
        overview = self._sheds.overview(created)
        positions = default_positions((o.id for o in overview), self._settings.shed_spacing_m,
                                      self._settings.shed_positions_m)
        today = self.today()
        done = [d.shed for d in self._store.list_done(today)]
        loads = [ShedLoad(id=o.id, fruits=o.pick_ready, position_m=positions[o.id]) for o in overview]
        plan = plan_harvest(loads, params, done)
        fruits = sum(load.fruits for load in loads if load.id not in done)
        result = [self._day_work(today, "counts", fruits, fruits, fruits, plan, params)]
        site = ForecastService(self._store, self._settings).site(created)
        for day in site.days[:days]:
            if day.date <= today:
                continue
            by_shed = {s.shed: d.ready for s in site.sheds for d in s.days if d.date == day.date}
            loads = [ShedLoad(id=shed, fruits=n, position_m=positions.get(shed, 0.0)) for shed, n in by_shed.items()]
            result.append(self._day_work(day.date, "forecast", day.ready, day.low, day.high,
                                         plan_harvest(loads, params), params))
        return result

    @staticmethod
    def _day_work(day: str, source: str, fruits: int, low: int, high: int, plan: HarvestPlan,
                  params: PlanParams) -> DayWork:
        return DayWork(date=day, source=source, fruits=fruits, low=low, high=high,
                       pick_hours=round(fruits / params.pick_rate_per_min / 60, 2),
                       total_hours=round(sum(o.total_minutes for o in plan.operators) / 60, 2),
                       makespan_hours=round(plan.makespan_minutes / 60, 2))

    def _midnight_ms(self) -> int:
        local = datetime.combine(Date.fromisoformat(self.today()), clock_time(0), tzinfo=ZoneInfo(self._settings.timezone))
        return int(local.timestamp() * 1000)

    def _latest_count_ms(self) -> int:
        return max((c.ts_ms for c in self._store.latest_counts()), default=0)

    def replan(self, request: PlanRequest, user: str) -> tuple[HarvestPlanRecord, list[HarvestDoneRecord]]:
        today = self.today()
        stored = self._store.put_harvest_plan(self._compute(today, request, user), replace=True)
        return stored, self._store.list_done(today)

    def mark_done(self, shed_id: str, user: str) -> HarvestDoneRecord:
        self._known(shed_id)
        return self._store.mark_shed_done(HarvestDoneRecord(date=self.today(), shed=shed_id, done_by=user,
                                                            done_ms=now_ms()))

    def unmark_done(self, shed_id: str) -> str:
        """Undo today's done mark (idempotent); returns the date."""
        self._known(shed_id)
        today = self.today()
        self._store.unmark_shed_done(today, shed_id)
        return today

    def _known(self, shed_id: str) -> None:
        if not self._store.shed_exists(shed_id):
            raise UnknownShed(shed_id)

    def _params(self, request: PlanRequest) -> PlanParams:
        s = self._settings
        return PlanParams(
            operators=tuple(request.operators or s.harvest_operators),
            pick_rate_per_min=request.pick_rate_per_min or s.harvest_pick_rate_per_min,
            walk_speed_m_per_min=request.walk_speed_m_per_min or s.harvest_walk_speed_m_per_min,
        )

    def _compute(self, day: str, request: PlanRequest, user: str,
                 replanned: HarvestPlanRecord | None = None) -> HarvestPlanRecord:
        s = self._settings
        params = self._params(request)
        created = now_ms()
        overview = self._sheds.overview(created)
        positions = default_positions((o.id for o in overview), s.shed_spacing_m, s.shed_positions_m)
        source = "forecast" if day > self.today() else "counts"
        if source == "forecast":  # tomorrow: the pick-ready fruits the forecast expects that morning
            site = ForecastService(self._store, s).site(created)
            expected = {f.shed: d.ready for f in site.sheds for d in f.days if d.date == day}
            loads = [ShedLoad(id=o.id, fruits=expected.get(o.id, 0), position_m=positions[o.id]) for o in overview]
        else:
            loads = [ShedLoad(id=o.id, fruits=o.pick_ready, position_m=positions[o.id]) for o in overview]
        done = [d.shed for d in self._store.list_done(day)]
        plan = plan_harvest(loads, params, done)
        notes = []
        if source == "forecast":
            notes.append(f"Built on the forecast: {sum(x.fruits for x in loads)} pick-ready fruit(s) expected on {day}"
                         " morning; re-planned from the counts when that morning's counts arrive.")
        if replanned is not None:
            before = sum(o["fruits"] for o in replanned.plan["operators"])
            notes.append(f"Re-planned from this morning's counts: {sum(x.fruits for x in loads if x.id not in done)} "
                         f"fruit(s) to pick, the forecast said {before}.")
        data: dict[str, Any] = {
            "operators": [
                {
                    "name": o.name, "sheds": o.sheds, "fruits": o.fruits,
                    "pick_minutes": round(o.pick_minutes, 2), "walk_minutes": round(o.walk_minutes, 2),
                    "total_minutes": round(o.total_minutes, 2),
                }
                for o in plan.operators
            ],
            "makespan_minutes": round(plan.makespan_minutes, 2),
            "contiguous": plan.contiguous,
            "explanation": notes + plan.explanation,
            "source": source,
            "params": asdict(params) | {"operators": list(params.operators)},
            "positions_m": {load.id: load.position_m for load in loads},
        }
        return HarvestPlanRecord(date=day, created_ms=created, created_by=user, plan=data)
