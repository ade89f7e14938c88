"""`fieldline model train`: the detector on generated data, an imported dataset or a cloud dataset."""

from __future__ import annotations

from pathlib import Path

import typer

from models.cli.common import (DATA_HELP, FORMAT_HELP, MAP_HELP, SPLITS_HELP, check_square_size, fail,
                               pull_api_data, source_from_options)


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
        from models.detect.train import TrainConfig
        from models.detect.train import train as run
    except ImportError as exc:
        fail(f"training needs PyTorch (pip install 'fieldline[train]'): {exc}")
    check_square_size("--input-size", input_size)
    check_square_size("--canvas", canvas, most=input_size)
    from models.detect.backbones import BACKBONES, BackboneUnavailable, backbone_names

    if backbone is not None and backbone not in backbone_names():
        fail(f"--backbone {backbone!r}: choose one of {', '.join(backbone_names())}")
    if backbone in BACKBONES and not resume:
        try:
            BACKBONES[backbone].weights_path()  # before any data is read: a missing package is one line
        except BackboneUnavailable as exc:
            fail(str(exc))
    if backbone is not None and backbone not in BACKBONES:
        arch = backbone  # a random-init trunk is its preset's
    try:
        arch_fields = TrainConfig.arch_fields(arch)
        if backbone in BACKBONES:
            arch_fields["backbone"] = backbone
        overrides = {"width": width, "head_width": head_width, "head_depth": head_depth, "levels": levels}
        arch_fields.update({k: v for k, v in overrides.items() if v is not None})
    except ValueError as exc:
        fail(f"--arch: {exc}")
    from models.detect.assigners import ASSIGNERS

    if assigner not in ASSIGNERS:
        fail(f"--assigner {assigner!r}: choose one of {', '.join(ASSIGNERS)}")
    try:
        lo, hi = (float(x) for x in scale_range.split(","))
        if not 0.1 <= lo <= hi <= 4.0:
            raise ValueError
    except ValueError:
        fail(f"--scale-range {scale_range!r}: expected LO,HI with 0.1 <= LO <= HI <= 4, such as 0.75,1.45")
    if data.startswith("api:"):
        data, fmt = pull_api_data(data, api, token, out_dir)
    src = source_from_options(data, fmt, mapping, classes, split_seed, splits)
    if time_budget is None:
        time_budget = float("inf") if steps else 800.0
    elif time_budget <= 0:
        fail(f"--time-budget {time_budget}: must be positive")
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
        fail(str(exc))
