"""`fieldline model anomaly combine`: several anomaly models of one line as one ONNX file (real onnxruntime)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch

from edge_agent.detectors.anomaly import AnomalyDetector, read_anomaly_metadata
from models.anomaly.core import export_anomaly_onnx, onnx_scorer, synth_free, synth_groups
from models.anomaly.combine import combine_anomaly_models
from models.anomaly.seg import fit_segmenter

ZOO = Path(__file__).resolve().parents[2] / "models" / "zoo"
BIG, SMALL = 96, 48


def _down(x: np.ndarray, factor: int = BIG // SMALL) -> np.ndarray:
    """Area downsample by an integer factor (what the combined graph does to the smaller branch's input)."""
    n, _, s, _ = x.shape
    return x.reshape(n, 1, s // factor, factor, s // factor, factor).mean((3, 5)).astype(np.float32)


@pytest.fixture(scope="module")
def branches(tmp_path_factory: pytest.TempPathFactory):
    """Two small seg models of one synthetic line: input 48 (whole picture) and 96 (48-px crops, mirror views)."""
    torch.manual_seed(0)
    free = synth_free(21, 30, BIG)
    small = fit_segmenter(_down(free[:24]), _down(free[24:]), max_steps=30, batch=8, width=8, eval_every=15,
                          seed=0)
    big = fit_segmenter(free[:24], free[24:], max_steps=30, batch=8, width=8, eval_every=15, seed=1,
                        crop=SMALL, flips=True)
    folder = tmp_path_factory.mktemp("combine")
    return (export_anomaly_onnx(small, folder / "small.onnx", "line A", name="small"),
            export_anomaly_onnx(big, folder / "big.onnx", "line A", name="big"), folder)


def test_combined_model_is_the_mean_of_z_scored_maps_and_its_max(branches) -> None:
    """The one graph equals the recipe computed by hand from the two separate files."""
    small, big, folder = branches
    val = synth_free(22, 12, BIG)
    report = combine_anomaly_models([small, big], folder / "both.onnx", val)
    s_small, h_small = onnx_scorer(small)(_down(val))
    s_big, h_big = onnx_scorer(big)(val)
    stats = [(b["z_mean"], b["z_std"]) for b in report["branches"]]
    assert stats[0] == pytest.approx((s_small.mean(), s_small.std()), abs=1e-5)
    assert stats[1] == pytest.approx((s_big.mean(), s_big.std()), abs=1e-5)
    assert [b["input_size"] for b in report["branches"]] == [SMALL, BIG] and report["input_size"] == BIG

    defects = np.concatenate([x for x, _ in synth_groups(23, 2, BIG).values()])
    x = np.concatenate([val, defects])
    s_small, h_small = onnx_scorer(small)(_down(x))
    s_big, h_big = onnx_scorer(big)(x)
    up = np.stack([cv2.resize(h, (BIG, BIG), interpolation=cv2.INTER_LINEAR) for h in h_small])
    want_map = ((up - stats[0][0]) / stats[0][1] + (h_big - stats[1][0]) / stats[1][1]) / 2
    frame = BIG // 32
    want_score = want_map[:, frame:-frame, frame:-frame].reshape(len(x), -1).max(1)
    got_score, got_map = onnx_scorer(folder / "both.onnx")(x)
    scale = np.abs(want_map).max()
    np.testing.assert_allclose(got_map, want_map, atol=2e-3 * scale)
    np.testing.assert_allclose(got_score, want_score, atol=2e-3 * scale)
    # threshold: the 0.99 quantile of the combined defect-free validation scores
    assert report["threshold"] == pytest.approx(np.quantile(got_score[:len(val)], 0.99), abs=1e-3 * float(scale))

    meta = read_anomaly_metadata(folder / "both.onnx")
    assert meta["decoder"] == "anomaly" and meta["input_size"] == str(BIG) and meta["train_data"] == "line A"
    assert [b["name"] for b in json.loads(meta["branches"])] == ["small", "big"]


def test_edge_detector_runs_the_combined_file_and_boxes_what_it_flags(branches) -> None:
    """Same contract as one model: every picture scored over the threshold has a box (score = the map's max)."""
    small, big, folder = branches
    combine_anomaly_models([small, big], folder / "edge.onnx", synth_free(22, 12, BIG))
    det = AnomalyDetector(folder / "edge.onnx")
    assert det.input_size == BIG
    pictures = [(img[0] * 255).astype(np.uint8) for x, _ in synth_groups(24, 3, BIG).values() for img in x]
    flagged = 0
    for picture in pictures:
        frame = cv2.resize(cv2.cvtColor(picture, cv2.COLOR_GRAY2BGR), (200, 160))
        result = det.score(frame)
        assert result.heatmap.shape == (160, 200)
        if result.is_anomalous:
            flagged += 1
            assert len(det.detect(frame).xyxy) >= 1
    assert flagged >= 1


def test_combine_rejects_what_it_cannot_join(branches, tmp_path: Path) -> None:
    small, big, _ = branches
    val = synth_free(22, 6, BIG)
    with pytest.raises(ValueError, match="at least 2 models"):
        combine_anomaly_models([small], tmp_path / "x.onnx", val)
    with pytest.raises(ValueError, match="tomato-ripeness.onnx: not a FieldLine anomaly model"):
        combine_anomaly_models([small, ZOO / "tomato-ripeness.onnx"], tmp_path / "x.onnx", val)
    odd = onnx.load(str(big))  # the same graph, claiming an input size that 96 is not a multiple of
    for prop in odd.metadata_props:
        if prop.key == "fieldline.input_size":
            prop.value = "64"
    onnx.save(odd, tmp_path / "odd.onnx")
    with pytest.raises(ValueError, match="odd.onnx: input size 64 does not divide the largest input size 96"):
        combine_anomaly_models([small, big, tmp_path / "odd.onnx"], tmp_path / "x.onnx", val)
    with pytest.raises(ValueError, match=r"validation images of shape \[1,96,96\]"):
        combine_anomaly_models([small, big], tmp_path / "x.onnx", _down(val))
    assert not (tmp_path / "x.onnx").exists()


def test_cli_combine_and_quantize_points_to_the_branches(branches, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from models.cli.anomaly import anomaly_app

    small, big, _ = branches
    free = tmp_path / "free"
    free.mkdir()
    for i, img in enumerate(synth_free(25, 8, 160)):  # any picture size: resized like the edge does
        cv2.imwrite(str(free / f"{i:02d}.png"), (img[0] * 255).astype(np.uint8))
    out = tmp_path / "both.onnx"
    runner = CliRunner(env={"COLUMNS": "1000"})
    r = runner.invoke(anomaly_app, ["combine", "--model", str(small), "--model", str(big), "--images", str(free),
                                    "--out", str(out)])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["val_images"] == 8 and AnomalyDetector(out).threshold == pytest.approx(report["threshold"],
                                                                                         abs=1e-5)
    r = runner.invoke(anomaly_app, ["combine", "--model", str(small), "--model", str(ZOO / "tomato-ripeness.onnx"),
                                    "--images", str(free), "--out", str(tmp_path / "x.onnx")])
    assert r.exit_code == 2 and "not a FieldLine anomaly model" in r.output
    r = runner.invoke(anomaly_app, ["quantize", "--model", str(out), "--out", str(tmp_path / "q.onnx"),
                                    "--images", str(free)])
    assert r.exit_code == 2 and "quantize each branch model, then combine the INT8 files" in r.output


def test_quantize_api_refuses_a_combined_model(branches, tmp_path: Path) -> None:
    from models.anomaly.quantize import quantize_anomaly

    small, big, folder = branches
    val = synth_free(22, 6, BIG)
    combine_anomaly_models([small, big], tmp_path / "both.onnx", val)
    with pytest.raises(ValueError, match="both.onnx: a combined model; quantize each branch model"):
        quantize_anomaly(tmp_path / "both.onnx", tmp_path / "q.onnx", val, val, val)
    assert not (tmp_path / "q.onnx").exists()


def test_int8_branches_combine_as_the_quantize_error_advises(branches, tmp_path: Path) -> None:
    """INT8 branch files (QDQ, with onnxruntime's extra opset domains) join like FP32 ones."""
    from models.anomaly.quantize import quantize_anomaly

    small, big, _ = branches
    free = synth_free(26, 12, BIG)
    quantize_anomaly(small, tmp_path / "small8.onnx", _down(free[:8]), _down(free[8:]), _down(free[8:]), force=True)
    quantize_anomaly(big, tmp_path / "big8.onnx", free[:8], free[8:], free[8:], force=True)
    report = combine_anomaly_models([tmp_path / "small8.onnx", tmp_path / "big8.onnx"], tmp_path / "both8.onnx",
                                    synth_free(22, 12, BIG))
    det = AnomalyDetector(tmp_path / "both8.onnx")
    assert det.threshold == pytest.approx(report["threshold"], abs=1e-5)
    heatmap = det.score((free[0, 0] * 255).astype(np.uint8)).heatmap
    assert heatmap.shape == (BIG, BIG) and np.isfinite(heatmap).all()
