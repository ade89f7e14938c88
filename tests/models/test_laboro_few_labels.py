"""The few-labels recipe step: a Supervisely project copy with N seeded Train pictures and the whole Test split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.data.datasets import load_dataset
from tests.support.dataset_builders import build_supervisely
from tests.support.recipes import load_recipe


def test_copy_keeps_n_seeded_train_pictures_and_every_test_one(tmp_path: Path) -> None:
    few = load_recipe("laboro_few_labels.py")
    src = build_supervisely(tmp_path / "src")
    chosen = few.few_label_copy(src, tmp_path / "one", 1, seed=3)
    again = few.few_label_copy(src, tmp_path / "again", 1, seed=3)
    assert chosen == again and len(chosen) == 1  # the same seed picks the same picture
    ds = load_dataset(tmp_path / "one", "supervisely")
    by_folder = sorted((s.image.parent.parent.name, s.image.name) for s in ds.samples)
    assert by_folder == sorted([("Train", chosen[0][:-len(".json")]), ("Test", "c.jpg")])
    assert json.loads((tmp_path / "one" / "chosen.json").read_text()) == {"seed": 3, "train": chosen}
    # a second call into the same folder with more pictures replaces the annotation set, it does not add to it
    assert len(few.few_label_copy(src, tmp_path / "one", 2)) == 2
    assert len(list((tmp_path / "one" / "Train" / "ann").glob("*.json"))) == 2


def test_asking_for_more_pictures_than_the_split_holds_names_the_folder(tmp_path: Path) -> None:
    few = load_recipe("laboro_few_labels.py")
    src = build_supervisely(tmp_path / "src")
    with pytest.raises(ValueError, match=r"Train/ann: 2 annotation files, cannot choose 3"):
        few.few_label_copy(src, tmp_path / "out", 3)
