"""The toolkit's train -> export -> quantize -> eval path, for real (torch + onnxruntime + pycocotools).

The short training run on a tiny generated YOLO dataset (``trained``, tests/models/conftest.py) is shared by the
tests; INT8 tests are in test_quantize.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
# the train extra is in the test environment (scripts/test.sh): a missing or broken torch fails, never skips
import torch  # noqa: F401

from edge_agent.detectors import ModelLoadError, OnnxDetector
from models.data.sources import DataSource
from models.detect.evaluate import coco_map, evaluate
from models.detect.export import export
from models.detect.train import TrainConfig, train
from tests.support.shapes import SHAPES

ROOT = Path(__file__).resolve().parents[2]


def test_training_reduces_loss_and_validates(trained: dict) -> None:
    info = trained["info"]
    first, last = info["first_losses"][0]["loss"], np.mean([x["loss"] for x in info["loss_log"][-5:]])
    assert last < 0.6 * first, (first, last)
    assert info["parameters"] < 1_000_000
    assert info["labels"] == SHAPES
    # validation mAP during training (through the ONNX edge path), every 10 epochs as configured, on any CPU
    assert [v["epoch"] for v in info["val_log"]] == [9, 19, 29]
    assert info["best_val_map50"] == max(v["map50"] for v in info["val_log"])
    assert info["best_val_map50"] > 0.5


def test_export_metadata_round_trip_and_detection(trained: dict) -> None:
    det = OnnxDetector(trained["onnx"], conf_threshold=0.3)
    assert det.labels == tuple(SHAPES)
    assert det.input_size == 160
    meta = det.metadata
    assert meta["name"] == "shapes" and meta["version"] == "0.3.0"
    assert meta["train_data_hash"] == trained["info"]["train_data_hash"]
    assert meta["decoder"] == "fieldline" and meta["normalization"] == "rgb_0_1"
    # a fresh image the net never saw: one big red square
    img = np.full((120, 160, 3), 115, np.uint8)
    cv2.rectangle(img, (50, 30), (84, 64), (40, 40, 220), -1)
    d = det.detect(img)
    assert len(d) >= 1
    best = int(np.argmax(d.confidence))
    assert d.label_names()[best] == "square"
    x1, y1, x2, y2 = d.xyxy[best]
    inter = max(0, min(x2, 85) - max(x1, 50)) * max(0, min(y2, 65) - max(y1, 30))
    assert inter / ((x2 - x1) * (y2 - y1) + 35 * 35 - inter) > 0.5


def test_resume_continues_steps_and_keeps_history(trained: dict, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained["tmp"] / "run", run)
    before = trained["info"]
    cfg = TrainConfig(**{**trained["cfg"].__dict__, "out_dir": run, "epochs": 33})
    train(cfg, progress=False, resume=True)
    after = json.loads((run / "train_info.json").read_text())
    assert after["steps"] == before["steps"] + 3 * (before["steps"] // 30)  # three more epochs, not a restart
    assert after["train_seconds"] > before["train_seconds"]
    assert after["val_log"][:len(before["val_log"])] == before["val_log"]
    assert after["first_losses"] == before["first_losses"]


def test_a_step_budget_ends_the_run_and_the_schedule_on_that_step(trained: dict, tmp_path: Path, capsys,
                                                                  monkeypatch) -> None:
    import models.detect.train as train_module

    monkeypatch.setattr(train_module, "PLAIN_LINE_S", 0.0)  # a progress line after every step, not every 30 s
    cfg = TrainConfig(out_dir=tmp_path / "run", data=str(trained["data"]), fmt="yolo", input_size=96, images=0,
                      batch=8, epochs=300, time_budget_s=float("inf"), max_steps=12, val_interval_s=1e9, lr=4e-3,
                      width=16, head_width=16, threads=1)
    train(cfg, progress=True)
    # stdout is captured (not a terminal): no live bar, plain progress lines, the last one at the end of the run
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("train ep ")]
    assert lines and "step 12 loss " in lines[-1] and lines[-1].endswith("ETA 0:00")
    steps_printed = [int(ln.split(" step ")[1].split()[0]) for ln in lines]
    assert steps_printed[:12] == list(range(1, 13))  # lines come from inside epochs, not only at their ends
    info = json.loads((tmp_path / "run" / "train_info.json").read_text())
    assert info["steps"] == 12 and info["config"]["max_steps"] == "12"
    lr_at = {x["step"]: x["lr"] for x in info["loss_log"]}
    # warm-up is 1 step (a tenth of the run); the 10th step (index 9) is 9/12 down the cosine, by steps alone
    assert lr_at[10] == pytest.approx(4e-3 * (0.02 + 0.98 * 0.5 * (1 + np.cos(np.pi * 9 / 12))), rel=1e-6)


def test_weight_average_is_the_running_mean() -> None:
    import torch

    from models.detect.train import WeightAverage

    avg = WeightAverage()
    for k in range(3):
        avg.add({"w": torch.full((2, 2), float(k * 3)), "n": torch.tensor(k)})
    assert torch.allclose(avg.state["w"], torch.full((2, 2), 3.0))  # (0 + 3 + 6) / 3
    assert int(avg.state["n"]) == 2 and avg.count == 3  # counters take the last value


def test_average_from_writes_a_validated_average_checkpoint(trained: dict, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained["tmp"] / "run", run)
    # resumed for 4 more epochs of 34: the validations in the last 8 % of the run are averaged
    cfg = TrainConfig(**{**trained["cfg"].__dict__, "out_dir": run, "epochs": 34, "average_from": 0.92})
    train(cfg, progress=False, resume=True)
    info = json.loads((run / "train_info.json").read_text())
    averaged = info["average"]
    late = [v for v in info["val_log"] if v["epoch"] >= 30]
    assert averaged["checkpoints"] == len(late) >= 1
    assert averaged["val_map50"] > 0.5
    onnx_path = export(run / "average.pt", tmp_path / "avg.onnx", name="shapes", version="0.3.1")
    img = np.full((120, 160, 3), 115, np.uint8)
    cv2.circle(img, (80, 60), 16, (220, 80, 30), -1)
    d = OnnxDetector(onnx_path, conf_threshold=0.3).detect(img)
    assert "disc" in d.label_names()


def _raw_detections(path: Path, x: np.ndarray) -> np.ndarray:
    """The ONNX file's ``detections`` [N, 4+C] for an input tensor (no letterbox, no NMS)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"images": x})[0][0]


