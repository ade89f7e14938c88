"""models.data.datasets: four readers into one format, remapping, splits, stats, YOLO export, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from models.data.datasets import assign_splits, dataset_stats, load_dataset, parse_mapping, remap, reorder, write_yolo
from models.data.samples import Dataset, DatasetError, Sample, image_size
from models.paths import shared_path
from tests.support.dataset_builders import BUILDERS, CLASSES, SPEC, build_coco, build_supervisely, build_voc, build_yolo

SHARED = shared_path("datasets")


def _by_name(ds: Dataset) -> dict[str, Sample]:
    return {s.image.name: s for s in ds.samples}


@pytest.mark.parametrize("fmt", sorted(BUILDERS))
def test_each_format_reads_the_same_boxes(tmp_path: Path, fmt: str) -> None:
    ds = load_dataset(BUILDERS[fmt](tmp_path), fmt)
    assert ds.classes == CLASSES and ds.source_format == fmt
    got = _by_name(ds)
    assert sorted(got) == ["a.jpg", "b.jpg", "c.jpg"]
    for name, w, h, boxes in SPEC:
        s = got[name]
        assert (s.width, s.height) == (w, h)
        assert s.labels == [b[4] for b in boxes]
        np.testing.assert_allclose(s.boxes, np.array([b[:4] for b in boxes], np.float32).reshape(-1, 4), atol=1e-3)


def test_yolo_data_yaml_and_split_folders(tmp_path: Path) -> None:
    ds = load_dataset(build_yolo(tmp_path, names_file="data.yaml", split_dirs=True), "yolo")
    assert ds.classes == CLASSES
    assert {n: s.split for n, s in _by_name(ds).items()} == {"a.jpg": "train", "b.jpg": "train", "c.jpg": "val"}


def test_stats_numbers(tmp_path: Path) -> None:
    st = dataset_stats(load_dataset(build_voc(tmp_path), "voc"))
    assert st["images"] == 3 and st["images_without_boxes"] == 1 and st["instances"] == 3
    assert st["instances_per_class"] == {"cat": 1, "dog": 2}
    assert st["box_sizes"] == {"small": 1, "medium": 1, "large": 1}  # 20x20, 40x30, 160x120
    assert st["images_per_split"] == {"unsplit": 3}


def test_image_size_from_headers(tmp_path: Path) -> None:
    for ext in (".jpg", ".png", ".bmp"):
        p = tmp_path / f"x{ext}"
        cv2.imwrite(str(p), np.zeros((37, 53, 3), np.uint8))
        assert image_size(p) == (53, 37)


# ---- malformed input: the error names the file and the line or field -------------------------------------------

@pytest.mark.parametrize("line,message", [
    ("1 0.5 0.5 0.2", "labels/b.txt line 2: expected 5 numbers, got 4"),
    ("1 0.5 x 0.2 0.2", "labels/b.txt line 2: 'x' is not a number"),
    ("7 0.5 0.5 0.2 0.2", "labels/b.txt line 2: class id 7 out of range 0..1"),
    ("0 50 40 20 10", "labels/b.txt line 2: coordinates must be normalised to 0..1, got 50"),
])
def test_yolo_malformed_line(tmp_path: Path, line: str, message: str) -> None:
    build_yolo(tmp_path)
    (tmp_path / "labels" / "b.txt").write_text("0 0.5 0.5 0.5 0.5\n" + line + "\n")
    with pytest.raises(DatasetError) as exc:
        load_dataset(tmp_path, "yolo")
    assert str(exc.value) == message


def test_yolo_without_class_names(tmp_path: Path) -> None:
    build_yolo(tmp_path)
    (tmp_path / "classes.txt").unlink()
    with pytest.raises(DatasetError, match="no data.yaml or classes.txt"):
        load_dataset(tmp_path, "yolo")


@pytest.mark.parametrize("old,new,message", [
    ("<xmax>30</xmax>", "", "Annotations/a.xml: <bndbox> missing <xmax>"),
    ("<xmax>30</xmax>", "<xmax>3O</xmax>", "Annotations/a.xml: <bndbox><xmax> '3O' is not a number"),
    ("<name>cat</name>", "", "Annotations/a.xml: <object 1> missing <name>"),
    ("</annotation>", "</annotatio>", "Annotations/a.xml line 6: not valid XML (mismatched tag)"),
])
def test_voc_malformed(tmp_path: Path, old: str, new: str, message: str) -> None:
    build_voc(tmp_path)
    xml = tmp_path / "Annotations" / "a.xml"
    xml.write_text(xml.read_text().replace(old, new, 1))
    with pytest.raises(DatasetError) as exc:
        load_dataset(tmp_path, "voc")
    assert str(exc.value).startswith(message)


@pytest.mark.parametrize("edit,message", [
    (lambda d: d["annotations"][1].update(bbox=[1, 2, 3]),
     "annotations.json: annotations[1].bbox: expected 4 numbers [x, y, w, h], got [1, 2, 3]"),
    (lambda d: d["annotations"][2].update(image_id=99),
     "annotations.json: annotations[2]: image_id 99 is not in images"),
    (lambda d: d["annotations"][0].pop("category_id"), "annotations.json: annotations[0]: missing 'category_id'"),
    (lambda d: d["images"][2].update(file_name="nope.jpg"),
     "annotations.json: images[2]: image file 'nope.jpg' not found"),
])
def test_coco_malformed(tmp_path: Path, edit, message: str) -> None:
    build_coco(tmp_path)
    path = tmp_path / "annotations.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(DatasetError) as exc:
        load_dataset(tmp_path, "coco")
    assert str(exc.value) == message


def test_coco_bad_json_names_line(tmp_path: Path) -> None:
    build_coco(tmp_path)
    (tmp_path / "annotations.json").write_text('{"images": [],\n "annotations": [,],\n "categories": []}')
    with pytest.raises(DatasetError, match=r"^annotations.json line 2: not valid JSON"):
        load_dataset(tmp_path / "annotations.json", "coco")


def test_supervisely_malformed(tmp_path: Path) -> None:
    build_supervisely(tmp_path)
    ann = tmp_path / "Train" / "ann" / "a.jpg.json"
    data = json.loads(ann.read_text())
    data["objects"][1]["points"]["exterior"] = [[1, 2]]
    ann.write_text(json.dumps(data))
    with pytest.raises(DatasetError) as exc:
        load_dataset(tmp_path, "supervisely")
    assert str(exc.value) == ("Train/ann/a.jpg.json: objects[1].points.exterior: expected at least 3 [x, y] "
                              "points, got 1")
    data["objects"][1]["classTitle"] = "cow"
    data["objects"][1]["geometryType"] = "point"
    ann.write_text(json.dumps(data))
    ds = load_dataset(tmp_path, "supervisely")  # unsupported geometry: skipped with a warning
    assert ds.warnings == ["1 objects skipped (point)"]


# ---- remapping, splits, export ---------------------------------------------------------------------------------

def test_remap_merges_renames_and_drops(tmp_path: Path) -> None:
    ds = load_dataset(build_coco(tmp_path), "coco")
    merged = remap(ds, parse_mapping("cat=pet, dog=pet"))
    assert merged.classes == ["pet"]
    assert dataset_stats(merged)["instances_per_class"] == {"pet": 3}
    dropped = remap(ds, parse_mapping("c*=,dog=hound"))  # glob source, empty target drops
    assert dropped.classes == ["hound"] and [s.labels for s in dropped.samples] == [["hound"], ["hound"], []]
    assert reorder(dropped, ["x", "hound"]).classes == ["x", "hound"]
    with pytest.raises(DatasetError, match="--map: no class named 'cot'"):
        remap(ds, parse_mapping("cot=pet"))
    with pytest.raises(DatasetError, match="expected SOURCE=TARGET"):
        parse_mapping("cat:pet")


def _fake(n: int, split: str | None = None) -> list[Sample]:
    return [Sample(Path(f"/x/{split or 'all'}/img_{i:04d}.jpg"), 10, 10, np.zeros((0, 4)), [], split)
            for i in range(n)]


def test_splits_are_deterministic_and_seeded() -> None:
    ds = Dataset(["a"], _fake(400), Path("/x"))
    one = [s.split for s in assign_splits(ds, seed=1).samples]
    assert one == [s.split for s in assign_splits(ds, seed=1).samples]
    assert one != [s.split for s in assign_splits(ds, seed=2).samples]
    shares = {sp: one.count(sp) / 400 for sp in ("train", "val", "test")}
    assert 0.72 < shares["train"] < 0.88 and 0.05 < shares["val"] < 0.15 and 0.05 < shares["test"] < 0.15
    # the split of a file depends on its name only, not on the other files
    sub = Dataset(["a"], _fake(400)[::7], Path("/x"))
    assert [s.split for s in assign_splits(sub, seed=1).samples] == one[::7]


def test_split_folders_are_kept_and_val_carved_from_train() -> None:
    ds = Dataset(["a"], _fake(200, "train") + _fake(50, "test"), Path("/x"))
    out = assign_splits(ds, seed=0)
    assert all(s.split == "test" for s in out.samples[200:])
    n_val = sum(s.split == "val" for s in out.samples[:200])
    assert 8 < n_val < 35 and all(s.split in ("train", "val") for s in out.samples[:200])
    with_val = Dataset(["a"], _fake(20, "val") + _fake(100), Path("/x"))  # unsplit images: train/test only
    assert {s.split for s in assign_splits(with_val).samples[20:]} == {"train", "test"}


def test_supervisely_train_test_folders_respected(tmp_path: Path) -> None:
    ds = assign_splits(load_dataset(build_supervisely(tmp_path), "supervisely"), seed=0, fractions=(0.8, 0.0, 0.2))
    assert {n: s.split for n, s in _by_name(ds).items()} == {"a.jpg": "train", "b.jpg": "train", "c.jpg": "test"}


def test_yolo_export_round_trip(tmp_path: Path) -> None:
    src = assign_splits(load_dataset(build_supervisely(tmp_path / "src"), "supervisely"), fractions=(1, 0, 0))
    out = write_yolo(src, tmp_path / "yolo")
    assert (out / "labels" / "train" / "a.txt").read_text().splitlines()[0].startswith("0 0.125000 0.250000 ")
    assert (out / "labels" / "test" / "c.txt").read_text() == ""
    back = load_dataset(out, "yolo")
    assert back.classes == src.classes
    a, b = _by_name(src), _by_name(back)
    for name in a:
        assert b[name].split == a[name].split and b[name].labels == a[name].labels
        np.testing.assert_allclose(b[name].boxes, a[name].boxes, atol=0.01)
    assert dataset_stats(back)["box_sizes"] == dataset_stats(src)["box_sizes"]


def test_synth_generator_output_reads_as_yolo(tmp_path: Path) -> None:
    from models.data.synth.tomato import LABELS, generate_dataset

    ds = load_dataset(generate_dataset(tmp_path, 2, seed=3, width=160, height=120), "yolo")
    assert ds.classes == list(LABELS) and len(ds.samples) == 2


@pytest.mark.skipif(not (SHARED / "laboro-tomato-subset").is_dir(), reason="shared datasets absent")
def test_real_laboro_supervisely_counts() -> None:
    ds = load_dataset(SHARED / "laboro-tomato-subset", "supervisely")
    ds = assign_splits(remap(ds, parse_mapping("*_fully_ripened=ripe,*_half_ripened=half_ripe,*_green=green")))
    st = dataset_stats(ds)
    assert st["images"] == 205 and st["instances"] == 3050  # README: 205 images, 3,050 polygons
    assert st["instances_per_class"] == {"ripe": 150 + 382, "green": 579 + 1411, "half_ripe": 248 + 280}
    per_split = st["images_per_split"]
    assert per_split["test"] == 56 and per_split["train"] + per_split["val"] == 149  # Test/ kept, val from Train/


@pytest.mark.skipif(not (SHARED / "neu-det").is_dir(), reason="shared datasets absent")
def test_real_neu_det_voc_counts() -> None:
    st = dataset_stats(assign_splits(load_dataset(SHARED / "neu-det", "voc")))
    assert st["images"] == 1800 and st["instances"] == 4189  # README: 1,800 images, 4,189 boxes
    assert st["images_per_split"]["val"] == 30  # Validation_* folders
    assert st["instances_per_class"]["inclusion"] == 1011
