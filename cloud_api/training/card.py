"""The model card of a fine-tuned version: what it started from, what data it saw, how it compared."""

from __future__ import annotations

from typing import Any


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def card_text(*, name: str, version: str, base: dict[str, Any], data: dict[str, Any], train: dict[str, Any],
              result: dict[str, Any], job_id: str, created_by: str) -> str:
    """Markdown for the registry: base model, dataset (frames per split, reasons, labels), recipe, evaluation."""
    old, new = result["old"], result["new"]
    splits = ", ".join(f"{k} {v}" for k, v in data["frames_by_split"].items())
    reasons = ", ".join(f"{k} {v}" for k, v in sorted(data.get("reasons", {}).items())) or "unknown"
    holdout = result.get("holdout_data") or "none"
    return "\n".join([
        f"# Model card: {name} {version}",
        "",
        f"Fine-tuned by training job `{job_id}` (started by {created_by}) from `{base['name']}` {base['version']} "
        f"(sha256 `{base['sha256'][:16]}...`).",
        "",
        "## Data it saw",
        "",
        f"- Dataset `{data['dataset']}`: {data['frames']} labelled frames ({splits}); labels "
        f"{', '.join(data['labels'])}.",
        f"- Why the frames were collected (sampling reasons): {reasons}.",
        *([f"- Mixed into the training split: {data['replay']['frames']} fresh `{data['replay']['source']}` frames "
           f"(seed {data['replay']['seed']}), so what the base model knew stays in the mix."] if data.get("replay")
          else []),
        f"- Before that, everything `{base['name']}` {base['version']} saw (see its card).",
        "",
        "## Recipe",
        "",
        f"- `fieldline model train --init-from` the base file, {train['steps']} steps, input {train['input_size']}, "
        f"lr {train['lr']}, seed {train['seed']}; exported at input {train['export_input_size']}.",
        "",
        "## Evaluation (mAP50, conf 0.001, class-wise NMS IoU 0.5)",
        "",
        "| data | in service | this version |",
        "|---|---|---|",
        f"| `{data['dataset']}` test split ({data['frames_by_split'].get('test', 0)} frames) | {_fmt(old['test'])} | "
        f"{_fmt(new['test'])} |",
        f"| original holdout: {holdout} | {_fmt(old.get('holdout'))} | {_fmt(new.get('holdout'))} |",
        "",
        f"Registered because: {result['reason']}",
        "",
    ])
