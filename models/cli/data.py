"""`fieldline model synth|import|stats`: generated data sets, dataset import and statistics."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from models.cli.common import FORMAT_HELP, err, fail, out, source_from_options


def synth(out: Path = typer.Option(..., help="Output folder (images/, labels/, classes.txt)"),
          kind: str = typer.Option("tomato", help="tomato (greenhouse rows) | surface (steel/tile defects + masks)"),
          count: int = typer.Option(100, min=1, help="Number of images"),
          seed: int = typer.Option(0, help="Generator seed"),
          width: int = typer.Option(640, help="tomato: image width"), height: int = typer.Option(480),
          size: int = typer.Option(256, help="surface: square image side"),
          defect_fraction: float = typer.Option(0.5, min=0.0, max=1.0, help="surface: share with defects")) -> None:
    """Generate a seedable synthetic dataset in YOLO format (surface also writes masks/ and annotations.json)."""
    if kind == "tomato":
        from models.data.synth.tomato import generate_dataset

        typer.echo(str(generate_dataset(out, count, seed, width, height)))
    elif kind == "surface":
        from models.data.synth.surface import generate_surface_dataset

        typer.echo(str(generate_surface_dataset(out, count, seed, defect_fraction, size)))
    else:
        fail(f"--kind {kind!r}: expected tomato or surface")


def _load(src: Path, fmt: str, mapping: str | None, classes: str | None, seed: int, splits: str):
    return source_from_options(str(src), fmt, mapping, classes, seed, splits).dataset()


def _print_stats(stats: dict, as_json: bool) -> None:
    from models.data.datasets import stats_summary, stats_table

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
    from models.data.datasets import dataset_stats, write_yolo

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
    from models.data.datasets import dataset_stats

    _print_stats(dataset_stats(_load(src, fmt, mapping, None, seed, splits)), as_json)
