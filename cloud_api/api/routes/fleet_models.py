"""Model registry routes: upload (operator), list and read (any role), and the device download."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from cloud_api.api.body_limit import read_capped
from cloud_api.api.deps import OperatorDep, SettingsDep, StoreDep, authenticate_token
from cloud_api.fleet import download_tokens
from cloud_api.fleet.multipart import MultipartError, parse_form
from cloud_api.fleet.onnx_meta import DECODERS, ModelFileError
from cloud_api.fleet.records import AuditRecord
from cloud_api.fleet.registry import MAX_MODEL_BYTES
from cloud_api.fleet.runtime import FleetStoreDep, RegistryDep
from cloud_api.fleet.schemas import ModelDetailOut, ModelGroupOut, ModelUploadOut, group_models

router = APIRouter(prefix="/models", tags=["models"])
download = APIRouter(prefix="/models", tags=["models"])  # its own auth: a device's download token

Sha256Path = Path(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the model file, lower-case hex")
_FORM_SLACK = 1024 * 1024  # multipart headers, card and metrics besides the file
_bearer = HTTPBearer(auto_error=False, description="A device's model download token, or a user's token")

UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": "Either the ONNX file as the raw body (application/octet-stream, options as query "
                       "parameters) or multipart/form-data with a `file` part and optional `card` (Markdown) and "
                       "`metrics` (the zoo's *.metrics.json) parts; form fields override query parameters.",
        "content": {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
                "file": {"type": "string", "format": "binary"},
                "decoder": {"type": "string", "enum": list(DECODERS)},
                "name": {"type": "string"}, "version": {"type": "string"},
                "labels": {"type": "string", "description": "Comma-separated class names (foreign exports)"},
                "card": {"type": "string"}, "metrics": {"type": "string"}}}},
        },
    }
}


def _now_ms() -> int:
    return time.time_ns() // 1_000_000



@router.post(
    "", response_model=ModelUploadOut, status_code=status.HTTP_201_CREATED, openapi_extra=UPLOAD_BODY,
    summary="Register an ONNX model file (operator)",
    description="Reads the file's FieldLine metadata (name, version, labels, input size, decoder, training-data "
                "hash, calibrated thresholds) and stores the file by SHA-256. A foreign export (no fieldline.* "
                "metadata) needs `decoder`, `name`, `version` and, unless the file lists its classes, `labels`. "
                "200 with created=false when this exact file is already registered.",
    responses={200: {"model": ModelUploadOut, "description": "Already registered"},
               413: {"description": "Larger than the limit"},
               415: {"description": "Neither application/octet-stream nor multipart/form-data"},
               422: {"description": "Not a usable ONNX file, or missing/contradicting fields; `detail` says which"}},
)
async def upload_model(
    request: Request, principal: OperatorDep, registry: RegistryDep, store: FleetStoreDep,
    decoder: Annotated[str | None, Query(description="Decoder of a foreign export: " + ", ".join(DECODERS))] = None,
    name: Annotated[str | None, Query(max_length=100)] = None,
    version: Annotated[str | None, Query(max_length=100)] = None,
    labels: Annotated[str | None, Query(max_length=10000, description="Comma-separated class names")] = None,
) -> JSONResponse:
    content_type = request.headers.get("content-type", "")
    fields: dict[str, str | None] = {"decoder": decoder, "name": name, "version": version, "labels": labels,
                                     "card": None, "metrics": None}
    try:
        if content_type.startswith("multipart/form-data"):
            form = parse_form(await read_capped(request, MAX_MODEL_BYTES + _FORM_SLACK), content_type)
            if "file" not in form:
                raise MultipartError("multipart upload without a 'file' part")
            data = form.pop("file").data
            for key, part in form.items():
                if key in fields:
                    fields[key] = part.text()
        elif content_type.startswith("application/octet-stream"):
            data = await read_capped(request, MAX_MODEL_BYTES)
        else:
            raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
                                f"Content-Type {content_type or '(none)'}: send application/octet-stream or "
                                "multipart/form-data")
        label_list = [x.strip() for x in fields["labels"].split(",") if x.strip()] if fields["labels"] else None
        record, created = await run_in_threadpool(
            registry.add, data, actor=principal.username, role=principal.role, now_ms=_now_ms(),
            decoder=fields["decoder"] or None, name=fields["name"] or None, version=fields["version"] or None,
            labels=label_list, card=fields["card"], metrics=fields["metrics"])
    except (ModelFileError, MultipartError) as exc:
        store.add_audit(AuditRecord(id=0, ts_ms=_now_ms(), actor=principal.username, role=principal.role,
                                    action="model.upload", target_kind="model", target="-", result="refused",
                                    detail={"error": str(exc)}))
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"model file refused: {exc}") from None
    body = ModelUploadOut(created=created, model=ModelDetailOut.of(record))
    return JSONResponse(body.model_dump(mode="json"), status_code=201 if created else 200)


@router.get("", response_model=list[ModelGroupOut], summary="Registered models: versions and files with card figures")
def list_models(store: FleetStoreDep) -> list[ModelGroupOut]:
    return group_models(store.list_models())


@router.get("/{sha256}", response_model=ModelDetailOut, summary="One model file: metadata, card and figures",
            responses={404: {"description": "No such file in the registry"}})
def get_model(store: FleetStoreDep, sha256: Annotated[str, Sha256Path]) -> ModelDetailOut:
    record = store.get_model(sha256)
    if record is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no model with sha256 {sha256}")
    return ModelDetailOut.of(record)


@download.get(
    "/{sha256}/file", response_class=FileResponse, summary="Download a model file (device token or user token)",
    description="**Model downloads.** Devices fetch the file named in a model command with the command's "
                "`args.token` as `Authorization: Bearer`: a token the API signed for that one device and that one "
                "file (sha256), valid until the command's deadline plus 15 minutes. It reaches the device only on "
                "its own `cmd/model` topic (the broker ACL lets no other device read it), so no open URL exists "
                "and nothing but the device's broker login has to be provisioned. Users may also download with "
                "their own token (any role). Every device download is in the audit log.",
    responses={200: {"content": {"application/octet-stream": {}}, "description": "The ONNX file"},
               401: {"description": "No token, or a token that does not open this file (detail says why)"},
               404: {"description": "No such file in the registry"}},
)
def download_model(
    store: FleetStoreDep, registry: RegistryDep, settings: SettingsDep, users: StoreDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    sha256: Annotated[str, Sha256Path],
) -> FileResponse:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    token = credentials.credentials
    grant = None
    if token.startswith(download_tokens.PREFIX + "."):
        try:
            grant = download_tokens.verify(store.fleet_key(download_tokens.KEY_NAME), token, sha256, _now_ms())
        except download_tokens.TokenError as exc:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, str(exc),
                                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None
    elif authenticate_token(settings, users, token) is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid bearer token",
                            headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    path = registry.path_of(sha256)
    if store.get_model(sha256) is None or not path.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no model with sha256 {sha256}")
    if grant is not None:
        store.add_audit(AuditRecord(id=0, ts_ms=_now_ms(), actor=f"{grant.site}/{grant.device}", role="device",
                                    action="model.download", target_kind="model", target=sha256, result="ok",
                                    detail={}))
    return FileResponse(path, media_type="application/octet-stream", filename=f"{sha256}.onnx")
