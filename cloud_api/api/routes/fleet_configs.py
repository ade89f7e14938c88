"""Config versions: upload (operator, checked with the agent's own schema), list and read (any role).

A deployment with ``kind: config`` rolls a version out like a model (see ``fleet_deployments``).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request, status
from fastapi.responses import JSONResponse
import yaml
from pydantic import BaseModel, ConfigDict, Field

from cloud_api.api.deps import OperatorDep
from cloud_api.fleet.config_registry import (
    ConfigRecord,
    ConfigVersionConflict,
    ConfigVersionError,
    add_config,
)
from cloud_api.fleet.records import AuditRecord

router = APIRouter(prefix="/configs", tags=["configs"])
Sha256Path = Path(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the version's canonical JSON")


class ConfigIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$", description="e.g. greenhouse-cameras")
    version: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$",
                                description="Unset: the next number for this name (1, 2, ...)")
    note: str | None = Field(default=None, max_length=2000)
    config: dict[str, Any] | str = Field(
        description="A partial agent config (the edge agent's YAML as JSON, or that YAML as text), merged into "
                    "each device's own as a JSON merge patch: objects merge, lists and values replace, null resets to the default. It may "
                    "not set device, site, data_dir, mqtt or model.path")


class ConfigOut(BaseModel):
    sha256: str
    name: str
    version: str
    config: dict[str, Any]
    note: str | None
    created_by: str
    created_ms: int

    @classmethod
    def of(cls, r: ConfigRecord) -> ConfigOut:
        return cls(sha256=r.sha256, name=r.name, version=r.version, config=r.document, note=r.note,
                   created_by=r.created_by, created_ms=r.created_ms)


class ConfigUploadOut(BaseModel):
    created: bool = Field(description="False when this exact content was already registered (nothing changed)")
    config: ConfigOut


@router.post("", response_model=ConfigUploadOut, status_code=status.HTTP_201_CREATED,
             summary="Register a config version (operator), checked with the edge agent's config schema",
             responses={200: {"model": ConfigUploadOut, "description": "Already registered"},
                        409: {"description": "The name and version exist with other content"},
                        422: {"description": "The agent would refuse it; `detail` names each bad field"}})
def upload_config(request: Request, body: ConfigIn, principal: OperatorDep) -> JSONResponse:
    store = request.app.state.store
    now = time.time_ns() // 1_000_000
    document = parse_config_text(body.config) if isinstance(body.config, str) else body.config
    try:
        record, created = add_config(store, document, name=body.name, version=body.version, note=body.note,
                                     actor=principal.username, role=principal.role, now_ms=now)
    except ConfigVersionError as exc:
        store.add_audit(AuditRecord(id=0, ts_ms=now, actor=principal.username, role=principal.role,
                                    action="config.upload", target_kind="config", target=body.name, result="refused",
                                    detail={"error": str(exc)}))
        code = status.HTTP_409_CONFLICT if isinstance(exc, ConfigVersionConflict) else \
            status.HTTP_422_UNPROCESSABLE_CONTENT
        raise HTTPException(code, f"config refused: {exc}") from None
    out = ConfigUploadOut(created=created, config=ConfigOut.of(record))
    return JSONResponse(out.model_dump(mode="json"), status_code=201 if created else 200)


def parse_config_text(text: str) -> dict[str, Any]:
    """A config given as YAML (or JSON) text, as a mapping; 422 naming the line when it does not parse."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"config refused: not valid YAML or JSON{where}: {problem}") from None
    if not isinstance(document, dict):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"config refused: expected a mapping (key: value) at the top, got {type(document).__name__}")
    return document


@router.get("", response_model=list[ConfigOut], summary="Config versions, by name, newest first")
def list_configs(request: Request) -> list[ConfigOut]:
    return [ConfigOut.of(r) for r in request.app.state.store.list_configs()]


@router.get("/{sha256}", response_model=ConfigOut, summary="One config version",
            responses={404: {"description": "No such config version"}})
def get_config(request: Request, sha256: Annotated[str, Sha256Path]) -> ConfigOut:
    record = request.app.state.store.get_config(sha256)
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no config version {sha256}")
    return ConfigOut.of(record)