def _mirror_cells(a: np.ndarray, size: int, dims: list[int]) -> np.ndarray:
    """Reorder per-cell rows [N, ...] of the strides-8/16 grid as if the picture had been mirrored."""
    out, start = [], 0
    for stride in (8, 16):
        n = size // stride
        level = a[start:start + n * n].reshape(n, n, *a.shape[1:])
        if 3 in dims:
            level = level[:, ::-1]
        if 2 in dims:
            level = level[::-1]
        out.append(level.reshape(n * n, *a.shape[1:]))
        start += n * n
    return np.concatenate(out)


def _mirror_boxes(xyxy: np.ndarray, size: int, dims: list[int]) -> np.ndarray:
    b = xyxy.copy()
    if 3 in dims:
        b[:, [0, 2]] = size - xyxy[:, [2, 0]]
    if 2 in dims:
        b[:, [1, 3]] = size - xyxy[:, [3, 1]]
    return b


def test_flip_averaged_export_is_the_mean_of_the_mirrored_passes(trained: dict, tmp_path: Path) -> None:
    plain = trained["onnx"]
    hv = export(trained["best"], tmp_path / "hv.onnx", name="shapes", version="0.3.0", flips="hv")
    h = export(trained["best"], tmp_path / "h.onnx", name="shapes", version="0.3.0", flips="h")
    assert OnnxDetector(hv).metadata["flips"] == "hv" and OnnxDetector(plain).metadata["flips"] == "none"
    x = np.random.default_rng(5).random((1, 3, 160, 160), dtype=np.float32)
    passes = [[], [3], [2], [2, 3]]
    # each mirrored pass, its cells and boxes put back into the original picture's frame
    aligned = []
    for dims in passes:
        raw = _mirror_cells(_raw_detections(plain, np.ascontiguousarray(np.flip(x, tuple(dims)))), 160, dims)
        aligned.append(np.concatenate([_mirror_boxes(raw[:, :4], 160, dims), raw[:, 4:]], 1))
    np.testing.assert_allclose(_raw_detections(hv, x), np.mean(aligned, 0), atol=2e-4)
    np.testing.assert_allclose(_raw_detections(h, x), np.mean(aligned[:2], 0), atol=2e-4)
    # so the four-way file sees a mirrored picture as the same picture; the plain one does not
    for path, symmetric in ((hv, True), (plain, False)):
        a = _raw_detections(path, x)
        b = _mirror_cells(_raw_detections(path, np.ascontiguousarray(x[..., ::-1])), 160, [3])
        b = np.concatenate([_mirror_boxes(b[:, :4], 160, [3]), b[:, 4:]], 1)
        assert np.allclose(a, b, atol=2e-4) == symmetric
    with pytest.raises(ValueError, match="unknown flips 'x'"):
        export(trained["best"], tmp_path / "bad.onnx", flips="x")


