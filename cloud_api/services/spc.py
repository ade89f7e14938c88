"""Statistical process control for pass/reject inspection: the p-chart and its run rules.

Pure Python (no FastAPI, no database). A p-chart plots the reject fraction ``p_i = d_i / n_i`` of each
subgroup (here: a time bucket of inspected parts) around the centre line ``p̄ = Σd / Σn``. Subgroup sizes
vary, so the limits vary too:

    σ_i   = sqrt(p̄ (1 − p̄) / n_i)
    UCL_i = min(1, p̄ + 3 σ_i)        LCL_i = max(0, p̄ − 3 σ_i)

Run rules (Western Electric / Nelson) are evaluated on the standardised ``z_i = (p_i − p̄) / σ_i`` so that
they stay meaningful when ``n_i`` varies. Subgroups with ``n_i = 0`` carry no information and must be left
out before calling :func:`p_chart` (the rules look at consecutive *plotted* points).

A point is flagged by a rule when the pattern is complete at that point and the point itself is part of
the pattern (so an in-control point that merely ends a window is never painted red):

* ``beyond_3sigma``  — |z_i| > 3 (the point is outside its control limits);
* ``2_of_3_beyond_2sigma`` — at least 2 of the 3 points ending at i have z > 2 (or all of them < −2 on the
  same side), and point i is one of them;
* ``4_of_5_beyond_1sigma`` — at least 4 of the 5 points ending at i have z > 1 (same side), point i among them;
* ``8_same_side`` — the 8 points ending at i are all strictly above (or all strictly below) the centre line.

"Beyond" is strict: a point exactly on a limit is not beyond it. When p̄ is 0 or 1 every subgroup equals
p̄, σ_i is 0 and z_i is defined as 0 (no variation, nothing to flag).

The zone rules (2 of 3, 4 of 5, 8 in a row) assume p_i is roughly normal and symmetric around p̄. They are
applied only to subgroups whose unclipped limits p̄ ± 3σ_i lie inside (0, 1), roughly n·p̄ > 9; other
subgroups count as "within 1σ" for those rules (rule 1 always applies). With small subgroups and a low defect
rate zero rejects is the likeliest outcome of an in-control process and a single reject is already beyond 2σ,
so the zone rules would fire on noise: with n = 7 and p̄ = 2.8 %, eight zero-reject subgroups in a row happen
in one window out of five. To get the zone rules on a slow line, choose a larger bucket.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

RuleName = Literal["beyond_3sigma", "2_of_3_beyond_2sigma", "4_of_5_beyond_1sigma", "8_same_side"]

RULES: tuple[RuleName, ...] = ("beyond_3sigma", "2_of_3_beyond_2sigma", "4_of_5_beyond_1sigma", "8_same_side")


class InvalidSubgroup(ValueError):
    """A subgroup that cannot be charted (n < 1, or more defectives than parts)."""


@dataclass(frozen=True)
class Subgroup:
    """One plotted subgroup: ``n`` parts inspected, ``d`` of them rejected."""

    n: int
    d: int


@dataclass(frozen=True)
class PChartPoint:
    n: int
    d: int
    p: float
    sigma: float
    ucl: float
    lcl: float
    z: float
    rules: tuple[RuleName, ...] = field(default=())

    @property
    def flagged(self) -> bool:
        return bool(self.rules)


@dataclass(frozen=True)
class PChart:
    p_bar: float  # centre line; 0.0 when there is no data
    total_n: int
    total_d: int
    points: list[PChartPoint]

    @property
    def flagged(self) -> int:
        return sum(1 for p in self.points if p.flagged)


def centre_line(subgroups: Sequence[Subgroup]) -> float:
    """p̄ = Σd / Σn (0.0 for no data)."""
    total_n = sum(s.n for s in subgroups)
    return sum(s.d for s in subgroups) / total_n if total_n else 0.0


def sigma(p_bar: float, n: int) -> float:
    """Standard deviation of a subgroup fraction of size ``n`` around ``p̄``."""
    return math.sqrt(p_bar * (1.0 - p_bar) / n)


def control_limits(p_bar: float, n: int) -> tuple[float, float]:
    """(LCL, UCL) for a subgroup of size ``n``, clipped to [0, 1]."""
    s = sigma(p_bar, n)
    return max(0.0, p_bar - 3.0 * s), min(1.0, p_bar + 3.0 * s)


def _standardised(p: float, p_bar: float, s: float) -> float:
    if s == 0.0:
        return 0.0
    return (p - p_bar) / s


def _k_of_m(z: Sequence[float], i: int, k: int, m: int, threshold: float) -> bool:
    """At least k of the (up to) m points ending at i are beyond ``threshold`` on one side, point i among them.

    At the start of a series the window is shorter: two first points both beyond 2σ already are "2 of 3".
    """
    window = z[max(0, i - m + 1) : i + 1]
    if z[i] > threshold and sum(1 for v in window if v > threshold) >= k:
        return True
    return z[i] < -threshold and sum(1 for v in window if v < -threshold) >= k


def _run_same_side(z: Sequence[float], i: int, length: int) -> bool:
    if i + 1 < length:
        return False
    window = z[i - length + 1 : i + 1]
    return all(v > 0 for v in window) or all(v < 0 for v in window)


def run_rules(z: Sequence[float], zone_usable: Sequence[bool] | None = None) -> list[tuple[RuleName, ...]]:
    """The rules each point of a standardised series breaks (empty tuple: in control).

    ``zone_usable[i]`` False keeps point i out of the zone rules 2-4 (it is neither beyond a zone nor on a
    side of the centre line for them, see the module docstring); by default every point takes part.
    """
    usable = list(zone_usable) if zone_usable is not None else [True] * len(z)
    if len(usable) != len(z):
        raise ValueError("zone_usable must have one entry per point")
    zones = [v if ok else 0.0 for v, ok in zip(z, usable, strict=True)]
    flags: list[tuple[RuleName, ...]] = []
    for i, value in enumerate(z):
        broken: list[RuleName] = []
        if abs(value) > 3.0:
            broken.append("beyond_3sigma")
        if _k_of_m(zones, i, 2, 3, 2.0):
            broken.append("2_of_3_beyond_2sigma")
        if _k_of_m(zones, i, 4, 5, 1.0):
            broken.append("4_of_5_beyond_1sigma")
        if _run_same_side(zones, i, 8):
            broken.append("8_same_side")
        flags.append(tuple(broken))
    return flags


def p_chart(subgroups: Sequence[Subgroup], p_bar: float | None = None) -> PChart:
    """The p-chart of these subgroups (in time order, each with n >= 1).

    ``p_bar`` fixes the centre line to a known standard (phase II); by default it is estimated from the data.
    """
    for index, s in enumerate(subgroups):
        if s.n < 1 or s.d < 0 or s.d > s.n:
            raise InvalidSubgroup(f"subgroup {index}: needs n >= 1 and 0 <= d <= n, got n={s.n} d={s.d}")
    if p_bar is not None and not 0.0 <= p_bar <= 1.0:
        raise InvalidSubgroup(f"p_bar must be within 0..1, got {p_bar}")
    centre = centre_line(subgroups) if p_bar is None else p_bar
    sigmas = [sigma(centre, s.n) for s in subgroups]
    fractions = [s.d / s.n for s in subgroups]
    z = [_standardised(p, centre, sd) for p, sd in zip(fractions, sigmas, strict=True)]
    flags = run_rules(z, [0.0 < centre - 3.0 * sd and centre + 3.0 * sd < 1.0 for sd in sigmas])
    points = []
    for s, p, sd, zi, rules in zip(subgroups, fractions, sigmas, z, flags, strict=True):
        lcl, ucl = control_limits(centre, s.n)
        points.append(PChartPoint(n=s.n, d=s.d, p=p, sigma=sd, ucl=ucl, lcl=lcl, z=zi, rules=rules))
    return PChart(
        p_bar=centre, total_n=sum(s.n for s in subgroups), total_d=sum(s.d for s in subgroups), points=points
    )
