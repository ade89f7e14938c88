"""p-chart statistics and run rules on hand-computed cases (cloud_api.services.spc, no I/O)."""

from __future__ import annotations

import math

import pytest

from cloud_api.services.spc import InvalidSubgroup, Subgroup, control_limits, p_chart, run_rules


def test_centre_line_and_limits_vary_with_subgroup_size() -> None:
    # n = 100, 50, 200, 100; rejects 2, 3, 4, 1 -> p_bar = 10 / 450 = 1/45
    chart = p_chart([Subgroup(100, 2), Subgroup(50, 3), Subgroup(200, 4), Subgroup(100, 1)])
    assert chart.p_bar == pytest.approx(1 / 45)
    assert (chart.total_n, chart.total_d) == (450, 10)
    # p_bar (1 - p_bar) = 44 / 2025 = 0.0217284
    # n=100: sigma = sqrt(0.0217284 / 100) = 0.0147406, UCL = 0.0222222 + 0.0442217 = 0.0664439
    # n=50:  sigma = 0.0208463, UCL = 0.0847611
    # n=200: sigma = 0.0104231, UCL = 0.0534917
    sigmas = [p.sigma for p in chart.points]
    ucls = [p.ucl for p in chart.points]
    assert sigmas == pytest.approx([0.0147406, 0.0208463, 0.0104231, 0.0147406], abs=1e-7)
    assert ucls == pytest.approx([0.0664439, 0.0847611, 0.0534917, 0.0664439], abs=1e-7)
    assert [p.lcl for p in chart.points] == [0.0, 0.0, 0.0, 0.0]  # p_bar - 3 sigma < 0: clipped
    assert [p.p for p in chart.points] == pytest.approx([0.02, 0.06, 0.02, 0.01])
    # z = (p - p_bar) / sigma: (0.06 - 0.0222222) / 0.0208463 = 1.8122
    assert chart.points[1].z == pytest.approx(1.8122, abs=1e-4)
    assert chart.flagged == 0


def test_lcl_above_zero_for_large_subgroups() -> None:
    lcl, ucl = control_limits(0.1, 900)  # sigma = sqrt(0.09 / 900) = 0.01
    assert (lcl, ucl) == pytest.approx((0.07, 0.13))


def test_same_fraction_is_in_control_for_small_n_and_out_for_large_n() -> None:
    # p_bar fixed at 0.05; p = 0.09 in both subgroups
    chart = p_chart([Subgroup(100, 9), Subgroup(1000, 90)], p_bar=0.05)
    small, large = chart.points
    assert small.z == pytest.approx(0.04 / math.sqrt(0.0475 / 100))  # 1.835
    assert large.z == pytest.approx(0.04 / math.sqrt(0.0475 / 1000))  # 5.804
    assert small.rules == () and not small.flagged
    assert "beyond_3sigma" in large.rules and large.flagged
    assert large.ucl == pytest.approx(0.05 + 3 * math.sqrt(0.0475 / 1000))  # 0.070676 < 0.09


def test_one_point_beyond_ucl_is_flagged() -> None:
    # ten subgroups of 100: 2 rejects each, one with 14 -> p_bar = 32 / 1000 = 0.032
    rejects = [2, 2, 2, 2, 14, 2, 2, 2, 2, 2]
    chart = p_chart([Subgroup(100, d) for d in rejects])
    assert chart.p_bar == pytest.approx(0.032)
    sigma = math.sqrt(0.032 * 0.968 / 100)  # 0.0176000
    assert chart.points[4].ucl == pytest.approx(0.032 + 3 * sigma)  # 0.0848
    assert chart.points[4].z == pytest.approx((0.14 - 0.032) / sigma)  # 6.14
    assert [i for i, p in enumerate(chart.points) if p.flagged] == [4]
    assert chart.points[4].rules == ("beyond_3sigma",)


def test_beyond_3sigma_is_strict() -> None:
    flags = run_rules([3.0, 0.0, 0.0, -3.0, 0.0, 0.0, 3.01, 0.0, 0.0, -3.5])
    assert [i for i, f in enumerate(flags) if f] == [6, 9]
    assert flags[6] == flags[9] == ("beyond_3sigma",)


def test_two_of_three_beyond_2sigma_same_side() -> None:
    flags = run_rules([0.5, 2.5, 0.1, 2.1])
    assert flags == [(), (), (), ("2_of_3_beyond_2sigma",)]
    # opposite sides do not count together
    assert run_rules([0.0, 2.5, -2.5, 0.0]) == [(), (), (), ()]
    # an in-control point that closes the window is not flagged
    assert run_rules([0.0, 2.5, 2.5, 0.0])[3] == ()
    assert run_rules([0.0, 2.5, 2.5, 0.0])[2] == ("2_of_3_beyond_2sigma",)
    assert run_rules([-2.2, 0.3, -2.6])[2] == ("2_of_3_beyond_2sigma",)