def test_resume_without_checkpoint_is_a_clear_error(tmp_path: Path, trained: dict) -> None:
    cfg = TrainConfig(**{**trained["cfg"].__dict__, "out_dir": tmp_path / "empty"})
    with pytest.raises(FileNotFoundError, match="last.pt: nothing to resume"):
        train(cfg, progress=False, resume=True)


def test_init_from_copies_weights_and_class_rows_by_label_name(trained: dict) -> None:
    import torch

    from models.detect.net import TomatoNet
    from models.detect.train import load_initial_weights

    source = torch.load(trained["best"], map_location="cpu", weights_only=False)
    cfg = trained["cfg"]
    model = TomatoNet(2, cfg.width, cfg.head_width)
    fresh_bias = model.state_dict()["cls.bias"].clone()
    info = load_initial_weights(model, trained["best"], ("disc", "star"), cfg)
    own = model.state_dict()
    assert info["labels_copied"] == ["disc"] and info["source_labels"] == SHAPES
    torch.testing.assert_close(own["stem.0.0.weight"], source["ema"]["stem.0.0.weight"])
    torch.testing.assert_close(own["cls.weight"][0], source["ema"]["cls.weight"][SHAPES.index("disc")])
    torch.testing.assert_close(own["cls.bias"][1], fresh_bias[1])  # "star" is new: fresh initialisation
    wider = TrainConfig(**{**cfg.__dict__, "width": cfg.width * 2})
    with pytest.raises(ValueError, match="width 32 differs from this run's 64"):
        load_initial_weights(TomatoNet(2, wider.width, wider.head_width), trained["best"], ("disc",), wider)
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        load_initial_weights(model, trained["tmp"] / "missing.pt", ("disc",), cfg)


def test_fine_tuning_starts_from_the_checkpoint_not_from_scratch(trained: dict, tmp_path: Path) -> None:
    # a small learning rate: with one epoch there is no warm-up, and fresh AdamW moments move every weight
    # by about the learning rate on the first steps, whatever the gradient (the recipes warm up 150 steps)
    common = {**trained["cfg"].__dict__, "epochs": 1, "val_every_epochs": 1, "lr": 2e-4}
    scratch = TrainConfig(**{**common, "out_dir": tmp_path / "scratch"})
    tuned = TrainConfig(**{**common, "out_dir": tmp_path / "tuned", "init_from": trained["best"]})
    train(scratch, progress=False)
    train(tuned, progress=False)
    s = json.loads((tmp_path / "scratch" / "train_info.json").read_text())
    t = json.loads((tmp_path / "tuned" / "train_info.json").read_text())
    assert t["init_from"]["labels_copied"] == SHAPES and s["init_from"] is None
    assert t["first_losses"][0]["loss"] < 0.5 * s["first_losses"][0]["loss"]
    source_map, tuned_map, scratch_map = (trained["info"]["best_val_map50"], t["val_log"][0]["map50"],
                                          s["val_log"][0]["map50"])
    assert tuned_map > 0.8 * source_map, (source_map, tuned_map)
    assert scratch_map < 0.5 * tuned_map, (scratch_map, tuned_map)


def test_eval_on_dataset_split_writes_plots(trained: dict, tmp_path: Path) -> None:
    src = DataSource.parse(str(trained["data"]), "yolo")
    res = evaluate(trained["onnx"], src, split="val", plots_dir=tmp_path / "plots")
    assert res["images"] == src.split_size("val") > 0
    assert 0.0 <= res["map50"] <= 1.0 and set(res["per_class"]) == set(SHAPES)
    for key in ("pr_curves", "confusion_matrix"):
        img = cv2.imread(res["plots"][key])
        assert img is not None and img.shape[0] > 200


