"""``fieldline data pull|push|stats``: the cloud API's datasets from the command line (issue 40)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fieldline.data_client import DataClient, DataClientError

data_app = typer.Typer(help="Datasets in the cloud API: pull for training, push a labelled folder, stats.",
                       no_args_is_help=True)
err = Console(stderr=True)
out = Console(highlight=False, soft_wrap=True)

ApiOption = Annotated[str, typer.Option("--api", help="Base URL of the cloud API, e.g. http://cloud:8000")]
TokenOption = Annotated[str | None, typer.Option(
    "--token", envvar=["FIELDLINE_TOKEN", "FIELDLINE_API_TOKEN"],
    help="API token (or env FIELDLINE_TOKEN / FIELDLINE_API_TOKEN); push needs an operator")]
FormatOption = Annotated[str, typer.Option("--format", "-f", help="yolo or coco")]


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _format(fmt: str) -> str:
    if fmt not in ("yolo", "coco"):
        _fail(f"--format: {fmt!r} is not one of yolo, coco")
    return fmt


@data_app.command()
def pull(name: Annotated[str, typer.Argument(help="Dataset name")], api: ApiOption,
         out_dir: Annotated[Path, typer.Option("--out", help="Folder to write (made if needed)")],
         token: TokenOption = None, fmt: FormatOption = "yolo",
         status: Annotated[str, typer.Option(help="Frames with these statuses (comma list)")] = "labelled") -> None:
    """Export a dataset into a folder that `fieldline model train --data DIR --format ...` reads."""
    _format(fmt)
    try:
        with DataClient(api, token) as client:
            client.pull(name, out_dir, fmt, status)
    except DataClientError as exc:
        _fail(str(exc))
    images = sum(1 for p in (out_dir / "images").rglob("*.jpg")) if (out_dir / "images").is_dir() else 0
    out.print(f"{name}: {images} images ({status}) written to {out_dir} as {fmt}")
    out.print(f"train with: fieldline model train --data {out_dir} --format {fmt}")


@data_app.command()
def push(src: Annotated[Path, typer.Argument(help="A YOLO or COCO dataset folder", exists=True, file_okay=False)],
         api: ApiOption, dataset: Annotated[str, typer.Option("--dataset", help="Target dataset (made if missing)")],
         token: TokenOption = None, fmt: FormatOption = "yolo") -> None:
    """Upload a labelled folder (e.g. a CVAT or Label Studio export) into a dataset; it is checked here first."""
    from models.data.datasets import load_dataset
    from models.data.samples import DatasetError

    _format(fmt)
    try:
        local = load_dataset(src, fmt)  # the same readers the API uses: errors name the file before any upload
    except DatasetError as exc:
        _fail(str(exc))
    try:
        with DataClient(api, token) as client:
            client.ensure_dataset(dataset, list(local.classes), f"pushed from {src.name}")
            result = client.push_dir(dataset, src, fmt)
    except DataClientError as exc:
        _fail(str(exc))
    out.print(f"{dataset}: {result['imported']} imported, {result['skipped']} already there, "
              f"{len(result['errors'])} errors")
    for line in result["errors"][:20]:
        out.print(f"  {escape(line)}")
    if result["errors"]:
        raise typer.Exit(1)


@data_app.command()
def stats(name: Annotated[str, typer.Argument(help="Dataset name")], api: ApiOption,
          token: TokenOption = None) -> None:
    """Frames by status and split, and boxes per label of the labelled frames."""
    try:
        with DataClient(api, token) as client:
            info = client.dataset(name)
    except DataClientError as exc:
        _fail(str(exc))
    out.print(f"{info['name']}: {info['frames']} frames, labels {', '.join(info['labels'])}")
    table = Table("status", "frames", "split", "frames ", "label", "boxes")
    statuses, splits = list(info["by_status"].items()), list(info["by_split"].items())
    boxes = sorted(info.get("boxes_by_label", {}).items())
    for i in range(max(len(statuses), len(splits), len(boxes))):
        row = [*(map(str, statuses[i]) if i < len(statuses) else ("", "")),
               *(map(str, splits[i]) if i < len(splits) else ("", "")),
               *(map(str, boxes[i]) if i < len(boxes) else ("", ""))]
        table.add_row(*row)
    out.print(table)
