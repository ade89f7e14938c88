"""Config versions: partial agent configs that deployments roll out like models, checked at upload.

A version is a JSON merge patch over each device's own config (see ``edge_agent.config_slots``). At upload it is
validated with the agent's own schema (``edge_agent.config.AgentConfig``) over a stand-in device config, so a
broken one is refused with the agent's own error, naming the field (``cameras.0.fps: Input should be greater
than 0``). Its identity is the sha256 of its canonical JSON (sorted keys, no spaces); versions are numbered per
name (1, 2, ...) unless the uploader names one.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ValidationError

from cloud_api.fleet.records import AuditRecord
from edge_agent.config_slots import PatchError, check_patch, merge_patch
from fieldline.config import describe_errors

MAX_CONFIG_BYTES = 256 * 1024
# what the patch is checked over: a valid config with every section the patch does not set at its default
STAND_IN: dict[str, Any] = {
    "device": "check", "site": "check", "model": {"path": "model.onnx"},
    "cameras": [{"name": "cam-1", "source": {"type": "synthetic"}, "zone": {"id": "zone-1"}}],
}


class ConfigVersionError(ValueError):
    """A config version refused at upload; the message names the field."""


class ConfigVersionConflict(ConfigVersionError):
    """The name and version are taken by other content."""


@dataclass(frozen=True)
class ConfigRecord:
    sha256: str
    name: str
    version: str
    document: dict[str, Any]
    note: str | None
    created_by: str
    created_ms: int


class ConfigStore(Protocol):
    def add_config(self, record: ConfigRecord, audit: AuditRecord) -> bool: ...

    def get_config(self, sha256: str) -> ConfigRecord | None: ...

    def get_config_version(self, name: str, version: str) -> ConfigRecord | None: ...

    def list_configs(self) -> list[ConfigRecord]: ...


def canonical_sha256(document: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def validate_document(document: Any) -> dict[str, Any]:
    """The document if the agent would accept it; ``ConfigVersionError`` naming each bad field otherwise."""
    from edge_agent.config import AgentConfig  # here: the agent's schema (and its tracker) costs the API's start 1 s

    try:
        patch = check_patch(document)
    except PatchError as exc:
        raise ConfigVersionError(str(exc)) from None
    if len(json.dumps(patch)) > MAX_CONFIG_BYTES:
        raise ConfigVersionError(f"config: larger than {MAX_CONFIG_BYTES} bytes")
    try:
        AgentConfig.model_validate(merge_patch(STAND_IN, patch))  # no context: paths are the device's
    except ValidationError as exc:
        raise ConfigVersionError("invalid config: " + "; ".join(describe_errors(exc))) from None
    return patch


def _next_version(store: ConfigStore, name: str) -> str:
    taken = [int(c.version) for c in store.list_configs() if c.name == name and c.version.isdigit()]
    return str(max(taken, default=0) + 1)


def add_config(store: ConfigStore, document: Any, *, name: str, version: str | None, note: str | None, actor: str,
               role: str, now_ms: int) -> tuple[ConfigRecord, bool]:
    """Validate and register a version; returns (record, created). Same content again: the existing record."""
    patch = validate_document(document)
    sha256 = canonical_sha256(patch)
    existing = store.get_config(sha256)
    if existing is not None:
        return existing, False
    if version is not None and store.get_config_version(name, version) is not None:
        raise ConfigVersionConflict(f"config {name!r} version {version!r} exists with other content")
    for _ in range(3):  # two uploads racing for the next number: the loser takes the one after
        record = ConfigRecord(sha256=sha256, name=name, version=version or _next_version(store, name), document=patch,
                              note=note, created_by=actor, created_ms=now_ms)
        audit = AuditRecord(id=0, ts_ms=now_ms, actor=actor, role=role, action="config.upload", target_kind="config",
                            target=sha256, result="ok", detail={"name": name, "version": record.version,
                                                                "keys": sorted(patch)})
        if store.add_config(record, audit):
            return record, True
        again = store.get_config(sha256)
        if again is not None:
            return again, False
    raise ConfigVersionConflict(f"config {name!r}: could not take a version number, try again")
