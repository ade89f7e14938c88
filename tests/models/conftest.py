"""Shared by the toolkit tests: one short real training run on a tiny generated YOLO dataset (coloured squares
and discs), made once per test session."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.shapes import shapes_dataset


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> dict:
    """The trained shapes model: its data, config, best.pt, train_info and FP32 ONNX export."""
    from models.detect.export import export
    from models.detect.train import TrainConfig, train

    tmp = tmp_path_factory.mktemp("train")
    data = shapes_dataset(tmp / "data")
    # bounded by epochs, not by the clock, so a busy machine trains (and validates) as far as a quiet one; one
    # thread because two spin-waiting OpenMP threads crawl when the machine is busy
    cfg = TrainConfig(out_dir=tmp / "run", data=str(data), fmt="yolo", input_size=160, images=0, batch=8,
                      epochs=30, time_budget_s=600, val_every_epochs=10, lr=4e-3, width=32, head_width=32,
                      threads=1)
    best = train(cfg, progress=False)
    info = json.loads((tmp / "run" / "train_info.json").read_text())
    onnx_path = export(best, tmp / "shapes.onnx", name="shapes", version="0.3.0",
                       train_data_hash=info["train_data_hash"])
    return {"tmp": tmp, "data": data, "cfg": cfg, "best": best, "info": info, "onnx": onnx_path}
