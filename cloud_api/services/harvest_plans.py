"""Today's harvest plan: gather pick-ready counts and done marks, run the planner, keep the plan in the store.

"Today" is the calendar date in ``Settings.timezone``. ``GET`` computes today's plan on first request and
returns the stored one afterwards; a re-plan replaces it. Done marks are per date and shown live with the
plan (marking a shed done does not re-plan by itself; a re-plan leaves done sheds out).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import date as Date
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from cloud_api.core.config import Settings
from cloud_api.services.harvest import PlanParams, ShedLoad, default_positions, plan_harvest
from cloud_api.services.sheds import ShedService, UnknownShed
from cloud_api.storage.base import Store
from cloud_api.storage.records import HarvestDoneRecord, HarvestPlanRecord


class NoPlan(LookupError):
    """No plan is stored for that date (plans are only computed for today)."""


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

    def get(self, day: Date | None, user: str) -> tuple[HarvestPlanRecord, list[HarvestDoneRecord]]:
        """The stored plan of ``day`` (default today); today's is computed on the first request."""
        today = self.today()
        key = today if day is None else day.isoformat()
        stored = self._store.get_harvest_plan(key)
        if stored is None:
            if key != today:
                raise NoPlan(key)
            stored = self._store.put_harvest_plan(self._compute(today, PlanRequest(), user), replace=False)
        return stored, self._store.list_done(key)

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

    def _compute(self, day: str, request: PlanRequest, user: str) -> HarvestPlanRecord:
        s = self._settings
        params = PlanParams(
            operators=tuple(request.operators or s.harvest_operators),
            pick_rate_per_min=request.pick_rate_per_min or s.harvest_pick_rate_per_min,
            walk_speed_m_per_min=request.walk_speed_m_per_min or s.harvest_walk_speed_m_per_min,
        )
        created = now_ms()
        overview = self._sheds.overview(created)
        positions = default_positions((o.id for o in overview), s.shed_spacing_m, s.shed_positions_m)
        loads = [ShedLoad(id=o.id, fruits=o.pick_ready, position_m=positions[o.id]) for o in overview]
        done = [d.shed for d in self._store.list_done(day)]
        plan = plan_harvest(loads, params, done)
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
            "explanation": plan.explanation,
            "params": asdict(params) | {"operators": list(params.operators)},
            "positions_m": {load.id: load.position_m for load in loads},
        }
        return HarvestPlanRecord(date=day, created_ms=created, created_by=user, plan=data)
