"""`fieldline model eval|predict|bench`: mAP on labelled data, drawn predictions, side-by-side latency."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.progress import Progress

from models.cli.common import DATA_HELP, FORMAT_HELP, MAP_HELP, SPLITS_HELP, err, fail, out, source_from_options


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
    from models.data.samples import DatasetError
    from models.detect.evaluate import evaluate

    src = source_from_options(data, fmt, mapping, None, split_seed, splits)
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
        fail(str(exc))
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
    from models.data.samples import IMAGE_EXTS

    spec: dict = {"type": model_type, "path": str(model)}
    if conf is not None:
        spec["conf_threshold"] = conf
    if labels:
        spec["labels"] = labels if Path(labels).is_file() else [x.strip() for x in labels.split(",")]
    try:
        det = build_detector(TypeAdapter(ModelConfig).validate_python(spec))
    except ValidationError as exc:
        fail(f"model settings: {exc.errors()[0]['loc']}: {exc.errors()[0]['msg']}")
    except ModelLoadError as exc:
        fail(str(exc))
    if src.is_dir():
        images = sorted(p for p in src.iterdir() if p.suffix.lower() in IMAGE_EXTS)
    elif src.is_file():
        images = [src]
    else:
        fail(f"{src}: no such image or folder")
    if not images:
        fail(f"{src}: no images (.jpg, .png, ...)")
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
    from models.detect.bench import bench_models, bench_table

    try:
        counts = [int(t) for item in threads for t in item.split(",") if t.strip()]
        if not counts or min(counts) < 1:
            raise ValueError
    except ValueError:
        fail(f"--threads {threads}: expected positive integers such as 1,2")
    try:
        res = bench_models(files, counts, runs=runs, warmup=warmup, block=block,
                           progress=lambda m: err.print(m, highlight=False))
    except FileNotFoundError as exc:
        fail(str(exc))
    except Exception as exc:  # onnxruntime raises private exception types for unreadable models
        fail(f"cannot run the models: {str(exc).strip().splitlines()[0][:200] if str(exc).strip() else exc}")
    out.print(bench_table(res))
    if as_json:
        typer.echo(json.dumps(res))
