"""`fieldline model import|stats|predict|bench`: dataset import/stats, drawn predictions, side-by-side latency.

Registered on ``models.cli.model_app`` by :func:`register` (kept here so ``models/cli.py`` only gains two lines).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import typer
from rich.console import Console

out = Console(width=None if sys.stdout.isatty() else 160)  # wide tables when piped
err = Console(stderr=True)
FORMAT_HELP = "Source format: yolo | coco | voc | supervisely"


def _fail(msg: str) -> None:
    err.print(f"[bold red]error:[/] {msg}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


def source_from_options(data: str, fmt: str | None, mapping: str | None, classes: str | None, split_seed: int,
                        splits: str = "0.8,0.1,0.1"):
    """The CLI options that name data (shared by import/stats and train/quantize/eval) -> a checked DataSource."""
    from models.data_sources import DataSource
    from models.datasets import DatasetError

    try:
        fractions = tuple(float(x) for x in splits.split(","))
        if len(fractions) != 3:
            raise ValueError
    except ValueError:
        _fail(f"--splits {splits!r}: expected three numbers train,val,test such as 0.8,0.1,0.1")
    names = [c.strip() for c in classes.split(",") if c.strip()] if classes else None
    try:
        src = DataSource.parse(data, fmt, mapping, names, split_seed, fractions)  # type: ignore[arg-type]
        src.labels()  # loads and checks the dataset now, before any progress output
        return src
    except DatasetError as exc:
        _fail(str(exc))


def pull_api_data(data: str, api: str | None, token: str | None, out_dir: Path) -> tuple[str, str]:
    """``--data api:NAME``: the dataset's labelled frames pulled from the cloud API (``fieldline.data_client``)
    into ``OUT_DIR/data-NAME`` as YOLO; returns the (data, format) training reads."""
    from fieldline.data_client import DataClient, DataClientError

    name = data[4:]
    if not api:
        _fail(f"--data {data}: needs --api URL (the cloud API the dataset lives on)")
    dest = Path(out_dir) / f"data-{name}"
    shutil.rmtree(dest, ignore_errors=True)  # a fresh pull: labels may have changed since the last one
    try:
        with DataClient(api, token) as client:
            client.pull(name, dest, "yolo")
    except DataClientError as exc:
        _fail(f"--data {data}: {exc}")
    err.print(f"pulled dataset {name} from {api} into {dest}", highlight=False)
    return str(dest), "yolo"


def _load(src: Path, fmt: str, mapping: str | None, classes: str | None, seed: int, splits: str):
    return source_from_options(str(src), fmt, mapping, classes, seed, splits).dataset()


def _print_stats(stats: dict, as_json: bool) -> None:
    from models.datasets import stats_summary, stats_table

    heading, summary = stats_summary(stats)
    out.print(heading, highlight=False, soft_wrap=True)
    out.print(stats_table(stats))
    out.print(summary, highlight=False, soft_wrap=True)
    for w in stats["warnings"]:
        err.print(f"[yellow]warning:[/] {w}", highlight=False)
    if as_json:
        typer.echo(json.dumps(stats))


def import_cmd(src: Path = typer.Argument(..., help="Dataset folder (or a COCO .json file)"),
               fmt: str = typer.Option(..., "--format", "-f", help=FORMAT_HELP),
               mapping: str | None = typer.Option(None, "--map", help="Class renames/merges a=b,c=b (globs ok; "
                                                  "'a=' drops a)"),
               classes: str | None = typer.Option(None, help="Class-id order of the export, e.g. green,half_ripe,ripe"),
               out_dir: Path | None = typer.Option(None, "--out", help="Write YOLO txt here (images/, labels/, "
                                                   "classes.txt, data.yaml)"),
               seed: int = typer.Option(0, help="Split hash seed"),
               splits: str = typer.Option("0.8,0.1,0.1", help="train,val,test shares for images without a split "
                                          "folder"),
               link: bool = typer.Option(False, help="Hard-link images instead of copying"),
               as_json: bool = typer.Option(False, "--json", help="Print the stats as one JSON line last")) -> None:
    """Read a YOLO/COCO/VOC/Supervisely dataset, remap classes, split, print stats, optionally write YOLO."""
    from models.datasets import dataset_stats, write_yolo

    ds = _load(src, fmt, mapping, classes, seed, splits)
    stats = dataset_stats(ds)
    if out_dir is not None:
        stats["written"] = str(write_yolo(ds, out_dir, link=link))
        err.print(f"wrote YOLO dataset to {out_dir}", highlight=False)
    _print_stats(stats, as_json)


def stats_cmd(src: Path = typer.Argument(..., help="Dataset folder (or a COCO .json file)"),
              fmt: str = typer.Option(..., "--format", "-f", help=FORMAT_HELP),
              mapping: str | None = typer.Option(None, "--map", help="Class renames/merges a=b,c=b"),
              seed: int = typer.Option(0, help="Split hash seed"),
              splits: str = typer.Option("0.8,0.1,0.1", help="train,val,test shares"),
              as_json: bool = typer.Option(False, "--json", help="Print the stats as one JSON line last")) -> None:
    """Images, instances per class and split, box sizes (COCO small/medium/large), images without boxes, and
    label checks: images sharing identical boxes (labels attached to the wrong image), boxes around others."""
    from models.datasets import dataset_stats

    _print_stats(dataset_stats(_load(src, fmt, mapping, None, seed, splits)), as_json)


def predict_cmd(src: Path = typer.Argument(..., help="An image or a folder of images"),
                model: Path = typer.Option(..., help="ONNX model file"),
                out_dir: Path = typer.Option(..., "--out", help="Folder for the annotated PNGs"),
                conf: float | None = typer.Option(None, min=0.0, max=1.0, help="Minimum score (default: the "
                                                  "file's calibrated counting threshold, else 0.35)"),
                model_type: str = typer.Option("fieldline", "--type", help="fieldline | yolov5 | yolov8 | "
                                               "yolo_e2e | yolox | nanodet | anomaly"),
                labels: str | None = typer.Option(None, help="Labels (file or a,b,c) for non-FieldLine models"),
                ) -> None:
    """Run a detector (the edge agent's factory) on images and save them with the boxes drawn."""
    import cv2
    from pydantic import TypeAdapter, ValidationError

    from edge_agent.config import ModelConfig
    from edge_agent.detectors import ModelLoadError, build_detector
    from edge_agent.snapshots import annotate
    from models.datasets import IMAGE_EXTS

    spec: dict = {"type": model_type, "path": str(model)}
    if conf is not None:
        spec["conf_threshold"] = conf
    if labels:
        spec["labels"] = labels if Path(labels).is_file() else [x.strip() for x in labels.split(",")]
    try:
        det = build_detector(TypeAdapter(ModelConfig).validate_python(spec))
    except ValidationError as exc:
        _fail(f"model settings: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}")
    except ModelLoadError as exc:
        _fail(str(exc))
    if src.is_dir():
        images = sorted(p for p in src.iterdir() if p.suffix.lower() in IMAGE_EXTS)
    elif src.is_file():
        images = [src]
    else:
        _fail(f"{src}: no such image or folder")
    if not images:
        _fail(f"{src}: no images (.jpg, .png, ...)")
    out_dir.mkdir(parents=True, exist_ok=True)
    total = 0
    for p in images:
        frame = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if frame is None:
            err.print(f"[yellow]skipped[/] {p}: cannot read the image", highlight=False)
            continue
        d = det.detect(frame)
        total += len(d)
        dst = out_dir / f"{p.stem}.png"
        cv2.imwrite(str(dst), annotate(frame, d))
        counts = {n: d.label_names().count(n) for n in dict.fromkeys(d.label_names())}
        typer.echo(f"{dst}: {len(d)} detections {json.dumps(counts)}")
    typer.echo(f"{len(images)} images, {total} detections -> {out_dir}")


def bench_cmd(files: list[Path] = typer.Argument(..., help="ONNX model files"),
              threads: list[str] = typer.Option(["1"], help="Intra-op thread counts: --threads 1,2 "
                                                "(or --threads 1 --threads 2)"),
              runs: int = typer.Option(50, min=1, help="Timed runs per model and thread count"),
              warmup: int = typer.Option(5, min=0),
              block: int = typer.Option(25, min=1, help="Timed runs of one model in a row (after one untimed run) "
                                                         "before the next model's: steady state, as on an edge box"),
              as_json: bool = typer.Option(False, "--json", help="Print one JSON object as the last line")) -> None:
    """Median/p90 session latency of several models side by side (interleaved in blocks), params, file size."""
    from models.bench import bench_models, bench_table

    try:
        counts = [int(t) for item in threads for t in item.split(",") if t.strip()]
        if not counts or min(counts) < 1:
            raise ValueError
    except ValueError:
        _fail(f"--threads {threads}: expected positive integers such as 1,2")
    try:
        res = bench_models(files, counts, runs=runs, warmup=warmup, block=block,
                           progress=lambda m: err.print(m, highlight=False))
    except FileNotFoundError as exc:
        _fail(str(exc))
    except Exception as exc:  # onnxruntime raises private exception types for unreadable models
        _fail(f"cannot run the models: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else exc}")
    out.print(bench_table(res))
    if as_json:
        typer.echo(json.dumps(res))


def register(app: typer.Typer) -> None:
    """Add the toolkit verbs to ``fieldline model``."""
    app.command("import")(import_cmd)
    app.command("stats")(stats_cmd)
    app.command("predict")(predict_cmd)
    app.command("bench")(bench_cmd)
    from models.calibrate_cli import calibrate_cmd

    app.command("calibrate")(calibrate_cmd)
