"""Datasets of the learning loop (issue 40): frames, labelling with leases and versions, export / import,
and on-demand sample requests to devices. Viewers read; operators label, push, import and request."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Path, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from fieldline.contract import NAME_PATTERN, ModelRef

from cloud_api.api.body_limit import read_capped
from cloud_api.api.deps import OperatorDep, Principal, StoreDep
from cloud_api.api.errors import UNPROCESSABLE
from cloud_api.fleet.commands import CommandRefused, CommandService
from cloud_api.fleet.multipart import MultipartError, parse_form
from cloud_api.fleet.runtime import DispatcherDep, FleetStoreDep
from cloud_api.services import datasets as svc
from cloud_api.storage.records import StoreChange
from cloud_api.storage.sqlite_datasets import (
    STATUSES,
    DatasetChange,
    DatasetRecord,
    LeaseLost,
    NewFrame,
    VersionConflict,
    dataset_name_for,
)


@asynccontextmanager
async def datasets_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Dataset changes go out on the live WebSocket as ``{type: "dataset", data: {dataset, frame, status}}``."""
    hub = app.state.live

    def push(change: StoreChange) -> None:
        if change.kind == "dataset" and isinstance(change.subject, DatasetChange):
            s = change.subject
            hub.publish("dataset", {"dataset": s.dataset, "frame": s.frame, "status": s.status, **s.extra})

    app.state.store.add_change_listener(push)
    yield


def datasets_supported(request: Request) -> None:
    """Datasets live in the SQLite and PostgreSQL stores (``storage/sqlite_datasets.py``); a store without the
    dataset tables answers 501 with the reason, not a crash."""
    ready = getattr(request.app.state.store, "datasets_ready", None)
    if ready is None or not ready():
        raise HTTPException(status.HTTP_501_NOT_IMPLEMENTED,
                            "this store has no dataset tables (datasets need storage: sqlite or postgres)")


router = APIRouter(tags=["datasets"], lifespan=datasets_lifespan, responses=UNPROCESSABLE,  # 422: list or text
                   dependencies=[Depends(datasets_supported)])
NamePath = Annotated[str, Path(pattern=NAME_PATTERN, description="Dataset name")]
FramePath = Annotated[str, Path(min_length=1, max_length=200, description="Frame id")]
_NOT_FOUND = {404: {"description": "No such dataset or frame"}}


class DatasetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME_PATTERN, description="[a-z0-9][a-z0-9_-]{0,63}")
    labels: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)


class DatasetPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    add_labels: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        min_length=1, max_length=200, description="Labels appended (existing ones keep their class ids)")


class BoxIn(BaseModel):
    label: str
    box: list[float]


class LabelsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    labels: list[dict[str, Any]] = Field(default_factory=list, max_length=2000)
    status: Literal["labelled", "skipped"]
    version: int = Field(ge=1)


class FramePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    status: Literal["new", "labelled", "in_training"] = Field(
        description="new: reopen (labels kept as a draft); in_training: a labelled frame used by a training job; "
                    "labelled: back from in_training")


class NextIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    after: str | None = Field(default=None, max_length=200, description="The frame the caller just left")


class SampleRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site: str = Field(pattern=NAME_PATTERN)
    device: str = Field(pattern=NAME_PATTERN)
    camera: str | None = Field(default=None, max_length=64)
    note: str | None = Field(default=None, max_length=500)


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(default=None, max_length=500)


class FromEventIn(NoteIn):
    event_id: str = Field(min_length=1, max_length=200)


def _dataset_out(store: Any, d: DatasetRecord) -> dict[str, Any]:
    by_status, by_split = store.dataset_counts(d.name)
    return {"name": d.name, "labels": d.labels, "description": d.description, "created_ms": d.created_ms,
            "created_by": d.created_by, "frames": sum(by_status.values()), "by_status": by_status,
            "by_split": by_split, "boxes_by_label": store.label_counts(d.name)}


def _dataset(store: Any, name: str) -> DatasetRecord:
    dataset = store.get_dataset(name)
    if dataset is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no dataset named {name!r}")
    return dataset


def _frame(store: Any, name: str, fid: str) -> Any:
    frame = store.get_frame(name, fid)
    if frame is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no frame {fid!r} in dataset {name!r}")
    return frame


