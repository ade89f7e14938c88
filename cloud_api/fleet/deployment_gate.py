"""The health gate of one device after it loaded a new model or config: pass, fail (with the reason) or hold.

Checks, all of which must hold from the load until ``hold_s`` later:

- loaded: the device reports the new model's sha256 (a config: the config hash its apply reply named) in its
  status (its self-test on a live frame passed: the command's reply was ok, or it would not be verifying);
- fps: the median of its stats messages from ``settle_s`` after the load (of the new model or config only) is at
  least ``min_fps_pct`` % of the median over its last hour before the update (same model and config);
- latency: the median p95 inference latency of those messages is at most ``max_latency_pct`` % above the
  median before (a slower model shows here even when a low camera rate caps the fps);
- model_error: no ``model_error`` alert from the device since its command;
- counts (devices that published count events in the hour before): the mean total count since the load
  stays within ``max_count_jump_pct`` % of the mean over that hour.

fps and latency are judged only on ``min_stats_samples`` messages or more (a median of one is a sample, not a
rate). A check still without data after ``hold_s + stats_grace_s`` fails the gate (no news is not good news).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from statistics import median
from typing import Any, Literal, Protocol

from cloud_api.fleet.deployment_records import DeploymentDevice, GatePolicy, StatsSample
from cloud_api.storage.records import DeviceRecord

Verdict = Literal["pass", "fail", "hold"]
BASELINE_MS = 3_600_000


class GateStore(Protocol):
    def model_error_alerts_since(self, site: str, device: str, since_ms: int) -> int: ...

    def count_totals(self, site: str, device: str, from_ms: int, to_ms: int, model_sha256: str | None = None,
                     limit: int = 5000) -> list[int]: ...

    def latest_count_total(self, site: str, device: str) -> int | None: ...

    def stats_samples(self, site: str, device: str, from_ms: int, to_ms: int, *, model_sha256: str | None = None,
                      config_hash: str | None = None) -> list[StatsSample]: ...

    def device_config_hash(self, site: str, device: str) -> str | None: ...


@dataclass
class GateResult:
    verdict: Verdict
    checks: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None


def running_sha(device: DeviceRecord | None) -> str | None:
    model = device.model if device is not None else None
    return str(model.get("sha256") or "") or None if model else None


def baseline_count(store: GateStore, site: str, device: str, now_ms: int, model_sha256: str | None) -> float | None:
    """Mean count total over the device's last hour, counted by the model it runs now (not by one that was
    tried and rolled back in that hour); None when it published no such count events."""
    totals = store.count_totals(site, device, now_ms - 3_600_000, now_ms + 1, model_sha256)
    return sum(totals) / len(totals) if totals else None


def stats_baseline(store: GateStore, site: str, device: str, now_ms: int, model_sha256: str | None,
                   config_hash: str | None) -> dict[str, Any] | None:
    """Median fps and p95 latency over the device's last hour on the model and config it runs now."""
    samples = store.stats_samples(site, device, now_ms - BASELINE_MS, now_ms + 1, model_sha256=model_sha256,
                                  config_hash=config_hash)
    if not samples:
        return None
    return {"fps": round(median(s.fps for s in samples), 3), "p95_ms": round(median(s.p95_ms for s in samples), 3),
            "samples": len(samples)}


@dataclass(frozen=True)
class Expected:
    """What a verifying device must report: the new model (sha256) or the new config (hash)."""

    kind: str  # model | config
    value: str

    def reported(self, store: GateStore, device: DeviceRecord | None, site: str, name: str) -> str | None:
        return running_sha(device) if self.kind == "model" else store.device_config_hash(site, name)


