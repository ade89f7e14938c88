"""``fieldline model push``: register an ONNX file in the cloud API's model registry (over HTTP)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console

err = Console(stderr=True)
out = Console(highlight=False, soft_wrap=True)


def _fail(message: str) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True, markup=True)
    raise typer.Exit(2)


def sibling(path: Path, suffix: str) -> Path | None:
    """The zoo's card/metrics next to a model: ``tomato-ripeness.int8.onnx`` -> ``tomato-ripeness.card.md``."""
    candidate = path.with_name(path.name.split(".")[0] + suffix)
    return candidate if candidate.is_file() else None


def push(
    file: Annotated[Path, typer.Argument(help="The ONNX file", exists=True, dir_okay=False, readable=True)],
    api: Annotated[str, typer.Option("--api", help="Base URL of the cloud API, e.g. https://fieldline.example.org")],
    token: Annotated[str, typer.Option("--token", envvar="FIELDLINE_API_TOKEN",
                                       help="API token of an operator or admin (or env FIELDLINE_API_TOKEN)")],
    decoder: Annotated[str | None, typer.Option(
        help="Decoder of a foreign export (yolov5, yolov8, yolo_e2e, yolox, nanodet); FieldLine files say it")] = None,
    name: Annotated[str | None, typer.Option(help="Model name (foreign exports only)")] = None,
    version: Annotated[str | None, typer.Option(help="Model version (foreign exports only)")] = None,
    labels: Annotated[str | None, typer.Option(help="Comma-separated class names (foreign exports)")] = None,
    card: Annotated[Path | None, typer.Option(
        help="Model card (Markdown); default: NAME.card.md next to the file, if there", dir_okay=False)] = None,
    metrics: Annotated[Path | None, typer.Option(
        help="Metrics JSON for the card figures; default: NAME.metrics.json next to the file", dir_okay=False)] = None,
    timeout: Annotated[float, typer.Option(help="HTTP timeout, seconds")] = 300.0,
) -> None:
    """Upload a model to the registry; prints its sha256, name, version and card figures."""
    card = card or sibling(file, ".card.md")
    metrics = metrics or sibling(file, ".metrics.json")
    fields = {k: v for k, v in {"decoder": decoder, "name": name, "version": version, "labels": labels}.items() if v}
    for key, path in (("card", card), ("metrics", metrics)):
        if path is not None:
            try:
                fields[key] = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                _fail(f"{key} {path}: {exc}")
    url = api.rstrip("/") + "/api/v1/models"
    try:
        with file.open("rb") as handle:
            response = httpx.post(url, files={"file": (file.name, handle, "application/octet-stream")}, data=fields,
                                  headers={"Authorization": f"Bearer {token}"}, timeout=timeout)
    except httpx.HTTPError as exc:
        _fail(f"could not reach {url}: {exc}")
    if response.status_code not in (200, 201):
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text[:500]
        _fail(f"{url} answered HTTP {response.status_code}: {detail}")
    body = response.json()
    model = body["model"]
    what = "registered" if body["created"] else "already registered"
    out.print(f"{what}: {model['name']} {model['version']} ({model['decoder']}, {model['size_bytes']} bytes)")
    out.print(f"sha256 {model['sha256']}")
    figures = ", ".join(f"{k} {v}" for k, v in model["figures"].items())
    if figures:
        out.print(f"card figures: {figures}")
    if card is not None:
        out.print(f"card: {card}")


def register_model_push(model_app: typer.Typer) -> None:
    """Add ``push`` to the ``fieldline model`` group."""
    model_app.command("push")(push)
