"""Harvest plan: today's split between the operators, mark sheds done (queued offline), re-plan."""

from __future__ import annotations

from dataclasses import dataclass, field

from mobile_app.api_client import ApiError, ApiUnreachable
from mobile_app.controllers.session import Session
from mobile_app.models.forecast import DayWork, outlook_from_api
from mobile_app.models.plan import HarvestPlan


@dataclass(frozen=True)
class PlanState:
    plan: HarvestPlan | None
    me: str | None
    fetched_ms: int | None
    offline: bool
    error: str | None
    pending_actions: int
    outlook: list[DayWork] = field(default_factory=list)  # hours needed today and the next days


class HarvestController:
    def __init__(self, session: Session) -> None:
        self.session = session
        self._plan: HarvestPlan | None = None
        self._fetched_ms: int | None = None
        self._offline = False
        self._error: str | None = None
        self._outlook: list[DayWork] = []

    def load(self) -> PlanState:
        self.session.flush_outbox()
        fetched = self.session.fetch("harvest_plan", lambda c: c.harvest_plan())
        self._plan = HarvestPlan.from_api(fetched.value) if fetched.value else None
        self._fetched_ms, self._offline, self._error = fetched.fetched_ms, fetched.offline, fetched.error
        outlook = self.session.fetch("harvest_outlook", lambda c: c.harvest_outlook())
        self._outlook = outlook_from_api(outlook.value) if isinstance(outlook.value, list) else []
        return self.state()

    def state(self) -> PlanState:
        pending = {shed: bool(p.get("done", True)) for shed, p in self.session.cache.pending_for("done").items()}
        plan = self._plan.with_done(pending) if self._plan else None
        return PlanState(plan, self.session.operator, self._fetched_ms, self._offline, self._error,
                         self.session.pending_count, list(self._outlook))

    def set_done(self, shed_id: str, done: bool = True) -> PlanState:
        result = self.session.submit("done", shed_id, {"done": done})
        if result.remaining == 0 and self.session.online:
            return self.load()
        return self.state()

    def replan(self) -> PlanState:
        """Ask the server for a new plan (needs the network: the plan is shared by both operators)."""
        try:
            self.session.flush_outbox()
            body = self.session.client.replan()
        except ApiUnreachable as exc:
            self._offline, self._error = True, str(exc)
            return self.state()
        except ApiError as exc:
            self._error = str(exc)
            return self.state()
        stored = self.session.cache.put("harvest_plan", body)
        self._plan = HarvestPlan.from_api(body)
        self._fetched_ms, self._offline, self._error = stored.fetched_ms, False, None
        return self.state()
