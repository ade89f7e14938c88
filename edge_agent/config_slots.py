"""Config versions from the cloud: a partial config merged into the running one, and the previous-config slot.

A config version (rolled out by the cloud's deployments) is a JSON merge patch (RFC 7386) over the agent's
config: objects merge key by key, any other value (lists included) replaces, ``null`` resets a key to its
default. It may not touch what is the device's own (``PATCH_FORBIDDEN``): its identity, its data folder, its
broker connection (a wrong one would cut the device off, with no way to roll it back), and ``model.path``
(model files are changed by model rollouts).

Before the agent applies a remote config it saves the running one in ``{data_dir}/config/previous.json``; a
rollback makes that one current again (keeping ``model.path`` as it is now: a config rollback never undoes a
model update), and the replaced one becomes the previous.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

PATCH_FORBIDDEN = ("device", "site", "data_dir", "mqtt", "model.path")


class PatchError(ValueError):
    """A config patch that may not be applied; the message names the key."""


def forbidden_keys(patch: dict[str, Any]) -> list[str]:
    """The keys of ``PATCH_FORBIDDEN`` that ``patch`` sets (dotted)."""
    found = []
    for key in PATCH_FORBIDDEN:
        node: Any = patch
        for part in key.split("."):
            if not isinstance(node, dict) or part not in node:
                break
            node = node[part]
        else:
            found.append(key)
    return found


def check_patch(patch: Any) -> dict[str, Any]:
    if not isinstance(patch, dict):
        raise PatchError("a config version must be a JSON object (a partial agent config)")
    bad = forbidden_keys(patch)
    if bad:
        raise PatchError(f"{', '.join(bad)}: cannot be set by a config version (identity, data folder, broker "
                         "connection and model file are the device's own; change models with a model rollout)")
    return patch


def merge_patch(base: Any, patch: Any) -> Any:
    """RFC 7386: ``patch`` over ``base`` (neither is changed)."""
    if not isinstance(patch, dict):
        return patch
    merged = dict(base) if isinstance(base, dict) else {}
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = merge_patch(merged.get(key), value)
    return merged


class ConfigSlots:
    """``{data_dir}/config/previous.json``: the config before the latest remote change (JSON-mode dump)."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = Path(data_dir) / "config"
        self.previous = self.dir / "previous.json"

    def save_previous(self, config: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.previous.with_suffix(".tmp")
        tmp.write_text(json.dumps(config, indent=1))
        os.replace(tmp, self.previous)

    def load_previous(self) -> dict[str, Any] | None:
        if not self.previous.is_file():
            return None
        return json.loads(self.previous.read_text())
