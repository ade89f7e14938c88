"""The ``fieldline`` command line: thin wrappers that dispatch to the packages, which do the work."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from fieldline.config import ConfigError, guess_kind, load_config, read_config
from fieldline.cli_data import data_app
from fieldline.cli_device import device_app
from fieldline.cli_fleet import register_model_push

app = typer.Typer(help="FieldLine: edge vision for greenhouses and factory lines.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
edge_app = typer.Typer(help="Run and check the edge agent.", no_args_is_help=True)
api_app = typer.Typer(help="Run the cloud API.", no_args_is_help=True)
config_app = typer.Typer(help="Validate configs and print their JSON Schema.", no_args_is_help=True)
contract_app = typer.Typer(help="The MQTT wire contract.", no_args_is_help=True)
app.add_typer(edge_app, name="edge")
app.add_typer(api_app, name="api")
app.add_typer(config_app, name="config")
app.add_typer(contract_app, name="contract")
app.add_typer(device_app, name="device")
app.add_typer(data_app, name="data")

err = Console(stderr=True)
out = Console()


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _stop_on_signals(stop: threading.Event) -> None:
    """SIGINT/SIGTERM set ``stop`` so every part shuts down cleanly (no orphans, spool flushed)."""

    def handler(signum, frame) -> None:  # noqa: ARG001
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def _config_models() -> dict[str, type]:
    from cloud_api.core.config import Settings
    from edge_agent.config import AgentConfig

    return {"edge": AgentConfig, "api": Settings}


# ---------------------------------------------------------------- edge
@edge_app.command("run")
def edge_run(
    config: Annotated[Path, typer.Option("--config", "-c", help="Agent YAML config")],
    duration: Annotated[Optional[float], typer.Option(help="Stop after this many seconds")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the edge agent: cameras → detector → counts → MQTT (spooled, nothing lost offline)."""
    from edge_agent.agent import Agent
    from edge_agent.config import AgentConfig
    from edge_agent.detectors.factory import build_detector
    from edge_agent.detectors.onnx_detector import ModelLoadError

    _setup_logging(verbose)
    try:
        cfg = load_config(config, AgentConfig)
    except ConfigError as exc:
        _fail(str(exc))
    try:
        detector = build_detector(cfg.model)
    except ModelLoadError as exc:
        _fail(f"model: {exc}")
    stop = threading.Event()
    _stop_on_signals(stop)
    agent = Agent(cfg, detector, config_path=config)
    code = agent.run(stop, duration)
    if agent.restart_requested:
        logging.getLogger("fieldline").info("restarting on remote request")
        os.execv(sys.executable, [sys.executable, "-m", "fieldline.cli", *sys.argv[1:]])
    raise typer.Exit(code)


@edge_app.command("doctor")
def edge_doctor(config: Annotated[Path, typer.Option("--config", "-c", help="Agent YAML config")]) -> None:
    """Check the cameras, the model, the broker, the disk and the clock; exit 1 if anything fails."""
    from rich.table import Table

    from edge_agent.config import AgentConfig
    from edge_agent.doctor import run_checks

    try:
        cfg = load_config(config, AgentConfig)
    except ConfigError as exc:
        _fail(str(exc))
    checks = run_checks(cfg)
    table = Table("check", "result", "detail")
    for check in checks:
        table.add_row(check.name, "[green]ok[/]" if check.ok else "[bold red]FAIL[/]", check.detail)
    out.print(table)
    raise typer.Exit(0 if all(c.ok for c in checks) else 1)


