"""Pascal VOC xml: one ``<annotation>`` per image with ``<object><name/><bndbox>xmin ymin xmax ymax``.

Every .xml under SRC is read; the image is found by ``<filename>`` (else the xml's stem) among the images
under SRC, preferring the folder nearest the xml (``Annotations/`` ↔ ``JPEGImages/``, ``ANNOTATIONS/`` ↔
``IMAGES/``). VOC pixel indices are 1-based and inclusive, so a box becomes [xmin - 1, ymin - 1, xmax, ymax].
Classes: ``classes.txt`` under SRC when present, else the object names sorted.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from models.data.samples import IMAGE_EXTS, Dataset, DatasetError, Sample, image_size, rel, split_from_parts


def _text(el: ET.Element, tag: str, where: str, parent: str) -> str:
    child = el.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise DatasetError(f"{where}: <{parent}> missing <{tag}>")
    return child.text.strip()


def _number(el: ET.Element, tag: str, where: str, parent: str) -> float:
    text = _text(el, tag, where, parent)
    try:
        return float(text)
    except ValueError:
        raise DatasetError(f"{where}: <{parent}><{tag}> {text!r} is not a number") from None


def parse_voc_xml(path: Path, root: Path) -> tuple[str | None, tuple[int, int] | None, np.ndarray, list[str]]:
    """(filename, (width, height) or None, boxes xyxy px, labels) of one VOC file."""
    where = rel(path, root)
    try:
        tree = ET.parse(path)
    except ET.ParseError as exc:
        line = exc.position[0] if exc.position else "?"
        detail = re.sub(r":? line \d+, column \d+$", "", str(exc))
        raise DatasetError(f"{where} line {line}: not valid XML ({detail})") from None
    ann = tree.getroot()
    if ann.tag != "annotation":
        raise DatasetError(f"{where}: root element is <{ann.tag}>, expected <annotation>")
    fname = ann.findtext("filename")
    size = None
    size_el = ann.find("size")
    if size_el is not None:
        w, h = _number(size_el, "width", where, "size"), _number(size_el, "height", where, "size")
        size = (int(w), int(h)) if w > 0 and h > 0 else None
    boxes, labels = [], []
    for k, obj in enumerate(ann.findall("object"), start=1):
        name = _text(obj, "name", where, f"object {k}")
        bb = obj.find("bndbox")
        if bb is None:
            raise DatasetError(f"{where}: <object> {k} ({name}) missing <bndbox>")
        x1, y1, x2, y2 = (_number(bb, t, where, "bndbox") for t in ("xmin", "ymin", "xmax", "ymax"))
        if x2 < x1 or y2 < y1:
            raise DatasetError(f"{where}: <object> {k} ({name}): xmax/ymax smaller than xmin/ymin")
        boxes.append([x1 - 1, y1 - 1, x2, y2])
        labels.append(name)
    return (fname.strip() if fname else None), size, np.array(boxes, np.float32).reshape(-1, 4), labels


def _closeness(a: Path, b: Path) -> int:
    return len(os.path.commonprefix([str(a.parent).lower(), str(b.parent).lower()]))


def read_voc(src: Path) -> Dataset:
    """Read every VOC xml under ``src`` and pair it with its image."""
    root = src
    xmls = sorted(root.rglob("*.xml"))
    if not xmls:
        raise DatasetError(f"{root}: no .xml annotation files")
    by_name: dict[str, list[Path]] = {}
    for p in root.rglob("*"):
        if p.suffix.lower() in IMAGE_EXTS:
            by_name.setdefault(p.name, []).append(p)
            by_name.setdefault(p.stem, []).append(p)
    samples, names = [], []
    for x in xmls:
        fname, size, boxes, labels = parse_voc_xml(x, root)
        cands = by_name.get(fname or "", []) or by_name.get(Path(fname or "").stem, []) or by_name.get(x.stem, [])
        if not cands:
            raise DatasetError(f"{rel(x, root)}: image {fname or x.stem!r} not found under {root}")
        img = max(cands, key=lambda p: _closeness(p, x))
        width, height = size or image_size(img)
        samples.append(Sample(img, width, height, boxes, labels, split_from_parts(img, root)))
        names += labels
    cls_file = root / "classes.txt"
    if cls_file.is_file():
        classes = [ln.strip() for ln in cls_file.read_text().splitlines() if ln.strip()]
        unknown = sorted(set(names) - set(classes))
        if unknown:
            raise DatasetError(f"classes.txt: object names {', '.join(unknown)} are not listed")
    else:
        classes = sorted(set(names))
    return Dataset(classes, samples, root)