def _statuses(value: str | None, default: tuple[str, ...]) -> tuple[str, ...]:
    if not value:
        return default
    wanted = tuple(v.strip() for v in value.split(",") if v.strip())
    bad = [v for v in wanted if v not in STATUSES]
    if bad:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"status: {', '.join(bad)} is not one of {', '.join(STATUSES)}")
    return wanted


# ---------------------------------------------------------------- datasets

@router.get("/datasets", summary="Every dataset with frames by status and split")
def list_datasets(store: StoreDep) -> list[dict[str, Any]]:
    return [_dataset_out(store, d) for d in store.list_datasets()]  # type: ignore[attr-defined]


@router.post("/datasets", status_code=status.HTTP_201_CREATED, summary="Create a dataset (operator)",
             responses={409: {"description": "A dataset of that name exists"}})
def create_dataset(body: DatasetIn, store: StoreDep, principal: OperatorDep) -> dict[str, Any]:
    if not svc.is_dataset_name(body.name):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"name: {body.name!r} is reserved")
    if len(set(body.labels)) != len(body.labels):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "labels: each label once")
    created = store.create_dataset(body.name, body.labels, body.description,  # type: ignore[attr-defined]
                                   principal.username, svc.now_ms())
    if created is None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"a dataset named {body.name!r} exists")
    return _dataset_out(store, created)


@router.get("/datasets/{name}", summary="One dataset with its stats", responses=_NOT_FOUND)
def get_dataset(name: NamePath, store: StoreDep) -> dict[str, Any]:
    return _dataset_out(store, _dataset(store, name))


@router.patch("/datasets/{name}", summary="Add labels to a dataset (operator)", responses=_NOT_FOUND)
def patch_dataset(name: NamePath, body: DatasetPatch, store: StoreDep, principal: OperatorDep) -> dict[str, Any]:
    _dataset(store, name)
    return _dataset_out(store, store.add_dataset_labels(name, body.add_labels))  # type: ignore[attr-defined]


# ---------------------------------------------------------------- frames

@router.get("/datasets/{name}/frames", summary="Frames in arrival order (filters: status list, split, reason)",
            responses=_NOT_FOUND)
def list_frames(name: NamePath, store: StoreDep,
                status_: Annotated[str | None, Query(alias="status", description="e.g. new or labelled,skipped")] = None,
                split: Annotated[Literal["train", "val", "test"] | None, Query()] = None,
                reason: Annotated[str | None, Query(max_length=64)] = None,
                limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                offset: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
    _dataset(store, name)
    frames, total = store.list_frames(name, status=_statuses(status_, ()), split=split,  # type: ignore[attr-defined]
                                      reason=reason, limit=limit, offset=offset)
    now = svc.now_ms()
    return {"frames": [svc.frame_out(f, now) for f in frames], "total": total}


@router.post("/datasets/{name}/frames", status_code=status.HTTP_201_CREATED, responses=_NOT_FOUND,
             summary="Add a frame (operator): multipart with an `image` JPEG and a `meta` JSON part",
             description="meta: {source (a string or {site, device, camera, zone, ts_ms, model}), reason, "
                         "predictions: [{label, score, box}], labels?: [{label, box}], split?, status?, id?}. "
                         "With labels the frame is labelled. An id already stored answers 200 with that frame.")
async def push_frame(name: NamePath, request: Request, response: Response, store: StoreDep,
                     principal: OperatorDep) -> dict[str, Any]:
    dataset = _dataset(store, name)
    try:
        form = parse_form(await request.body(), request.headers.get("content-type", ""))
    except MultipartError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"multipart: {exc}") from None
    if "image" not in form or "meta" not in form:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "multipart needs an 'image' and a 'meta' part")
    try:
        frame = _new_frame(dataset, json.loads(form["meta"].data), form["image"].data, principal)
    except (ValueError, svc.LabelError) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    record, created = store.add_frame(frame, form["image"].data, svc.now_ms())  # type: ignore[attr-defined]
    if not created:
        response.status_code = status.HTTP_200_OK
    return svc.frame_out(record)


