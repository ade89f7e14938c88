"""The shipped zoo models, evaluated for real on fresh synthetic frames (seed not used in training)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edge_agent.detectors import OnnxDetector
from models.detect.evaluate import coco_map, synth_frames

ROOT = Path(__file__).resolve().parents[2]
ZOO = ROOT / "models" / "zoo"
DETECTORS = sorted(p.name.removesuffix(".metrics.json") for p in ZOO.glob("*.metrics.json")
                   if "map50" in json.loads(p.read_text()).get("models", {}).get("fp32", {}))
# seeds in use: training 1234/4321 (validation +7919), card holdouts 20261, counting calibration and the input-size
# sweep that chose the file's size 777, quantize calibration 4242 and checks 5151, `model eval` default 9001
TEST_SEED = 60617  # none of them. FP32 mAP50 here vs the card: tomato-ripeness 0.947 vs 0.954, tomato-ripeness-fast
# 0.823 vs 0.831, steel-defect 0.755 vs 0.723 (0.764 at 777); INT8 within 0.005 of FP32 on the same frames
COUNT = 300  # as many as the card's holdout, so the two figures have the same sampling noise


@pytest.fixture(scope="module")
def frames() -> dict[str, list]:
    cache: dict[tuple[str, int], list] = {}  # rendered once per source and seed for both files of a model

    def get(source: str, seed: int) -> list:
        if (source, seed) not in cache:
            cache[source, seed] = list(synth_frames(source, COUNT, seed))
        return cache[source, seed]
    return get  # type: ignore[return-value]


def _map50(det: OnnxDetector, data: list) -> dict:
    dets = []
    for img, _, _ in data:
        d = det.detect(img)
        dets.append((d.xyxy, d.confidence, d.label_names()))
    return coco_map([(b, lab) for _, b, lab in data], dets, det.labels)


def test_zoo_ships_both_detectors() -> None:
    assert {"tomato-ripeness", "steel-defect"} <= set(DETECTORS)


@pytest.mark.parametrize("tag", ["fp32", "int8"])
@pytest.mark.parametrize("name", DETECTORS)
def test_zoo_model_meets_its_card_on_fresh_data(frames, name: str, tag: str) -> None:
    metrics = json.loads((ZOO / f"{name}.metrics.json").read_text())
    entry = metrics["models"][tag]
    det = OnnxDetector(ZOO / entry["file"], conf_threshold=0.001)  # same settings as models.detect.evaluate
    source = metrics["holdout"]["data"]
    # the card's holdout, generated afresh (nothing is cached between the card run and this test): within 0.02
    res = _map50(det, frames(source, metrics["holdout"]["seed"]))
    assert abs(res["map50"] - entry["map50"]) <= 0.02, (name, tag, res["map50"], entry["map50"])
    assert set(res["per_class"]) == set(entry["per_class"])
    # another unseen seed: 300 images carry ~0.015 of sampling noise in mAP50 (more for steel-defect's 1-3 boxes
    # per frame), hence the wider margin for FP32; INT8 is compared with FP32 on the same frames, which is not noisy
    other = _map50(det, frames(source, TEST_SEED))
    if tag == "fp32":
        assert abs(other["map50"] - entry["map50"]) <= 0.05, (name, tag, other["map50"], entry["map50"])
    else:
        fp32 = _map50(OnnxDetector(ZOO / metrics["models"]["fp32"]["file"], conf_threshold=0.001),
                      frames(source, TEST_SEED))
        assert abs(other["map50"] - fp32["map50"]) <= 0.02, (name, other["map50"], fp32["map50"])
    assert det.metadata["train_data_hash"] == metrics["train"]["train_data_hash"]
    assert det.metadata["name"] == name and det.version == metrics["version"]
    assert entry["sha256"] == det.sha256


@pytest.mark.parametrize("name", DETECTORS)
def test_card_is_rendered_from_the_metrics(name: str) -> None:
    from models.cards.detect import render_card

    metrics = json.loads((ZOO / f"{name}.metrics.json").read_text())
    assert (ZOO / f"{name}.card.md").read_text() == render_card(metrics)  # never typed by hand
    assert metrics["default"] in ("fp32", "int8")


def _cli(*args: str) -> subprocess.CompletedProcess:
    code = "from models.cli.app import model_app; model_app()"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


def test_eval_cli_json_last_line() -> None:
    p = _cli("eval", "--model", str(ZOO / "tomato-ripeness.int8.onnx"), "--data", "synth:tomato",
             "--count", "4", "--seed", "3", "--json")
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout.strip().splitlines()[-1])
    assert {"map50", "map50_95", "per_class"} <= set(res)
    assert res["input_size"] == OnnxDetector(ZOO / "tomato-ripeness.int8.onnx").input_size == 576


def test_eval_cli_conf_and_iou_reach_the_detector() -> None:
    """--conf / --iou are recorded in the JSON and used: a near-1 score threshold keeps (almost) nothing."""
    args = ("eval", "--model", str(ZOO / "tomato-ripeness.int8.onnx"), "--count", "4", "--seed", "3", "--json")
    results = []
    for extra in ((), ("--conf", "0.999", "--iou", "0.7")):
        p = _cli(*args, *extra)
        assert p.returncode == 0, p.stderr
        results.append(json.loads(p.stdout.strip().splitlines()[-1]))
    default, strict = results
    assert (default["conf_threshold"], default["nms_iou"]) == (0.001, 0.5)
    assert (strict["conf_threshold"], strict["nms_iou"]) == (0.999, 0.7)
    assert default["map50"] > 0.5 and strict["map50"] < default["map50"] - 0.3


@pytest.mark.parametrize("content", [None, b"garbage bytes, not protobuf"])
def test_eval_cli_bad_model_exit_2(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "broken.onnx"
    if content is not None:
        path.write_bytes(content)
    p = _cli("eval", "--model", str(path), "--count", "2", "--json")
    assert p.returncode == 2
    lines = [x for x in p.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "broken.onnx" in lines[0] and "Traceback" not in p.stderr


def test_refresh_real_data_keeps_sections_whose_recipe_did_not_run(tmp_path, monkeypatch) -> None:
    """Re-running one recipe step (here the NEU-DET fine-tune, with averaged weights) refreshes its section
    and keeps the recorded figures of the steps that did not run; the card names both checkpoints."""
    import models.cards.real_data as card
    import models.zoo_index

    recorded = json.loads((ZOO / "steel-defect.metrics.json").read_text())
    old_scratch, old_finetune = recorded["real_data"][:2]
    monkeypatch.setattr(models.zoo_index, "ZOO", tmp_path)
    (tmp_path / "steel-defect.metrics.json").write_text(json.dumps(recorded))
    run = tmp_path / "out" / "neu-det-finetune"
    (run / "run").mkdir(parents=True)
    evaluation = {**old_finetune["eval"], "map50": 0.7512}
    (run / "eval_test.json").write_text(json.dumps(evaluation))
    (run / "eval_test_best.json").write_text(json.dumps({**evaluation, "map50": 0.7401, "map50_95": 0.41}))
    (run / "eval_test_nms07.json").write_text(json.dumps({**evaluation, "map50": 0.7633, "nms_iou": 0.7}))
    (run / "eval_test_flips.json").write_text(json.dumps({**evaluation, "map50": 0.7688, "flips": "hv"}))
    quantized = {**recorded["quantization"], "check": {"split": "val"}, "int8_map50": 0.7321,
                 "fp32_blocks": ["stem/stem.0"],
                 "attempts": [{"fp32_blocks": []}] * 8 + [{"fp32_blocks": ["stem/stem.0"]}]}
    (run / "quantize.json").write_text(json.dumps(quantized))
    (run / "eval_test_int8.json").write_text(json.dumps({**evaluation, "map50": 0.7444}))
    train_info = {**old_finetune["train"], "average": {"checkpoints": 9, "val_map50": 0.86, "val_map50_95": 0.5},
                  "config": {"mosaic": 0.5}}
    (run / "run" / "train_info.json").write_text(json.dumps(train_info))

    card.refresh_real_data("steel-defect", tmp_path / "out")
    fresh = json.loads((tmp_path / "steel-defect.metrics.json").read_text())["real_data"]
    assert [r["title"] for r in fresh] == [old_scratch["title"], old_finetune["title"]]
    assert fresh[0] == old_scratch  # the from-scratch step did not run: kept as recorded
    assert fresh[1]["eval"]["map50"] == 0.7512 and fresh[1]["best_checkpoint_eval"]["map50"] == 0.7401
    text = card.real_data_section({"real_data": fresh})
    assert "mAP50 **0.751**" in text and "mean of the 9 EMA checkpoints" in text and "scores mAP50 0.740" in text
    assert "NMS IoU 0.7 instead of 0.5" in text and "mAP50 0.763" in text
    assert "`--flips hv`" in text and "4 network passes" in text and "mAP50 0.769" in text
    assert "50 % of the samples 2x2 mosaics" in text and text.count("mosaics") == 1  # the recorded run had none
    assert "INT8 of that model (checked on val): mAP50 0.732" in text and "`stem/stem.0`" in text
    assert "on the test split, which picked nothing: mAP50 0.744 vs FP32 0.751" in text


def test_size_sweep_of_the_zoo_file_goes_into_its_card(tmp_path, monkeypatch) -> None:
    """bench/input_size.py --model times and scores the shipped dynamic-size file at other sizes (real runs, tiny
    counts); the card records that JSON only for the very file it describes, and renders the table from it."""
    import models.cards.detect as card

    name = "tomato-ripeness-fast"
    r = subprocess.run([sys.executable, "bench/input_size.py", "--model", str(ZOO / f"{name}.onnx"), "--sizes",
                        "192,256", "--count", "4", "--runs", "3", "--frame", "640x480"],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    sweep = json.loads(r.stdout.strip().splitlines()[-1])
    assert set(sweep["sizes"]) == {"192", "256"}
    assert sweep["sizes"]["256"]["tight_input"] == [256, 192] and sweep["sizes"]["192"]["tight_input"] == [192, 160]
    assert all(row["median_ms_1t"] > 0 and row["median_ms_1t_tight"] > 0 and 0 <= row["map50"] <= 1
               for row in sweep["sizes"].values())
    bad = subprocess.run([sys.executable, "bench/input_size.py", "--model", str(ZOO / "steel-defect.onnx")],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "fixed input size" in json.loads(bad.stdout.strip().splitlines()[-1])["error"]

    monkeypatch.setattr(card, "ZOO", tmp_path)
    (tmp_path / f"{name}.metrics.json").write_text((ZOO / f"{name}.metrics.json").read_text())
    with pytest.raises(ValueError, match="not of the zoo file"):
        card.record_size_sweep(name, {**sweep, "sha256": "0" * 64})
    card.record_size_sweep(name, sweep)
    metrics = json.loads((tmp_path / f"{name}.metrics.json").read_text())
    text = card.render_card(metrics)
    assert "## Other input sizes" in text and "| 256 (file default) |" in text and "| 192 |" in text
    assert f"| {sweep['sizes']['192']['map50']:.3f} |" in text and "192x160" in text


@pytest.mark.parametrize("tag", ["fp32", "int8"])
@pytest.mark.parametrize("name", [n for n in DETECTORS if n.startswith("tomato-ripeness")])
def test_tomato_files_carry_a_counting_threshold_that_counts_better_on_the_holdout(frames, name: str,
                                                                                   tag: str) -> None:
    """Calibrated on validation frames (seed 777); checked here on the card's holdout, which it never saw.
    tomato-ripeness-fast's threshold (0.33-0.34) is close to the old 0.35: there only the bias must shrink."""
    import numpy as np

    from models.detect.count_calibration import count_rows

    metrics = json.loads((ZOO / f"{name}.metrics.json").read_text())
    recorded = metrics["models"][tag]["count_calibration"]  # the card shows what the file carries
    det = OnnxDetector(ZOO / metrics["models"][tag]["file"], conf_threshold=0.05, agnostic_nms=True)
    assert float(det.metadata["count_conf"]) == recorded["count_conf"]
    data = frames(metrics["holdout"]["data"], metrics["holdout"]["seed"])
    scores = [det.detect(img).confidence for img, _, _ in data]
    calibrated, default = count_rows(scores, np.array([len(lab) for _, _, lab in data]),
                                     (recorded["count_conf"], 0.35))
    assert abs(calibrated["bias"]) < 0.5, calibrated  # unbiased within half a fruit per frame on unseen frames
    assert calibrated["mae"] <= default["mae"] + 0.1, (calibrated, default)  # never meaningfully worse
    if name == "tomato-ripeness":  # at 576 it finds barely visible fruit: 0.35 over-counts by ~2.7 per frame
        assert calibrated["mae"] < 0.6 * default["mae"] and default["bias"] > 2, (calibrated, default)


def test_card_of_a_fine_tuned_run_counts_both_stages() -> None:
    """A model continued from an earlier run (--init-from) reports both runs' steps, scales and minutes."""
    from models.cards.detect import render_card

    metrics = json.loads((ZOO / "tomato-ripeness-fast.metrics.json").read_text())
    base = metrics["train"]
    tuned = {**base, "steps": 1500, "epochs_done": 6.0, "train_seconds": 390.0,
             "config": {**base["config"], "scale_range": "(0.75, 2.0)", "lr": "0.0006"}, "base": base}
    text = render_card({**metrics, "train": tuned})
    total = (base["train_seconds"] + 390.0) / 60
    assert f"**{total:.1f} min training**" in text
    assert (f"{base['steps']} steps = {base['epochs_done']} epochs from random weights at scale 0.75-1.45 "
            f"({base['train_seconds'] / 60:.1f} min), then 1500 steps = 6.0 epochs from those weights at scale "
            "0.75-2, lr 0.0006 (6.5 min)") in text