# ---------------------------------------------------------------- api
@api_app.command("serve")
def api_serve(
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="API YAML config")] = None,
    host: Annotated[str, typer.Option(help="Bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="HTTP port")] = 8000,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Serve the REST API and ingest events from the MQTT broker."""
    from cloud_api.core.config import Settings
    from cloud_api.serve import serve

    _setup_logging(verbose)
    try:
        settings = load_config(config, Settings) if config else Settings()
    except ConfigError as exc:
        _fail(str(exc))
    if not settings.api_tokens:
        _fail("api_tokens is empty: set at least one token in the config (or FIELDLINE__API_TOKENS='[\"...\"]')")
    serve(settings, host=host, port=port)


@api_app.command("user-add")
def api_user_add(
    username: Annotated[str, typer.Argument(help="Login name")],
    role: Annotated[str, typer.Option(help="admin, operator or viewer")] = "operator",
    config: Annotated[Optional[Path], typer.Option("--config", "-c", help="API YAML config (for the database)")] = None,
    password: Annotated[Optional[str], typer.Option(help="Password (asked for when omitted)")] = None,
) -> None:
    """Create an API user (the phone app and the QA dashboard log in with it)."""
    from cloud_api.core.config import Settings
    from cloud_api.services.users import InvalidUser, UserExists, create_user
    from cloud_api.storage.factory import StoreUnavailable, build_store, describe

    try:
        settings = load_config(config, Settings) if config else Settings()
    except ConfigError as exc:
        _fail(str(exc))
    if password is None:
        password = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    store = build_store(settings)
    try:
        store.open()
        user = create_user(store, username, password, role)
    except (InvalidUser, UserExists, StoreUnavailable) as exc:
        _fail(str(exc))
    finally:
        store.close()
    out.print(f"user {user.username!r} created with role {user.role} in {describe(settings)}")


@api_app.command("migrate")
def api_migrate(
    source: Annotated[str, typer.Option("--from", help="sqlite:PATH of the farm's database file")],
    target: Annotated[str, typer.Option("--to", help="postgres:DSN of an empty PostgreSQL database")],
) -> None:
    """Copy an API's SQLite database into PostgreSQL (every table), then check the row counts match."""
    if not source.startswith("sqlite:") or len(source) == len("sqlite:"):
        _fail(f"--from {source!r}: expected sqlite:PATH, e.g. sqlite:.fieldline/fieldline.db")
    if not target.startswith("postgres:") or len(target) == len("postgres:"):
        _fail("--to: expected postgres:DSN, e.g. postgres:postgresql://fieldline:secret@db:5432/fieldline")
    from cloud_api.storage.factory import StoreUnavailable
    from cloud_api.storage.postgres_migrate import MigrationError, migrate
    from cloud_api.storage.postgres_store import redact_dsn

    dsn = target.removeprefix("postgres:")
    try:
        counts = migrate(Path(source.removeprefix("sqlite:")), dsn)
    except (MigrationError, StoreUnavailable, ValueError) as exc:
        _fail(str(exc))
    for count in counts:
        if count.sqlite:
            out.print(f"{count.table:<28} {count.sqlite:>10} -> {count.postgres:>10}")
    total = sum(c.postgres for c in counts)
    out.print(f"count check passed: {total} rows in {len([c for c in counts if c.sqlite])} tables copied to "
              f"{redact_dsn(dsn)}")


# ---------------------------------------------------------------- app
def _missing_modules(*names: str) -> list[str]:
    """The modules of ``names`` that cannot be found (not imported: Kivy reads sys.argv when imported)."""
    missing = []
    for name in names:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # a finder refused it, or sys.modules holds None for it
            found = False
        if not found:
            missing.append(name)
    return missing


@app.command("app")
def phone_app(
    api: Annotated[Optional[str], typer.Option("--api", help="API base URL, e.g. http://192.168.1.10:8000")] = None,
    token: Annotated[Optional[str], typer.Option(help="Access token (else log in from Settings)")] = None,
    lang: Annotated[str, typer.Option(help="en or zh")] = "en",
) -> None:
    """Open the operators' app (Kivy; needs the `app` extra) against a FieldLine API."""
    missing = _missing_modules("kivy", "websockets")
    if missing:
        _fail(f"`fieldline app` needs the app extra ({', '.join(missing)} not installed): "
              "pip install 'fieldline[app]' (in a source checkout: pip install -e '.[app]')")
    from mobile_app.main import run_app

    if lang not in ("en", "zh"):
        _fail(f"--lang must be en or zh, not {lang!r}")
    run_app(api, token=token, lang=lang)


# ---------------------------------------------------------------- config / contract
@config_app.command("validate")
def config_validate(
    file: Annotated[Path, typer.Argument(help="YAML config file")],
    kind: Annotated[Optional[str], typer.Option(help="edge or api; unset: told by the file's keys")] = None,
) -> None:
    """Validate a config file; errors name the key path, e.g. ``cameras[0].zone.kind``. Relative paths in it
    are read from the file's folder; an edge config's model, labels, TLS and source files must exist."""
    models = _config_models()
    if kind is not None and kind not in models:
        _fail(f"--kind must be one of {', '.join(models)}, not {kind!r}")
    try:
        looks_like = guess_kind(read_config(file), models)
    except ConfigError as exc:
        _fail(str(exc), code=1)
    if kind is None and looks_like is None:
        _fail(f"{file}: cannot tell an edge config from an API config by its keys: use --kind edge or --kind api")
    chosen = kind or looks_like
    try:
        cfg = load_config(file, models[chosen])
    except ConfigError as exc:
        hint = (f"\n  (its keys look like an {looks_like} config: use --kind {looks_like})"
                if looks_like not in (None, chosen) else "")
        _fail(str(exc) + hint, code=1)
    missing = cfg.missing_files() if hasattr(cfg, "missing_files") else []
    if missing:
        _fail(f"{file}: files named in the config are missing (relative paths are read from "
              f"{file.absolute().parent})\n  " + "\n  ".join(missing), code=1)
    how = "" if kind else " (told by its keys)"
    out.print(f"{file}: valid {chosen} config{how}", soft_wrap=True, highlight=False)


@config_app.command("schema")
def config_schema(kind: Annotated[str, typer.Option(help="edge or api")] = "edge") -> None:
    """Print the JSON Schema of a config kind."""
    models = _config_models()
    if kind not in models:
        _fail(f"--kind must be one of {', '.join(models)}, not {kind!r}")
    print(json.dumps(models[kind].model_json_schema(), indent=2))


@contract_app.command("schema")
def contract_schema() -> None:
    """Print the JSON Schema of every MQTT payload of the wire contract."""
    from fieldline.contract import json_schemas

    print(json.dumps(json_schemas(), indent=2))


# ---------------------------------------------------------------- demo
@app.command()
def demo(
    data_dir: Annotated[Path, typer.Option(help="Where the demo keeps its database and spools")] = Path(
        ".fieldline/demo"
    ),
    api_port: Annotated[int, typer.Option(help="HTTP port of the API")] = 8000,
    mqtt_port: Annotated[int, typer.Option(help="Port of the embedded MQTT broker")] = 1883,
    sheds: Annotated[int, typer.Option(min=1, max=200, help="Simulated greenhouse sheds")] = 24,
    duration: Annotated[Optional[float], typer.Option(help="Stop after this many seconds (exit 0)")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Embedded broker + API + simulated sheds and factory lines in one process; prints every address and a login."""
    from fieldline.demo import Demo, DemoError
    from fieldline.demo_access import ready_text

    _setup_logging(verbose)
    stop = threading.Event()
    _stop_on_signals(stop)
    try:
        info = Demo(data_dir=data_dir, api_port=api_port, mqtt_port=mqtt_port, sheds=sheds).run(
            stop, duration, on_ready=lambda i: out.print(ready_text(i), markup=False, highlight=False, soft_wrap=True)
        )
    except DemoError as exc:
        _fail(str(exc))
    out.print(f"demo stopped; data kept in {info['data_dir']}")


def _mount_optional() -> None:
    from models.cli.app import model_app

    register_model_push(model_app)  # fieldline model push: the cloud API's model registry
    app.add_typer(model_app, name="model", help="Train, compress, evaluate and ship detection models.")


_mount_optional()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