def _new_frame(dataset: DatasetRecord, meta: Any, jpeg: bytes, principal: Principal) -> NewFrame:
    if not isinstance(meta, dict):
        raise ValueError("meta: expected a JSON object")
    if not jpeg.startswith(b"\xff\xd8\xff"):
        raise ValueError("image: not a JPEG")
    if len(jpeg) > svc.MAX_IMAGE_BYTES:
        raise ValueError(f"image: {len(jpeg)} bytes, the limit is {svc.MAX_IMAGE_BYTES}")
    width, height = svc.image_size(jpeg)
    source = meta.get("source")
    src = source if isinstance(source, dict) else {}
    predictions = svc.check_boxes(meta.get("predictions") or [], None, "meta.predictions")
    labels = meta.get("labels")
    if labels is not None:
        labels = [{"label": x["label"], "box": x["box"]} for x in svc.check_boxes(labels, dataset.labels, "meta.labels")]
    state = meta.get("status") or ("labelled" if labels is not None else "new")
    if state not in ("new", "labelled", "skipped"):
        raise ValueError("meta.status: one of new, labelled, skipped")
    split = meta.get("split")
    if split is not None and split not in ("train", "val", "test"):
        raise ValueError("meta.split: one of train, val, test")
    fid = meta.get("id") or uuid.uuid4().hex
    if not isinstance(fid, str) or not 0 < len(fid) <= 200 or "/" in fid:
        raise ValueError("meta.id: a string of 1..200 characters without /")
    return NewFrame(
        id=fid, dataset=dataset.name, source_kind="push", ts_ms=int(src.get("ts_ms") or svc.now_ms()),
        reason=str(meta.get("reason") or "push")[:64], width=width, height=height, predictions=predictions,
        site=src.get("site"), device=src.get("device"), camera=src.get("camera"), zone=src.get("zone"),
        model=src.get("model"), note=source if isinstance(source, str) else meta.get("note"), labels=labels,
        status=state, split=split, labelled_by=principal.username if labels is not None else None)


@router.get("/datasets/{name}/frames/{fid}", summary="One frame: source, predictions, labels, version, lease",
            responses=_NOT_FOUND)
def get_frame(name: NamePath, fid: FramePath, store: StoreDep) -> dict[str, Any]:
    return svc.frame_out(_frame(store, name, fid))


@router.get("/datasets/{name}/frames/{fid}/image", response_class=Response, responses=_NOT_FOUND,
            summary="The frame's JPEG (no boxes drawn)")
def frame_image(name: NamePath, fid: FramePath, store: StoreDep) -> Response:
    jpeg = store.frame_jpeg(_frame(store, name, fid))  # type: ignore[attr-defined]
    if jpeg is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"the image file of frame {fid!r} is missing")
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})


@router.post("/datasets/{name}/next", responses={**_NOT_FOUND, 204: {"description": "No new frame left"}},
             summary="Lease the next new frame nobody else holds (operator, 5 minutes)")
def next_frame(name: NamePath, store: StoreDep, principal: OperatorDep, body: NextIn | None = None) -> Any:
    _dataset(store, name)
    frame = store.lease_next(name, principal.username, body.after if body else None,  # type: ignore[attr-defined]
                             svc.now_ms(), svc.LEASE_MS)
    if frame is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    return svc.frame_out(frame)


@router.post("/datasets/{name}/frames/{fid}/lease", responses={
    **_NOT_FOUND, 409: {"description": "Another operator holds the frame, or it is no longer new"}},
    summary="Renew the caller's lease on a frame for another 5 minutes (operator)")
def renew_lease(name: NamePath, fid: FramePath, store: StoreDep, principal: OperatorDep) -> dict[str, Any]:
    _dataset(store, name)
    try:
        frame = store.renew_lease(name, fid, principal.username, svc.now_ms(), svc.LEASE_MS)  # type: ignore[attr-defined]
    except LeaseLost as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    if frame is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no frame {fid!r} in dataset {name!r}")
    return svc.frame_out(frame)


@router.put("/datasets/{name}/frames/{fid}/labels", responses={
    **_NOT_FOUND, 409: {"description": "Stale version: someone else saved first"},
    **UNPROCESSABLE},
    summary="Save labels and status (operator): version + 1, lease released")
