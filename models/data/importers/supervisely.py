"""Supervisely project: ``meta.json`` (classes) and dataset folders ``<ds>/img/<name>`` + ``<ds>/ann/<name>.json``.

Objects become boxes: ``rectangle`` (two corner points), ``polygon``/``line`` (extent of ``points.exterior``),
``bitmap`` (extent of the mask: base64 zlib PNG at ``bitmap.origin``). Other geometries (point, graph, ...)
are skipped with a warning. A dataset folder named Train/Val/Test gives the split.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from models.data.samples import Dataset, DatasetError, Sample, rel, split_from_parts


def bitmap_box(bitmap: Any, where: str) -> list[float]:
    """xyxy extent of a Supervisely bitmap (``data``: base64 of zlib-compressed PNG; ``origin``: [x, y])."""
    if not isinstance(bitmap, dict) or "data" not in bitmap or "origin" not in bitmap:
        raise DatasetError(f"{where}.bitmap: needs 'data' and 'origin'")
    try:
        raw = zlib.decompress(base64.b64decode(bitmap["data"]))
        mask = cv2.imdecode(np.frombuffer(raw, np.uint8), cv2.IMREAD_UNCHANGED)
    except (ValueError, zlib.error, cv2.error) as exc:
        raise DatasetError(f"{where}.bitmap.data: cannot decode the mask ({exc})") from None
    if mask is None:
        raise DatasetError(f"{where}.bitmap.data: not a PNG image")
    if mask.ndim == 3:
        mask = mask[:, :, 3] if mask.shape[2] == 4 else mask.max(axis=2)
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        raise DatasetError(f"{where}.bitmap: empty mask")
    ox, oy = (float(v) for v in bitmap["origin"])
    return [ox + xs.min(), oy + ys.min(), ox + xs.max() + 1, oy + ys.max() + 1]


def _points_box(obj: dict[str, Any], where: str, minimum: int) -> list[float]:
    ext = (obj.get("points") or {}).get("exterior") if isinstance(obj.get("points"), dict) else None
    if not isinstance(ext, list) or len(ext) < minimum:
        raise DatasetError(f"{where}.points.exterior: expected at least {minimum} [x, y] points, "
                           f"got {len(ext) if isinstance(ext, list) else ext!r}")
    try:
        pts = np.array(ext, np.float64).reshape(-1, 2)
    except (ValueError, TypeError):
        raise DatasetError(f"{where}.points.exterior: expected [x, y] number pairs") from None
    return [pts[:, 0].min(), pts[:, 1].min(), pts[:, 0].max(), pts[:, 1].max()]


def parse_annotation(path: Path, root: Path, skipped: Counter) -> tuple[int, int, np.ndarray, list[str]]:
    """(width, height, boxes xyxy px, class titles) of one Supervisely annotation json."""
    where = rel(path, root)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{where} line {exc.lineno}: not valid JSON ({exc.msg})") from None
    size = data.get("size") if isinstance(data, dict) else None
    if not isinstance(size, dict) or "width" not in size or "height" not in size:
        raise DatasetError(f"{where}: missing size.width/size.height")
    objects = data.get("objects", [])
    if not isinstance(objects, list):
        raise DatasetError(f"{where}: objects must be a list")
    boxes, labels = [], []
    for i, obj in enumerate(objects):
        at = f"{where}: objects[{i}]"
        if not isinstance(obj, dict) or "classTitle" not in obj:
            raise DatasetError(f"{at}: missing classTitle")
        geom = obj.get("geometryType")
        if geom == "rectangle":
            box = _points_box(obj, at, 2)
        elif geom in ("polygon", "line"):
            box = _points_box(obj, at, 2 if geom == "line" else 3)
        elif geom == "bitmap":
            box = bitmap_box(obj.get("bitmap"), at)
        else:
            skipped[str(geom)] += 1
            continue
        if box[2] <= box[0] or box[3] <= box[1]:
            skipped["degenerate"] += 1
            continue
        boxes.append(box)
        labels.append(str(obj["classTitle"]))
    return int(size["width"]), int(size["height"]), np.array(boxes, np.float32).reshape(-1, 4), labels


def read_supervisely(src: Path) -> Dataset:
    """Read a Supervisely project folder (meta.json + dataset folders with img/ and ann/)."""
    root = src
    meta_path = root / "meta.json"
    if not meta_path.is_file():
        raise DatasetError(f"{root}: no meta.json (not a Supervisely project folder)")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"meta.json line {exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("classes"), list):
        raise DatasetError("meta.json: missing list 'classes'")
    classes = []
    for i, c in enumerate(meta["classes"]):
        if not isinstance(c, dict) or "title" not in c:
            raise DatasetError(f"meta.json: classes[{i}]: missing 'title'")
        classes.append(str(c["title"]))
    anns = sorted(root.glob("**/ann/*.json"))
    if not anns:
        raise DatasetError(f"{root}: no annotation files (<dataset>/ann/*.json)")
    skipped: Counter = Counter()
    samples = []
    for ann in anns:
        img = ann.parent.parent / "img" / ann.name[: -len(".json")]
        if not img.is_file():
            raise DatasetError(f"{rel(ann, root)}: image {rel(img, root)} not found")
        width, height, boxes, labels = parse_annotation(ann, root, skipped)
        unknown = sorted(set(labels) - set(classes))
        if unknown:
            raise DatasetError(f"{rel(ann, root)}: classTitle {unknown[0]!r} is not in meta.json classes")
        samples.append(Sample(img, width, height, boxes, labels, split_from_parts(img, root)))
    warnings = [f"{n} objects skipped ({kind})" for kind, n in sorted(skipped.items())]
    return Dataset(classes, samples, root, warnings=warnings)
