"""The NEU-DET recipe's magnetic-tile step: defect masks -> a YOLO box dataset that `import` reads."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from models.data.datasets import load_dataset
from tests.support.recipes import load_recipe


def _write(folder: Path, name: str, mask: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / f"{name}.jpg"), np.full(mask.shape, 128, np.uint8))
    cv2.imwrite(str(folder / f"{name}.png"), mask)


def test_masks_become_one_box_per_defect_and_free_pictures_have_none(tmp_path: Path) -> None:
    mb = load_recipe("mask_boxes.py")
    src = tmp_path / "mt"
    crack = np.zeros((100, 200), np.uint8)
    crack[40:44, 20:60] = 255
    crack[40:44, 63:90] = 255  # a 3-pixel gap: the dilation keeps it one crack
    crack[80:90, 150:170] = 255  # a second defect far away
    crack[0, 0] = 255  # a corner speck: 16 pixels after the dilation, under MIN_AREA: dropped
    crack[10:20, 100:110] = 100  # soft edge values below 128 are background
    for name in mb.CLASSES:
        _write(src / f"MT_{name.capitalize()}" / "Imgs", "exp1_num_1", crack if name == "crack" else
               np.zeros((100, 200), np.uint8))
    for i in range(8):
        _write(src / "MT_Free" / "Imgs", f"exp1_num_{10 + i}", np.zeros((100, 200), np.uint8))

    pictures, boxes = mb.convert(src, tmp_path / "out")

    assert (pictures, boxes) == (5 + 8 // mb.FREE_EVERY, 2)
    ds = load_dataset(tmp_path / "out", "yolo")
    assert ds.classes == list(mb.CLASSES)
    crack_sample = next(s for s in ds.samples if "MT_Crack" in s.image.name)
    got = sorted(tuple(round(v) for v in b) for b in crack_sample.boxes)
    assert got == [(17, 37, 93, 47), (147, 77, 173, 93)]  # xyxy, grown by the 7x7 dilation's 3 pixels
    assert set(crack_sample.labels) == {"crack"}
    assert sum(len(s.boxes) for s in ds.samples) == 2


def test_a_missing_mask_or_folder_is_named(tmp_path: Path) -> None:
    mb = load_recipe("mask_boxes.py")
    with pytest.raises(SystemExit, match="MT_Blowhole/Imgs: no .jpg pictures"):
        mb.convert(tmp_path, tmp_path / "out")
    folder = tmp_path / "mt" / "MT_Blowhole" / "Imgs"
    folder.mkdir(parents=True)
    cv2.imwrite(str(folder / "a.jpg"), np.zeros((20, 20), np.uint8))
    with pytest.raises(SystemExit, match=r"a\.png: missing or unreadable mask"):
        mb.convert(tmp_path / "mt", tmp_path / "out")
