"""A tiny generated YOLO dataset (coloured squares and discs) for real short training runs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

SHAPES = ["square", "disc"]


def shapes_dataset(root: Path, count: int = 48, seed: int = 3) -> Path:
    """YOLO dataset: 160x120 noisy grey images with 1-3 red squares / blue discs (classes.txt order = SHAPES)."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "classes.txt").write_text("\n".join(SHAPES) + "\n")
    for i in range(count):
        img = rng.integers(90, 140, (120, 160, 3), dtype=np.uint8)
        lines = []
        for _ in range(int(rng.integers(1, 4))):
            s = int(rng.integers(18, 40))
            x, y = int(rng.integers(0, 160 - s)), int(rng.integers(0, 120 - s))
            k = int(rng.integers(0, 2))
            if k == 0:
                cv2.rectangle(img, (x, y), (x + s - 1, y + s - 1), (40, 40, 220), -1)
            else:
                cv2.circle(img, (x + s // 2, y + s // 2), s // 2, (220, 80, 30), -1)
            lines.append(f"{k} {(x + s / 2) / 160:.5f} {(y + s / 2) / 120:.5f} {s / 160:.5f} {s / 120:.5f}")
        cv2.imwrite(str(root / "images" / f"s{i:03d}.png"), img)
        (root / "labels" / f"s{i:03d}.txt").write_text("\n".join(lines) + "\n")
    return root
