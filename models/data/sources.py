"""Where training, calibration and evaluation frames come from: a synthetic generator or an imported dataset.

    src = DataSource.parse("synth:tomato")
    src = DataSource.parse("../shared/datasets/neu-det", fmt="voc", split_seed=0)
    for image_bgr, boxes_xyxy, labels in src.frames("val", count=100, seed=0): ...

Synthetic frames are generated fresh from ``seed`` (frame i uses ``default_rng([seed, i])``), so "split"
means nothing for them: a different seed is a different, never-seen set. Dataset frames come from the
deterministic train/val/test split of :func:`models.data.datasets.assign_splits`.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from models.data.datasets import assign_splits, load_dataset, parse_mapping, remap, reorder
from models.data.samples import SPLITS, Dataset, DatasetError, rel
from models.paths import repo_relative

Frame = tuple[np.ndarray, np.ndarray, list[str]]  # BGR image, (N,4) xyxy boxes, label names
SYNTH_NAMES = ("tomato", "surface", "tomato-shift")


def _synth_tomato(count: int, seed: int, start: int = 0) -> Iterator[Frame]:
    from models.data.synth.tomato import random_scene, render

    for i in range(start, start + count):
        rng = np.random.default_rng([seed, i])
        r = render(random_scene(rng), rng)
        yield r.image, r.boxes, list(r.labels)


def _synth_tomato_shift(count: int, seed: int, start: int = 0) -> Iterator[Frame]:
    """The shifted greenhouse (yellow variety, dusk, closer camera) of :func:`models.data.synth.tomato.shifted_scene`."""
    from models.data.synth.tomato import render, shifted_scene

    for i in range(start, start + count):
        rng = np.random.default_rng([seed, i])
        r = render(shifted_scene(rng), rng)
        yield r.image, r.boxes, list(r.labels)


def _synth_surface(count: int, seed: int, start: int = 0) -> Iterator[Frame]:
    """Defect detection frames: 85 % carry 1-3 defects, the rest are defect-free (negatives)."""
    from models.data.synth.surface import random_surface, render_surface

    for i in range(start, start + count):
        rng = np.random.default_rng([seed, i])
        surf = random_surface(rng, 256, defective=bool(rng.uniform() < 0.85))
        img, _, boxes, labels = render_surface(surf, rng)
        yield cv2.cvtColor(img, cv2.COLOR_GRAY2BGR), boxes, labels


def synth_labels(name: str) -> tuple[str, ...]:
    if name in ("tomato", "tomato-shift"):
        from models.data.synth.tomato import LABELS
        return tuple(LABELS)
    from models.data.synth.surface import DEFECT_KINDS
    return tuple(DEFECT_KINDS)


@functools.lru_cache(maxsize=8)
def _load(path: str, fmt: str, mapping: str | None, classes: tuple[str, ...] | None, split_seed: int,
          fractions: tuple[float, float, float]) -> Dataset:
    ds = remap(load_dataset(path, fmt), parse_mapping(mapping))
    if classes:
        ds = reorder(ds, list(classes))
    return assign_splits(ds, split_seed, fractions)


@dataclass(frozen=True)
class DataSource:
    """``synth:<name>`` or an imported dataset (path + format + optional class mapping and split settings)."""

    spec: str
    fmt: str | None = None
    mapping: str | None = None
    classes: tuple[str, ...] | None = None
    split_seed: int = 0
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)

    @classmethod
    def parse(cls, spec: str, fmt: str | None = None, mapping: str | None = None,
              classes: tuple[str, ...] | list[str] | None = None, split_seed: int = 0,
              fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)) -> DataSource:
        if spec.startswith("synth:"):
            if spec[6:] not in SYNTH_NAMES:
                raise DatasetError(f"unknown synthetic source {spec!r}; supported: "
                                   + ", ".join(f"synth:{n}" for n in SYNTH_NAMES))
            return cls(spec)
        if not fmt:
            raise DatasetError(f"{spec}: a dataset path needs its format (--format yolo|coco|voc|supervisely)")
        if not Path(spec).exists():
            raise DatasetError(f"{spec}: no such file or folder")
        return cls(str(Path(spec).resolve()), fmt.lower(), mapping or None, tuple(classes) if classes else None,
                   split_seed, tuple(fractions))  # type: ignore[arg-type]

    @property
    def is_synthetic(self) -> bool:
        return self.spec.startswith("synth:")

    def dataset(self) -> Dataset:
        if self.is_synthetic:
            raise DatasetError(f"{self.spec} is generated, not a dataset on disk")
        return _load(self.spec, self.fmt or "", self.mapping, self.classes, self.split_seed, self.fractions)

    def labels(self) -> tuple[str, ...]:
        return synth_labels(self.spec[6:]) if self.is_synthetic else tuple(self.dataset().classes)

    def split_size(self, split: str) -> int:
        return sum(1 for s in self.dataset().samples if s.split == split)

    def frames(self, split: str = "train", count: int | None = None, seed: int = 0, start: int = 0
               ) -> Iterator[Frame]:
        """Frames of one split (datasets) or ``count`` fresh frames from ``seed`` (synthetic), from index ``start``."""
        if split not in SPLITS:
            raise DatasetError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        if self.is_synthetic:
            gen = {"synth:tomato": _synth_tomato, "synth:tomato-shift": _synth_tomato_shift}.get(self.spec,
                                                                                                  _synth_surface)
            yield from gen(count if count is not None else 300, seed, start)
            return
        ds = self.dataset()
        samples = [s for s in ds.samples if s.split == split]
        if not samples:
            raise DatasetError(f"{self.spec}: the {split} split is empty ({len(ds.samples)} images in all)")
        for s in samples[start:None if count is None else start + count]:
            img = cv2.imread(str(s.image), cv2.IMREAD_COLOR)
            if img is None:
                raise DatasetError(f"{rel(s.image, ds.root)}: cannot read the image (corrupt or not an image)")
            yield img, s.boxes, list(s.labels)

    def data_hash(self, split: str, count: int | None, seed: int) -> str:
        """Identifies the exact training data: generator source + seed + count, or the split's files + labels."""
        h = hashlib.sha256()
        if self.is_synthetic:
            module = Path(__file__).with_name("synth") / f"{self.spec[6:].split('-')[0]}.py"
            h.update(module.read_bytes() + f"|{seed}|{count}".encode())
            if self.spec != "synth:tomato":  # the shifted greenhouse is another generator in the same module
                h.update(self.spec.encode())
        else:
            ds = self.dataset()
            for s in ds.samples:
                if s.split == split:
                    h.update(rel(s.image, ds.root).encode() + s.boxes.tobytes() + "|".join(s.labels).encode())
            h.update(f"|{self.mapping}|{self.classes}".encode())
        return h.hexdigest()[:16]

    def describe(self) -> str:
        if self.is_synthetic:
            return self.spec
        extra = f", map {self.mapping}" if self.mapping else ""
        return f"{repo_relative(self.spec)} ({self.fmt}{extra}, split seed {self.split_seed})"
