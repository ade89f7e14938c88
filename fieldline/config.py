"""Shared YAML config loading: pydantic validation with errors that name the key path and the file."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

ModelT = TypeVar("ModelT", bound=BaseModel)
ENV_PREFIX = "FIELDLINE__"


class ConfigError(ValueError):
    """A config file that cannot be read or does not validate; the message names the file and key path."""


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


def load_config(path: str | Path, model: type[ModelT], environ: dict[str, str] | None = None) -> ModelT:
    """Read a YAML file, apply ``FIELDLINE__`` env overrides and validate it against ``model``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror})") from None
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
    data = apply_env_overrides(data, environ)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: invalid config\n  " + "\n  ".join(describe_errors(exc))) from None
