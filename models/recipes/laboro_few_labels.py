"""Write a copy of a Laboro Tomato subset folder whose Train split holds only N pictures (the few-labels case).

The N pictures are drawn from ``Train/ann`` (sorted names, then a seeded shuffle), so the same N and seed give the
same pictures on any machine; the Test split is copied as it is (give the cleaned copy of laboro_clean_test.py
to score on the cleaned labels). Images are symlinked, annotations copied; the data's licence stays as it is
(CC BY-NC-SA 4.0, evaluation only).

    python models/recipes/laboro_few_labels.py SUBSET_DIR OUT_DIR N [SEED]   # writes OUT_DIR/chosen.json too
"""

from __future__ import annotations

import json
import random
import shutil
import sys
from pathlib import Path


def few_label_copy(subset: Path, out: Path, count: int, seed: int = 0) -> list[str]:
    """Copy ``subset`` to ``out`` with ``count`` Train annotations (seeded choice) and every Test one; the names."""
    anns = sorted((subset / "Train" / "ann").glob("*.json"))
    if not 0 < count <= len(anns):
        raise ValueError(f"{subset}/Train/ann: {len(anns)} annotation files, cannot choose {count}")
    chosen = sorted(random.Random(seed).sample([a.name for a in anns], count))
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(subset / "meta.json", out / "meta.json")
    for split, names in (("Train", chosen), ("Test", None)):
        ann_dir = out / split / "ann"
        if ann_dir.exists():
            shutil.rmtree(ann_dir)
        ann_dir.mkdir(parents=True)
        img_dir = out / split / "img"
        if not img_dir.exists():
            img_dir.symlink_to((subset / split / "img").resolve())
        for ann in sorted((subset / split / "ann").glob("*.json")):
            if names is None or ann.name in names:
                shutil.copy(ann, ann_dir / ann.name)
    (out / "chosen.json").write_text(json.dumps({"seed": seed, "train": chosen}, indent=1))
    return chosen


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    picked = few_label_copy(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]),
                            int(sys.argv[4]) if len(sys.argv) == 5 else 0)
    print(f"{len(picked)} Train pictures: {', '.join(n.split('.')[0] for n in picked[:5])} ...")
