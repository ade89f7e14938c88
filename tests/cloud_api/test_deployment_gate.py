"""The health gate's verdicts on one device, from its status, stats, alerts and count events as stored."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from cloud_api.fleet.deployment_gate import baseline_count, evaluate
from cloud_api.fleet.deployment_records import DeploymentDevice, GatePolicy
from cloud_api.storage.records import DeviceRecord

NEW, OLD = "n" * 64, "o" * 64
LOADED = 1_000_000
POLICY = GatePolicy(min_fps_pct=80, max_count_jump_pct=50, hold_s=10, settle_s=3, stats_grace_s=5)


@dataclass
class Store:
    """The gate's reads over plain lists: (received_ms, model sha256, total) count events, model_error times."""

    counts: list[tuple[int, str, int]] = field(default_factory=list)
    errors: list[int] = field(default_factory=list)

    def model_error_alerts_since(self, site: str, device: str, since_ms: int) -> int:
        return sum(ts >= since_ms for ts in self.errors)

    def count_totals(self, site: str, device: str, from_ms: int, to_ms: int, model_sha256: str | None = None,
                     limit: int = 5000) -> list[int]:
        return [n for ts, sha, n in self.counts if from_ms <= ts < to_ms and model_sha256 in (None, sha)]

    def latest_count_total(self, site: str, device: str) -> int | None:
        return max(self.counts)[2] if self.counts else None


def device(sha: str = NEW, fps: float | None = 2.0, stats_ms: int = LOADED + 4000) -> DeviceRecord:
    stats: dict[str, Any] | None = None if fps is None else {"fps": fps, "ts_ms": stats_ms}
    return DeviceRecord(device="d", site="s", state="online", last_seen_ms=stats_ms, first_seen_ms=0, boot=1,
                        agent_version="x", status_ts_ms=LOADED, model={"sha256": sha}, cameras=[], stats=stats)


ROW = DeploymentDevice(deployment_id="x", site="s", device="d", stage=0, state="verifying", before_sha256=OLD,
                       before_fps=2.0, baseline_count=10.0, started_ms=LOADED - 2000, loaded_ms=LOADED)


def test_holds_while_checks_pass_then_passes_after_hold_s() -> None:
    store = Store(counts=[(LOADED + 4000, NEW, 11)])
    early = evaluate(store, POLICY, NEW, ROW, device(), LOADED + 5000)
    assert early.verdict == "hold" and early.checks["fps"]["pct"] == 100.0 and early.checks["counts"]["jump_pct"] == 10.0
    done = evaluate(store, POLICY, NEW, ROW, device(stats_ms=LOADED + 10_000), LOADED + 10_000)
    assert done.verdict == "pass" and done.checks["loaded"] is True and done.checks["model_errors"] == 0


@pytest.mark.parametrize(("store", "record", "reason"), [
    (Store(), device(fps=1.5), "frame rate 1.5 fps is 75 % of the 2 before (gate 80 %)"),
    (Store(counts=[(LOADED + 4000, NEW, 16)]), device(), "counts jumped 60 %"),
    (Store(errors=[LOADED - 1000]), device(), "1 model_error alert(s) since the update"),
    (Store(), device(sha=OLD), f"reports model {OLD[:12]}, not the new {NEW[:12]}"),
])
def test_each_check_fails_the_gate_with_its_reason(store: Store, record: DeviceRecord, reason: str) -> None:
    result = evaluate(store, POLICY, NEW, ROW, record, LOADED + 5000)
    assert result.verdict == "fail" and reason in (result.reason or ""), result


def test_data_before_settle_and_of_other_models_is_not_judged() -> None:
    # a stats message from before the settle time (old model's frames still in its window) is ignored;
    # count events of the old model after the load are not the new model's counts
    store = Store(counts=[(LOADED + 4000, OLD, 40)])
    result = evaluate(store, POLICY, NEW, ROW, device(fps=0.5, stats_ms=LOADED + 1000), LOADED + 5000)
    assert result.verdict == "hold" and "fps" not in result.checks and "counts" not in result.checks


def test_no_reports_after_the_hold_fail_the_gate_once_the_grace_is_over() -> None:
    store = Store()
    silent = device(fps=None)
    assert evaluate(store, POLICY, NEW, ROW, silent, LOADED + 12_000).verdict == "hold"
    late = evaluate(store, POLICY, NEW, ROW, silent, LOADED + 15_000)
    assert late.verdict == "fail" and late.reason == "no fps, counts report within 15 s of the load"
    # a device that counts nothing and had no frame rate before is judged on what it has
    bare = replace(ROW, before_fps=None, baseline_count=None)
    assert evaluate(store, POLICY, NEW, bare, silent, LOADED + 10_000).verdict == "pass"


def test_the_baseline_is_the_last_hour_of_the_running_model_only() -> None:
    now = 10_000_000
    store = Store(counts=[(now - 4_000_000, OLD, 100), (now - 60_000, OLD, 8), (now - 30_000, OLD, 12),
                          (now - 20_000, NEW, 56)])  # a rolled-back trial of NEW in between
    assert baseline_count(store, "s", "d", now, OLD) == 10.0
    assert baseline_count(store, "s", "d", now, "x" * 64) is None
