"""models.data.label_checks: copied label sets and boxes that enclose other objects, as `stats` reports them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models.data.datasets import dataset_stats
from models.data.samples import Dataset, Sample
from models.data.label_checks import copied_label_sets, enclosing_boxes, label_checks
from models.paths import shared_path
from tests.support.recipes import load_recipe


def _sample(name: str, split: str, boxes: list[list[float]]) -> Sample:
    return Sample(Path(f"/d/{split}/{name}.jpg"), 640, 480, np.array(boxes, np.float32).reshape(-1, 4),
                  ["fruit"] * len(boxes), split)


def _grid(offset: int, n: int = 4) -> list[list[float]]:
    """n separate 20-px boxes in a row, none enclosing another."""
    return [[offset + 40 * k, 100, offset + 40 * k + 20, 120] for k in range(n)]


def _dataset(test_extra: list[list[float]]) -> Dataset:
    train = [_sample(f"t{i}", "train", _grid(100 * i)) for i in range(6)]
    # a test file holding the train image t2's whole label set before its own boxes (the Laboro converter bug)
    test = [_sample("x0", "test", [*_grid(200), *_grid(700, 3)])]
    test += [_sample(f"x{i}", "test", _grid(7 * i + 1) + test_extra) for i in range(1, 6)]
    return Dataset(["fruit"], train + test, Path("/d"), "yolo")


def test_a_copied_label_set_names_both_images() -> None:
    found = copied_label_sets(_dataset([]))
    assert found == [{"image": "train/t2.jpg", "other": "test/x0.jpg", "shared_boxes": 4, "boxes": 4,
                      "other_boxes": 7, "splits": ["train", "test"]}]
    # two boxes in common is not enough (neighbouring frames may agree by chance)
    ds = Dataset(["fruit"], [_sample("a", "train", _grid(0, 2)), _sample("b", "train", _grid(0, 2))], Path("/d"))
    assert copied_label_sets(ds) == [] and len(copied_label_sets(ds, min_boxes=2)) == 1


def test_enclosing_boxes_counts_boxes_around_two_or_more_centres() -> None:
    cluster = np.array([[0, 0, 100, 100], [10, 10, 30, 30], [60, 60, 80, 80], [200, 0, 220, 20]], np.float32)
    assert enclosing_boxes(cluster) == 1
    assert enclosing_boxes(cluster[1:]) == 0 and enclosing_boxes(cluster[:2]) == 0


def test_a_split_with_many_enclosing_boxes_is_warned_about_in_stats() -> None:
    big = [[0, 0, 600, 400]]  # one box around the whole row in every test image
    checks = label_checks(_dataset(big))
    assert checks["per_split"]["test"]["enclosing_boxes"] == 5 + 0  # x1..x5; x0's boxes enclose nothing
    assert checks["per_split"]["train"]["enclosing_boxes"] == 0
    assert checks["per_split"]["train"]["boxes_per_image"] == 4.0
    stats = dataset_stats(_dataset(big))
    # 5 enclosing boxes of 7 + 5 x 5 test boxes
    assert any(w.startswith("split test: 15.6 % of its boxes enclose") for w in stats["warnings"]), stats["warnings"]
    assert any("train/t2.jpg (4 boxes) and test/x0.jpg (7) share 4" in w for w in stats["warnings"])
    clean = dataset_stats(_dataset([]))
    assert not any("enclose" in w for w in clean["warnings"])
    assert clean["label_checks"]["per_split"]["test"]["enclosing_share"] == 0.0


LABORO = shared_path("datasets", "laboro-tomato-subset")
# Test files whose leading objects are, to the pixel, the whole label set of a Train image of the subset
PROVEN = {"IMG_0992.jpg.json": 20, "IMG_1281.jpg.json": 5, "IMG_20191215_111626.jpg.json": 9,
          "IMG_20191215_111934.jpg.json": 3, "IMG_20191215_112517.jpg.json": 3}


@pytest.mark.skipif(not LABORO.is_dir(), reason="shared datasets absent")
def test_laboro_subset_test_labels_are_flagged_and_cleaned(tmp_path: Path) -> None:
    """stats flags the copied label sets; the recipe's cleaner removes exactly the proven foreign blocks and
    leaves a test split that looks like the training split (boxes per image, enclosing boxes)."""
    from models.data.datasets import load_dataset

    st = dataset_stats(load_dataset(LABORO, "supervisely"))
    pairs = {(c["image"], c["other"]): c["shared_boxes"] for c in st["label_checks"]["copied_label_sets"]}
    assert len(pairs) == 5 and pairs[("Test/img/IMG_0992.jpg", "Train/img/IMG_1133.jpg")] == 20
    assert any(w.startswith("split test:") for w in st["warnings"])
    clean = load_recipe("laboro_clean_test.py")
    removed = clean.clean_copy(LABORO, tmp_path / "clean")
    assert {k: removed[k] for k in PROVEN} == PROVEN
    assert sum(removed.values()) == 370
    after = dataset_stats(load_dataset(tmp_path / "clean", "supervisely"))
    assert after["instances"] == 3050 - 370 and not after["label_checks"]["copied_label_sets"]
    assert not any(w.startswith("split test:") for w in after["warnings"])
    per_split = after["label_checks"]["per_split"]
    assert per_split["test"]["boxes_per_image"] == pytest.approx(12.61, abs=0.01)  # Laboro's own test set: 12.4
