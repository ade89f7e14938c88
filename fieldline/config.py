"""Shared YAML config loading: pydantic validation with errors that name the key path and the file.

Relative paths in a config file (fields typed :data:`ConfigPath`) are read from the config file's folder,
not from the working directory, so a config means the same wherever the command runs; a model built in code
(no file) keeps relative paths as they are.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ValidationError, ValidationInfo

ModelT = TypeVar("ModelT", bound=BaseModel)
ENV_PREFIX = "FIELDLINE__"


class ConfigError(ValueError):
    """A config file that cannot be read or does not validate; the message names the file and key path."""


BASE_DIR = "base_dir"  # validation context key: the folder relative paths are read from


def resolve_path(value: Path, info: ValidationInfo) -> Path:
    """``model.onnx`` in ``/etc/fieldline/agent.yaml`` is ``/etc/fieldline/model.onnx``. Without a base folder
    in the validation context (a config built in code) the path is kept as it is."""
    base = (info.context or {}).get(BASE_DIR)
    if base is None or value.is_absolute():
        return value
    return Path(os.path.normpath(Path(base) / value))


ConfigPath = Annotated[Path, AfterValidator(resolve_path)]
"""A file or folder in a config: relative to the config file's folder."""


def config_context(config_file: str | Path | None) -> dict[str, Any] | None:
    """The validation context that makes relative paths relative to ``config_file``'s folder."""
    return None if config_file is None else {BASE_DIR: Path(config_file).absolute().parent}


def _key_path(loc: tuple[Any, ...]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "<root>"


def describe_errors(error: ValidationError) -> list[str]:
    """``cameras[2].zone.kind: Input should be 'shed' or 'line'`` style lines."""
    lines = []
    for item in error.errors():
        # discriminated unions add the tag name to the location; it reads better without it
        loc = tuple(p for p in item["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        lines.append(f"{_key_path(loc)}: {item['msg']}")
    return lines


def apply_env_overrides(data: dict[str, Any], environ: dict[str, str] | None = None) -> dict[str, Any]:
    """``FIELDLINE__MQTT__HOST=broker`` sets ``mqtt.host``; values are parsed as YAML scalars."""
    environ = dict(os.environ) if environ is None else environ
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        keys = [k.lower() for k in name[len(ENV_PREFIX) :].split("__") if k]
        node = data
        for key in keys[:-1]:
            node = node.setdefault(key, {})
            if not isinstance(node, dict):
                raise ConfigError(f"environment {name}: {'.'.join(keys)} does not point into a mapping")
        node[keys[-1]] = yaml.safe_load(raw)
    return data


def read_config(path: str | Path) -> dict[str, Any]:
    """The top-level mapping of a YAML config file (no env overrides, not validated)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path.absolute()}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path.absolute()}: cannot read config file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: YAML syntax error{where}: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


def load_config(path: str | Path, model: type[ModelT], environ: dict[str, str] | None = None) -> ModelT:
    """Read a YAML file, apply ``FIELDLINE__`` env overrides and validate it against ``model``; relative
    paths are resolved from the file's folder."""
    data = apply_env_overrides(read_config(path), environ)
    try:
        return model.model_validate(data, context=config_context(path))
    except ValidationError as exc:
        raise ConfigError(f"{path}: invalid config\n  " + "\n  ".join(describe_errors(exc))) from None


def guess_kind(data: dict[str, Any], models: dict[str, type[BaseModel]]) -> str | None:
    """The one kind whose own top-level keys (keys no other kind has) appear in ``data``; None when no kind's
    or more than one kind's do."""
    fields = {kind: set(model.model_fields) for kind, model in models.items()}
    found = []
    for kind, own in fields.items():
        for other, theirs in fields.items():
            if other != kind:
                own = own - theirs
        if own & set(data):
            found.append(kind)
    return found[0] if len(found) == 1 else None
