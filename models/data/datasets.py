"""Detection datasets read from YOLO / COCO / Pascal VOC / Supervisely into one format (:mod:`models.data.samples`),
remapped, split, checked and written as YOLO.

    ds = load_dataset("/data/laboro", "supervisely")
    ds = remap(ds, parse_mapping("b_*_ripened=x,b_green=green"))
    ds = assign_splits(ds, seed=0)
    print(dataset_stats(ds)); write_yolo(ds, "/tmp/laboro-yolo")

Boxes are float xyxy in image pixels (continuous coordinates: a box covering pixel columns 0..9 is 0..10).
Malformed input raises :class:`DatasetError` naming the file (relative to the dataset root) and the line or field.
"""

from __future__ import annotations

import fnmatch
import hashlib
import shutil
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from models.data.label_checks import label_checks
from models.data.samples import SPLITS, Dataset, DatasetError, Sample, rel

FORMATS = ("yolo", "coco", "voc", "supervisely")
SMALL_AREA, MEDIUM_AREA = 32 ** 2, 96 ** 2  # COCO area thresholds (px²)


def load_dataset(src: str | Path, fmt: str) -> Dataset:
    """Read ``src`` (a folder, or a COCO .json file) in format ``fmt`` (one of :data:`FORMATS`)."""
    src = Path(src)
    if not src.exists():
        raise DatasetError(f"{src}: no such file or folder")
    if fmt == "yolo":
        from models.data.importers.yolo import read_yolo as reader
    elif fmt == "coco":
        from models.data.importers.coco import read_coco as reader
    elif fmt == "voc":
        from models.data.importers.voc import read_voc as reader
    elif fmt == "supervisely":
        from models.data.importers.supervisely import read_supervisely as reader
    else:
        raise DatasetError(f"unknown format {fmt!r}; supported: {', '.join(FORMATS)}")
    ds = reader(src)
    ds.source_format = fmt
    ds.samples.sort(key=lambda s: rel(s.image, ds.root))
    return ds


def parse_mapping(spec: str | None) -> dict[str, str | None]:
    """``"a=b,c=b,d="`` -> {a: b, c: b, d: None}; keys may be globs (``*_green=green``); empty target drops."""
    out: dict[str, str | None] = {}
    for item in (spec or "").split(","):
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            raise DatasetError(f"--map item {item!r}: expected SOURCE=TARGET")
        src, dst = (x.strip() for x in item.split("=", 1))
        if not src:
            raise DatasetError(f"--map item {item!r}: empty source class")
        out[src] = dst or None
    return out


def _target(name: str, mapping: dict[str, str | None]) -> str | None:
    if name in mapping:
        return mapping[name]
    for pat, dst in mapping.items():
        if any(c in pat for c in "*?[") and fnmatch.fnmatchcase(name, pat):
            return dst
    return name


def remap(ds: Dataset, mapping: dict[str, str | None], strict: bool = True) -> Dataset:
    """Rename/merge classes (several sources onto one target) or drop them (target None).

    The new class list keeps the order in which targets first appear in the old list. With ``strict``, a
    mapping key that matches no class is an error (typos would otherwise go unnoticed).
    """
    if not mapping:
        return ds
    if strict:
        unused = [k for k in mapping if not any(k == c or fnmatch.fnmatchcase(c, k) for c in ds.classes)]
        if unused:
            raise DatasetError(f"--map: no class named {', '.join(map(repr, unused))} "
                               f"(classes: {', '.join(ds.classes)})")
    table = {c: _target(c, mapping) for c in ds.classes}
    classes = list(dict.fromkeys(t for t in table.values() if t is not None))
    samples = []
    for s in ds.samples:
        keep = [i for i, lab in enumerate(s.labels) if table.get(lab, lab) is not None]
        samples.append(replace(s, boxes=s.boxes[keep], labels=[table.get(s.labels[i], s.labels[i]) for i in keep]))
    return replace(ds, classes=classes, samples=samples)


