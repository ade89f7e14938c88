"""YOLO txt: ``images/**/x.jpg`` with ``labels/**/x.txt`` (class cx cy w h, normalised), classes from
``data.yaml`` (``names``: list or {id: name}) or ``classes.txt``. Also reads YOLO segmentation lines
(class x1 y1 x2 y2 ...: the polygon's extent becomes the box). An image without a label file has no boxes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from models.data.samples import IMAGE_EXTS, Dataset, DatasetError, Sample, image_size, rel, split_from_parts

_TOL = 0.01  # normalised coordinates a little outside 0..1 are clipped; further out is an error


def read_classes(root: Path) -> list[str]:
    """Class names from data.yaml/dataset.yaml (``names``) or classes.txt/obj.names under ``root``."""
    for name in ("data.yaml", "data.yml", "dataset.yaml"):
        path = root / name
        if not path.is_file():
            continue
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise DatasetError(f"{name}: not valid YAML ({exc})") from None
        names = data.get("names") if isinstance(data, dict) else None
        if isinstance(names, dict):
            try:
                ids = sorted(int(k) for k in names)
            except (TypeError, ValueError):
                raise DatasetError(f"{name}: names: keys must be class ids 0..C-1") from None
            if ids != list(range(len(ids))):
                raise DatasetError(f"{name}: names: class ids must be 0..{len(ids) - 1} without gaps")
            names = [names.get(i, names.get(str(i))) for i in ids]
        if not isinstance(names, list) or not names:
            raise DatasetError(f"{name}: names: expected a list of class names or an {{id: name}} mapping")
        return [str(n) for n in names]
    for name in ("classes.txt", "obj.names", "labels.txt"):
        path = root / name
        if path.is_file():
            names = [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
            if not names:
                raise DatasetError(f"{name}: no class names")
            return names
    raise DatasetError(f"{root}: no data.yaml or classes.txt with the class names")


def label_path(image: Path) -> Path:
    """The label file of an image: the last ``images`` folder in its path replaced by ``labels``."""
    parts = list(image.parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "images":
            parts[i] = "labels"
            return Path(*parts).with_suffix(".txt")
    return image.with_suffix(".txt")


def parse_label_file(path: Path, root: Path, classes: list[str], width: int, height: int
                     ) -> tuple[np.ndarray, list[str]]:
    """Boxes (xyxy px) and label names from one YOLO txt; errors name the file and line."""
    where = rel(path, root)
    boxes, labels = [], []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        try:
            nums = [float(x) for x in fields]
        except ValueError:
            bad = next(x for x in fields if not _is_number(x))
            raise DatasetError(f"{where} line {n}: {bad!r} is not a number") from None
        polygon = len(nums) >= 7 and len(nums) % 2 == 1
        if len(nums) != 5 and not polygon:
            raise DatasetError(f"{where} line {n}: expected 5 numbers, got {len(nums)}")
        if not nums[0].is_integer() or not 0 <= nums[0] < len(classes):
            raise DatasetError(f"{where} line {n}: class id {fields[0]} out of range 0..{len(classes) - 1}")
        coords = np.array(nums[1:])
        if coords.min() < -_TOL or coords.max() > 1 + _TOL:
            raise DatasetError(f"{where} line {n}: coordinates must be normalised to 0..1, got "
                               f"{coords.min() if coords.min() < -_TOL else coords.max():g}")
        if polygon:
            xs, ys = coords[0::2], coords[1::2]
            box = [xs.min(), ys.min(), xs.max(), ys.max()]
        else:
            cx, cy, w, h = coords
            if w <= 0 or h <= 0:
                raise DatasetError(f"{where} line {n}: width and height must be > 0, got {w:g} {h:g}")
            box = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]
        box = np.clip(box, 0, 1) * [width, height, width, height]
        boxes.append(box)
        labels.append(classes[int(nums[0])])
    return np.array(boxes, np.float32).reshape(-1, 4), labels


def _is_number(x: str) -> bool:
    try:
        float(x)
        return True
    except ValueError:
        return False


def read_yolo(src: Path) -> Dataset:
    """Read a YOLO dataset folder (flat images/ + labels/, or images/<split>/, or <split>/images/)."""
    root = src if src.is_dir() else src.parent
    classes = read_classes(root)
    found = [p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTS and "labels" not in
             p.relative_to(root).parts]
    if any("images" in p.relative_to(root).parts for p in found):  # masks/, previews/ ... beside images/
        found = [p for p in found if "images" in p.relative_to(root).parts]
    images = sorted(found)
    if not images:
        raise DatasetError(f"{root}: no images found")
    samples, warnings = [], []
    seen_labels = set()
    for img in images:
        width, height = image_size(img)
        lab = label_path(img)
        if lab.is_file():
            seen_labels.add(lab.resolve())
            boxes, labels = parse_label_file(lab, root, classes, width, height)
        else:
            boxes, labels = np.zeros((0, 4), np.float32), []
        samples.append(Sample(img, width, height, boxes, labels, split_from_parts(img, root)))
    orphans = [p for p in root.rglob("*.txt") if "labels" in p.relative_to(root).parts
               and p.resolve() not in seen_labels]
    if orphans:
        warnings.append(f"{len(orphans)} label files without an image, e.g. {rel(orphans[0], root)}")
    return Dataset(classes, samples, root, warnings=warnings)
