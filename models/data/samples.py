"""What every dataset reader shares: the internal :class:`Dataset` / :class:`Sample` format, its errors, and
path helpers (split folders, image sizes from the file header).

The readers (:mod:`models.data.importers`) build these; :mod:`models.data.datasets` loads, remaps, splits,
checks and writes them.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SPLITS = ("train", "val", "test")
IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
_SPLIT_ALIASES = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                  "test": "test", "testing": "test"}


class DatasetError(ValueError):
    """A dataset file is missing or malformed; the message names the file and the line or field."""


@dataclass
class Sample:
    """One image and its boxes. ``split`` is train/val/test, or None until :func:`assign_splits`."""

    image: Path
    width: int
    height: int
    boxes: np.ndarray  # (N, 4) float32 xyxy pixels
    labels: list[str]
    split: str | None = None

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, np.float32).reshape(-1, 4)
        if len(self.labels) != len(self.boxes):
            raise ValueError(f"{self.image}: {len(self.boxes)} boxes but {len(self.labels)} labels")


@dataclass
class Dataset:
    """Samples plus the class list (the class-id order of any export)."""

    classes: list[str]
    samples: list[Sample]
    root: Path
    source_format: str = ""
    warnings: list[str] = field(default_factory=list)


def rel(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` when possible (for error messages)."""
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return str(path)


def split_from_parts(path: Path, root: Path) -> str | None:
    """train/val/test when a folder between ``root`` and ``path`` is named (or prefixed) like a split."""
    for part in reversed(Path(rel(path, root)).parts[:-1]):
        low = part.lower()
        if low in _SPLIT_ALIASES:
            return _SPLIT_ALIASES[low]
        head = low.split("_")[0].split("-")[0]
        if head in _SPLIT_ALIASES and head != low:
            return _SPLIT_ALIASES[head]
    return None


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the PNG/JPEG header (no decode); other formats are decoded with OpenCV."""
    with open(path, "rb") as f:
        head = f.read(26)
        if head[:8] == b"\x89PNG\r\n\x1a\n":
            w, h = struct.unpack(">II", head[16:24])
            return int(w), int(h)
        if head[:2] == b"\xff\xd8":
            f.seek(2)
            while True:
                marker = f.read(2)
                if len(marker) < 2 or marker[0] != 0xFF:
                    break
                if marker[1] in (0xD8, 0x01) or 0xD0 <= marker[1] <= 0xD7:
                    continue
                seg = f.read(2)
                if len(seg) < 2:
                    break
                length = struct.unpack(">H", seg)[0]
                if marker[1] in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
                    h, w = struct.unpack(">HH", f.read(5)[1:5])
                    return int(w), int(h)
                f.seek(length - 2, 1)
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise DatasetError(f"{path}: cannot read the image")
    return int(img.shape[1]), int(img.shape[0])
