"""The soak's fault injector: a seeded schedule of faults and how each one starts and ends on a farm.

Faults are serial (one ends before the next starts), every 1-3 minutes by default:

* ``broker_kill`` / ``api_kill`` / ``agent_kill``: ``kill -9``, down for a while, started again;
* ``disk_full``: the agent's data disk is filled by a ballast file, then freed;
* ``clock_jump``: the agent's wall clock steps by ±10 minutes, then steps back (NTP fixing it);
* ``partition``: the agent's proxy to the broker drops or stalls every connection, then heals.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bench.soak_proxy import Mode

KINDS = ("broker_kill", "api_kill", "agent_kill", "disk_full", "clock_jump", "partition")
AGENT_KINDS = frozenset({"agent_kill", "disk_full", "clock_jump", "partition"})
DURATION_S = {  # (shortest, longest) time a fault lasts before it is undone
    "broker_kill": (5.0, 30.0), "api_kill": (5.0, 30.0), "agent_kill": (3.0, 20.0),
    "disk_full": (20.0, 60.0), "clock_jump": (30.0, 90.0), "partition": (20.0, 60.0),
}
CLOCK_STEP_S = 600.0


@dataclass
class Fault:
    at_s: float  # seconds after the soak started
    kind: str
    duration_s: float
    target: str | None = None  # device name for the agent faults
    detail: str = ""  # clock step (+600/-600) or proxy mode (drop/stall)
    started_s: float | None = None
    ended_s: float | None = None
    notes: list[str] = field(default_factory=list)

    def label(self) -> str:
        return " ".join(p for p in (self.kind, self.target or "", self.detail) if p)


class Farm(Protocol):
    """What the injector needs from the farm it strikes."""

    def kill_broker(self) -> None: ...
    def start_broker(self) -> None: ...
    def kill_api(self) -> None: ...
    def start_api(self) -> None: ...
    def kill_agent(self, device: str) -> None: ...
    def start_agent(self, device: str) -> None: ...
    def fill_disk(self, device: str) -> None: ...
    def free_disk(self, device: str) -> None: ...
    def set_clock(self, device: str, offset_s: float) -> None: ...
    def set_link(self, device: str, mode: Mode) -> None: ...


def _details(kind: str, rng: random.Random) -> str:
    if kind == "clock_jump":
        return f"{rng.choice((1, -1)) * CLOCK_STEP_S:+.0f}"
    if kind == "partition":
        return rng.choice(("drop", "stall"))
    return ""


def make_fault(kind: str, at_s: float, devices: Sequence[str], rng: random.Random,
               duration_scale: float = 1.0) -> Fault:
    if kind not in KINDS:
        raise ValueError(f"fault kind {kind!r}: expected one of {', '.join(KINDS)}")
    low, high = DURATION_S[kind]
    return Fault(at_s=at_s, kind=kind, duration_s=round(rng.uniform(low, high) * duration_scale, 1),
                 target=rng.choice(list(devices)) if kind in AGENT_KINDS else None, detail=_details(kind, rng))


def random_schedule(seed: int, start_s: float, end_s: float, devices: Sequence[str],
                    every_s: tuple[float, float] = (60.0, 180.0)) -> list[Fault]:
    """Faults every ``every_s`` (uniform) from ``start_s``; each one is over by ``end_s``."""
    rng = random.Random(seed)
    faults: list[Fault] = []
    t = start_s + rng.uniform(*every_s) / 2
    while True:
        fault = make_fault(rng.choice(KINDS), round(t, 1), devices, rng)
        if fault.at_s + fault.duration_s > end_s:
            return faults
        faults.append(fault)
        t = fault.at_s + fault.duration_s + rng.uniform(*every_s)


def forced_schedule(seed: int, kinds: Sequence[str], start_s: float, gap_s: float, devices: Sequence[str],
                    duration_scale: float = 1.0) -> list[Fault]:
    """The given kinds in order, ``gap_s`` apart (end of one to start of the next): for the short suite run."""
    rng = random.Random(seed)
    faults, t = [], start_s
    for kind in kinds:
        fault = make_fault(kind, round(t, 1), devices, rng, duration_scale)
        faults.append(fault)
        t = fault.at_s + fault.duration_s + gap_s
    return faults


def begin(fault: Fault, farm: Farm) -> Callable[[], None]:
    """Start the fault; returns the action that ends it."""
    device = fault.target or ""
    if fault.kind == "broker_kill":
        farm.kill_broker()
        return farm.start_broker
    if fault.kind == "api_kill":
        farm.kill_api()
        return farm.start_api
    if fault.kind == "agent_kill":
        farm.kill_agent(device)
        return lambda: farm.start_agent(device)
    if fault.kind == "disk_full":
        farm.fill_disk(device)
        return lambda: farm.free_disk(device)
    if fault.kind == "clock_jump":
        farm.set_clock(device, float(fault.detail))
        return lambda: farm.set_clock(device, 0.0)
    if fault.kind == "partition":
        farm.set_link(device, fault.detail)  # type: ignore[arg-type]
        return lambda: farm.set_link(device, "pass")
    raise ValueError(f"fault kind {fault.kind!r}: expected one of {', '.join(KINDS)}")