def save_labels(name: NamePath, fid: FramePath, body: LabelsIn, store: StoreDep,
                principal: OperatorDep) -> dict[str, Any]:
    dataset = _dataset(store, name)
    try:
        labels = [{"label": x["label"], "box": x["box"]} for x in svc.check_boxes(body.labels, dataset.labels, "labels")]
        frame = store.save_labels(name, fid, labels, body.status, body.version,  # type: ignore[attr-defined]
                                  principal.username, svc.now_ms())
    except svc.LabelError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    except VersionConflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    if frame is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no frame {fid!r} in dataset {name!r}")
    return svc.frame_out(frame)


_MOVES = {"new": ("labelled", "skipped", "in_training"), "in_training": ("labelled",), "labelled": ("in_training",)}


@router.patch("/datasets/{name}/frames/{fid}", responses={**_NOT_FOUND, 409: {"description": "Not from that status"}},
              summary="Reopen a frame (status new), or mark it in_training / back to labelled (operator)")
def patch_frame(name: NamePath, fid: FramePath, body: FramePatch, store: StoreDep,
                principal: OperatorDep) -> dict[str, Any]:
    frame = _frame(store, name, fid)
    if frame.status != body.status:
        if not store.set_frame_status(name, [fid], body.status, _MOVES[body.status]):  # type: ignore[attr-defined]
            raise HTTPException(status.HTTP_409_CONFLICT, f"frame {fid} is {frame.status}; cannot become {body.status}")
    return svc.frame_out(_frame(store, name, fid))


# ---------------------------------------------------------------- export / import

@router.get("/datasets/{name}/export", response_class=Response, responses={
    **_NOT_FOUND, 200: {"content": {"application/zip": {}}, "description": "The zip"}},
    summary="Zip of frames and labels: yolo (images/{split}/, labels/{split}/, data.yaml) or coco "
            "(images/, annotations_{split}.json); `fieldline model train --data DIR --format ...` reads it")
def export_dataset(name: NamePath, store: StoreDep,
                   format: Annotated[Literal["yolo", "coco"], Query()] = "yolo",  # noqa: A002 - the contract's name
                   status_: Annotated[str | None, Query(alias="status", description="default labelled")] = None
                   ) -> Response:
    dataset = _dataset(store, name)
    data = svc.export_zip(store, dataset, format, _statuses(status_, ("labelled",)))  # type: ignore[arg-type]
    return Response(data, media_type="application/zip",
                    headers={"Content-Disposition": f'attachment; filename="{name}-{format}.zip"'})


@router.post("/datasets/{name}/import", responses={
    **_NOT_FOUND, 413: {"description": "Zip too large"}, **UNPROCESSABLE},
    summary="Import labelled frames from a YOLO or COCO zip (operator): raw body or multipart `file`")
async def import_dataset(name: NamePath, request: Request, store: StoreDep, principal: OperatorDep,
                         format: Annotated[Literal["yolo", "coco"], Query()] = "yolo") -> dict[str, Any]:  # noqa: A002
    dataset = _dataset(store, name)
    body = await read_capped(request, svc.MAX_IMPORT_BYTES)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        try:
            form = parse_form(body, content_type)
        except MultipartError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"multipart: {exc}") from None
        if "file" not in form:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "multipart needs a 'file' part (the zip)")
        body = form["file"].data
    try:
        result = svc.import_zip(store, dataset, format, body, principal.username)  # type: ignore[arg-type]
    except svc.LabelError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return result.as_json()


# ---------------------------------------------------------------- on-demand samples

def _request_sample(request: Request, store: Any, fleet: Any, dispatcher: Any, principal: Principal, site: str,
                    device: str, camera: str | None, note: str | None) -> dict[str, Any]:
    if store.get_device(site, device) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no device {device!r} at site {site!r} has reported")
    args = {"camera": camera, "note": note or f"requested by {principal.username}"}
    try:
        command = CommandService(fleet, wake=dispatcher.wake).create(
            site=site, device=device, name="sample", args=args, actor=principal.username, role=principal.role,
            timeout_s=None, api_url=str(request.base_url))
    except CommandRefused as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    return {"request_id": command.id, "site": site, "device": device, "camera": camera, "frame": None,
            "dataset": None}


@router.post("/datasets/requests", status_code=status.HTTP_202_ACCEPTED,
             responses={404: {"description": "Unknown device"}},
             summary="Ask a device for a frame now (operator): command `sample`; the Sample comes back on_demand")
