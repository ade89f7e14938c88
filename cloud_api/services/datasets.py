"""Datasets for the learning loop: label checks, the JSON shape of frames, zip export / import, sample requests.

Export writes what ``fieldline model train --data DIR --format yolo|coco`` reads (``models.data.importers``);
import reads a zip through those same importers, so CVAT or Label Studio can be used instead of the page.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tempfile
import time
import uuid
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np
import yaml

from cloud_api.storage.sqlite_datasets import (
    DATASET_NAME,
    SPLITS,
    DatasetRecord,
    FrameRecord,
    NewFrame,
)

LEASE_MS = 5 * 60 * 1000  # a frame handed out by ``next`` is held this long for its operator
MAX_IMPORT_BYTES = 512 * 1024 * 1024  # a zip uploaded to /import
MAX_EXTRACTED_BYTES = 2 * MAX_IMPORT_BYTES  # what it may unpack to (JPEGs hardly compress: more is a zip bomb)
MAX_IMAGE_BYTES = 768 * 1024  # one pushed image (the body cap of the API applies to the whole request too)
EXPORT_FORMATS = ("yolo", "coco")
_TOL = 1e-6


class LabelError(ValueError):
    """Labels a dataset cannot take (unknown label, box outside 0..1 or empty); the message names which."""


class DatasetsStore(Protocol):
    def get_dataset(self, name: str) -> DatasetRecord | None: ...

    def list_frames(self, dataset: str, *, status: Sequence[str] = (), split: str | None = None,
                    reason: str | None = None, limit: int = 100, offset: int = 0
                    ) -> tuple[list[FrameRecord], int]: ...

    def frame_jpeg(self, record: FrameRecord) -> bytes | None: ...

    def add_frame(self, frame: NewFrame, jpeg: bytes, now_ms: int) -> tuple[FrameRecord, bool]: ...

    def add_dataset_labels(self, name: str, labels: Sequence[str]) -> DatasetRecord | None: ...


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def check_boxes(items: Sequence[dict[str, Any]], labels: Sequence[str] | None, what: str) -> list[dict[str, Any]]:
    """``[{label, box, score?}]`` checked: known label (when ``labels`` is given), box inside 0..1 with
    x1 < x2 and y1 < y2. Returns them with plain floats; raises :class:`LabelError` naming the item."""
    out = []
    for i, item in enumerate(items):
        label, box = item.get("label"), item.get("box")
        if not isinstance(label, str) or not label:
            raise LabelError(f"{what}[{i}].label: must be a non-empty string")
        if labels is not None and label not in labels:
            raise LabelError(f"{what}[{i}].label: {label!r} is not a label of this dataset ({', '.join(labels)})")
        if not isinstance(box, (list, tuple)) or len(box) != 4 or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in box):
            raise LabelError(f"{what}[{i}].box: expected [x1, y1, x2, y2], four numbers")
        x1, y1, x2, y2 = (float(v) for v in box)
        if min(x1, y1, x2, y2) < -_TOL or max(x1, y1, x2, y2) > 1 + _TOL:
            raise LabelError(f"{what}[{i}].box: coordinates must be normalised to 0..1, got {list(box)}")
        if x2 <= x1 or y2 <= y1:
            raise LabelError(f"{what}[{i}].box: must have x1 < x2 and y1 < y2, got {list(box)}")
        clean: dict[str, Any] = {"label": label, "box": [min(max(v, 0.0), 1.0) for v in (x1, y1, x2, y2)]}
        if "score" in item and item["score"] is not None:
            clean["score"] = float(item["score"])
        out.append(clean)
    return out


def frame_out(f: FrameRecord, now: int | None = None) -> dict[str, Any]:
    """The JSON of ``GET /datasets/{name}/frames/{fid}`` (the lease only while it runs)."""
    now = now_ms() if now is None else now
    lease = ({"user": f.lease_user, "until_ms": f.lease_until_ms}
             if f.lease_user is not None and (f.lease_until_ms or 0) > now else None)
    return {
        "id": f.id, "dataset": f.dataset,
        "source": {"kind": f.source_kind, "site": f.site, "device": f.device, "camera": f.camera, "zone": f.zone,
                   "ts_ms": f.ts_ms, "model": f.model},
        "reason": f.reason, "note": f.note, "request_id": f.request_id, "status": f.status, "split": f.split,
        "width": f.width, "height": f.height, "image_sha256": f.image_sha256, "predictions": f.predictions,
        "labels": f.labels, "version": f.version, "labelled_by": f.labelled_by, "labelled_at_ms": f.labelled_at_ms,
        "lease": lease, "created_ms": f.created_ms,
    }


def is_dataset_name(name: str) -> bool:
    return re.fullmatch(DATASET_NAME, name) is not None and name != "requests"


# ---------------------------------------------------------------- export

def export_zip(store: DatasetsStore, dataset: DatasetRecord, fmt: str, statuses: Sequence[str]) -> bytes:
    """A zip of the frames with those statuses, with their labels, in ``fmt`` (yolo or coco)."""
    frames, _ = store.list_frames(dataset.name, status=statuses, limit=10 ** 9)
    classes = list(dataset.labels)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:  # JPEGs do not compress
        if fmt == "yolo":
            _write_yolo(zf, store, frames, classes)
        else:
            _write_coco(zf, store, frames, classes)
    return buf.getvalue()


def _jpeg_of(store: DatasetsStore, f: FrameRecord) -> bytes:
    data = store.frame_jpeg(f)
    if data is None:
        raise FileNotFoundError(f"the image of frame {f.id!r} (sha256 {f.image_sha256}) is missing from the store")
    return data


def _boxes_of(f: FrameRecord) -> list[dict[str, Any]]:
    return f.labels if f.labels is not None else []


def _write_yolo(zf: zipfile.ZipFile, store: DatasetsStore, frames: list[FrameRecord], classes: list[str]) -> None:
    used: set[str] = set()
    for f in frames:
        used.add(f.split)
        zf.writestr(f"images/{f.split}/{f.id}.jpg", _jpeg_of(store, f))
        lines = []
        for item in _boxes_of(f):
            x1, y1, x2, y2 = item["box"]
            lines.append(f"{classes.index(item['label'])} {(x1 + x2) / 2:.6f} {(y1 + y2) / 2:.6f} "
                         f"{x2 - x1:.6f} {y2 - y1:.6f}")
        zf.writestr(f"labels/{f.split}/{f.id}.txt", "\n".join(lines) + ("\n" if lines else ""))
    data = {"path": ".", **{sp: f"images/{sp}" for sp in SPLITS if sp in used}, "names": classes}
    zf.writestr("data.yaml", yaml.safe_dump(data, sort_keys=False))
    zf.writestr("classes.txt", "\n".join(classes) + "\n")


def _write_coco(zf: zipfile.ZipFile, store: DatasetsStore, frames: list[FrameRecord], classes: list[str]) -> None:
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(classes)]
    per_split: dict[str, dict[str, list[Any]]] = {}
    ann_id = 0
    for image_id, f in enumerate(frames, start=1):
        doc = per_split.setdefault(f.split, {"images": [], "annotations": []})
        zf.writestr(f"images/{f.id}.jpg", _jpeg_of(store, f))
        doc["images"].append({"id": image_id, "file_name": f"{f.id}.jpg", "width": f.width, "height": f.height})
        for item in _boxes_of(f):
            x1, y1, x2, y2 = item["box"]
            ann_id += 1
            w, h = (x2 - x1) * f.width, (y2 - y1) * f.height
            doc["annotations"].append({"id": ann_id, "image_id": image_id,
                                       "category_id": classes.index(item["label"]) + 1,
                                       "bbox": [round(x1 * f.width, 3), round(y1 * f.height, 3), round(w, 3),
                                                round(h, 3)],
                                       "area": round(w * h, 3), "iscrowd": 0})
    for split, doc in per_split.items():
        zf.writestr(f"annotations_{split}.json", json.dumps({**doc, "categories": categories}))


# ---------------------------------------------------------------- import

@dataclass
class ImportResult:
    imported: int = 0
    skipped: int = 0
    errors: list[str] | None = None

    def as_json(self) -> dict[str, Any]:
        return {"imported": self.imported, "skipped": self.skipped, "errors": self.errors or []}


def import_zip(store: DatasetsStore, dataset: DatasetRecord, fmt: str, data: bytes, user: str) -> ImportResult:
    """Frames with labels (status labelled) from a YOLO or COCO zip, read by ``models.data.importers``.

    Labels the dataset does not have are added to it. A frame whose image is already in the dataset (same
    sha256) is skipped; an image that cannot be read is an error (named) and the rest still import.
    """
    from models.data.datasets import load_dataset  # noqa: PLC0415 - models is heavy; only on import
    from models.data.samples import DatasetError

    result = ImportResult(errors=[])
    assert result.errors is not None
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise LabelError("the upload is not a zip file") from None
    with tempfile.TemporaryDirectory(prefix="fieldline-import-") as tmp:
        root = Path(tmp)
        if sum(info.file_size for info in archive.infolist()) > MAX_EXTRACTED_BYTES:
            raise LabelError(f"the zip unpacks to more than {MAX_EXTRACTED_BYTES} bytes")
        for info in archive.infolist():
            target = (root / info.filename).resolve()
            if not str(target).startswith(str(root.resolve())):
                raise LabelError(f"{info.filename}: path leaves the archive folder")
        archive.extractall(root)
        try:
            ds = load_dataset(_dataset_root(root), fmt)
        except DatasetError as exc:
            raise LabelError(f"{fmt} import: {exc}") from None
        if ds.classes:
            dataset = store.add_dataset_labels(dataset.name, ds.classes) or dataset
        known, _ = store.list_frames(dataset.name, limit=10 ** 9)
        seen = {f.image_sha256 for f in known}
        for sample in ds.samples:
            where = sample.image.relative_to(root).as_posix()
            try:
                jpeg = _as_jpeg(sample.image)
            except ValueError as exc:
                result.errors.append(f"{where}: {exc}")
                continue
            if hashlib.sha256(jpeg).hexdigest() in seen:
                result.skipped += 1
                continue
            w, h = sample.width, sample.height
            labels = [{"label": lab, "box": [float(np.clip(b[0] / w, 0, 1)), float(np.clip(b[1] / h, 0, 1)),
                                             float(np.clip(b[2] / w, 0, 1)), float(np.clip(b[3] / h, 0, 1))]}
                      for b, lab in zip(sample.boxes.tolist(), sample.labels)]
            try:
                labels = check_boxes(labels, dataset.labels, "labels")
            except LabelError as exc:
                result.errors.append(f"{where}: {exc}")
                continue
            frame = NewFrame(id=uuid.uuid4().hex, dataset=dataset.name, source_kind="import", ts_ms=now_ms(),
                             reason="import", width=w, height=h, predictions=[], labels=labels, status="labelled",
                             split=sample.split, labelled_by=user, note=where)
            store.add_frame(frame, jpeg, now_ms())
            seen.add(hashlib.sha256(jpeg).hexdigest())
            result.imported += 1
    return result


def _dataset_root(root: Path) -> Path:
    """The extracted folder, or its only subfolder when the zip wraps everything in one."""
    entries = [p for p in root.iterdir() if not p.name.startswith(("__MACOSX", "."))]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else root


def _as_jpeg(path: Path) -> bytes:
    data = path.read_bytes()
    if data.startswith(b"\xff\xd8\xff"):
        return data
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("not a readable image")
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
    if not ok:
        raise ValueError("could not be encoded as JPEG")
    return encoded.tobytes()


def image_size(jpeg: bytes) -> tuple[int, int]:
    """(width, height) of a JPEG; raises ValueError when it does not decode."""
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("image: not a readable JPEG")
    return int(image.shape[1]), int(image.shape[0])
