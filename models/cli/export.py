"""`fieldline model export|quantize`: checkpoint to FieldLine ONNX, and its checked INT8 file."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from models.cli.common import (DATA_HELP, FORMAT_HELP, MAP_HELP, REDUCE_RANGE_HELP, SPLITS_HELP, check_square_size,
                               fail, source_from_options)


def export(checkpoint: Path = typer.Option(...), out: Path = typer.Option(...),
           name: str = typer.Option("tomato-ripeness", help="Model name written into the file"),
           version: str = typer.Option("1.0.0"),
           train_info: Path | None = typer.Option(None, help="train_info.json (for the data hash)"),
           flips: str = typer.Option("none", help="Average the predictions over mirror images inside the "
                                     "graph: none | h (left/right) | hv (all four: top-down surfaces); "
                                     "costs one extra pass per mirror"),
           input_size: int | None = typer.Option(
               None, help="Run the network at this square input instead of its training size (multiple of 32; "
                          "the network is fully convolutional). Larger inputs find smaller objects at a "
                          "quadratic latency cost: pick it with `fieldline model eval` on validation data"),
           dynamic_size: bool = typer.Option(
               True, "--dynamic-size/--fixed-size",
               help="dynamic: the file also runs at other multiples of 32 and on non-square letterboxes (edge "
                    "config `model.input_size`, `model.letterbox: tight`); fixed: only at --input-size, for "
                    "runtimes that need static shapes")) -> None:
    """Export a checkpoint to FieldLine-native ONNX with metadata (labels, input size, data hash ...)."""
    from models.detect.export import export as run
    from models.detect.tta import FLIP_SETS

    if not checkpoint.is_file():
        fail(f"{checkpoint}: checkpoint not found")
    if flips not in FLIP_SETS:
        fail(f"--flips {flips!r}: choose one of {', '.join(FLIP_SETS)}")
    check_square_size("--input-size", input_size)
    data_hash = json.loads(train_info.read_text())["train_data_hash"] if train_info else "unknown"
    try:
        typer.echo(str(run(checkpoint, out, name=name, version=version, train_data_hash=data_hash, flips=flips,
                           input_size=input_size, dynamic_size=dynamic_size)))
    except ValueError as exc:
        fail(str(exc))


def quantize(model: Path = typer.Option(...), out: Path = typer.Option(...),
             data: str = typer.Option("synth:tomato", help="Calibration and check data: " + DATA_HELP),
             fmt: str | None = typer.Option(None, "--format", "-f", help=FORMAT_HELP),
             mapping: str | None = typer.Option(None, "--map", help=MAP_HELP),
             split_seed: int = typer.Option(0), splits: str = typer.Option("0.8,0.1,0.1", help=SPLITS_HELP),
             calib_count: int = typer.Option(300, help="Calibration frames"), check_count: int = typer.Option(
                 200, help="Frames for the mAP check (a dataset's val split, topped up with training pictures "
                           "the calibration did not see)"),
             max_drop: float = typer.Option(0.01, help="Largest mAP50 drop accepted (0.01 = 1 point)"),
             force: bool = typer.Option(False, help="Write the INT8 file even if mAP drops more"),
             keep_head_fp32: bool = typer.Option(False, help="Start with the head convs in FP32"),
             calibration: str = typer.Option("auto", help="Activation ranges: percentile (99.999th, robust to "
                                                           "outliers) | minmax | auto (percentile, then minmax)"),
             reduce_range: bool = typer.Option(True, "--reduce-range/--full-range", help=REDUCE_RANGE_HELP),
             search: bool = typer.Option(True, help="When no whole-network INT8 file is within --max-drop, find "
                                                    "the blocks that break under INT8 and keep them in FP32"),
             rgb_conv_fp32: bool = typer.Option(True, "--rgb-conv-fp32/--rgb-conv-int8",
                                                help="Keep the first convolution (over the picture's RGB channels) "
                                                     "in FP32: a 3-channel INT8 conv is the slower on x86 CPUs")) -> None:
    """Static INT8 QDQ per-channel, calibrated on training frames; refuses a > 1 point mAP drop."""
    from models.detect.quantize import QuantizationRefused
    from models.detect.quantize import quantize_checked as run

    if not model.is_file():
        fail(f"{model}: model file not found")
    from edge_agent.detectors.anomaly import read_anomaly_metadata

    try:
        decoder = read_anomaly_metadata(model).get("decoder")
    except Exception as exc:  # noqa: BLE001 - any parse error means the same to the user
        fail(f"{model}: not a readable ONNX file ({type(exc).__name__}: {exc})")
    if decoder == "anomaly":
        fail(f"{model} is an anomaly model: use `fieldline model anomaly quantize --model {model} --out {out} "
              "--images DEFECT_FREE_DIR`")
    src = source_from_options(data, fmt, mapping, None, split_seed, splits)
    try:
        report = run(model, out, src, calib_count=calib_count, check_count=check_count, max_drop=max_drop,
                     force=force, keep_head_fp32=keep_head_fp32, calibration=calibration, reduce_range=reduce_range,
                     search=search, rgb_conv_fp32=rgb_conv_fp32)
    except (QuantizationRefused, ValueError) as exc:  # ValueError: a bad --calibration, before any work
        fail(str(exc))
    if warning := report["check"].get("warning"):
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(json.dumps(report))
