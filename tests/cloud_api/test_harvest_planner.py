"""The harvest planner on hand-made cases whose optimum is worked out in the comments.

Cost model: operator total = fruits / pick rate + 2 x farthest position / walk speed. With the defaults
(12 fruits/min, 60 m/min) 12 fruits = 1 min of picking and a shed at 30 m costs 1 min of walking.
"""

from __future__ import annotations

import pytest

from cloud_api.services.harvest import PlanParams, ShedLoad, default_positions, plan_harvest


def sheds(*minutes: int, spacing: float = 30.0) -> list[ShedLoad]:
    """Sheds A, B, C... at spacing, 2 x spacing, ... with ``minutes`` of picking each (12 fruits per minute)."""
    return [ShedLoad(chr(65 + i), m * 12, (i + 1) * spacing) for i, m in enumerate(minutes)]


def split(plan) -> list[list[str]]:  # noqa: ANN001
    return [o.sheds for o in plan.operators]


def test_even_sheds_split_into_two_stretches() -> None:
    # 4 sheds of 10 min at 40/80/120/160 m (walk 2.67 min per 80 m round trip step):
    # {A,B} = 20 + 2.67 = 22.67, {C,D} = 20 + 5.33 = 25.33 -> 25.33; every other split is worse or equal.
    plan = plan_harvest(sheds(10, 10, 10, 10, spacing=40))
    assert split(plan) == [["A", "B"], ["C", "D"]]
    assert plan.contiguous and plan.makespan_minutes == pytest.approx(25 + 1 / 3)
    first, second = plan.operators
    assert (first.name, first.fruits, first.pick_minutes) == ("operator-1", 240, 20)
    assert first.walk_minutes == pytest.approx(80 * 2 / 60) and second.walk_minutes == pytest.approx(160 * 2 / 60)
    assert second.total_minutes == pytest.approx(plan.makespan_minutes)
    assert any("one stretch" in line for line in plan.explanation)


def test_uneven_case_mixes_sheds_when_contiguous_costs_too_much() -> None:
    # picking 50, 50, 10, 10 min at 30/60/90/120 m (walks 1, 2, 3, 4 min there and back).
    # contiguous: {A}|{B,C,D} = 51 | 70 + 4 = 74 (best); {A,B}|{C,D} = 102 | 24; {A,B,C}|{D} = 113 | 14.
    # mixed: {A,C} = 60 + 3 = 63, {B,D} = 60 + 4 = 64 -> 64, optimal (someone walks to D: 4 + 60 at best).
    # 74 / 64 = 1.156 > 1.05 -> the mixed assignment is used.
    plan = plan_harvest(sheds(50, 50, 10, 10))
    assert not plan.contiguous
    assert plan.contiguous_makespan_minutes == pytest.approx(74)
    assert plan.makespan_minutes == pytest.approx(64)
    assert sorted(split(plan)) == [["A", "C"], ["B", "D"]]
    assert sorted(o.total_minutes for o in plan.operators) == pytest.approx([63, 64])
    assert any("16 % longer" in line for line in plan.explanation)


def test_contiguous_is_kept_within_five_percent() -> None:
    # picking 5, 20, 20, 20 min at walks 1..4: contiguous {A,B}|{C,D} = 27 | 44 -> 44 (best contiguous);
    # mixed {A,D}|{B,C} = 29 | 43 -> 43 (best mixed). 44 / 43 = 1.023 <= 1.05 -> keep contiguous.
    plan = plan_harvest(sheds(5, 20, 20, 20))
    assert plan.non_contiguous_makespan_minutes == pytest.approx(43)
    assert plan.contiguous and plan.makespan_minutes == pytest.approx(44)
    assert split(plan) == [["A", "B"], ["C", "D"]]
    # with no tolerance the 1-minute gain wins
    strict = plan_harvest(sheds(5, 20, 20, 20), PlanParams(contiguity_tolerance=0.0))
    assert not strict.contiguous and strict.makespan_minutes == pytest.approx(43)


def test_done_and_empty_sheds_are_left_out() -> None:
    # B is done and D has nothing ripe: A (10 min, walk 1) and C (10 min, walk 3) remain, one each -> 13.
    loads = sheds(10, 30, 10, 0)
    plan = plan_harvest(loads, done={"B"})
    assert split(plan) == [["A"], ["C"]] and plan.makespan_minutes == pytest.approx(13)
    assert plan.excluded_done == ["B"] and plan.excluded_empty == ["D"]
    assert any("marked done" in line and "B" in line for line in plan.explanation)


def test_one_operator_walks_to_the_farthest_shed_once() -> None:
    plan = plan_harvest(sheds(10, 20, 30), PlanParams(operators=("li",)))
    assert split(plan) == [["A", "B", "C"]] and plan.makespan_minutes == pytest.approx(60 + 3)


def test_more_operators_than_sheds_and_nothing_to_pick() -> None:
    plan = plan_harvest(sheds(10, 10), PlanParams(operators=("a", "b", "c")))
    assert split(plan) == [["A"], ["B"], []] and plan.makespan_minutes == pytest.approx(12)
    assert "c has no shed to pick." in plan.explanation
    empty = plan_harvest([], PlanParams())
    assert empty.makespan_minutes == 0 and split(empty) == [[], []] and empty.contiguous


def test_rates_change_the_balance() -> None:
    # at 6 fruits/min picking doubles: {A,B}|{C,D} of 10-min (now 20-min) sheds = 40 + 2.67 | 40 + 5.33
    plan = plan_harvest(sheds(10, 10, 10, 10, spacing=40), PlanParams(pick_rate_per_min=6, walk_speed_m_per_min=120))
    assert plan.makespan_minutes == pytest.approx(40 + 320 / 120)


def test_default_positions_follow_natural_order_with_overrides() -> None:
    assert default_positions(["shed-10", "shed-2", "shed-1"], 40) == {"shed-1": 40, "shed-2": 80, "shed-10": 120}
    assert default_positions(["shed-1", "shed-2"], 40, {"shed-2": 5, "ghost": 1}) == {"shed-1": 40, "shed-2": 5}


def test_invalid_parameters_are_rejected() -> None:
    with pytest.raises(ValueError, match="operators"):
        PlanParams(operators=("a", "a"))
    with pytest.raises(ValueError, match="pick_rate"):
        PlanParams(pick_rate_per_min=0)
