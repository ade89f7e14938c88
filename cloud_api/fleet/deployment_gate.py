"""The health gate of one device after it loaded a new model: pass, fail (with the reason) or hold.

Checks, all of which must hold from the load until ``hold_s`` later:

- loaded: the device's status reports the new model's sha256 (its self-test on a live frame passed: the
  model command's reply was ok, or the device would not be verifying);
- fps: every stats message from ``settle_s`` after the load shows at least ``min_fps_pct`` % of the frame rate
  it had before its update (the agent reports fps over its last few seconds);
- model_error: no ``model_error`` alert from the device since its model command;
- counts (devices that published count events in the hour before): the mean total count since the load
  stays within ``max_count_jump_pct`` % of the mean over that hour.

A check still without data after ``hold_s + stats_grace_s`` fails the gate (no news is not good news).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from cloud_api.fleet.deployment_records import DeploymentDevice, GatePolicy
from cloud_api.storage.records import DeviceRecord

Verdict = Literal["pass", "fail", "hold"]


class GateStore(Protocol):
    def model_error_alerts_since(self, site: str, device: str, since_ms: int) -> int: ...

    def count_totals(self, site: str, device: str, from_ms: int, to_ms: int, model_sha256: str | None = None,
                     limit: int = 5000) -> list[int]: ...

    def latest_count_total(self, site: str, device: str) -> int | None: ...


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


def evaluate(store: GateStore, policy: GatePolicy, sha256: str, row: DeploymentDevice, device: DeviceRecord | None,
             now_ms: int) -> GateResult:
    assert row.loaded_ms is not None and row.started_ms is not None
    checks: dict[str, Any] = dict(row.gate)
    settle_ms = row.loaded_ms + int(policy.settle_s * 1000)
    hold_end = row.loaded_ms + int(policy.hold_s * 1000)
    give_up = hold_end + int(policy.stats_grace_s * 1000)
    checks["self_test"] = "ok"
    checks["held_s"] = round(max(0, now_ms - row.loaded_ms) / 1000, 1)

    sha = running_sha(device)
    checks["loaded"] = sha == sha256
    if sha != sha256 and now_ms >= settle_ms:
        return GateResult("fail", checks, f"reports model {(sha or 'none')[:12]}, not the new {sha256[:12]}")

    errors = store.model_error_alerts_since(row.site, row.device, row.started_ms)
    checks["model_errors"] = errors
    if errors:
        return GateResult("fail", checks, f"{errors} model_error alert(s) since the update")

    stats = device.stats if device is not None else None
    if row.before_fps:
        if stats is not None and int(stats.get("ts_ms", 0)) >= settle_ms:
            fps = float(stats.get("fps", 0.0))
            pct = round(100.0 * fps / row.before_fps, 1)
            checks["fps"] = {"before": row.before_fps, "now": fps, "pct": pct,
                             "worst_pct": min(pct, checks.get("fps", {}).get("worst_pct", pct))}
            if pct < policy.min_fps_pct:
                return GateResult("fail", checks, f"frame rate {fps:g} fps is {pct:g} % of the {row.before_fps:g} "
                                                  f"before (gate {policy.min_fps_pct:g} %)")
    else:
        checks["fps"] = "n/a (no frame rate before)"

    counts_ok: bool | None = None
    if row.baseline_count is not None:
        totals = (store.count_totals(row.site, row.device, settle_ms, now_ms + 1, sha256)
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
    missing = [name for name, ok in (("loaded", checks["loaded"]), ("fps", not row.before_fps or isinstance(
        checks.get("fps"), dict)), ("counts", row.baseline_count is None or counts_ok)) if not ok]
    if not missing:
        return GateResult("pass", checks)
    if now_ms >= give_up:
        return GateResult("fail", checks, f"no {', '.join(missing)} report within {policy.hold_s + policy.stats_grace_s:g}"
                                          " s of the load")
    return GateResult("hold", checks)