def _stats_checks(policy: GatePolicy, before: dict[str, Any], after: list[StatsSample],
                  checks: dict[str, Any]) -> str | None:
    """fps and latency against the baseline; the failure reason, or None."""
    checks["stats_samples"] = len(after)
    if len(after) < policy.min_stats_samples:
        return None
    fps, p95 = median(s.fps for s in after), median(s.p95_ms for s in after)
    if before.get("fps"):
        pct = round(100.0 * fps / before["fps"], 1)
        checks["fps"] = {"before": before["fps"], "now": round(fps, 3), "pct": pct, "samples": len(after)}
        if pct < policy.min_fps_pct:
            return (f"frame rate {fps:.3g} fps (median of {len(after)}) is {pct:g} % of the {before['fps']:g} before "
                    f"(gate {policy.min_fps_pct:g} %)")
    if before.get("p95_ms"):
        above = round(100.0 * (p95 - before["p95_ms"]) / before["p95_ms"], 1)
        checks["latency"] = {"before_p95_ms": before["p95_ms"], "p95_ms": round(p95, 3), "above_pct": above,
                             "samples": len(after)}
        if above > policy.max_latency_pct:
            return (f"p95 latency {p95:.4g} ms (median of {len(after)}) is {above:g} % above the {before['p95_ms']:g} "
                    f"ms before (gate {policy.max_latency_pct:g} %)")
    return None


def evaluate(store: GateStore, policy: GatePolicy, expected: Expected, row: DeploymentDevice,
             device: DeviceRecord | None, now_ms: int) -> GateResult:
    assert row.loaded_ms is not None and row.started_ms is not None
    checks: dict[str, Any] = dict(row.gate)
    settle_ms = row.loaded_ms + int(policy.settle_s * 1000)
    hold_end = row.loaded_ms + int(policy.hold_s * 1000)
    give_up = hold_end + int(policy.stats_grace_s * 1000)
    checks["self_test"] = "ok"
    checks["held_s"] = round(max(0, now_ms - row.loaded_ms) / 1000, 1)

    reported = expected.reported(store, device, row.site, row.device)
    checks["loaded"] = reported == expected.value
    if not checks["loaded"] and now_ms >= settle_ms:
        return GateResult("fail", checks, f"reports {expected.kind} {(reported or 'none')[:12]}, not the new "
                                          f"{expected.value[:12]}")

    errors = store.model_error_alerts_since(row.site, row.device, row.started_ms)
    checks["model_errors"] = errors
    if errors:
        return GateResult("fail", checks, f"{errors} model_error alert(s) since the update")

    model_now = expected.value if expected.kind == "model" else running_sha(device)
    before = checks.get("before") or ({"fps": row.before_fps} if row.before_fps else {})
    stats_ok = not (before.get("fps") or before.get("p95_ms"))
    if stats_ok:
        checks["fps"] = "n/a (no stats before)"
    else:
        after = (store.stats_samples(row.site, row.device, settle_ms, now_ms + 1, model_sha256=model_now,
                                     config_hash=expected.value if expected.kind == "config" else None)
                 if now_ms >= settle_ms else [])
        failed = _stats_checks(policy, before, after, checks)
        if failed:
            return GateResult("fail", checks, failed)
        stats_ok = len(after) >= policy.min_stats_samples

    counts_ok: bool | None = None
    if row.baseline_count is not None:
        totals = (store.count_totals(row.site, row.device, settle_ms, now_ms + 1, model_now)
                  if now_ms >= settle_ms else [])
        if not totals and now_ms >= hold_end:  # no count event since the load: counts unchanged since the last
            latest = store.latest_count_total(row.site, row.device)
            totals = [latest] if latest is not None else []
        if totals:
            mean = sum(totals) / len(totals)
            jump = round(100.0 * abs(mean - row.baseline_count) / max(row.baseline_count, 1.0), 1)
            checks["counts"] = {"baseline": round(row.baseline_count, 2), "now": round(mean, 2), "jump_pct": jump}
            counts_ok = jump <= policy.max_count_jump_pct
            if not counts_ok:
                return GateResult("fail", checks, f"counts jumped {jump:g} % (mean {mean:.1f} against "
                                                  f"{row.baseline_count:.1f} over its last hour; gate "
                                                  f"{policy.max_count_jump_pct:g} %)")
    else:
        checks["counts"] = "n/a (no count events in its last hour)"

    if now_ms < hold_end:
        return GateResult("hold", checks)
    missing = [name for name, ok in (("loaded", checks["loaded"]), ("stats", stats_ok),
                                     ("counts", row.baseline_count is None or counts_ok)) if not ok]
    if not missing:
        return GateResult("pass", checks)
    if now_ms >= give_up:
        return GateResult("fail", checks, f"no {', '.join(missing)} report within {policy.hold_s + policy.stats_grace_s:g}"
                                          " s of the load")
    return GateResult("hold", checks)
