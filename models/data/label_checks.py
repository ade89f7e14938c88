"""Label-quality checks run by ``fieldline model stats`` / ``import``: mistakes a converter or an export makes
that no file-format check can see.

- **Copied label sets**: image A holds several boxes identical (to the pixel) to boxes of image B. Either the
  two files are the same picture, or a converter attached B's labels to A. Found in the Laboro Tomato subset:
  test annotation files start with the complete label set of a *training* image (e.g. 20 of the 21 boxes of
  ``Test/IMG_0992`` are ``Train/IMG_1133``'s), typical of annotations gathered by an image id that train and
  test files both use.
- **Boxes enclosing other objects**: a box that contains the centres of two or more other boxes of its image.
  Clusters make a few of these legitimately; a split with many more of them than the others has boxes that do
  not belong to its pictures (Laboro subset: 87 of 1,076 test boxes, 8.1 %; 20 of 1,814 training boxes, 1.1 %).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import numpy as np

from models.data.samples import Dataset, rel

MIN_COPIED = 3  # identical boxes that make a copied label set (one or two may coincide by chance)


def _box_key(box: np.ndarray) -> tuple[int, int, int, int]:
    return tuple(int(round(float(v))) for v in box)  # type: ignore[return-value]


def copied_label_sets(ds: Dataset, min_boxes: int = MIN_COPIED) -> list[dict[str, Any]]:
    """Pairs of images sharing at least ``min_boxes`` identical boxes (rounded to the pixel), most first."""
    owners: dict[tuple[int, int, int, int], set[int]] = defaultdict(set)
    for i, s in enumerate(ds.samples):
        for b in s.boxes:
            owners[_box_key(b)].add(i)
    shared: Counter = Counter()
    for images in owners.values():
        if 1 < len(images) <= 8:  # a box in many images is a fixed region (a template), not a copy
            ordered = sorted(images)
            for a_pos, a in enumerate(ordered):
                for b in ordered[a_pos + 1:]:
                    shared[(a, b)] += 1
    found = []
    for (a, b), n in shared.most_common():
        if n < min_boxes:
            break
        sa, sb = ds.samples[a], ds.samples[b]
        found.append({"image": rel(sa.image, ds.root), "other": rel(sb.image, ds.root), "shared_boxes": n,
                      "boxes": len(sa.labels), "other_boxes": len(sb.labels), "splits": [sa.split, sb.split]})
    return found


def enclosing_boxes(boxes: np.ndarray) -> int:
    """How many of ``boxes`` (N, 4 xyxy) contain the centres of at least two other boxes."""
    if len(boxes) < 3:
        return 0
    c = (boxes[:, :2] + boxes[:, 2:]) / 2
    inside = ((c[None, :, 0] > boxes[:, None, 0]) & (c[None, :, 0] < boxes[:, None, 2])
              & (c[None, :, 1] > boxes[:, None, 1]) & (c[None, :, 1] < boxes[:, None, 3]))
    np.fill_diagonal(inside, False)
    return int((inside.sum(1) >= 2).sum())


def label_checks(ds: Dataset) -> dict[str, Any]:
    """Both checks, per split where it matters, plus warnings worded for the ``stats`` report."""
    per_split: dict[str, dict[str, float]] = {}
    totals: dict[str, Counter] = defaultdict(Counter)
    for s in ds.samples:
        t = totals[s.split or "unsplit"]
        t["images"] += 1
        t["boxes"] += len(s.labels)
        t["enclosing"] += enclosing_boxes(s.boxes)
    for sp, t in totals.items():
        per_split[sp] = {"images": t["images"], "boxes_per_image": round(t["boxes"] / t["images"], 2),
                         "enclosing_boxes": t["enclosing"],
                         "enclosing_share": round(t["enclosing"] / max(t["boxes"], 1), 4)}
    copies = copied_label_sets(ds)
    warnings = []
    if copies:
        worst = copies[0]
        warnings.append(f"{len(copies)} pair(s) of images share {MIN_COPIED} or more identical boxes (e.g. "
                        f"{worst['image']} ({worst['boxes']} boxes) and {worst['other']} ({worst['other_boxes']}) share "
                        f"{worst['shared_boxes']}): the same picture twice, or labels attached to the wrong image")
    shares = {sp: v["enclosing_share"] for sp, v in per_split.items() if v["images"] >= 5}
    for sp, share in shares.items():
        others = [v for k, v in shares.items() if k != sp]
        if others and share >= 0.01 and share > 3 * max(others):
            warnings.append(f"split {sp}: {100 * share:.1f} % of its boxes enclose two or more other boxes' centres "
                            f"(other splits at most {100 * max(others):.1f} %): boxes that may not belong to their "
                            "images")
    return {"per_split": per_split, "copied_label_sets": copies, "warnings": warnings}
