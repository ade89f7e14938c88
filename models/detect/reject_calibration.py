"""Pass/reject threshold for inspection lines: the lowest defect score that keeps false rejects within budget.

An inspection camera rejects a part when any defect box scores at or above ``rule.reject_score``. Lower
thresholds let fewer defective parts escape but reject more good ones; the quality team states how many good
parts it can afford to reject (``max_false_reject``, e.g. 5 %), and the threshold is the lowest one whose
false-reject rate on the defect-free validation frames stays within it, which minimises escapes under that
budget (the usual way to set an inspection threshold: on good parts, which are plentiful). Every label of the
model counts as a defect, as in the rule's default. Scores come from one pass at the score floor, run as the
edge runs the file (see :mod:`models.detect.count_calibration`).

Written into the file as ``fieldline.reject_conf`` (+ a JSON summary): the inspection rule uses it when
``rule.reject_score`` is unset, and the detector then reports boxes down to it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import numpy as np

from edge_agent.detectors.session import META_PREFIX, REJECT_CALIBRATION_META, REJECT_CONF_META
from edge_agent.rules import UNCALIBRATED_REJECT
from models.detect.count_calibration import CANDIDATES, SHOWN, score_frames, write_threshold
from models.data.sources import DataSource

REJECT_CONF_KEY = META_PREFIX + REJECT_CONF_META
REJECT_SUMMARY_KEY = META_PREFIX + REJECT_CALIBRATION_META


def reject_rows(top_scores: np.ndarray, defective: np.ndarray,
                thresholds: tuple[float, ...] = CANDIDATES) -> list[dict[str, float]]:
    """Per threshold: share of defect-free frames rejected, share of defective frames passed (escapes)."""
    good, bad = top_scores[~defective], top_scores[defective]
    return [{"conf": t, "false_reject": float((good >= t).mean()) if len(good) else 0.0,
             "escape": float((bad < t).mean()) if len(bad) else 0.0} for t in thresholds]


def pick_reject(rows: list[dict[str, float]], max_false_reject: float) -> dict[str, float]:
    """The lowest threshold within the false-reject budget (rows in rising threshold order)."""
    within = [r for r in rows if r["false_reject"] <= max_false_reject + 1e-9]
    if not within:
        raise ValueError(f"no threshold up to {rows[-1]['conf']:.2f} keeps false rejects within "
                         f"{max_false_reject:.1%}: the model flags defect-free parts with high scores")
    return min(within, key=lambda r: r["conf"])


def calibrate_reject_score(model_path: str | Path, data: str | DataSource = "synth:surface",
                           count: int | None = 1000, seed: int = 777, split: str = "val",
                           max_false_reject: float = 0.05, threads: int = 1, input_size: int | None = None,
                           progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Pick the pass/reject threshold of ``model_path`` on labelled frames with and without defects."""
    if not 0.0 <= max_false_reject < 1.0:
        raise ValueError(f"max_false_reject {max_false_reject}: expected a share between 0 and 1 (0.05 = 5 %)")
    run = score_frames(model_path, data, count, seed, split, threads, input_size, progress)
    top = np.array([s.max() if len(s) else 0.0 for s in run.scores])
    defective = np.array([bool(labs) for labs in run.labels])
    if defective.all() or not defective.any():
        kind = "defect-free" if defective.all() else "defective"
        raise ValueError(f"{run.source.describe()}: the {split} frames hold no {kind} images; the threshold needs "
                         "both (defect-free parts set the false-reject rate, defective ones the escapes)")
    rows = reject_rows(top, defective)
    best = pick_reject(rows, max_false_reject)
    det = run.detector
    result: dict[str, Any] = {
        "reject_conf": best["conf"], "max_false_reject": max_false_reject,
        "false_reject": round(best["false_reject"], 3), "escape": round(best["escape"], 3),
        "uncalibrated": {k: round(v, 3) for k, v in reject_rows(top, defective, (UNCALIBRATED_REJECT,))[0].items()},
        "defect_free_images": int((~defective).sum()), "defective_images": int(defective.sum()),
        "data": run.source.describe(), "input_size": det.input_size, "letterbox": det.letterbox,
        "nms": "agnostic", "model": str(model_path), "sha256": det.sha256,
        "table": [{k: round(v, 3) for k, v in r.items()} for r in rows
                  if r["conf"] in SHOWN or r["conf"] in (best["conf"], UNCALIBRATED_REJECT)],
    }
    result.update({"seed": seed} if run.source.is_synthetic else {"split": split})
    return result


def write_reject_conf(model_path: str | Path, result: dict[str, Any], out: str | Path | None = None) -> Path:
    keep = ("reject_conf", "max_false_reject", "false_reject", "escape", "uncalibrated", "defect_free_images",
            "defective_images", "data", "seed", "split", "input_size", "letterbox", "nms")
    return write_threshold(model_path, result, {
        REJECT_CONF_KEY: f"{result['reject_conf']:.2f}",
        REJECT_SUMMARY_KEY: json.dumps({k: result[k] for k in keep if k in result})}, out)


def reject_table(result: dict[str, Any]) -> str:
    lines = [f"| conf | false rejects ({result['defect_free_images']} defect-free) | escapes "
             f"({result['defective_images']} defective) |", "|---|---|---|"]
    for r in result["table"]:
        mark = " (picked)" if r["conf"] == result["reject_conf"] else ""
        lines.append(f"| {r['conf']:.2f}{mark} | {r['false_reject']:.1%} | {r['escape']:.1%} |")
    return "\n".join(lines)
