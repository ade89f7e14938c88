"""Synthetic tomato generator: determinism, box correctness, occlusion handling."""

from __future__ import annotations

import numpy as np
import pytest

from models.data.synth.tomato import (LABELS, Fruit, Leaf, Scene, generate_dataset, random_scene, render,
                                 ripeness_label)


def _scene(seed: int) -> Scene:
    return random_scene(np.random.default_rng(seed))


def _plain_scene(fruits: list[Fruit], leaves: list[Leaf] | None = None) -> Scene:
    return Scene(640, 480, fruits, background="dark", bg_colour=(40, 50, 40), leaves=leaves or [],
                 blur=0.0, noise=0.0, jpeg_quality=0)


def test_ripeness_label_thresholds() -> None:
    assert [ripeness_label(r) for r in (0.0, 0.39, 0.4, 0.74, 0.75, 1.0)] == [
        "green", "green", "half_ripe", "half_ripe", "ripe", "ripe"]
    assert LABELS == ("green", "half_ripe", "ripe")


def test_same_seed_same_scene_and_image() -> None:
    a = render(_scene(7), np.random.default_rng(1))
    b = render(_scene(7), np.random.default_rng(1))
    assert np.array_equal(a.image, b.image)
    assert np.array_equal(a.boxes, b.boxes) and a.labels == b.labels
    c = render(_scene(8), np.random.default_rng(1))
    assert not np.array_equal(a.image, c.image)


def test_frame_rng_changes_pixels_not_boxes() -> None:
    scene = _scene(11)
    a = render(scene, np.random.default_rng(1))
    b = render(scene, np.random.default_rng(2))
    assert not np.array_equal(a.image, b.image)
    assert np.array_equal(a.boxes, b.boxes) and np.array_equal(a.fruit_index, b.fruit_index)


def test_boxes_valid_and_on_their_fruits() -> None:
    total = 0
    for seed in range(20):
        scene = _scene(seed)
        r = render(scene, np.random.default_rng(seed))
        assert r.image.shape == (480, 640, 3) and r.image.dtype == np.uint8
        assert r.boxes.dtype == np.float32 and r.boxes.shape == (len(r.labels), 4)
        assert len(r.fruit_index) == len(r.labels)
        assert set(r.labels) <= set(LABELS)
        assert np.all(r.boxes[:, :2] >= 0) and np.all(r.boxes[:, 2] <= 640) and np.all(r.boxes[:, 3] <= 480)
        assert np.all(r.boxes[:, 2] > r.boxes[:, 0]) and np.all(r.boxes[:, 3] > r.boxes[:, 1])
        for box, lab, i in zip(r.boxes, r.labels, r.fruit_index):
            f = scene.fruits[i]
            assert lab == ripeness_label(f.ripeness)
            # the visible extent lies inside the fruit's full extent
            assert box[0] >= f.x - f.radius - 2 and box[2] <= f.x + f.radius + 2
            assert box[1] >= f.y - f.radius - 2 and box[3] <= f.y + f.radius + 2
        total += len(r.labels)
    assert total > 60  # scenes do contain fruit


def test_unoccluded_fruit_box_is_its_extent() -> None:
    r = render(_plain_scene([Fruit(320, 240, 30, 0.9, aspect=1.0)]), np.random.default_rng(0))
    assert r.labels == ["ripe"]
    np.testing.assert_allclose(r.boxes[0], [290, 210, 351, 271], atol=2)


def test_fruit_hidden_behind_fruit_is_dropped() -> None:
    scene = _plain_scene([Fruit(320, 240, 12, 0.1), Fruit(322, 238, 35, 0.9)])
    r = render(scene, np.random.default_rng(0))
    assert list(r.fruit_index) == [1] and r.labels == ["ripe"]


def test_partial_occlusion_shrinks_box_to_visible_part() -> None:
    back = Fruit(320, 240, 30, 0.5, aspect=1.0)
    front = Fruit(268, 240, 32, 0.1, aspect=1.0)  # drawn later, hides the left part of `back`
    r = render(_plain_scene([back, front]), np.random.default_rng(0))
    assert list(r.fruit_index) == [0, 1]
    x1, y1, x2, y2 = r.boxes[0]
    assert 293 <= x1 <= 298  # the circles intersect at x = 295.2: the hidden left part is cut off
    assert x2 == pytest.approx(351, abs=2)  # the right edge is the back fruit's own (320 + 30 + 1)
    assert y1 == pytest.approx(210, abs=2) and y2 == pytest.approx(271, abs=2)


def test_leaves_in_front_drop_hidden_fruit() -> None:
    fruit = Fruit(320, 240, 30, 0.5, aspect=1.0)
    leaf = Leaf(230, 240, 0.0, 80, 40, (40, 120, 40), front=True)
    assert len(render(_plain_scene([fruit], [leaf]), np.random.default_rng(0)).boxes) == 0
    behind = Leaf(230, 240, 0.0, 80, 40, (40, 120, 40), front=False)
    assert len(render(_plain_scene([fruit], [behind]), np.random.default_rng(0)).boxes) == 1


def test_generate_dataset_yolo_files(tmp_path) -> None:
    out = generate_dataset(tmp_path / "ds", count=3, seed=5)
    assert (out / "classes.txt").read_text().split() == list(LABELS)
    imgs = sorted((out / "images").glob("*.jpg"))
    labels = sorted((out / "labels").glob("*.txt"))
    assert len(imgs) == len(labels) == 3
    for path in labels:
        for line in path.read_text().splitlines():
            c, *xywh = line.split()
            assert 0 <= int(c) < len(LABELS)
            assert all(0.0 <= float(v) <= 1.0 for v in xywh)
