"""`fieldline model card`: a zoo model's card rendered from its recorded metrics (optionally re-measured)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from models.cli.common import fail


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
    from models.cards.detect import MODEL_TEXT, record_metrics, record_size_sweep, write_card
    from models.cards.real_data import refresh_real_data

    if name not in MODEL_TEXT:
        fail(f"--name {name!r}: no card text for it (known: {', '.join(MODEL_TEXT)})")
    if measure:
        try:
            report = json.loads(quantize_report.read_text().strip().splitlines()[-1]) if quantize_report else None
            if base_train_info is not None and train_info is None:
                raise ValueError("--base-train-info needs --train-info (the fine-tuned run)")
            record_metrics(name, json.loads(train_info.read_text()) if train_info else None, holdout, holdout_count,
                           holdout_seed, recipes_out, report,
                           base_train_info=json.loads(base_train_info.read_text()) if base_train_info else None)
        except ValueError as exc:
            fail(str(exc))
    elif recipes_out is not None:  # only the real-data figures changed
        refresh_real_data(name, recipes_out)
    if size_sweep is not None:
        try:
            record_size_sweep(name, json.loads(size_sweep.read_text().strip().splitlines()[-1]))
        except (OSError, ValueError) as exc:
            fail(f"--size-sweep {size_sweep}: {exc}")
    typer.echo(str(write_card(name)))
