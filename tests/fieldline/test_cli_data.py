"""``fieldline data push|stats|pull`` against the real API over HTTP (in-process uvicorn, real SQLite, files)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from typer.testing import CliRunner

from fieldline.cli import app
from models.data.datasets import load_dataset, write_yolo
from models.data.samples import Dataset, Sample
from tests.cloud_api.cloudapi_builders import TOKEN, ApiServer, settings_for


def labelled_folder(root: Path, n: int) -> Path:
    """A YOLO folder of ``n`` images, each with one ``red`` and (odd ones) one ``green`` box."""
    src = root / "raw"
    src.mkdir()
    samples = []
    for i in range(n):
        path = src / f"p{i}.jpg"
        image = np.random.default_rng(i).integers(0, 255, (60, 80, 3), dtype=np.uint8)
        cv2.imwrite(str(path), image)
        boxes = [[8, 6, 40, 30]] + ([[44, 30, 76, 56]] if i % 2 else [])
        labels = ["red"] + (["green"] if i % 2 else [])
        samples.append(Sample(path, 80, 60, np.array(boxes, np.float32), labels, ("train", "val", "test")[i % 3]))
    return write_yolo(Dataset(["red", "green"], samples, src), root / "yolo")


def test_push_stats_pull_round_trip(tmp_path, monkeypatch):
    runner = CliRunner()
    folder = labelled_folder(tmp_path, 6)
    with ApiServer(settings_for(tmp_path)) as api:
        monkeypatch.setenv("FIELDLINE_TOKEN", TOKEN)  # the token from the environment
        pushed = runner.invoke(app, ["data", "push", str(folder), "--api", api.root, "--dataset", "house-b"])
        assert pushed.exit_code == 0, pushed.output
        assert "house-b: 6 imported, 0 already there, 0 errors" in pushed.output
        again = runner.invoke(app, ["data", "push", str(folder), "--api", api.root, "--dataset", "house-b"])
        assert again.exit_code == 0 and "0 imported, 6 already there" in again.output

        stats = runner.invoke(app, ["data", "stats", "house-b", "--api", api.root])
        assert stats.exit_code == 0, stats.output
        assert "house-b: 6 frames, labels red, green" in stats.output
        assert "labelled" in stats.output and "red" in stats.output
        assert api.get("/datasets/house-b")["boxes_by_label"] == {"red": 6, "green": 3}

        for fmt in ("yolo", "coco"):
            out = tmp_path / f"pulled-{fmt}"
            pulled = runner.invoke(app, ["data", "pull", "house-b", "--api", api.root, "--out", str(out),
                                         "--format", fmt])
            assert pulled.exit_code == 0, pulled.output
            assert f"6 images (labelled) written to {out} as {fmt}" in pulled.output
            ds = load_dataset(out, fmt)
            assert sorted(ds.classes) == ["green", "red"] and len(ds.samples) == 6
            assert sorted(s.split for s in ds.samples) == ["test", "test", "train", "train", "val", "val"]
            assert sum(len(s.labels) for s in ds.samples) == 9

        missing = runner.invoke(app, ["data", "stats", "nope", "--api", api.root])
        assert missing.exit_code == 2 and "HTTP 404" in missing.output and "no dataset named 'nope'" in missing.output
        monkeypatch.delenv("FIELDLINE_TOKEN")
        refused = runner.invoke(app, ["data", "stats", "house-b", "--api", api.root, "--token", "wrong"])
        assert refused.exit_code == 2 and "HTTP 401" in refused.output
        bad = tmp_path / "bad"
        (bad / "labels").mkdir(parents=True)
        (bad / "images").mkdir()
        (bad / "classes.txt").write_text("red\n")
        cv2.imwrite(str(bad / "images" / "x.jpg"), np.zeros((10, 10, 3), np.uint8))
        (bad / "labels" / "x.txt").write_text("3 0.5 0.5 0.1 0.1\n")
        checked = runner.invoke(app, ["data", "push", str(bad), "--api", api.root, "--dataset", "house-c",
                                      "--token", TOKEN])
        assert checked.exit_code == 2 and "labels/x.txt line 1: class id 3 out of range" in checked.output
