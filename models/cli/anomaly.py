"""`fieldline model anomaly ...`: fit / eval the surface-anomaly model (mounted by the main CLI).

    fieldline model anomaly fit --images DIR --out model.onnx --flips --seconds 1800   # your own defect-free images
    fieldline model anomaly fit --images DIR --method knn --out model.onnx            # ~2 min, weaker
    fieldline model anomaly fit --images DIR --method patchcore --out model.onnx      # pretrained features
    fieldline model anomaly fit --synthetic 300 --out model.onnx  # generated surfaces only
    fieldline model anomaly quantize --model model.onnx --out model.int8.onnx --images DIR   # seg models
    fieldline model anomaly combine --model a128.onnx --model b256.onnx --images DIR --out both.onnx
    fieldline model anomaly eval --model model.onnx --free DIR --defect DIR [--defect DIR ...]
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from models.cli.common import REDUCE_RANGE_HELP

anomaly_app = typer.Typer(help="Defect-free-only surface anomaly model: fit, quantize, combine and evaluate.",
                          no_args_is_help=True, add_completion=False)

METHODS = ("seg", "patchcore", "knn")
IMAGE_EXT = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def _images(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise typer.BadParameter(f"{folder} is not a folder")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXT)
    # <name>.png beside <name>.jpg is that image's mask (magnetic-tile layout), not an image
    return [p for p in files if not (p.suffix.lower() == ".png" and
                                     any(p.with_suffix(e).exists() for e in (".jpg", ".jpeg")))]


def _require_backbone() -> None:
    """Exit with one line naming the extra when the pretrained backbone's package is missing."""
    from models.anomaly.patchcore import BACKBONE
    from models.detect.backbones import BACKBONES, BackboneUnavailable

    try:
        BACKBONES[BACKBONE].weights_path()
    except BackboneUnavailable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def _layers(text: str) -> tuple[int, ...]:
    """'4,7' -> (4, 7); a usage error naming the option otherwise."""
    try:
        return tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise typer.BadParameter(f"--layers {text!r}: comma-separated Lite0 block numbers, e.g. 4,7") from None


def _checked(load, *args):
    """Run an image loader; an unreadable file becomes a usage error that names it (no traceback)."""
    try:
        return load(*args)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _anomaly_metadata(model: Path) -> dict[str, str]:
    """fieldline.* metadata of an anomaly model file, or a usage error saying what is wrong with the file."""
    from models.anomaly.core import read_model_metadata

    try:
        return read_model_metadata(model)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@anomaly_app.command()
