"""Today's harvest plan: which operator picks which sheds, with the expected work."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class OperatorPlan:
    name: str
    sheds: list[str]
    fruits: int
    pick_minutes: float
    walk_minutes: float
    total_minutes: float

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> OperatorPlan:
        return cls(
            name=str(data.get("name", "")), sheds=[str(s) for s in data.get("sheds") or []],
            fruits=int(data.get("fruits") or 0), pick_minutes=float(data.get("pick_minutes") or 0),
            walk_minutes=float(data.get("walk_minutes") or 0), total_minutes=float(data.get("total_minutes") or 0),
        )


@dataclass(frozen=True)
class HarvestPlan:
    date: str
    created_ms: int | None
    operators: list[OperatorPlan]
    makespan_minutes: float
    contiguous: bool
    explanation: list[str]
    done: set[str]

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> HarvestPlan:
        return cls(
            date=str(data.get("date", "")), created_ms=data.get("created_ms"),
            operators=[OperatorPlan.from_api(o) for o in data.get("operators") or []],
            makespan_minutes=float(data.get("makespan_minutes") or 0), contiguous=bool(data.get("contiguous")),
            explanation=[str(e) for e in data.get("explanation") or []], done={str(d) for d in data.get("done") or []},
        )

    def with_done(self, pending: dict[str, bool]) -> HarvestPlan:
        """The plan as this phone sees it, with queued done/undo actions applied."""
        done = set(self.done)
        for shed, is_done in pending.items():
            (done.add if is_done else done.discard)(shed)
        return HarvestPlan(self.date, self.created_ms, self.operators, self.makespan_minutes, self.contiguous,
                           self.explanation, done)

    def operator(self, name: str | None) -> OperatorPlan | None:
        return next((o for o in self.operators if name and o.name == name), None)

    def sheds_of(self, name: str | None) -> set[str]:
        op = self.operator(name)
        return set(op.sheds) if op else set()

    @property
    def all_sheds(self) -> list[str]:
        return [s for o in self.operators for s in o.sheds]
