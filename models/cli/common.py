"""What the `fieldline model` verb groups share: consoles, the clean error exit, help texts, data options."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import typer
from rich.console import Console

out = Console(width=None if sys.stdout.isatty() else 160)  # wide tables when piped
err = Console(stderr=True)

DATA_HELP = ("synth:tomato | synth:tomato-shift | synth:surface | a dataset folder (or COCO .json) with --format | "
             "api:NAME (train: a cloud dataset, with --api)")
FORMAT_HELP = "Dataset format: yolo | coco | voc | supervisely"
MAP_HELP = "Class renames/merges a=b,c=b (globs ok; 'a=' drops a)"
SPLITS_HELP = "train,val,test shares for images outside split folders"
REDUCE_RANGE_HELP = ("INT8 weights: 7-bit (default) runs right on every CPU; 8-bit (--full-range) saturates on x86 "
                     "without VNNI (AVX2-only boxes): use it only for fleets that all have VNNI or ARM")


def fail(msg: str) -> None:
    from rich.markup import escape  # messages name extras such as 'fieldline[train]': not markup

    err.print(f"[bold red]error:[/] {escape(msg)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


def check_square_size(flag: str, value: int | None, most: int | None = None) -> None:
    """Square network inputs and training crops: multiples of 32 (the largest stride), at least 64."""
    if value is None:
        return
    if value % 32 or value < 64:
        fail(f"{flag} {value}: must be a multiple of 32, at least 64")
    if most is not None and value > most:
        fail(f"{flag} {value}: must be at most --input-size {most}")


def source_from_options(data: str, fmt: str | None, mapping: str | None, classes: str | None, split_seed: int,
                        splits: str = "0.8,0.1,0.1"):
    """The CLI options that name data (shared by import/stats and train/quantize/eval) -> a checked DataSource."""
    from models.data.sources import DataSource
    from models.data.samples import DatasetError

    try:
        fractions = tuple(float(x) for x in splits.split(","))
        if len(fractions) != 3:
            raise ValueError
    except ValueError:
        fail(f"--splits {splits!r}: expected three numbers train,val,test such as 0.8,0.1,0.1")
    names = [c.strip() for c in classes.split(",") if c.strip()] if classes else None
    try:
        src = DataSource.parse(data, fmt, mapping, names, split_seed, fractions)  # type: ignore[arg-type]
        src.labels()  # loads and checks the dataset now, before any progress output
        return src
    except DatasetError as exc:
        fail(str(exc))


def pull_api_data(data: str, api: str | None, token: str | None, out_dir: Path) -> tuple[str, str]:
    """``--data api:NAME``: the dataset's labelled frames pulled from the cloud API (``fieldline.data_client``)
    into ``OUT_DIR/data-NAME`` as YOLO; returns the (data, format) training reads."""
    from fieldline.data_client import DataClient, DataClientError

    name = data[4:]
    if not api:
        fail(f"--data {data}: needs --api URL (the cloud API the dataset lives on)")
    dest = Path(out_dir) / f"data-{name}"
    shutil.rmtree(dest, ignore_errors=True)  # a fresh pull: labels may have changed since the last one
    try:
        with DataClient(api, token) as client:
            client.pull(name, dest, "yolo")
    except DataClientError as exc:
        fail(f"--data {data}: {exc}")
    err.print(f"pulled dataset {name} from {api} into {dest}", highlight=False)
    return str(dest), "yolo"
