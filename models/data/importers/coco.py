"""COCO detection json (``images``, ``annotations`` with ``bbox`` [x, y, w, h], ``categories``).

SRC is one .json file or a folder: every COCO json in it or in its ``annotations/`` folder is read, and a
json whose name says train/val/test (``instances_val2017.json``) gives that split. Image files are looked up
next to the json, under ``images/`` or ``images/<split>/``, or one folder up. Crowd boxes are skipped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from models.data.samples import Dataset, DatasetError, Sample, image_size, rel

_SPLIT_WORDS = (("train", "train"), ("val", "val"), ("test", "test"))


def _split_of(name: str) -> str | None:
    low = name.lower()
    return next((sp for word, sp in _SPLIT_WORDS if word in low), None)


def _find_image(file_name: str, json_path: Path, root: Path) -> Path | None:
    stem = Path(file_name)
    bases = [json_path.parent, root, root / "images", json_path.parent.parent]
    bases += [p for p in (root / "images").glob("*") if p.is_dir()] if (root / "images").is_dir() else []
    for base in bases:
        for cand in (base / stem, base / stem.name):
            if cand.is_file():
                return cand
    return None


def _num(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DatasetError(f"{where}: expected a number, got {value!r}")
    return float(value)


def read_coco_file(path: Path, root: Path) -> tuple[list[str], list[Sample], int]:
    """Categories (id order), samples and number of skipped crowd boxes of one COCO json."""
    where = rel(path, root)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{where} line {exc.lineno}: not valid JSON ({exc.msg})") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{where}: expected a JSON object with images, annotations, categories")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise DatasetError(f"{where}: missing list {key!r}")
    cats: dict[int, str] = {}
    for i, c in enumerate(data["categories"]):
        if not isinstance(c, dict) or "id" not in c or "name" not in c:
            raise DatasetError(f"{where}: categories[{i}]: needs 'id' and 'name'")
        cats[int(c["id"])] = str(c["name"])
    images: dict[int, dict[str, Any]] = {}
    for i, im in enumerate(data["images"]):
        for key in ("id", "file_name"):
            if not isinstance(im, dict) or key not in im:
                raise DatasetError(f"{where}: images[{i}]: missing {key!r}")
        images[im["id"]] = {**im, "_boxes": [], "_labels": []}
    crowd = 0
    for i, ann in enumerate(data["annotations"]):
        at = f"{where}: annotations[{i}]"
        if not isinstance(ann, dict):
            raise DatasetError(f"{at}: expected an object")
        for key in ("image_id", "category_id", "bbox"):
            if key not in ann:
                raise DatasetError(f"{at}: missing {key!r}")
        if ann["image_id"] not in images:
            raise DatasetError(f"{at}: image_id {ann['image_id']!r} is not in images")
        if ann["category_id"] not in cats:
            raise DatasetError(f"{at}: category_id {ann['category_id']!r} is not in categories")
        bbox = ann["bbox"]
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise DatasetError(f"{at}.bbox: expected 4 numbers [x, y, w, h], got {bbox!r}")
        x, y, w, h = (_num(v, f"{at}.bbox") for v in bbox)
        if w <= 0 or h <= 0:
            raise DatasetError(f"{at}.bbox: width and height must be > 0, got {w:g} {h:g}")
        if ann.get("iscrowd", 0):
            crowd += 1
            continue
        images[ann["image_id"]]["_boxes"].append([x, y, x + w, y + h])
        images[ann["image_id"]]["_labels"].append(cats[ann["category_id"]])
    split = _split_of(path.stem)
    samples = []
    for i, im in enumerate(images.values()):
        img = _find_image(str(im["file_name"]), path, root)
        if img is None:
            raise DatasetError(f"{where}: images[{i}]: image file {im['file_name']!r} not found")
        if "width" in im and "height" in im:
            width, height = int(im["width"]), int(im["height"])
        else:
            width, height = image_size(img)
        samples.append(Sample(img, width, height, np.array(im["_boxes"], np.float32), im["_labels"], split))
    return [cats[k] for k in sorted(cats)], samples, crowd


def read_coco(src: Path) -> Dataset:
    """Read one COCO json, or all of them in a folder (and its annotations/ subfolder)."""
    root = src.parent if src.is_file() else src
    if src.is_file():
        files = [src]
    else:
        files = sorted([*src.glob("*.json"), *src.glob("annotations/*.json")])
        files = [f for f in files if _looks_coco(f)]
    if not files:
        raise DatasetError(f"{src}: no COCO json file (with 'images', 'annotations', 'categories')")
    classes: list[str] = []
    samples: list[Sample] = []
    crowd = 0
    for f in files:
        cats, smp, n = read_coco_file(f, root)
        classes += [c for c in cats if c not in classes]
        samples += smp
        crowd += n
    warnings = [f"{crowd} crowd (iscrowd=1) boxes skipped"] if crowd else []
    return Dataset(classes, samples, root, warnings=warnings)


def _looks_coco(path: Path) -> bool:
    try:
        head = path.read_text(encoding="utf-8")[:1_000_000]
    except OSError:
        return False
    return '"images"' in head and '"annotations"' in head
