"""Write a YOLO box dataset from the magnetic-tile set's defect masks (a real-texture pretraining step for NEU-DET).

Each ``MT_<Class>/Imgs/<name>.jpg`` has a mask ``<name>.png`` (255 = defect). A box is drawn around each connected
component of ``mask > 127`` after a 7x7 dilation (so a crack broken into pieces stays one defect); components under
30 pixels after the dilation are dropped (a lone pixel grows to 49, so this only drops specks at a picture's edge).
Every ``FREE_EVERY``-th ``MT_Free`` picture joins as a picture with no boxes.

    python models/recipes/mask_boxes.py MAGNETIC_TILE_DIR OUT_DIR

Magnetic-tile states no licence (research use): models trained on the result are for measurement, not shipping.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

CLASSES = ("blowhole", "break", "crack", "fray", "uneven")
FREE_EVERY = 4
MIN_AREA = 30
DILATE = 7


def mask_boxes(mask: np.ndarray) -> list[tuple[int, int, int, int]]:
    """(x, y, w, h) per dilated connected component of ``mask > 127`` with at least MIN_AREA pixels (dilated)."""
    grown = cv2.dilate((mask > 127).astype(np.uint8), np.ones((DILATE, DILATE), np.uint8))
    _, _, stats, _ = cv2.connectedComponentsWithStats(grown)
    return [(int(x), int(y), int(w), int(h)) for x, y, w, h, area in stats[1:] if area >= MIN_AREA]


def convert(src: Path, out: Path) -> tuple[int, int]:
    """-> (pictures written, boxes written)."""
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    (out / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    folders = [(f"MT_{name.capitalize()}", k) for k, name in enumerate(CLASSES)] + [("MT_Free", None)]
    pictures = boxes = 0
    for folder, class_id in folders:
        images = sorted((src / folder / "Imgs").glob("*.jpg"))
        if not images:
            raise SystemExit(f"{src / folder / 'Imgs'}: no .jpg pictures (is {src} the magnetic-tile folder?)")
        for path in images if class_id is not None else images[::FREE_EVERY]:
            lines = []
            if class_id is not None:
                mask = cv2.imread(str(path.with_suffix(".png")), cv2.IMREAD_GRAYSCALE)
                if mask is None:
                    raise SystemExit(f"{path.with_suffix('.png')}: missing or unreadable mask")
                mh, mw = mask.shape
                lines = [f"{class_id} {(x + w / 2) / mw:.6f} {(y + h / 2) / mh:.6f} {w / mw:.6f} {h / mh:.6f}"
                         for x, y, w, h in mask_boxes(mask)]
            name = f"{folder}_{path.stem}"
            (out / "images" / f"{name}.jpg").write_bytes(path.read_bytes())
            (out / "labels" / f"{name}.txt").write_text("".join(line + "\n" for line in lines))
            pictures += 1
            boxes += len(lines)
    return pictures, boxes


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    n_pictures, n_boxes = convert(Path(sys.argv[1]), Path(sys.argv[2]))
    print(f"{n_pictures} pictures, {n_boxes} boxes -> {sys.argv[2]}")