def test_four_of_five_beyond_1sigma_same_side() -> None:
    z = [1.5, 1.2, 0.3, 1.1, 1.4]
    assert run_rules(z)[3] == ()  # only 3 of 4 so far
    assert run_rules(z)[4] == ("4_of_5_beyond_1sigma",)
    assert run_rules([-1.5, -1.2, 0.3, -1.1, -1.4])[4] == ("4_of_5_beyond_1sigma",)
    assert run_rules([1.5, 1.2, -1.3, 1.1, 0.2]) == [()] * 5


def test_eight_in_a_row_on_one_side() -> None:
    assert run_rules([0.1] * 7 + [0.2])[7] == ("8_same_side",)
    assert run_rules([0.1] * 7 + [0.2])[6] == ()
    assert run_rules([-0.1] * 9)[7:] == [("8_same_side",), ("8_same_side",)]
    assert run_rules([0.1] * 7 + [0.0]) == [()] * 8  # on the centre line breaks the run
    assert run_rules([0.1] * 4 + [-0.1] + [0.1] * 3) == [()] * 8


def test_several_rules_on_one_point() -> None:
    flags = run_rules([0.5, 0.5, 0.5, 0.5, 1.5, 1.5, 2.5, 3.5])
    assert flags[7] == ("beyond_3sigma", "2_of_3_beyond_2sigma", "4_of_5_beyond_1sigma", "8_same_side")


def test_no_variation_is_in_control() -> None:
    chart = p_chart([Subgroup(10, 0), Subgroup(20, 0)])
    assert chart.p_bar == 0.0
    assert [(p.sigma, p.z, p.ucl, p.lcl, p.rules) for p in chart.points] == [(0.0, 0.0, 0.0, 0.0, ())] * 2
    assert p_chart([]).points == [] and p_chart([]).p_bar == 0.0


def test_invalid_subgroups_are_rejected() -> None:
    with pytest.raises(InvalidSubgroup, match="subgroup 1"):
        p_chart([Subgroup(5, 1), Subgroup(0, 0)])
    with pytest.raises(InvalidSubgroup, match="d=6"):
        p_chart([Subgroup(5, 6)])
    with pytest.raises(InvalidSubgroup, match="p_bar"):
        p_chart([Subgroup(5, 1)], p_bar=1.5)


def test_zone_rules_are_off_for_subgroups_too_small_for_the_normal_approximation() -> None:
    # n = 7, p_bar = 5/252 = 0.0198: sigma = 0.0527, UCL = 0.178 (one reject, 0.143, is inside), LCL clipped;
    # zero rejects is the likeliest outcome of each subgroup (P = 0.87)
    rejects = [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1,
               0, 0, 0, 1, 0, 0]
    chart = p_chart([Subgroup(7, d) for d in rejects])
    assert chart.p_bar == pytest.approx(5 / 252)
    assert chart.points[0].ucl == pytest.approx(0.1780, abs=1e-4)
    assert all(p.lcl == 0.0 for p in chart.points)
    assert chart.flagged == 0  # neither the zero runs nor two single rejects (z = 2.33) close together
    # the same zeros are a real downward shift when the subgroups are large enough for a positive LCL
    big = p_chart([Subgroup(1000, 100)] * 4 + [Subgroup(1000, 0)] * 8, p_bar=0.1)
    assert big.points[0].lcl == pytest.approx(0.1 - 3 * math.sqrt(0.09 / 1000))  # 0.0715 > 0
    assert "8_same_side" in big.points[11].rules and "beyond_3sigma" in big.points[4].rules


def test_zone_usable_mutes_rules_2_to_4_only() -> None:
    z = [-1.5] * 8 + [2.5] * 8
    muted = run_rules(z, [False] * 8 + [True] * 8)
    assert muted[:8] == [()] * 8
    assert muted[9] == ("2_of_3_beyond_2sigma",)  # the usable points still count among themselves
    assert muted[15] == ("2_of_3_beyond_2sigma", "4_of_5_beyond_1sigma", "8_same_side")
    assert run_rules(z)[7] == ("4_of_5_beyond_1sigma", "8_same_side")
    assert run_rules([-3.5, 3.5], [False, False]) == [("beyond_3sigma",)] * 2  # rule 1 always applies
    with pytest.raises(ValueError, match="one entry per point"):
        run_rules([0.0, 0.0], [True])
