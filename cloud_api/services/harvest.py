"""Harvest planning: split today's pick-ready sheds between operators so everyone is done as early as possible.

Pure Python (no FastAPI, no storage): feed it sheds with their pick-ready fruit counts and walkway positions.

Cost model. An operator's day = picking (fruits / pick rate) + walking from the start of the walkway to their
farthest shed and back (2 x position / walk speed). The plan minimises the makespan: the time until the last
operator is done.

Rule for contiguity. Operators work best on one stretch of the walkway each, so the planner computes
1. the best *contiguous* split exactly: dynamic programming over the split points of the sheds in walkway
   order (O(operators x sheds^2)); and
2. a good *non-contiguous* assignment: longest-picking-first greedy (each shed goes to the operator who would
   finish it soonest), then improved by single moves and pairwise swaps while the makespan drops.
The contiguous split is kept when its makespan is within 5 % of the non-contiguous one
(``contiguous <= 1.05 x non_contiguous``); otherwise the non-contiguous assignment is used.
Sheds marked done today and sheds with no pick-ready fruit are left out.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace

DEFAULT_OPERATORS = ("operator-1", "operator-2")
CONTIGUITY_TOLERANCE = 0.05
_EPS = 1e-9
_DIGITS = re.compile(r"(\d+)")


def _natural(value: str) -> list[tuple[int, int | str]]:
    return [(0, int(part)) if part.isdigit() else (1, part) for part in _DIGITS.split(value) if part]


@dataclass(frozen=True)
class ShedLoad:
    id: str
    fruits: int  # pick-ready fruits
    position_m: float  # distance from the start of the walkway


@dataclass(frozen=True)
class PlanParams:
    operators: tuple[str, ...] = DEFAULT_OPERATORS
    pick_rate_per_min: float = 12.0
    walk_speed_m_per_min: float = 60.0
    contiguity_tolerance: float = CONTIGUITY_TOLERANCE

    def __post_init__(self) -> None:
        if not self.operators or len(set(self.operators)) != len(self.operators):
            raise ValueError("operators: need at least one, all names distinct")
        if self.pick_rate_per_min <= 0 or self.walk_speed_m_per_min <= 0:
            raise ValueError("pick_rate_per_min and walk_speed_m_per_min must be > 0")


@dataclass(frozen=True)
class OperatorPlan:
    name: str
    sheds: list[str]  # in walkway order
    fruits: int
    pick_minutes: float
    walk_minutes: float
    farthest_m: float

    @property
    def total_minutes(self) -> float:
        return self.pick_minutes + self.walk_minutes


@dataclass(frozen=True)
class HarvestPlan:
    operators: list[OperatorPlan]
    makespan_minutes: float
    contiguous: bool
    contiguous_makespan_minutes: float
    non_contiguous_makespan_minutes: float
    excluded_done: list[str] = field(default_factory=list)
    excluded_empty: list[str] = field(default_factory=list)
    explanation: list[str] = field(default_factory=list)


def default_positions(shed_ids: Iterable[str], spacing_m: float, overrides: dict[str, float] | None = None) -> dict[str, float]:
    """Shed i (1-based, natural order: shed-2 before shed-10) sits at i x spacing_m unless overridden."""
    ordered = sorted(set(shed_ids), key=_natural)
    positions = {shed: (i + 1) * spacing_m for i, shed in enumerate(ordered)}
    positions.update({k: v for k, v in (overrides or {}).items() if k in positions})
    return positions


class _Costs:
    def __init__(self, params: PlanParams) -> None:
        self.rate, self.speed = params.pick_rate_per_min, params.walk_speed_m_per_min

    def total(self, sheds: Sequence[ShedLoad]) -> float:
        if not sheds:
            return 0.0
        return sum(s.fruits for s in sheds) / self.rate + 2 * max(s.position_m for s in sheds) / self.speed


def _contiguous(sheds: list[ShedLoad], k: int, costs: _Costs) -> list[list[ShedLoad]]:
    """Exact best split of walkway-ordered sheds into at most k consecutive blocks (DP over split points)."""
    n = len(sheds)
    prefix = [0]
    for s in sheds:
        prefix.append(prefix[-1] + s.fruits)

    def block(i: int, j: int) -> float:  # sheds[i:j], whose farthest is sheds[j-1] (sorted by position)
        return 0.0 if i == j else (prefix[j] - prefix[i]) / costs.rate + 2 * sheds[j - 1].position_m / costs.speed

    best = [[math.inf] * (n + 1) for _ in range(k + 1)]
    cut = [[0] * (n + 1) for _ in range(k + 1)]
    best[0][0] = 0.0
    for j in range(1, k + 1):
        for m in range(n + 1):
            for i in range(m + 1):
                value = max(best[j - 1][i], block(i, m))
                if value < best[j][m] - _EPS:
                    best[j][m], cut[j][m] = value, i
    blocks, m = [], n
    for j in range(k, 0, -1):
        i = cut[j][m]
        blocks.append(sheds[i:m])
        m = i
    blocks.reverse()
    non_empty = [b for b in blocks if b]
    return non_empty + [[] for _ in range(k - len(non_empty))]


def _makespan(groups: Sequence[Sequence[ShedLoad]], costs: _Costs) -> float:
    return max((costs.total(g) for g in groups), default=0.0)


def _key(groups: Sequence[Sequence[ShedLoad]], costs: _Costs) -> list[float]:
    return sorted((costs.total(g) for g in groups), reverse=True)


def _improves(new: list[float], old: list[float]) -> bool:
    for a, b in zip(new, old, strict=True):
        if a < b - _EPS:
            return True
        if a > b + _EPS:
            return False
    return False


def _greedy(sheds: list[ShedLoad], k: int, costs: _Costs) -> list[list[ShedLoad]]:
    """Longest-picking-first greedy, then single moves and pairwise swaps while the sorted totals improve."""
    groups: list[list[ShedLoad]] = [[] for _ in range(k)]
    for shed in sorted(sheds, key=lambda s: (-s.fruits, -s.position_m)):
        target = min(range(k), key=lambda g: (costs.total([*groups[g], shed]), g))
        groups[target].append(shed)
    for _ in range(10_000):  # bounded; each accepted step strictly improves the sorted totals
        current = _key(groups, costs)
        step = _best_step(groups, costs, current)
        if step is None:
            break
        groups = step
    return groups


def _best_step(groups: list[list[ShedLoad]], costs: _Costs, current: list[float]) -> list[list[ShedLoad]] | None:
    k = len(groups)
    worst = max(range(k), key=lambda g: costs.total(groups[g]))
    for other in range(k):
        if other == worst:
            continue
        for shed in groups[worst]:
            moved = [list(g) for g in groups]
            moved[worst].remove(shed)
            moved[other].append(shed)
            if _improves(_key(moved, costs), current):
                return moved
            for partner in groups[other]:
                swapped = [list(g) for g in moved]
                swapped[other].remove(partner)
                swapped[worst].append(partner)
                if _improves(_key(swapped, costs), current):
                    return swapped
    return None


def plan_harvest(sheds: Sequence[ShedLoad], params: PlanParams | None = None, done: Collection[str] = ()) -> HarvestPlan:
    """Split the sheds between ``params.operators``; see the module docstring for the rule."""
    params = params or PlanParams()
    costs = _Costs(params)
    k = len(params.operators)
    done_set = set(done)
    excluded_done = sorted((s.id for s in sheds if s.id in done_set), key=_natural)
    excluded_empty = sorted((s.id for s in sheds if s.id not in done_set and s.fruits <= 0), key=_natural)
    work = sorted(
        (s for s in sheds if s.id not in done_set and s.fruits > 0), key=lambda s: (s.position_m, _natural(s.id))
    )
    contiguous_groups = _contiguous(work, k, costs)
    greedy_groups = _greedy(work, k, costs)
    contiguous_span, greedy_span = _makespan(contiguous_groups, costs), _makespan(greedy_groups, costs)
    keep_contiguous = contiguous_span <= (1 + params.contiguity_tolerance) * greedy_span + _EPS
    chosen = contiguous_groups if keep_contiguous else _order_groups(greedy_groups)
    operators = [_operator_plan(name, group, costs) for name, group in zip(params.operators, chosen, strict=True)]
    plan = HarvestPlan(
        operators=operators,
        makespan_minutes=max((o.total_minutes for o in operators), default=0.0),
        contiguous=keep_contiguous,
        contiguous_makespan_minutes=contiguous_span,
        non_contiguous_makespan_minutes=greedy_span,
        excluded_done=excluded_done,
        excluded_empty=excluded_empty,
    )
    return replace(plan, explanation=_explain(plan, params, work))


def _order_groups(groups: list[list[ShedLoad]]) -> list[list[ShedLoad]]:
    """Each group in walkway order; groups ordered by their nearest shed, empty ones last."""
    ordered = [sorted(g, key=lambda s: (s.position_m, _natural(s.id))) for g in groups]
    return sorted(ordered, key=lambda g: (not g, g[0].position_m if g else 0.0))


def _operator_plan(name: str, group: Sequence[ShedLoad], costs: _Costs) -> OperatorPlan:
    fruits = sum(s.fruits for s in group)
    farthest = max((s.position_m for s in group), default=0.0)
    return OperatorPlan(
        name=name, sheds=[s.id for s in group], fruits=fruits, pick_minutes=fruits / costs.rate,
        walk_minutes=2 * farthest / costs.speed if group else 0.0, farthest_m=farthest,
    )


def _minutes(value: float) -> str:
    return f"{value:.1f} min"


def _explain(plan: HarvestPlan, params: PlanParams, work: list[ShedLoad]) -> list[str]:
    total = sum(s.fruits for s in work)
    lines = [f"{len(work)} shed(s) to pick with {total} pick-ready fruit(s) in total."]
    if plan.excluded_done:
        lines.append(f"Left out because they are marked done today: {', '.join(plan.excluded_done)}.")
    if plan.excluded_empty:
        lines.append(f"Left out because they have no pick-ready fruit: {', '.join(plan.excluded_empty)}.")
    lines.append(
        f"Picking at {params.pick_rate_per_min:g} fruits/min and walking at {params.walk_speed_m_per_min:g} m/min; "
        "each operator walks from the start of the walkway to their farthest shed and back."
    )
    if not work:
        lines.append("Nothing to pick: no operator needs to go out.")
        return lines
    tolerance = f"{params.contiguity_tolerance * 100:g} %"
    lines.append(
        f"Best split into one stretch of the walkway per operator: {_minutes(plan.contiguous_makespan_minutes)}; "
        f"best mixed assignment found: {_minutes(plan.non_contiguous_makespan_minutes)}."
    )
    if plan.contiguous:
        lines.append(f"Each operator keeps one stretch of the walkway: it costs at most {tolerance} more time.")
    else:
        extra = plan.contiguous_makespan_minutes / plan.non_contiguous_makespan_minutes - 1
        lines.append(
            f"Sheds are mixed between operators: one stretch each would take {extra * 100:.0f} % longer "
            f"(more than {tolerance})."
        )
    for o in plan.operators:
        if not o.sheds:
            lines.append(f"{o.name} has no shed to pick.")
            continue
        lines.append(
            f"{o.name}: {', '.join(o.sheds)}: {o.fruits} fruit(s), {_minutes(o.pick_minutes)} picking + "
            f"{_minutes(o.walk_minutes)} walking (to {o.farthest_m:g} m and back) = {_minutes(o.total_minutes)}."
        )
    lines.append(f"Everyone is done after {_minutes(plan.makespan_minutes)}.")
    return lines
