"""The health gate's verdicts on one device, from its status, stats, alerts and count events as stored."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from cloud_api.fleet.deployment_gate import Expected, baseline_count, evaluate, stats_baseline
from cloud_api.fleet.deployment_records import DeploymentDevice, GatePolicy, StatsSample
from cloud_api.storage.records import DeviceRecord

NEW, OLD = "n" * 64, "o" * 64
LOADED = 1_000_000
POLICY = GatePolicy(min_fps_pct=80, max_latency_pct=100, min_stats_samples=3, max_count_jump_pct=50, hold_s=10,
                    settle_s=3, stats_grace_s=5)
MODEL = Expected("model", NEW)


@dataclass
class Store:
    """The gate's reads over plain lists: (received_ms, model sha256, total) count events, model_error times,
    (received_ms, fps, p95 ms, model sha256, config hash) stats messages, the reported config hash."""

    counts: list[tuple[int, str, int]] = field(default_factory=list)
    errors: list[int] = field(default_factory=list)
    stats: list[tuple[int, float, float, str, str]] = field(default_factory=list)
    config_hash: str | None = None

    def model_error_alerts_since(self, site: str, device: str, since_ms: int) -> int:
        return sum(ts >= since_ms for ts in self.errors)

    def count_totals(self, site: str, device: str, from_ms: int, to_ms: int, model_sha256: str | None = None,
                     limit: int = 5000) -> list[int]:
        return [n for ts, sha, n in self.counts if from_ms <= ts < to_ms and model_sha256 in (None, sha)]

    def latest_count_total(self, site: str, device: str) -> int | None:
        return max(self.counts)[2] if self.counts else None

    def stats_samples(self, site: str, device: str, from_ms: int, to_ms: int, *, model_sha256: str | None = None,
                      config_hash: str | None = None) -> list[StatsSample]:
        return [StatsSample(ts, fps, p95) for ts, fps, p95, sha, cfg in sorted(self.stats)
                if from_ms <= ts < to_ms and model_sha256 in (None, sha) and config_hash in (None, cfg)]

    def device_config_hash(self, site: str, device: str) -> str | None:
        return self.config_hash


def after(*values: tuple[float, float], start: int = LOADED + 4000, sha: str = NEW, cfg: str = "c1"
          ) -> list[tuple[int, float, float, str, str]]:
    """Stats messages one second apart from ``start``: (fps, p95 ms) each."""
    return [(start + 1000 * i, fps, p95, sha, cfg) for i, (fps, p95) in enumerate(values)]


def device(sha: str = NEW) -> DeviceRecord:
    return DeviceRecord(device="d", site="s", state="online", last_seen_ms=LOADED, first_seen_ms=0, boot=1,
                        agent_version="x", status_ts_ms=LOADED, model={"sha256": sha}, cameras=[], stats=None)


ROW = DeploymentDevice(deployment_id="x", site="s", device="d", stage=0, state="verifying", before_sha256=OLD,
                       before_fps=2.0, baseline_count=10.0, started_ms=LOADED - 2000, loaded_ms=LOADED,
                       gate={"before": {"fps": 2.0, "p95_ms": 40.0, "samples": 30}})
GOOD = ((2.0, 41.0), (1.9, 39.0), (2.0, 44.0))


def test_holds_while_checks_pass_then_passes_after_hold_s() -> None:
    store = Store(counts=[(LOADED + 4000, NEW, 11)], stats=after(*GOOD))
    early = evaluate(store, POLICY, MODEL, ROW, device(), LOADED + 7000)
    assert early.verdict == "hold" and early.checks["fps"]["pct"] == 100.0 and early.checks["counts"]["jump_pct"] == 10.0
    assert early.checks["latency"] == {"before_p95_ms": 40.0, "p95_ms": 41.0, "above_pct": 2.5, "samples": 3}
    done = evaluate(store, POLICY, MODEL, ROW, device(), LOADED + 10_000)
    assert done.verdict == "pass" and done.checks["loaded"] is True and done.checks["model_errors"] == 0


@pytest.mark.parametrize(("store", "record", "reason"), [
    (Store(stats=after((1.5, 40), (1.4, 40), (1.6, 40))), device(),
     "frame rate 1.5 fps (median of 3) is 75 % of the 2 before (gate 80 %)"),
    # ten times slower at a camera rate that caps the fps: the frame rate holds, the latency does not
    (Store(stats=after((2.0, 400), (2.0, 410), (1.9, 395))), device(),
     "p95 latency 400 ms (median of 3) is 900 % above the 40 ms before (gate 100 %)"),
    (Store(counts=[(LOADED + 4000, NEW, 16)]), device(), "counts jumped 60 %"),
    (Store(errors=[LOADED - 1000]), device(), "1 model_error alert(s) since the update"),
    (Store(), device(sha=OLD), f"reports model {OLD[:12]}, not the new {NEW[:12]}"),
])
def test_each_check_fails_the_gate_with_its_reason(store: Store, record: DeviceRecord, reason: str) -> None:
    result = evaluate(store, POLICY, MODEL, ROW, record, LOADED + 7000)
    assert result.verdict == "fail" and reason in (result.reason or ""), result


def test_one_slow_message_or_too_few_are_not_a_verdict() -> None:
    # the median of at least min_stats_samples messages decides: one dip is not a slower model
    store = Store(stats=after((0.5, 300), (2.0, 41), (2.0, 40)))
    assert evaluate(store, POLICY, MODEL, ROW, device(), LOADED + 7000).verdict == "hold"
    few = Store(stats=after((0.5, 300), (0.5, 300)))
    result = evaluate(few, POLICY, MODEL, ROW, device(), LOADED + 7000)
    assert result.verdict == "hold" and result.checks["stats_samples"] == 2 and "fps" not in result.checks


def test_data_before_settle_and_of_other_models_is_not_judged() -> None:
    # stats from before the settle time (old model's frames still in the agent's window) and stats or count events
    # of the old model after the load are not the new model's
    store = Store(counts=[(LOADED + 4000, OLD, 40)],
                  stats=after((0.5, 400), (0.5, 400), (0.5, 400), start=LOADED) + after(*GOOD, sha=OLD))
    result = evaluate(store, POLICY, MODEL, ROW, device(), LOADED + 7000)
    assert result.verdict == "hold" and "fps" not in result.checks and "counts" not in result.checks


def test_no_reports_after_the_hold_fail_the_gate_once_the_grace_is_over() -> None:
    store = Store()
    assert evaluate(store, POLICY, MODEL, ROW, device(), LOADED + 12_000).verdict == "hold"
    late = evaluate(store, POLICY, MODEL, ROW, device(), LOADED + 15_000)
    assert late.verdict == "fail" and late.reason == "no stats, counts report within 15 s of the load"
    # a device that counts nothing and had no stats before is judged on what it has
    bare = replace(ROW, before_fps=None, baseline_count=None, gate={})
    assert evaluate(store, POLICY, MODEL, bare, device(), LOADED + 10_000).verdict == "pass"


def test_a_config_rollout_is_judged_on_the_hash_its_apply_reply_named() -> None:
    config = Expected("config", "c2")
    row = replace(ROW, baseline_count=None, gate={**ROW.gate, "config_hash": "c2"})
    stats = after(*GOOD, sha=OLD, cfg="c2") + after((0.2, 40), (0.2, 40), (0.2, 40), sha=OLD, cfg="c1")
    store = Store(stats=stats, config_hash="c2")
    assert evaluate(store, POLICY, config, row, device(sha=OLD), LOADED + 10_000).verdict == "pass"
    stale = evaluate(Store(stats=stats, config_hash="c1"), POLICY, config, row, device(sha=OLD), LOADED + 7000)
    assert stale.verdict == "fail" and stale.reason == "reports config c1, not the new c2"


def test_the_baselines_are_the_last_hour_of_the_running_model_only() -> None:
    now = 10_000_000
    store = Store(counts=[(now - 4_000_000, OLD, 100), (now - 60_000, OLD, 8), (now - 30_000, OLD, 12),
                          (now - 20_000, NEW, 56)],  # a rolled-back trial of NEW in between
                  stats=[(now - 4_000_000, 9.0, 5.0, OLD, "c1"), (now - 50_000, 2.0, 40.0, OLD, "c1"),
                         (now - 40_000, 1.0, 44.0, OLD, "c1"), (now - 30_000, 2.2, 38.0, OLD, "c1"),
                         (now - 20_000, 0.2, 400.0, NEW, "c1"), (now - 10_000, 0.1, 90.0, OLD, "c0")])
    assert baseline_count(store, "s", "d", now, OLD) == 10.0
    assert baseline_count(store, "s", "d", now, "x" * 64) is None
    assert stats_baseline(store, "s", "d", now, OLD, "c1") == {"fps": 2.0, "p95_ms": 40.0, "samples": 3}
    assert stats_baseline(store, "s", "d", now, "x" * 64, None) is None
