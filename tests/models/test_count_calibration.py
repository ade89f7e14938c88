"""The counting threshold: picked on labelled frames, stored in the file, used by the edge agent when unset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from edge_agent.config import AgentConfig
from edge_agent.detectors import ModelLoadError, OnnxDetector, build_detector
from models.cli import model_app
from models.count_calibration import (COUNT_CONF_KEY, SUMMARY_KEY, best_row, calibrate_count_conf, count_rows,
                                      write_count_conf)
from models.export import set_metadata

ZOO = Path(__file__).resolve().parents[2] / "models" / "zoo"
FAST = ZOO / "tomato-ripeness-fast.onnx"


def test_rows_and_pick_by_hand() -> None:
    # frame 1: three boxes (0.9, 0.6, 0.2), two labelled; frame 2: 0.8 and 0.3, one labelled
    scores = [np.array([0.9, 0.6, 0.2]), np.array([0.8, 0.3])]
    rows = {r["conf"]: r for r in count_rows(scores, np.array([2, 1]), (0.1, 0.25, 0.5, 0.7, 0.95))}
    assert rows[0.1] == {"conf": 0.1, "mean_count": 2.5, "bias": 1.0, "mae": 1.0, "exact": 0.0}
    assert rows[0.25]["bias"] == 0.5 and rows[0.25]["exact"] == 0.5  # frame 1 counts 2, frame 2 counts 2
    assert rows[0.5] == {"conf": 0.5, "mean_count": 1.5, "bias": 0.0, "mae": 0.0, "exact": 1.0}
    assert rows[0.7]["bias"] == -0.5 and rows[0.95]["mean_count"] == 0.0
    assert best_row(list(rows.values()))["conf"] == 0.5
    # equal absolute error: the smaller bias wins, then the lower threshold
    tie = [{"conf": 0.3, "mae": 1.0, "bias": 1.0}, {"conf": 0.6, "mae": 1.0, "bias": -0.2},
           {"conf": 0.7, "mae": 1.0, "bias": 0.2}]
    assert best_row(tie)["conf"] == 0.6


def _without_calibration(src: Path, dst: Path) -> Path:
    proto = onnx.load(str(src))
    keep = [p for p in proto.metadata_props if p.key not in (COUNT_CONF_KEY, SUMMARY_KEY)]
    del proto.metadata_props[:]
    proto.metadata_props.extend(keep)
    onnx.save(proto, str(dst))
    return dst


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory) -> tuple[Path, dict]:
    model = _without_calibration(FAST, tmp_path_factory.mktemp("cal") / "fast.onnx")
    result = calibrate_count_conf(model, "synth:tomato", count=40, seed=31)
    write_count_conf(model, result)
    return model, result


def test_calibration_counts_closer_than_the_default_and_lands_in_the_file(calibrated) -> None:
    model, res = calibrated
    assert 0.1 <= res["count_conf"] <= 0.9 and res["images"] == 40 and res["seed"] == 31
    assert res["nms"] == "agnostic" and res["letterbox"] == "tight"  # as the edge agent runs the file
    assert res["mae"] <= res["uncalibrated"]["mae"]  # the pick is the best of a grid that holds 0.35
    assert res["labelled_per_image"] > 3  # synthetic greenhouse frames hold several fruits each
    assert set(res["per_class_bias"]) == {"green", "half_ripe", "ripe"}
    meta = {p.key: p.value for p in onnx.load(str(model)).metadata_props}
    assert float(meta[COUNT_CONF_KEY]) == pytest.approx(res["count_conf"])
    assert json.loads(meta[SUMMARY_KEY])["mae"] == res["mae"]
    det = OnnxDetector(model, conf_threshold=None)
    assert det.conf_threshold == pytest.approx(res["count_conf"]) and det.conf_source == "file"
    assert OnnxDetector(model, conf_threshold=0.2).conf_source == "config"
    uncalibrated = OnnxDetector(_without_calibration(FAST, model.with_name("plain.onnx")), conf_threshold=None)
    assert (uncalibrated.conf_threshold, uncalibrated.conf_source) == (0.35, "default")


def test_edge_config_without_a_threshold_uses_the_file_and_an_explicit_one_wins(calibrated, tmp_path) -> None:
    model, res = calibrated

    def agent(extra: dict) -> AgentConfig:
        return AgentConfig.model_validate({
            "device": "d1", "site": "farm", "data_dir": str(tmp_path), "model": {"path": str(model), **extra},
            "cameras": [{"name": "c", "source": {"type": "synthetic", "seed": 1}, "zone": {"id": "shed-01"}}]})

    assert build_detector(agent({}).model).conf_threshold == pytest.approx(res["count_conf"])
    assert build_detector(agent({"conf_threshold": 0.6}).model).conf_threshold == 0.6


def test_writing_refuses_a_file_changed_since_calibration(calibrated, tmp_path) -> None:
    model, res = calibrated  # `model` was rewritten by write_count_conf: its sha256 is not the calibrated one
    with pytest.raises(ValueError, match="changed since it was calibrated"):
        write_count_conf(model, res)


def test_bad_threshold_metadata_is_a_clear_load_error(tmp_path) -> None:
    bad = _without_calibration(FAST, tmp_path / "bad.onnx")
    proto = onnx.load(str(bad))
    set_metadata(proto, {COUNT_CONF_KEY: "lots"})
    onnx.save(proto, str(bad))
    with pytest.raises(ModelLoadError, match=r"bad\.onnx: bad fieldline\.count_conf metadata 'lots'"):
        OnnxDetector(bad, conf_threshold=None)
    assert OnnxDetector(bad, conf_threshold=0.3).conf_threshold == 0.3  # an explicit threshold needs none


def test_calibrate_cli_dry_run_and_write(tmp_path) -> None:
    model = _without_calibration(FAST, tmp_path / "m.onnx")
    plain = model.read_bytes()
    runner = CliRunner()
    dry = runner.invoke(model_app, ["calibrate", "--model", str(model), "--count", "12", "--seed", "5",
                                    "--dry-run", "--json"], catch_exceptions=False)
    assert dry.exit_code == 0, dry.output
    assert "| 0.35 |" in dry.output and "(picked)" in dry.output
    res = json.loads(dry.output.strip().splitlines()[-1])
    assert res["input_size"] == 256  # the file's own
    other = runner.invoke(model_app, ["calibrate", "--model", str(model), "--count", "4", "--input-size", "320",
                                      "--dry-run", "--json"], catch_exceptions=False)
    assert json.loads(other.output.strip().splitlines()[-1])["input_size"] == 320
    assert model.read_bytes() == plain  # --dry-run leaves the file alone
    wet = runner.invoke(model_app, ["calibrate", "--model", str(model), "--count", "12", "--seed", "5"],
                        catch_exceptions=False)
    assert wet.exit_code == 0 and "written into the file" in wet.output
    assert OnnxDetector(model, conf_threshold=None).conf_threshold == pytest.approx(res["count_conf"])
    missing = runner.invoke(model_app, ["calibrate", "--model", str(tmp_path / "none.onnx")])
    assert missing.exit_code == 2 and "none.onnx: model file not found" in missing.output
