"""Tiny detection datasets in each supported format, built in a tmp dir from one spec (images written with cv2).

Every builder writes the same three images so the readers can be checked against :data:`SPEC`:
``a.jpg`` 160x120 with a small ``cat`` (20x20) and a large ``dog`` (the whole image), ``b.jpg`` 80x60 with a
medium ``dog`` (40x30), ``c.jpg`` 64x64 without boxes.
"""

from __future__ import annotations

import base64
import json
import zlib
from pathlib import Path

import cv2
import numpy as np
import yaml

CLASSES = ["cat", "dog"]
SPEC: list[tuple[str, int, int, list[tuple[float, float, float, float, str]]]] = [
    ("a.jpg", 160, 120, [(10, 20, 30, 40, "cat"), (0, 0, 160, 120, "dog")]),
    ("b.jpg", 80, 60, [(5, 5, 45, 35, "dog")]),
    ("c.jpg", 64, 64, []),
]


def write_image(path: Path, width: int, height: int, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)
    cv2.imwrite(str(path), img)
    return path


def build_yolo(root: Path, names_file: str = "classes.txt", split_dirs: bool = False) -> Path:
    """images/[train|val/]x.jpg + labels/.../x.txt (c.jpg has no label file) + classes.txt or data.yaml."""
    for k, (name, w, h, boxes) in enumerate(SPEC):
        sub = ("train" if k < 2 else "val") if split_dirs else ""
        write_image(root / "images" / sub / name, w, h, k)
        if not boxes:
            continue
        lines = [f"{CLASSES.index(lab)} {(x1 + x2) / 2 / w:.6f} {(y1 + y2) / 2 / h:.6f} {(x2 - x1) / w:.6f} "
                 f"{(y2 - y1) / h:.6f}" for x1, y1, x2, y2, lab in boxes]
        (root / "labels" / sub).mkdir(parents=True, exist_ok=True)
        (root / "labels" / sub / f"{Path(name).stem}.txt").write_text("\n".join(lines) + "\n")
    if names_file == "data.yaml":
        (root / "data.yaml").write_text(yaml.safe_dump({"path": ".", "names": {i: n for i, n in enumerate(CLASSES)}}))
    else:
        (root / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    return root


def build_coco(root: Path) -> Path:
    """images/x.jpg + annotations.json (category ids 1, 2)."""
    root.mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for k, (name, w, h, boxes) in enumerate(SPEC, start=1):
        write_image(root / "images" / name, w, h, k)
        images.append({"id": k, "file_name": name, "width": w, "height": h})
        for x1, y1, x2, y2, lab in boxes:
            anns.append({"id": len(anns) + 1, "image_id": k, "category_id": CLASSES.index(lab) + 1,
                         "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0})
    data = {"images": images, "annotations": anns,
            "categories": [{"id": i + 1, "name": n} for i, n in enumerate(CLASSES)]}
    (root / "annotations.json").write_text(json.dumps(data, indent=1))
    return root


def voc_xml(name: str, w: int, h: int, boxes: list) -> str:
    objs = "".join(
        f"<object><name>{lab}</name><difficult>0</difficult><bndbox><xmin>{x1 + 1:g}</xmin><ymin>{y1 + 1:g}</ymin>"
        f"<xmax>{x2:g}</xmax><ymax>{y2:g}</ymax></bndbox></object>\n" for x1, y1, x2, y2, lab in boxes)
    return (f"<annotation>\n<filename>{name}</filename>\n<size><width>{w}</width><height>{h}</height>"
            f"<depth>3</depth></size>\n{objs}</annotation>\n")


def build_voc(root: Path) -> Path:
    """Annotations/x.xml (1-based inclusive pixel coordinates) + JPEGImages/x.jpg."""
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    for k, (name, w, h, boxes) in enumerate(SPEC):
        write_image(root / "JPEGImages" / name, w, h, k)
        (root / "Annotations" / f"{Path(name).stem}.xml").write_text(voc_xml(name, w, h, boxes))
    return root


def bitmap_field(x1: int, y1: int, x2: int, y2: int) -> dict:
    """A Supervisely bitmap whose mask fills [x1, x2) x [y1, y2) (stored with a 2 px empty margin)."""
    mask = np.zeros((y2 - y1 + 4, x2 - x1 + 4), np.uint8)
    mask[2:-2, 2:-2] = 1
    ok, png = cv2.imencode(".png", mask)
    return {"data": base64.b64encode(zlib.compress(png.tobytes())).decode(), "origin": [x1 - 2, y1 - 2]}


def build_supervisely(root: Path) -> Path:
    """meta.json + Train/{img,ann} (a, b) + Test/{img,ann} (c); a rectangle, a polygon and a bitmap object."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "meta.json").write_text(json.dumps({"classes": [{"title": n, "shape": "any", "id": 100 + i}
                                                            for i, n in enumerate(CLASSES)], "tags": []}))
    geoms = iter(["rectangle", "polygon", "bitmap"])
    for k, (name, w, h, boxes) in enumerate(SPEC):
        ds = root / ("Train" if k < 2 else "Test")
        write_image(ds / "img" / name, w, h, k)
        objects = []
        for x1, y1, x2, y2, lab in boxes:
            geom = next(geoms)
            obj: dict = {"classTitle": lab, "geometryType": geom, "tags": []}
            if geom == "rectangle":
                obj["points"] = {"exterior": [[x1, y1], [x2, y2]], "interior": []}
            elif geom == "polygon":
                obj["points"] = {"exterior": [[x1, (y1 + y2) / 2], [(x1 + x2) / 2, y1], [x2, y2], [x1, y2]],
                                 "interior": []}
            else:
                obj["bitmap"] = bitmap_field(int(x1), int(y1), int(x2), int(y2))
            objects.append(obj)
        (ds / "ann").mkdir(parents=True, exist_ok=True)
        (ds / "ann" / f"{name}.json").write_text(json.dumps({"size": {"width": w, "height": h}, "objects": objects},
                                                            indent=1))
    return root


BUILDERS = {"yolo": build_yolo, "coco": build_coco, "voc": build_voc, "supervisely": build_supervisely}