def fit(out: Path = typer.Option(..., help="Output .onnx"),
        images: Path | None = typer.Option(None, help="Folder of defect-free images (recursive)"),
        synthetic: int = typer.Option(0, help="Fit on this many generated defect-free surfaces instead"),
        val_fraction: float = typer.Option(0.15, help="Share of images held out to pick the threshold"),
        target_frr: float = typer.Option(0.01, help="False-reject rate on held-out defect-free images"),
        method: str = typer.Option("seg", help="seg (default, the shipped model's method): a small U-Net trained "
                                               "to find defects painted onto your images (--seconds of training); "
                                               "patchcore: memory bank of pretrained EfficientNet-Lite0 patch "
                                               "features (needs the train extra; best on real tiles, see the card); "
                                               "knn: memory bank of random-conv patch features (weaker)"),
        seconds: float = typer.Option(600.0, help="seg: training time budget in seconds"),
        encoder_seconds: float = typer.Option(0.0, help="knn: synthetic-defect pretext training of the encoder, s (0 = seeded random init, the shipped recipe)"),
        coreset: int = typer.Option(4096, help="knn/patchcore: memory bank size"),
        dim: int | None = typer.Option(None, help="knn/patchcore: PCA channels of the patch features (default: knn "
                                                  "48, patchcore 64; 0 = patchcore without PCA)"),
        layers: str = typer.Option("", help="patchcore: Lite0 blocks whose outputs make the features, e.g. 4,7 "
                                            "(default 7,10; joined on the stride-8 grid)"),
        seed: int = typer.Option(0),
        input_size: int | None = typer.Option(None, help="Model input side (default 256 for knn and patchcore, 128 "
                                                         "for seg)"),
        crop: int | None = typer.Option(None, help="seg: train on random crops of this side, run on the whole "
                                                   "picture (magnetic tiles, --input-size 256 --crop 128: cracks and "
                                                   "blowholes score better, large uneven areas worse; see the card)"),
        flips: bool = typer.Option(False, help="seg: average the map over the picture and its mirror images "
                                               "(4x the compute, fewer false spots)"),
        name: str = typer.Option("surface-anomaly"), version: str = typer.Option("1.0.0")) -> None:
    """Fit on defect-free images only and export ONNX (heatmap + score, threshold in metadata)."""
    import numpy as np

    from models.anomaly.core import INPUT_SIZE, export_anomaly_onnx, fit_anomaly, load_gray, synth_free
    from models.anomaly.patchcore import PATCHCORE_INPUT_SIZE
    from models.anomaly.seg import SEG_INPUT_SIZE, fit_segmenter

    if method not in METHODS:
        raise typer.BadParameter(f"--method must be one of {', '.join(METHODS)}, not {method!r}")
    if (crop is not None or flips) and method != "seg":
        raise typer.BadParameter("--crop and --flips are for --method seg")
    if layers and method != "patchcore":
        raise typer.BadParameter("--layers is for --method patchcore")
    if (images is None) == (synthetic <= 0):
        raise typer.BadParameter("give exactly one of --images or --synthetic N")
    if method == "patchcore":
        _require_backbone()  # before any picture is read: a missing package is one line
    if input_size is None:
        input_size = {"seg": SEG_INPUT_SIZE, "patchcore": PATCHCORE_INPUT_SIZE}.get(method, INPUT_SIZE)
    if images is not None:
        files = _images(images)
        if len(files) < 5:
            raise typer.BadParameter(f"{images}: need at least 5 images, found {len(files)}")
        x = _checked(load_gray, files, input_size)
        desc = f"{len(files)} defect-free images from {images}"
    else:
        x = synth_free(seed, synthetic, input_size)
        desc = f"{synthetic} synthetic defect-free surfaces (models.data.synth.surface, seed {seed})"
    perm = np.random.default_rng(seed).permutation(len(x))
    nv = max(2, int(round(val_fraction * len(x))))
    train, val = x[perm[nv:]], x[perm[:nv]]
    try:
        if method == "seg":
            res = fit_segmenter(train, val, seconds=seconds, seed=seed, target_frr=target_frr, crop=crop,
                                flips=flips)
        elif method == "patchcore":
            from models.anomaly.patchcore import DEFAULT_DIM, DEFAULT_LAYERS, fit_patchcore

            res = fit_patchcore(train, val, layers=_layers(layers) or DEFAULT_LAYERS, seed=seed, coreset=coreset,
                                dim=DEFAULT_DIM if dim is None else dim, target_frr=target_frr)
        else:
            res = fit_anomaly(train, val, encoder_seconds=encoder_seconds, seed=seed, dim=48 if dim is None else dim,
                              coreset=coreset, target_frr=target_frr)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    path = export_anomaly_onnx(res, out, desc, name, version)
    typer.echo(json.dumps({"model": str(path), "threshold": res.threshold, **res.info}, indent=2))


