"""The shipped zoo models, evaluated for real on fresh synthetic frames (seed not used in training)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.detectors import OnnxDetector
from models.evaluate import coco_map, synth_frames

ROOT = Path(__file__).resolve().parents[2]
ZOO = ROOT / "models" / "zoo"
METRICS = json.loads((ZOO / "tomato-ripeness.metrics.json").read_text())
TEST_SEED = 777  # training uses 1234, the card holdout 20261, calibration 4242


@pytest.fixture(scope="module")
def frames() -> list:
    return list(synth_frames("synth:tomato", 100, TEST_SEED))  # rendered once for both models


@pytest.mark.parametrize("tag,file", [("fp32", "tomato-ripeness.onnx"), ("int8", "tomato-ripeness.int8.onnx")])
def test_zoo_model_reaches_card_map(frames: list, tag: str, file: str) -> None:
    det = OnnxDetector(ZOO / file, conf_threshold=0.001)  # same settings as models.evaluate
    dets = []
    for img, _, _ in frames:
        d = det.detect(img)
        dets.append((d.xyxy, d.confidence, d.label_names()))
    res = coco_map([(b, lab) for _, b, lab in frames], dets, det.labels)
    card = METRICS["models"][tag]["map50"]
    assert res["map50"] >= card - 0.05, (res, card)
    assert set(res["per_class"]) == {"green", "half_ripe", "ripe"}
    assert det.metadata["train_data_hash"] == METRICS["train"]["train_data_hash"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    code = "from models.cli import model_app; model_app()"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def test_eval_cli_json_last_line() -> None:
    p = _cli("eval", "--model", str(ZOO / "tomato-ripeness.int8.onnx"), "--data", "synth:tomato",
             "--count", "4", "--seed", "3", "--json")
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout.strip().splitlines()[-1])
    assert {"map50", "map50_95", "per_class"} <= set(res)


@pytest.mark.parametrize("content", [None, b"garbage bytes, not protobuf"])
def test_eval_cli_bad_model_exit_2(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "broken.onnx"
    if content is not None:
        path.write_bytes(content)
    p = _cli("eval", "--model", str(path), "--count", "2", "--json")
    assert p.returncode == 2
    lines = [x for x in p.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "broken.onnx" in lines[0] and "Traceback" not in p.stderr