def request_sample(request: Request, body: SampleRequestIn, store: StoreDep, fleet: FleetStoreDep,
                   dispatcher: DispatcherDep, principal: OperatorDep) -> dict[str, Any]:
    return _request_sample(request, store, fleet, dispatcher, principal, body.site, body.device, body.camera,
                           body.note)


@router.get("/datasets/requests/{request_id}", responses={404: {"description": "No such request"}},
            summary="A sample request: its command state and the frames it brought")
def get_request(request_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")], store: StoreDep,
                fleet: FleetStoreDep) -> dict[str, Any]:
    command = fleet.get_command(request_id)
    if command is None or command.name != "sample":
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no sample request {request_id}")
    frames = store.frames_for_request(request_id)  # type: ignore[attr-defined]
    return {"request_id": request_id, "site": command.site, "device": command.device, "state": command.state,
            "error": (command.reply or {}).get("error"), "result": (command.reply or {}).get("result"),
            "frames": [{"dataset": f.dataset, "id": f.id} for f in frames]}


@router.post("/sheds/{shed_id}/wrong-count", status_code=status.HTTP_202_ACCEPTED, tags=["sheds"],
             responses={404: {"description": "No camera has counted in that shed"}},
             summary="'Count looks wrong' (operator): ask the camera that counts the shed for a frame")
def wrong_count(request: Request, shed_id: Annotated[str, Path(min_length=1, max_length=64)], store: StoreDep,
                fleet: FleetStoreDep, dispatcher: DispatcherDep, principal: OperatorDep,
                body: NoteIn | None = None) -> dict[str, Any]:
    latest = sorted(store.latest_counts(shed_id), key=lambda c: c.ts_ms)  # type: ignore[attr-defined]
    if not latest:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no camera has counted in shed {shed_id!r}")
    cam = latest[-1]
    note = (body.note if body and body.note else None) or f"count looks wrong in {shed_id} ({principal.username})"
    return _request_sample(request, store, fleet, dispatcher, principal, cam.site, cam.device, cam.camera, note)


@router.post("/datasets/requests/from-event", status_code=status.HTTP_202_ACCEPTED,
             responses={404: {"description": "No such event"}},
             summary="An event marked wrong (operator): its snapshot and detections become a frame (reason on_demand);"
                     " without a stored snapshot the device is asked for a frame")
def from_event(request: Request, body: FromEventIn, store: StoreDep, fleet: FleetStoreDep, dispatcher: DispatcherDep,
               principal: OperatorDep) -> dict[str, Any]:
    event = store.event_payload(body.event_id)  # type: ignore[attr-defined]
    if event is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no event {body.event_id!r}")
    note = body.note or f"marked wrong by {principal.username} (event {body.event_id})"
    jpeg = store.get_snapshot(event["snapshot"]) if event.get("snapshot") else None
    if jpeg is None:
        return _request_sample(request, store, fleet, dispatcher, principal, event["site"], event["device"],
                               event["camera"], note)
    model = ModelRef.model_validate(event["model"])
    name = dataset_name_for(model.name)
    dets = event.get("detections") or []
    labels = list(dict.fromkeys(d["label"] for d in dets))
    if store.create_dataset(name, labels, f"samples of model {model.name}", None,  # type: ignore[attr-defined]
                            svc.now_ms()) is None:
        store.add_dataset_labels(name, labels)  # type: ignore[attr-defined]
    try:
        width, height = svc.image_size(jpeg)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"snapshot of {body.event_id}: {exc}") from None
    frame = NewFrame(id=f"{body.event_id}-wrong", dataset=name, source_kind="event", ts_ms=event["ts_ms"],
                     reason="on_demand", width=width, height=height,
                     predictions=[{"label": d["label"], "score": d["score"], "box": d["box"]} for d in dets],
                     site=event["site"], device=event["device"], camera=event["camera"], zone=event["zone"],
                     model=model.model_dump(), note=f"{note}; snapshot has the boxes drawn")
    record, _ = store.add_frame(frame, jpeg, svc.now_ms())  # type: ignore[attr-defined]
    return {"request_id": None, "site": event["site"], "device": event["device"], "camera": event["camera"],
            "frame": record.id, "dataset": name}