@anomaly_app.command()
def quantize(model: Path = typer.Option(..., help="FP32 anomaly .onnx fitted with --method seg"),
             out: Path = typer.Option(..., help="Output INT8 .onnx"),
             images: Path | None = typer.Option(None, help="Folder of defect-free images like the fitting ones"),
             synthetic: int = typer.Option(0, help="Calibrate and check on this many generated surfaces instead"),
             check_fraction: float = typer.Option(0.3, help="Share of the images held out for the check and the "
                                                            "INT8 threshold (of the rest, up to 24 "
                                                            "calibrate at 128 px, 6 at 256 px)"),
             target_frr: float = typer.Option(0.01, help="False-reject rate for the INT8 file's threshold"),
             max_drop: float = typer.Option(0.01, help="Largest AUROC loss accepted (0.01 = one point)"),
             force: bool = typer.Option(False, help="Write the INT8 file even beyond --max-drop"),
             seed: int = typer.Option(0),
             reduce_range: bool = typer.Option(True, "--reduce-range/--full-range", help=REDUCE_RANGE_HELP)) -> None:
    """Static INT8 copy of a seg anomaly model, checked against FP32 on painted defects (no labels needed)."""
    import numpy as np

    from models.anomaly.core import load_gray, synth_free
    from models.anomaly.quantize import quantize_anomaly
    from models.detect.quantize import QuantizationRefused

    meta = _anomaly_metadata(model)
    if "branches" in meta:
        raise typer.BadParameter(f"{model}: a combined model; quantize each branch model, then combine the INT8 "
                                 "files (`fieldline model anomaly combine`)")
    size = int(meta["input_size"])
    if (images is None) == (synthetic <= 0):
        raise typer.BadParameter("give exactly one of --images or --synthetic N")
    if images is not None:
        files = _images(images)
        if len(files) < 10:
            raise typer.BadParameter(f"{images}: need at least 10 images, found {len(files)}")
        x = _checked(load_gray, files, size)
    else:
        x = synth_free(seed, synthetic, size)
    perm = np.random.default_rng(seed).permutation(len(x))
    nc = max(4, int(round(check_fraction * len(x))))
    calib, held_out = x[perm[nc:]], x[perm[:nc]]
    try:
        report = quantize_anomaly(model, out, calib, held_out, held_out, max_drop=max_drop, force=force,
                                  target_frr=target_frr, reduce_range=reduce_range)
    except QuantizationRefused as exc:
        typer.echo(f"refused: {exc}", err=True)
        raise typer.Exit(2) from None
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    typer.echo(json.dumps(report, indent=2))


@anomaly_app.command()
def combine(model: list[Path] = typer.Option(..., help="Anomaly .onnx files fitted on the same line (2 or more), "
                                                      "e.g. --method seg at --input-size 128 and 256"),
            out: Path = typer.Option(..., help="Output .onnx (input size = the largest model's)"),
            images: Path = typer.Option(..., help="Folder of defect-free images for each model's score scale and "
                                                  "the threshold (best: ones none of the models was fitted on)"),
            target_frr: float = typer.Option(0.01, help="False-reject rate on these images"),
            name: str = typer.Option("surface-anomaly-combined"), version: str = typer.Option("1.0.0")) -> None:
    """One model from several: z-scored heatmaps averaged, score = the map's max (see models/anomaly/combine.py)."""
    from models.anomaly.core import load_gray
    from models.anomaly.combine import combine_anomaly_models

    size = max(int(_anomaly_metadata(m)["input_size"]) for m in model)
    files = _images(images)
    if len(files) < 5:
        raise typer.BadParameter(f"{images}: need at least 5 images, found {len(files)}")
    val = _checked(load_gray, files, size)
    try:
        report = combine_anomaly_models(model, out, val, target_frr=target_frr, name=name, version=version)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    typer.echo(json.dumps({"model": str(out), **report}, indent=2))


@anomaly_app.command("eval")
def eval_(model: Path = typer.Option(..., help="surface-anomaly .onnx"),
          free: Path = typer.Option(..., help="Folder of defect-free test images"),
          defect: list[Path] = typer.Option(..., help="Defect folder(s); masks <name>.png beside the images "
                                                      "are used for pixel AUROC when present"),
          threshold: float | None = typer.Option(None, help="Override fieldline.threshold")) -> None:
    """Image (and pixel, with masks) AUROC per defect folder and overall, plus rates at the threshold."""
    import numpy as np

    from models.anomaly.core import evaluate_sets, load_gray, load_masks, onnx_scorer

    meta = _anomaly_metadata(model)
    size = int(meta["input_size"])
    thr = float(meta["threshold"]) if threshold is None else threshold

    def load(folder: Path) -> tuple[np.ndarray, np.ndarray]:
        imgs = _images(folder)
        masks = [p.with_suffix(".png") for p in imgs]
        x = _checked(load_gray, imgs, size)
        m = _checked(load_masks, masks, size) if all(p.exists() and p != i for p, i in zip(masks, imgs)) \
            else np.zeros((len(imgs), size, size), bool)
        return x, m

    fx, fm = load(free)
    groups = {d.name if d.name.lower() != "imgs" else d.parent.name: load(d) for d in defect}
    res = evaluate_sets(onnx_scorer(model), thr, fx, fm, groups)
    typer.echo(json.dumps({"model": str(model), "threshold": thr, **res}, indent=2))


if __name__ == "__main__":
    anomaly_app()
