"""`fieldline model calibrate`: the score thresholds the edge agent uses by default, picked on labelled frames."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from models.cli.common import FORMAT_HELP, fail, out, source_from_options


def calibrate_cmd(model: Path = typer.Option(..., help="FieldLine ONNX model file (FP32 or INT8: each its own)"),
                  objective: str = typer.Option("count", help="count: per-frame counts match the labels (sheds) | "
                                                "reject: lowest pass/reject score within --max-false-reject "
                                                "(inspection lines)"),
                  max_false_reject: float = typer.Option(0.05, min=0.0, max=0.99, help="reject: share of "
                                                         "defect-free parts you accept to reject (0.05 = 5 %)"),
                  data: str | None = typer.Option(None, help="Labelled frames: synth:tomato (count default) | "
                                                  "synth:surface (reject default) | a dataset folder (or COCO "
                                                  ".json) with --format"),
                  fmt: str | None = typer.Option(None, "--format", "-f", help=FORMAT_HELP),
                  mapping: str | None = typer.Option(None, "--map", help="Class renames/merges a=b,c=b"),
                  split: str = typer.Option("val", help="Dataset split (never the one you report on)"),
                  split_seed: int = typer.Option(0, help="Split hash seed (as used for training)"),
                  splits: str = typer.Option("0.8,0.1,0.1", help="train,val,test shares (as used for training)"),
                  count: int | None = typer.Option(None, help="Images (synthetic default 300 for count, 1000 for "
                                                   "reject: ~150 defect-free; datasets: all)"),
                  seed: int = typer.Option(777, help="Synthetic data seed (not the training or holdout seed)"),
                  input_size: int | None = typer.Option(None, help="Run a dynamic-size model at this input, as the "
                                                        "edge config's `model.input_size` will (default: the file's)"),
                  write: bool = typer.Option(True, "--write/--dry-run", help="Store the threshold in the file"),
                  as_json: bool = typer.Option(False, "--json", help="Print one JSON object as the last line")
                  ) -> None:
    """Pick a score threshold on labelled frames and store it in the file, run as the edge runs the file (its
    input size, tight letterbox, class-agnostic NMS).

    count: the edge agent counts with it when `model.conf_threshold` is unset. reject: the inspection rule
    rejects at it when `rule.reject_score` is unset."""
    from edge_agent.detectors import ModelLoadError
    from models.data.samples import DatasetError

    if objective not in ("count", "reject"):
        fail(f"--objective {objective!r}: expected count or reject")
    src = source_from_options(data or ("synth:tomato" if objective == "count" else "synth:surface"), fmt, mapping,
                              None, split_seed, splits)
    if src.is_synthetic and count is None:
        count = 300 if objective == "count" else 1000
    try:
        res = _calibrate(objective, model, src, count, seed, split, input_size, max_false_reject, write)
    except (ModelLoadError, DatasetError, ValueError, OSError) as exc:
        fail(str(exc))
    if as_json:
        typer.echo(json.dumps(res))


def _calibrate(objective: str, model: Path, src, count: int | None, seed: int, split: str, input_size: int | None,
               max_false_reject: float, write: bool) -> dict:
    written = " - written into the file" if write else ""
    if objective == "count":
        from models.detect.count_calibration import calibrate_count_conf, count_table, write_count_conf

        res = calibrate_count_conf(model, src, count=count, seed=seed, split=split, input_size=input_size)
        if write:
            write_count_conf(model, res)
        before = res["uncalibrated"]
        out.print(count_table(res), markup=False, highlight=False)
        typer.echo(f"{model}: count threshold {res['count_conf']:.2f} on {res['images']} images of {res['data']} "
                   f"(mean abs count error {res['mae']:.2f} per image, bias {res['bias']:+.2f}; at 0.35: "
                   f"{before['mae']:.2f}, {before['bias']:+.2f}){written}")
        return res
    from models.detect.reject_calibration import calibrate_reject_score, reject_table, write_reject_conf

    res = calibrate_reject_score(model, src, count=count, seed=seed, split=split, input_size=input_size,
                                 max_false_reject=max_false_reject)
    if write:
        write_reject_conf(model, res)
    before = res["uncalibrated"]
    out.print(reject_table(res), markup=False, highlight=False)
    typer.echo(f"{model}: reject threshold {res['reject_conf']:.2f} on {res['data']} (false rejects "
               f"{res['false_reject']:.1%} of {res['defect_free_images']} defect-free images, budget "
               f"{res['max_false_reject']:.1%}; escapes {res['escape']:.1%} of {res['defective_images']} defective; "
               f"at 0.50: {before['false_reject']:.1%} / {before['escape']:.1%}){written}")
    return res
