"""`fieldline model ...`: synth, train, export, quantize, eval, card (thin wrappers over the library)."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress

model_app = typer.Typer(help="Synthetic data, training, export, INT8 quantisation, evaluation, model cards.",
                        no_args_is_help=True, add_completion=False)
err = Console(stderr=True)


def _fail(msg: str) -> None:
    err.print(f"[bold red]error:[/] {msg}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


@model_app.command()
def synth(out: Path = typer.Option(..., help="Output folder (images/, labels/, classes.txt)"),
          count: int = typer.Option(100, help="Number of images"),
          seed: int = typer.Option(0, help="Generator seed"),
          width: int = 640, height: int = 480) -> None:
    """Generate a YOLO-format synthetic tomato dataset."""
    from models.synth.tomato import generate_dataset

    typer.echo(str(generate_dataset(out, count, seed, width, height)))


@model_app.command()
def train(out_dir: Path = typer.Option(Path("/tmp/fieldline_train"), help="Cache/checkpoint folder"),
          images: int = typer.Option(4000, help="Synthetic training images"),
          epochs: int = typer.Option(40), seed: int = typer.Option(1234),
          time_budget: float = typer.Option(800.0, help="Seconds for the optimisation loop")) -> None:
    """Train TomatoNet (needs the `train` extra: torch)."""
    try:
        from models.train import TrainConfig
        from models.train import train as run
    except ImportError as exc:
        _fail(f"training needs PyTorch (pip install 'fieldline[train]'): {exc}")
    typer.echo(str(run(TrainConfig(out_dir=out_dir, images=images, epochs=epochs, seed=seed,
                                   time_budget_s=time_budget))))


@model_app.command()
def export(checkpoint: Path = typer.Option(...), out: Path = typer.Option(...),
           version: str = typer.Option("1.0.0"),
           train_info: Path | None = typer.Option(None, help="train_info.json (for the data hash)")) -> None:
    """Export a checkpoint to FieldLine-native ONNX with metadata."""
    from models.export import export as run

    data_hash = json.loads(train_info.read_text())["train_data_hash"] if train_info else "unknown"
    typer.echo(str(run(checkpoint, out, version=version, train_data_hash=data_hash)))


@model_app.command()
def quantize(model: Path = typer.Option(...), out: Path = typer.Option(...),
             calib_count: int = typer.Option(100), keep_head_fp32: bool = typer.Option(False)) -> None:
    """Static INT8 QDQ per-channel quantisation calibrated on synthetic frames."""
    from models.quantize import quantize as run

    if not model.is_file():
        _fail(f"{model}: model file not found")
    typer.echo(str(run(model, out, calib_count=calib_count, keep_head_fp32=keep_head_fp32)))


@model_app.command("eval")
def eval_(model: Path = typer.Option(..., help="ONNX model file"),
          data: str = typer.Option("synth:tomato", help="Data source"),
          count: int = typer.Option(300, help="Images"), seed: int = typer.Option(9001, help="Data seed"),
          as_json: bool = typer.Option(False, "--json", help="Print one JSON object as the last line")) -> None:
    """mAP50 / mAP50-95 (pycocotools), overall and per class."""
    from edge_agent.detectors.onnx_detector import ModelLoadError
    from models.evaluate import evaluate

    try:
        from edge_agent.detectors.onnx_detector import OnnxDetector

        OnnxDetector(model)  # fail fast, before any progress output
        with Progress(console=err, transient=True) as bar:
            task = bar.add_task("eval", total=count)
            res = evaluate(model, data=data, count=count, seed=seed,
                           progress=lambda i, n: bar.update(task, completed=i))
    except ModelLoadError as exc:
        _fail(str(exc))
    except ValueError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(res))
        return
    typer.echo(f"{model}: mAP50 {res['map50']:.3f}  mAP50-95 {res['map50_95']:.3f}  "
               f"({res['images']} images, {res['instances']} instances)")
    for lab, v in res["per_class"].items():
        typer.echo(f"  {lab:<10} AP50 {v['ap50']:.3f}  AP50-95 {v['ap50_95']:.3f}")


@model_app.command()
def card(metrics: Path | None = typer.Option(None, help="metrics JSON (default: zoo)"),
         out: Path | None = typer.Option(None, help="card .md (default: zoo)"),
         measure: bool = typer.Option(False, help="Re-measure the zoo models into metrics first"),
         train_info: Path | None = typer.Option(None, help="train_info.json (with --measure)"),
         holdout_count: int = typer.Option(300), holdout_seed: int = typer.Option(20261)) -> None:
    """Write the model card from recorded metrics (optionally re-measure them first)."""
    from models.card import ZOO, record_metrics, write_card

    if measure:
        if train_info is None:
            _fail("--measure needs --train-info")
        record_metrics(ZOO / "tomato-ripeness.onnx", ZOO / "tomato-ripeness.int8.onnx",
                       json.loads(train_info.read_text()), holdout_count, holdout_seed, metrics)
    typer.echo(str(write_card(metrics, out)))


# Dataset toolkit verbs: import, stats, predict, bench (implemented in models/toolkit_cli.py).
from models.toolkit_cli import register as _register_toolkit  # noqa: E402

_register_toolkit(model_app)

# Surface anomaly model (trained on defect-free images only): `fieldline model anomaly fit|eval`.
from models.anomaly_cli import anomaly_app  # noqa: E402

model_app.add_typer(anomaly_app, name="anomaly")