def split_fraction(name: str, seed: int) -> float:
    """A stable number in [0, 1) from the file name and seed (same on every machine and Python run)."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64


def _pick(u: float, names: list[str], weights: list[float]) -> str:
    total, acc = sum(weights), 0.0
    for name, w in zip(names, weights):
        acc += w / total
        if u < acc:
            return name
    return names[-1]


def assign_splits(ds: Dataset, seed: int = 0, fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> Dataset:
    """Deterministic train/val/test by a seeded hash of each image's file name.

    Splits given by the folders (Train/, Test/, Validation_*/ ...) are kept. Images outside such folders are
    hashed over the splits the folders do not provide (weights from ``fractions``). When the folders give a
    train split but no val split, a ``fractions[1]`` share of train is carved out as val.
    """
    if len(fractions) != 3 or min(fractions) < 0 or sum(fractions) <= 0:
        raise DatasetError(f"split fractions must be 3 non-negative numbers, got {fractions}")
    present = {s.split for s in ds.samples if s.split is not None}
    missing = [s for s in SPLITS if s not in present and fractions[SPLITS.index(s)] > 0] or ["train"]
    weights = [fractions[SPLITS.index(s)] for s in missing]
    carve = "train" in present and "val" not in present and fractions[1] > 0
    out = []
    for s in ds.samples:
        u = split_fraction(s.image.name, seed)
        if s.split is None:
            split = _pick(u, missing, weights)
        elif carve and s.split == "train" and u < fractions[1]:
            split = "val"
        else:
            split = s.split
        out.append(replace(s, split=split))
    return replace(ds, samples=out)


def size_bucket(area: float) -> str:
    return "small" if area < SMALL_AREA else "medium" if area < MEDIUM_AREA else "large"


def dataset_stats(ds: Dataset) -> dict[str, Any]:
    """Images (total, per split, without boxes), instances per class (total and per split), box sizes, and the
    label-quality checks of :mod:`models.data.label_checks` (their warnings join the loader's)."""
    checks = label_checks(ds)
    per_class: dict[str, Counter] = {c: Counter() for c in ds.classes}
    sizes: Counter = Counter({"small": 0, "medium": 0, "large": 0})
    splits: Counter = Counter()
    empty = 0
    for s in ds.samples:
        sp = s.split or "unsplit"
        splits[sp] += 1
        empty += len(s.labels) == 0
        areas = (s.boxes[:, 2] - s.boxes[:, 0]) * (s.boxes[:, 3] - s.boxes[:, 1])
        for lab, area in zip(s.labels, areas):
            per_class.setdefault(lab, Counter())[sp] += 1
            sizes[size_bucket(float(area))] += 1
    order = [s for s in (*SPLITS, "unsplit") if splits[s]]
    return {
        "format": ds.source_format, "root": str(ds.root), "images": len(ds.samples),
        "images_per_split": {s: splits[s] for s in order}, "images_without_boxes": empty,
        "instances": sum(sum(c.values()) for c in per_class.values()),
        "instances_per_class": {c: sum(n.values()) for c, n in per_class.items()},
        "instances_per_class_split": {c: {s: n[s] for s in order} for c, n in per_class.items()},
        "box_sizes": dict(sizes), "classes": list(ds.classes), "warnings": [*ds.warnings, *checks["warnings"]],
        "label_checks": {k: checks[k] for k in ("per_split", "copied_label_sets")},
    }


def stats_table(stats: dict[str, Any]):
    """A rich Table of :func:`dataset_stats` output (instances per class and split, then totals).

    Its heading and the box-size summary are :func:`stats_summary` lines printed around it: as the table's title
    and caption they were wrapped to the table's width (~40 characters), mid-phrase."""
    from rich.table import Table

    splits = list(stats["images_per_split"])
    table = Table()
    table.add_column("class")
    for sp in splits:
        table.add_column(sp, justify="right")
    table.add_column("total", justify="right")
    for c, per in stats["instances_per_class_split"].items():
        table.add_row(c, *(str(per.get(sp, 0)) for sp in splits), str(stats["instances_per_class"][c]))
    table.add_section()
    table.add_row("instances", *(str(sum(p.get(sp, 0) for p in stats["instances_per_class_split"].values()))
                                 for sp in splits), str(stats["instances"]))
    table.add_row("images", *(str(stats["images_per_split"][sp]) for sp in splits), str(stats["images"]))
    return table


def stats_summary(stats: dict[str, Any]) -> tuple[str, str]:
    """The heading (dataset and format) and the one-line box-size summary printed around :func:`stats_table`."""
    b = stats["box_sizes"]
    return (f"{stats['root']} ({stats['format']})",
            f"boxes small (<32²) {b['small']}, medium {b['medium']}, large (≥96²) {b['large']}; "
            f"images without boxes {stats['images_without_boxes']}")


def _unique_name(sample: Sample, root: Path, taken: set[str]) -> str:
    name = sample.image.name
    if name in taken:
        name = "_".join(Path(rel(sample.image, root)).parts)
    i = 1
    base = Path(name)
    while name in taken:
        name = f"{base.stem}_{i}{base.suffix}"
        i += 1
    taken.add(name)
    return name


def write_yolo(ds: Dataset, out: str | Path, link: bool = False) -> Path:
    """Write ``images/<split>/``, ``labels/<split>/*.txt`` (class cx cy w h, 0..1), classes.txt and data.yaml.

    Samples without a split go to ``train``. Images are copied (``link``: hard-linked when possible).
    """
    import yaml

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    taken: dict[str, set[str]] = {}
    used = []
    for s in ds.samples:
        split = s.split or "train"
        (out / "images" / split).mkdir(parents=True, exist_ok=True)
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
        name = _unique_name(s, ds.root, taken.setdefault(split, set()))
        dst = out / "images" / split / name
        if dst.exists() or dst.is_symlink():
            dst.unlink()
        try:
            if not link:
                raise OSError
            dst.hardlink_to(s.image)
        except OSError:
            shutil.copyfile(s.image, dst)
        lines = []
        for (x1, y1, x2, y2), lab in zip(s.boxes.astype(np.float64), s.labels):
            x1, x2 = np.clip([x1, x2], 0, s.width)
            y1, y2 = np.clip([y1, y2], 0, s.height)
            lines.append(f"{ds.classes.index(lab)} {(x1 + x2) / 2 / s.width:.6f} {(y1 + y2) / 2 / s.height:.6f} "
                         f"{(x2 - x1) / s.width:.6f} {(y2 - y1) / s.height:.6f}")
        (out / "labels" / split / f"{Path(name).stem}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
        used.append(split)
    (out / "classes.txt").write_text("\n".join(ds.classes) + "\n")
    data = {"path": ".", **{sp: f"images/{sp}" for sp in SPLITS if sp in used}, "names": list(ds.classes)}
    (out / "data.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def reorder(ds: Dataset, classes: list[str]) -> Dataset:
    """Set the class-id order (e.g. to match a model's labels); names may be added, none may be missing."""
    missing = [c for c in ds.classes if c not in classes]
    if missing:
        raise DatasetError(f"--classes: missing {', '.join(missing)} (dataset classes: {', '.join(ds.classes)})")
    return replace(ds, classes=list(classes))