def test_cli_export_at_another_input_size_records_it_and_still_detects(trained: dict, tmp_path: Path) -> None:
    out = tmp_path / "at224.onnx"
    r = subprocess.run([sys.executable, "-m", "fieldline.cli", "model", "export", "--checkpoint", str(trained["best"]),
                        "--out", str(out), "--name", "shapes", "--input-size", "224"],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    det = OnnxDetector(out, conf_threshold=0.3)
    assert det.input_size == 224 and det.metadata["input_size"] == "224"
    img = np.full((120, 160, 3), 115, np.uint8)
    cv2.rectangle(img, (50, 30), (84, 64), (40, 40, 220), -1)
    d = det.detect(img)
    best = int(np.argmax(d.confidence))
    assert d.label_names()[best] == "square"
    assert abs(float(d.xyxy[best][0]) - 50) < 8 and abs(float(d.xyxy[best][2]) - 85) < 8  # image pixels, not input
    bad = subprocess.run([sys.executable, "-m", "fieldline.cli", "model", "export", "--checkpoint",
                          str(trained["best"]), "--out", str(tmp_path / "bad.onnx"), "--input-size", "200"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert bad.returncode == 2 and "--input-size 200" in bad.stderr and not (tmp_path / "bad.onnx").exists()


def _red_square_image() -> np.ndarray:
    img = np.full((120, 160, 3), 115, np.uint8)
    cv2.rectangle(img, (50, 30), (84, 64), (40, 40, 220), -1)
    return img


def _best_box(det: OnnxDetector, img: np.ndarray) -> tuple[str, np.ndarray]:
    d = det.detect(img)
    assert len(d), "no detection"
    best = int(np.argmax(d.confidence))
    return d.label_names()[best], d.xyxy[best]


def test_dynamic_size_export_runs_at_other_sizes_and_tight_letterboxes(trained: dict, tmp_path: Path) -> None:
    dynamic = trained["onnx"]  # export() writes dynamic-size files by default
    dims = onnx.load(str(dynamic)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == [1, 3, "height", "width"]
    fixed = export(trained["best"], tmp_path / "fixed.onnx", name="shapes", dynamic_size=False)
    fixed_dims = onnx.load(str(fixed)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in fixed_dims] == [1, 3, 160, 160]

    auto, square = OnnxDetector(dynamic, 0.3), OnnxDetector(dynamic, 0.3, letterbox="square")
    assert auto.dynamic_size and auto.letterbox == "tight" and auto.metadata["size_multiple"] == "32"
    assert auto.input_canvas(160, 120) == (160, 128) and square.input_canvas(160, 120) == (160, 160)
    assert auto.input_canvas(1280, 720) == (160, 96)  # 160x90 picture, padded to the next multiple of 32
    fixed_det = OnnxDetector(fixed, 0.3)
    assert not fixed_det.dynamic_size and fixed_det.letterbox == "square"
    img = _red_square_image()
    # the same graph at its own square size: the very same detections as the fixed-size file
    a, b = fixed_det.detect(img), square.detect(img)
    assert len(a) == len(b) and np.allclose(a.xyxy, b.xyxy, atol=1e-3) and np.allclose(a.confidence, b.confidence,
                                                                                         atol=1e-5)
    for det in (auto, OnnxDetector(dynamic, 0.3, input_size=224), OnnxDetector(dynamic, 0.3, input_size=224,
                                                                                letterbox="square")):
        label, (x1, y1, x2, y2) = _best_box(det, img)
        assert label == "square", det.input_size
        assert abs(float(x1) - 50) < 8 and abs(float(y1) - 30) < 8 and abs(float(x2) - 85) < 8, (det.input_size,
                                                                                                  det.letterbox)

    with pytest.raises(ModelLoadError, match=r"fixed.onnx: model.input_size: needs a dynamic-size model.*160x160"):
        OnnxDetector(fixed, input_size=224)
    with pytest.raises(ModelLoadError, match="model.letterbox: tight: needs a dynamic-size model"):
        OnnxDetector(fixed, letterbox="tight")
    assert OnnxDetector(fixed, input_size=160).input_size == 160  # its own size is no change
    with pytest.raises(ModelLoadError, match="model.input_size 200 must be a multiple of 32"):
        OnnxDetector(dynamic, input_size=200)


def test_cli_eval_runs_a_dynamic_model_at_another_size(trained: dict) -> None:
    base = [sys.executable, "-m", "fieldline.cli", "model", "eval", "--model", str(trained["onnx"]), "--data",
            str(trained["data"]), "--format", "yolo", "--split", "val", "--json"]
    r = subprocess.run([*base, "--input-size", "224"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["input_size"] == 224 and res["letterbox"] == "tight" and res["dynamic_size"] is True
    assert res["map50"] > 0.3  # the shapes are still found at 1.4x their training scale
    bad = subprocess.run([*base, "--input-size", "100"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert bad.returncode == 2 and "model.input_size 100 must be a multiple of 32" in bad.stderr


def test_training_crop_defaults_and_the_cli_canvas_flag(trained: dict, tmp_path: Path) -> None:
    assert TrainConfig(input_size=320).canvas() == 256  # 0.8 x input, a multiple of 32
    assert TrainConfig(input_size=384).canvas() == 320 and TrainConfig(input_size=256).canvas() == 256
    assert TrainConfig(input_size=384, train_canvas=256).canvas() == 256
    r = subprocess.run([sys.executable, "-m", "fieldline.cli", "model", "train", "--data", str(trained["data"]),
                        "--format", "yolo", "--input-size", "128", "--canvas", "64", "--steps", "2", "--batch", "4",
                        "--width", "16", "--head-width", "16", "--threads", "1", "--out-dir", str(tmp_path / "o")],
                       capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr
    info = json.loads((tmp_path / "o" / "train_info.json").read_text())
    assert info["steps"] == 2 and info["input_size"] == 128 and info["config"]["train_canvas"] == "64"


def test_cli_train_rejects_bad_input(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "fieldline.cli", "model", "train", *args,
                               "--out-dir", str(tmp_path / "o")], capture_output=True, text=True, cwd=ROOT,
                              timeout=120)

    r = run("--data", str(tmp_path / "missing"), "--format", "yolo")
    assert r.returncode == 2 and "missing: no such file or folder" in r.stderr
    r = run("--data", str(tmp_path), "--format", "yolo")
    assert r.returncode == 2 and str(tmp_path) in r.stderr
    r = run("--data", "synth:nope")
    assert r.returncode == 2 and "unknown synthetic source" in r.stderr
    r = run("--input-size", "100")
    assert r.returncode == 2 and "multiple of 32" in r.stderr
    r = run("--input-size", "320", "--canvas", "352")
    assert r.returncode == 2 and "--canvas 352" in r.stderr and "at most --input-size 320" in r.stderr
    r = run("--arch", "huge")
    assert r.returncode == 2 and "unknown arch 'huge'" in r.stderr
    r = run("--assigner", "atss")
    assert r.returncode == 2 and "--assigner 'atss'" in r.stderr
    r = run("--levels", "4")
    assert r.returncode == 2 and "--levels" in r.stderr and "less than or equal to 3" in r.stderr


def test_fast_arch_trains_records_its_shape_and_exports_relu_layers(trained: dict, tmp_path: Path) -> None:
    import torch

    from models.detect.export import load_checkpoint
    from models.detect.net import ARCHS, NetSpec

    fast = {**ARCHS["fast"].to_dict(), "width": 32, "head_width": 32}
    cfg = TrainConfig(**{**trained["cfg"].__dict__, **fast, "out_dir": tmp_path / "run", "epochs": 4,
                         "val_every_epochs": 1})
    best = train(cfg, progress=False)
    info = json.loads((tmp_path / "run" / "train_info.json").read_text())
    assert info["first_losses"][0]["loss"] > np.mean([x["loss"] for x in info["loss_log"][-3:]])
    ckpt = torch.load(best, map_location="cpu", weights_only=True)
    assert NetSpec.from_dict(ckpt) == NetSpec(**fast)
    net, loaded = load_checkpoint(best)
    assert net.spec == NetSpec(**fast) and loaded["act"] == "relu" and loaded["stem"] == "patch"
    path = export(best, tmp_path / "fast.onnx", name="shapes", version="0.4.0")
    ops = [(n.op_type, n.name.count("/") >= 2) for n in onnx.load(str(path)).graph.node]
    assert ("Relu", True) in ops and ("Sigmoid", True) not in ops  # only the box decode has a sigmoid
    # softplus runs as Exp -> Add -> Log (onnxruntime's Softplus kernel is scalar); outputs compared below
    assert "Softplus" not in {op for op, _ in ops} and {"Exp", "Log"} <= {op for op, _ in ops}
    stem = [n for n in onnx.load(str(path)).graph.node if n.op_type == "Conv"][0]
    assert {a.name: list(a.ints) for a in stem.attribute}["strides"] == [4, 4]  # the 4x4 patch stem
    x = np.random.default_rng(1).random((1, 3, 160, 160), dtype=np.float32)
    net.export_mode = True
    with torch.no_grad():
        np.testing.assert_allclose(_raw_detections(path, x), net(torch.from_numpy(x))[0].numpy(), atol=1e-4)
    assert load_checkpoint(trained["best"])[0].spec == NetSpec(width=32, head_width=32)  # v1 by default
    v1 = torch.load(trained["best"], map_location="cpu", weights_only=True)
    legacy = tmp_path / "legacy.pt"  # checkpoints written before NetSpec hold no act/stem/head_depth: all v1
    torch.save({k: v1[k] for k in ("ema", "labels", "input_size", "width", "head_width")}, legacy)
    assert load_checkpoint(legacy)[0].spec == NetSpec(width=32, head_width=32)
    from models.detect.train import load_initial_weights
    from models.detect.net import TomatoNet

    with pytest.raises(ValueError, match="act relu differs from this run's silu"):
        load_initial_weights(TomatoNet(2, 32, 32), best, ("disc",), trained["cfg"])
    with pytest.raises(ValueError, match="unknown arch 'huge'"):
        TrainConfig.arch_fields("huge")


def test_a_stride_32_level_grows_from_a_two_level_checkpoint_and_exports(trained: dict, tmp_path: Path) -> None:
    import torch

    from models.cards.detect import _net_fields, _net_text
    from models.detect.export import load_checkpoint
    from models.detect.net import NetSpec, TomatoNet
    from models.detect.train import load_initial_weights

    cfg = TrainConfig(**{**trained["cfg"].__dict__, "levels": 3, "out_dir": tmp_path / "run", "epochs": 2,
                         "val_every_epochs": 1, "lr": 2e-4, "init_from": trained["best"]})
    source = torch.load(trained["best"], map_location="cpu", weights_only=False)["ema"]
    grown = TomatoNet(len(SHAPES), spec=cfg.spec())
    fresh = grown.state_dict()["fuse5b.pw.0.weight"].clone()
    load_initial_weights(grown, trained["best"], SHAPES, cfg)
    own = grown.state_dict()
    torch.testing.assert_close(own["head.0.pw.0.weight"], source["head.0.pw.0.weight"])  # the shared head
    torch.testing.assert_close(own["level_scale"][:2], source["level_scale"])
    assert own["level_scale"][2] == 1.0  # the new level starts at scale 1 ...
    torch.testing.assert_close(own["fuse5b.pw.0.weight"], fresh)  # ... and with fresh layers
    best = train(cfg, progress=False)
    info = json.loads((tmp_path / "run" / "train_info.json").read_text())
    assert int(info["config"]["levels"]) == 3 and info["init_from"]["labels_copied"] == SHAPES
    assert info["val_log"][0]["map50"] > 0.5 * trained["info"]["best_val_map50"]  # started from the checkpoint
    net, _ = load_checkpoint(best)
    assert net.spec == NetSpec(width=32, head_width=32, levels=3) and net.strides == (8, 16, 32)
    path = export(best, tmp_path / "p5.onnx", name="shapes", version="0.5.0")
    x = np.random.default_rng(2).random((1, 3, 160, 160), dtype=np.float32)
    raw = _raw_detections(path, x)
    assert raw.shape == (20 * 20 + 10 * 10 + 5 * 5, 4 + len(SHAPES))  # the stride-32 cells follow the others
    net.export_mode = True
    with torch.no_grad():
        np.testing.assert_allclose(raw, net(torch.from_numpy(x))[0].numpy(), atol=1e-4)
    assert "outputs at strides 8, 16 and 32" in _net_text(_net_fields(info))
    assert "strides" not in _net_text(_net_fields(trained["info"]))
    with pytest.raises(ValueError, match="levels 3 differs from this run's 2"):  # a level is never dropped
        load_initial_weights(TomatoNet(len(SHAPES), 32, 32), best, SHAPES, trained["cfg"])
    with pytest.raises(ValueError, match="2 \\(strides 8, 16\\) or 3"):
        TomatoNet(2, spec=NetSpec(levels=4))


def test_coco_map_matches_a_hand_computed_fixture() -> None:
    """Two GT boxes; detections TP(0.9), FP(0.8), TP(0.7) -> precision 1, .5, .667 at recall .5, .5, 1.

    COCO's 101-point interpolation: recall 0..0.5 (51 points) at precision 1, 0.51..1 (50 points) at 2/3
    -> AP = (51 + 50 * 2/3) / 101 = 0.8350 at every IoU threshold (the TPs are exact boxes).
    """
    gts = [(np.array([[10, 10, 50, 50], [100, 100, 140, 150]], np.float32), ["a", "a"])]
    dets = [(np.array([[10, 10, 50, 50], [200, 10, 240, 50], [100, 100, 140, 150]], np.float32),
             np.array([0.9, 0.8, 0.7]), ["a", "a", "a"])]
    res = coco_map(gts, dets, ("a",))
    assert res["map50"] == pytest.approx((51 + 50 * 2 / 3) / 101, abs=1e-4)
    assert res["map50_95"] == pytest.approx(res["map50"], abs=1e-4)
    # stretch the second TP so its IoU is 0.58: a TP at IoU thresholds 0.5 and 0.55 only (2 of 10)
    dets2 = [(np.array([[10, 10, 50, 50], [200, 10, 240, 50], [100, 100, 140, 100 + 50 / 0.58]], np.float32),
              np.array([0.9, 0.8, 0.7]), ["a", "a", "a"])]
    res2 = coco_map(gts, dets2, ("a",))
    assert res2["map50"] == pytest.approx(res["map50"], abs=1e-4)
    only_first = 51 / 101  # from IoU 0.6 on, the third detection is an FP: recall stops at 0.5
    assert res2["map50_95"] == pytest.approx((2 * res["map50"] + 8 * only_first) / 10, abs=1e-3)


def test_class_agnostic_map_separates_finding_from_classifying() -> None:
    """Both fruits found with exact boxes but with each other's class: class-wise mAP50 0, agnostic 1."""
    from models.detect.evaluate import class_agnostic_map50

    gts = [(np.array([[10, 10, 50, 50], [100, 100, 140, 150]], np.float32), ["a", "b"])]
    swapped = [(gts[0][0].copy(), np.array([0.9, 0.8]), ["b", "a"])]
    assert coco_map(gts, swapped, ("a", "b"))["map50"] == 0.0
    assert class_agnostic_map50(gts, swapped) == pytest.approx(1.0)
    one_missed = [(gts[0][0][:1].copy(), np.array([0.9]), ["b"])]  # recall 0.5 at precision 1
    assert class_agnostic_map50(gts, one_missed) == pytest.approx(51 / 101, abs=1e-4)


def test_last_checkpoint_exports_like_best_and_old_training_states_get_a_clear_error(trained: dict,
                                                                                    tmp_path: Path) -> None:
    import torch
    from typer.testing import CliRunner

    from models.cli.app import model_app

    last = trained["cfg"].out_dir / "last.pt"
    out = export(last, tmp_path / "last.onnx", name="shapes", version="0.3.1")
    assert OnnxDetector(out).labels == tuple(SHAPES)  # the network shape and labels travel in last.pt too
    state = torch.load(last, map_location="cpu", weights_only=False)
    old = {k: v for k, v in state.items() if k not in ("width", "head_width", "act", "stem", "head_depth")}
    torch.save(old, tmp_path / "old-last.pt")  # as written before last.pt recorded the shape
    r = CliRunner().invoke(model_app, ["export", "--checkpoint", str(tmp_path / "old-last.pt"),
                                       "--out", str(tmp_path / "x.onnx")])
    assert r.exit_code == 2 and "old-last.pt: a training-state checkpoint" in r.output and "best.pt" in r.output
