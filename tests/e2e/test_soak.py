"""The faulted soak (bench/soak.py) for three minutes: a small farm (four sheds on one edge device and the
two inspection lines: three agent processes), Mosquitto and the API as real processes, and one fault of
each kind in a fixed, seeded order. Nothing may be lost or stored twice and every device must deliver again
once the faults are over. RSS is a bench figure, not asserted here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.soak_farm import SoakPlan, run_soak
from bench.soak_faults import KINDS

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_three_minutes_with_every_fault_kind_lose_nothing_and_leave_nothing_stuck(tmp_path: Path) -> None:
    order = ("disk_full", "clock_jump", "partition", "agent_kill", "broker_kill", "api_kill")
    assert sorted(order) == sorted(KINDS)
    plan = SoakPlan(minutes=3, sheds=4, seed=7, warmup_s=15, settle_s=45, forced=order, forced_gap_s=5,
                    forced_duration_scale=0.3, workdir=tmp_path)
    figures = run_soak(plan)
    detail = figures["detail"]
    assert detail["fault_kinds"] == dict.fromkeys(KINDS, 1), detail["faults"]
    devices = {row["device"]: row for row in detail["devices"]}
    assert set(devices) == {"gh-edge-01", "line-edge-01", "line-edge-02"}
    assert all(row["stored"] > 0 for row in devices.values()), devices
    assert figures["lost"] == 0, devices
    assert figures["duplicates"] == 0, devices
    assert figures["stuck"] == 0, detail["stuck_devices"]
    assert detail["ingest"]["dead_letters"] == 0 and detail["ingest"]["store_errors"] == 0, detail["ingest"]
    # the killed agent came back as a new boot of the same install, its events continuing the same seq
    killed = next(f["target"] for f in detail["faults"] if f["kind"] == "agent_kill")
    assert devices[killed]["starts"] >= 2 and devices[killed]["installs"] == 1
