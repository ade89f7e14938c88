"""`fieldline model ...`: synth, train, export, quantize, eval, card (thin wrappers over the library)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress

from models.anomaly_cli import REDUCE_RANGE_HELP

model_app = typer.Typer(help="Synthetic data, training, export, INT8 quantisation, evaluation, model cards.",
                        no_args_is_help=True, add_completion=False)
err = Console(stderr=True)


def _fail(msg: str) -> None:
    from rich.markup import escape  # messages name extras such as 'fieldline[train]': not markup

    err.print(f"[bold red]error:[/] {escape(msg)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


def _check_square_size(flag: str, value: int | None, most: int | None = None) -> None:
    """Square network inputs and training crops: multiples of 32 (the largest stride), at least 64."""
    if value is None:
        return
    if value % 32 or value < 64:
        _fail(f"{flag} {value}: must be a multiple of 32, at least 64")
    if most is not None and value > most:
        _fail(f"{flag} {value}: must be at most --input-size {most}")


@model_app.command()
def synth(out: Path = typer.Option(..., help="Output folder (images/, labels/, classes.txt)"),
          kind: str = typer.Option("tomato", help="tomato (greenhouse rows) | surface (steel/tile defects + masks)"),
          count: int = typer.Option(100, min=1, help="Number of images"),
          seed: int = typer.Option(0, help="Generator seed"),
          width: int = typer.Option(640, help="tomato: image width"), height: int = typer.Option(480),
          size: int = typer.Option(256, help="surface: square image side"),
          defect_fraction: float = typer.Option(0.5, min=0.0, max=1.0, help="surface: share with defects")) -> None:
    """Generate a seedable synthetic dataset in YOLO format (surface also writes masks/ and annotations.json)."""
    if kind == "tomato":
        from models.synth.tomato import generate_dataset

        typer.echo(str(generate_dataset(out, count, seed, width, height)))
    elif kind == "surface":
        from models.synth.surface import generate_surface_dataset

        typer.echo(str(generate_surface_dataset(out, count, seed, defect_fraction, size)))
    else:
        _fail(f"--kind {kind!r}: expected tomato or surface")


DATA_HELP = ("synth:tomato | synth:tomato-shift | synth:surface | a dataset folder (or COCO .json) with --format | "
             "api:NAME (train: a cloud dataset, with --api)")
FORMAT_HELP = "Dataset format: yolo | coco | voc | supervisely"
MAP_HELP = "Class renames/merges a=b,c=b (globs ok; 'a=' drops a)"


SPLITS_HELP = "train,val,test shares for images outside split folders"


def _source(data: str, fmt: str | None, mapping: str | None, classes: str | None, split_seed: int,
            splits: str = "0.8,0.1,0.1"):
    from models.toolkit_cli import source_from_options

    return source_from_options(data, fmt, mapping, classes, split_seed, splits)


@model_app.command()
def train(data: str = typer.Option("synth:tomato", help=DATA_HELP),
          fmt: str | None = typer.Option(None, "--format", "-f", help=FORMAT_HELP),
          mapping: str | None = typer.Option(None, "--map", help=MAP_HELP),
          classes: str | None = typer.Option(None, help="Class-id order of the model, e.g. green,half_ripe,ripe"),
          split_seed: int = typer.Option(0, help="Split hash seed for images outside split folders"),
          splits: str = typer.Option("0.8,0.1,0.1", help=SPLITS_HELP),
          out_dir: Path = typer.Option(Path("/tmp/fieldline_train"), help="Cache/checkpoint folder"),
          images: int = typer.Option(4000, help="Synthetic sources: training images to render"),
          input_size: int = typer.Option(320, help="Square model input (multiple of 32)"),
          canvas: int | None = typer.Option(
              None, help="Square training crop in input pixels (multiple of 32, at most --input-size); default "
                         "0.8 x input (the input below 320). A crop smaller than the input keeps objects at the "
                         "input's scale while each step costs less"),
          arch: str = typer.Option("v1", help="Network preset: fast (ReLU, patch stem, ~2.5x faster on CPU) | v1"),
          backbone: str | None = typer.Option(
              None, help="Trunk: v1 | fast (random init: the preset's own trunk, as --arch) | efficientnet-lite0 "
                         "(ImageNet weights from the package the 'train' extra installs; --arch then sets the "
                         "neck and head)"),
          width: int | None = typer.Option(None, help="Override the preset's backbone width (channels at stride 8)"),
          head_width: int | None = typer.Option(None, help="Override the preset's head width"),
          head_depth: int | None = typer.Option(None, help="Override the preset's head depth (blocks)"),
          levels: int | None = typer.Option(
              None, min=2, max=3, help="Output levels: 2 (strides 8, 16; the presets) or 3 (adds stride 32, for "
                                       "objects that fill much of the picture)"),
          assigner: str = typer.Option("centre", help="Positive samples: centre (static) | simota (dynamic-k)"),
          vflip: bool = typer.Option(False, help="Also flip vertically (surfaces, top-down views)"),
          mosaic: float = typer.Option(0.0, min=0.0, max=1.0, help="Share of 2x2 mosaic samples (small datasets)"),
          scale_range: str = typer.Option("0.75,1.45", help="Random rescale LO,HI of 70 % of the samples: widen HI "
                                          "when the model will run at a larger input than it trains at (objects "
                                          "bigger than HI x the training scale were never seen)"),
          epochs: int = typer.Option(300, help="Upper bound; the time budget normally ends training"),
          batch: int = typer.Option(16), seed: int = typer.Option(1234), lr: float = typer.Option(3e-3),
          time_budget: float | None = typer.Option(
              None, help="Seconds of optimisation (validation excluded); default 800, or no limit with --steps"),
          steps: int | None = typer.Option(
              None, min=1, help="Optimiser steps: the LR schedule runs over them, so a recipe trains the same on "
                                "any CPU (--time-budget then only caps the run)"),
          val_interval: float = typer.Option(90.0, help="Seconds of training between validation mAP runs"),
          val_every_epochs: int | None = typer.Option(
              None, min=1, help="Validate every N epochs instead of by time (the same on any CPU)"),
          threads: int = typer.Option(2, help="PyTorch threads"),
          resume: bool = typer.Option(False, help="Continue from OUT_DIR/last.pt"),
          init_from: Path | None = typer.Option(
              None, help="Fine-tune: start from this checkpoint (e.g. a run on synth:tomato), a FieldLine FP32 ONNX "
                         "file or a zoo model by name (e.g. tomato-ripeness) instead of random weights; the best "
                         "start for a few hundred labelled images"),
          average_from: float | None = typer.Option(
              None, min=0.0, max=1.0, help="Also write average.pt: the mean of the EMA weights validated after "
                                           "this share of the run (e.g. 0.67; small validation sets)"),
          api: str | None = typer.Option(None, "--api", help="Cloud API URL for --data api:NAME (a dataset of "
                                         "the learning loop: its labelled frames are pulled into OUT_DIR)"),
          token: str | None = typer.Option(None, "--token", help="API token for --api (default: from the "
                                           "environment, as `fieldline data`)")) -> None:
    """Train the <= 1M-parameter detector on synthetic data or an imported dataset (needs torch)."""
    try:
        from models.train import TrainConfig
        from models.train import train as run
    except ImportError as exc:
        _fail(f"training needs PyTorch (pip install 'fieldline[train]'): {exc}")
    _check_square_size("--input-size", input_size)
    _check_square_size("--canvas", canvas, most=input_size)
    from models.backbones import BACKBONES, BackboneUnavailable, backbone_names

    if backbone is not None and backbone not in backbone_names():
        _fail(f"--backbone {backbone!r}: choose one of {', '.join(backbone_names())}")
    if backbone in BACKBONES and not resume:
        try:
            BACKBONES[backbone].weights_path()  # before any data is read: a missing package is one line
        except BackboneUnavailable as exc:
            _fail(str(exc))
    if backbone is not None and backbone not in BACKBONES:
        arch = backbone  # a random-init trunk is its preset's
    try:
        arch_fields = TrainConfig.arch_fields(arch)
        if backbone in BACKBONES:
            arch_fields["backbone"] = backbone
        overrides = {"width": width, "head_width": head_width, "head_depth": head_depth, "levels": levels}
        arch_fields.update({k: v for k, v in overrides.items() if v is not None})
    except ValueError as exc:
        _fail(f"--arch: {exc}")
    from models.assigners import ASSIGNERS

    if assigner not in ASSIGNERS:
        _fail(f"--assigner {assigner!r}: choose one of {', '.join(ASSIGNERS)}")
    try:
        lo, hi = (float(x) for x in scale_range.split(","))
        if not 0.1 <= lo <= hi <= 4.0:
            raise ValueError
    except ValueError:
        _fail(f"--scale-range {scale_range!r}: expected LO,HI with 0.1 <= LO <= HI <= 4, such as 0.75,1.45")
    if data.startswith("api:"):
        from models.toolkit_cli import pull_api_data

        data, fmt = pull_api_data(data, api, token, out_dir)
    src = _source(data, fmt, mapping, classes, split_seed, splits)
    if time_budget is None:
        time_budget = float("inf") if steps else 800.0
    elif time_budget <= 0:
        _fail(f"--time-budget {time_budget}: must be positive")
    cfg = TrainConfig(**arch_fields, assigner=assigner, out_dir=out_dir, data=data, fmt=fmt, mapping=mapping,
                      classes=src.classes, split_seed=split_seed, fractions=src.fractions, images=images,
                      input_size=input_size, train_canvas=canvas, flip_vertical=vflip, mosaic=mosaic,
                      scale_range=(lo, hi),
                      epochs=epochs, batch=batch, seed=seed, lr=lr, time_budget_s=time_budget, max_steps=steps,
                      val_interval_s=val_interval, val_every_epochs=val_every_epochs, threads=threads,
                      init_from=init_from,
                      average_from=average_from)
    try:
        typer.echo(str(run(cfg, resume=resume)))
    except (FileNotFoundError, ValueError) as exc:
        _fail(str(exc))


@model_app.command()
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
    from models.export import export as run
    from models.tta import FLIP_SETS

    if not checkpoint.is_file():
        _fail(f"{checkpoint}: checkpoint not found")
    if flips not in FLIP_SETS:
        _fail(f"--flips {flips!r}: choose one of {', '.join(FLIP_SETS)}")
    _check_square_size("--input-size", input_size)
    data_hash = json.loads(train_info.read_text())["train_data_hash"] if train_info else "unknown"
    try:
        typer.echo(str(run(checkpoint, out, name=name, version=version, train_data_hash=data_hash, flips=flips,
                           input_size=input_size, dynamic_size=dynamic_size)))
    except ValueError as exc:
        _fail(str(exc))


@model_app.command()
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
    from models.quantize import QuantizationRefused
    from models.quantize import quantize_checked as run

    if not model.is_file():
        _fail(f"{model}: model file not found")
    from edge_agent.detectors.anomaly import read_anomaly_metadata

    try:
        decoder = read_anomaly_metadata(model).get("decoder")
    except Exception as exc:  # noqa: BLE001 - any parse error means the same to the user
        _fail(f"{model}: not a readable ONNX file ({type(exc).__name__}: {exc})")
    if decoder == "anomaly":
        _fail(f"{model} is an anomaly model: use `fieldline model anomaly quantize --model {model} --out {out} "
              "--images DEFECT_FREE_DIR`")
    src = _source(data, fmt, mapping, None, split_seed, splits)
    try:
        report = run(model, out, src, calib_count=calib_count, check_count=check_count, max_drop=max_drop,
                     force=force, keep_head_fp32=keep_head_fp32, calibration=calibration, reduce_range=reduce_range,
                     search=search, rgb_conv_fp32=rgb_conv_fp32)
    except (QuantizationRefused, ValueError) as exc:  # ValueError: a bad --calibration, before any work
        _fail(str(exc))
    if warning := report["check"].get("warning"):
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(json.dumps(report))


@model_app.command("eval")
def eval_(model: Path = typer.Option(..., help="ONNX model file"),
          data: str = typer.Option("synth:tomato", help=DATA_HELP),
          fmt: str | None = typer.Option(None, "--format", "-f", help=FORMAT_HELP),
          mapping: str | None = typer.Option(None, "--map", help=MAP_HELP),
          split: str = typer.Option("test", help="Dataset split: train | val | test"),
          split_seed: int = typer.Option(0, help="Split hash seed (as used for training)"),
          splits: str = typer.Option("0.8,0.1,0.1", help=SPLITS_HELP + " (as used for training)"),
          count: int | None = typer.Option(None, help="Images (synthetic default 300; datasets default all)"),
          seed: int = typer.Option(9001, help="Synthetic data seed"),
          plots: Path | None = typer.Option(None, help="Write pr_curves.png and confusion_matrix.png here"),
          conf: float = typer.Option(0.001, min=0.0, max=1.0, help="Score threshold (COCO-style mAP: keep it low)"),
          iou: float = typer.Option(0.5, min=0.05, max=0.95,
                                    help="Class-wise NMS IoU (0.7 = the Ultralytics 'val' setting)"),
          input_size: int | None = typer.Option(
              None, help="Run a dynamic-size model at this square input (multiple of 32), as the edge config's "
                         "`model.input_size` would: pick the size for your camera on your validation pictures"),
          letterbox: str = typer.Option("auto", help="auto | square | tight (as the edge config's `model.letterbox`: "
                                                        "auto = tight for dynamic-size files)"),
          as_json: bool = typer.Option(False, "--json", help="Print one JSON object as the last line")) -> None:
    """mAP50 / mAP50-95 (pycocotools), overall and per class; PR curves and confusion matrix as PNG."""
    from edge_agent.detectors.onnx_detector import ModelLoadError, OnnxDetector
    from models.datasets import DatasetError
    from models.evaluate import evaluate

    src = _source(data, fmt, mapping, None, split_seed, splits)
    if src.is_synthetic and count is None:
        count = 300
    try:
        OnnxDetector(model, input_size=input_size, letterbox=letterbox)  # type: ignore[arg-type]  # fail fast
        with Progress(console=err, transient=True) as bar:
            task = bar.add_task("eval", total=count if src.is_synthetic else src.split_size(split))
            res = evaluate(model, data=src, count=count, seed=seed, split=split, plots_dir=plots,
                           conf_threshold=conf, iou_threshold=iou, input_size=input_size, letterbox=letterbox,
                           progress=lambda i, n: bar.update(task, completed=i, total=n))
    except (ModelLoadError, DatasetError, ValueError) as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(res))
        return
    typer.echo(f"{model}: mAP50 {res['map50']:.3f}  mAP50-95 {res['map50_95']:.3f}  "
               f"({res['images']} images, {res['instances']} instances; conf {conf:g}, NMS IoU {iou:g})")
    for lab, v in res["per_class"].items():
        typer.echo(f"  {lab:<16} AP50 {v['ap50']:.3f}  AP50-95 {v['ap50_95']:.3f}")
    typer.echo(f"  any class: mAP50 {res['map50_agnostic']:.3f} (every label as one: finding vs classifying)")
    if "warning" in res:
        err.print(f"[yellow]warning:[/] {res['warning']}", highlight=False)
    if plots is not None:
        typer.echo(f"plots: {res['plots']['pr_curves']}, {res['plots']['confusion_matrix']}")


@model_app.command()
def card(name: str = typer.Option("tomato-ripeness", help="Zoo model: tomato-ripeness | tomato-ripeness-fast | steel-defect"),
         measure: bool = typer.Option(False, help="Re-measure the zoo files into NAME.metrics.json first"),
         train_info: Path | None = typer.Option(None, help="train_info.json of the shipped run (with --measure; "
                                                             "default: the one already recorded)"),
         holdout: str | None = typer.Option(None, help="Synthetic holdout source (with --measure; default: the "
                                                          "recorded one, else synth:tomato)"),
         holdout_count: int = typer.Option(300), holdout_seed: int = typer.Option(20261),
         recipes_out: Path | None = typer.Option(None, help="OUT folder of models/recipes/*.sh (real-data figures; alone: refresh just those)"),
         quantize_report: Path | None = typer.Option(None, help="JSON printed by `model quantize`"),
         base_train_info: Path | None = typer.Option(None, help="train_info.json of the run the shipped one was "
                                                                 "fine-tuned from (--init-from; with --measure)"),
         size_sweep: Path | None = typer.Option(
             None, help="JSON printed by `bench/input_size.py --model` for the zoo file (its other input sizes; "
                        "alone: record just that)")) -> None:
    """Write models/zoo/NAME.card.md from recorded metrics (optionally re-measure them first)."""
    from models.card import MODEL_TEXT, record_metrics, record_size_sweep, write_card
    from models.card_real_data import refresh_real_data

    if name not in MODEL_TEXT:
        _fail(f"--name {name!r}: no card text for it (known: {', '.join(MODEL_TEXT)})")
    if measure:
        try:
            report = json.loads(quantize_report.read_text().strip().splitlines()[-1]) if quantize_report else None
            if base_train_info is not None and train_info is None:
                raise ValueError("--base-train-info needs --train-info (the fine-tuned run)")
            record_metrics(name, json.loads(train_info.read_text()) if train_info else None, holdout, holdout_count,
                           holdout_seed, recipes_out, report,
                           base_train_info=json.loads(base_train_info.read_text()) if base_train_info else None)
        except ValueError as exc:
            _fail(str(exc))
    elif recipes_out is not None:  # only the real-data figures changed
        refresh_real_data(name, recipes_out)
    if size_sweep is not None:
        try:
            record_size_sweep(name, json.loads(size_sweep.read_text().strip().splitlines()[-1]))
        except (OSError, ValueError) as exc:
            _fail(f"--size-sweep {size_sweep}: {exc}")
    typer.echo(str(write_card(name)))


# Dataset toolkit verbs: import, stats, predict, bench (implemented in models/toolkit_cli.py).
from models.toolkit_cli import register as _register_toolkit  # noqa: E402

_register_toolkit(model_app)

# Surface anomaly model (trained on defect-free images only): `fieldline model anomaly fit|eval`.
from models.anomaly_cli import anomaly_app  # noqa: E402

model_app.add_typer(anomaly_app, name="anomaly")
