"""The counting threshold: picked on labelled frames, stored in the file, used by the edge agent when unset."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from edge_agent.config import AgentConfig
from edge_agent.detectors import ModelLoadError, OnnxDetector, build_detector
from edge_agent.detectors.session import CALIBRATED_THRESHOLD_KEYS
from models.cli.app import model_app
from models.detect.count_calibration import (COUNT_CONF_KEY, SUMMARY_KEY, best_row, calibrate_count_conf, count_rows,
                                      write_count_conf)
from models.detect.export import set_metadata

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
    keep = [p for p in proto.metadata_props if p.key not in CALIBRATED_THRESHOLD_KEYS]
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
    with pytest.raises(ModelLoadError, match="re-run `fieldline model calibrate`"):  # a damaged file, whatever
        OnnxDetector(bad, conf_threshold=0.3)  # the config says: the inspection rule may need the file's values


def test_calibrate_cli_dry_run_and_write(tmp_path) -> None:
    model = _without_calibration(FAST, tmp_path / "m.onnx")
    plain = model.read_bytes()
    runner = CliRunner()
    dry = runner.invoke(model_app, ["calibrate", "--model", str(model), "--count", "12", "--seed", "5",
                                    "--dry-run", "--json"], catch_exceptions=False)
    assert dry.exit_code == 0, dry.output
    assert re.search(r"^\| 0\.35( \(picked\))? \|", dry.output, re.M) and "(picked)" in dry.output  # 0.35: a row
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


# --- pass/reject threshold for inspection lines ---------------------------------------------------------------

STEEL = ZOO / "steel-defect.onnx"


def test_reject_rows_and_pick_by_hand() -> None:
    from models.detect.reject_calibration import pick_reject, reject_rows

    top = np.array([0.1, 0.35, 0.0, 0.6, 0.9, 0.3])  # best defect score per frame
    defective = np.array([False, False, False, True, True, True])
    rows = reject_rows(top, defective, (0.2, 0.32, 0.4, 0.7))
    assert [round(r["false_reject"], 3) for r in rows] == [0.333, 0.333, 0.0, 0.0]
    assert [round(r["escape"], 3) for r in rows] == [0.0, 0.333, 0.333, 0.667]
    assert pick_reject(rows, 0.0)["conf"] == 0.4  # the lowest within the budget: fewest escapes
    assert pick_reject(rows, 0.5)["conf"] == 0.2
    with pytest.raises(ValueError, match="keeps false rejects within 0.0%"):
        pick_reject(rows[:2], 0.0)


def test_reject_calibration_lands_in_the_file_and_drives_the_inspection_rule(tmp_path) -> None:
    from edge_agent.rules import build_rule
    from models.detect.reject_calibration import REJECT_CONF_KEY, calibrate_reject_score, write_reject_conf

    model = _without_calibration(STEEL, tmp_path / "steel.onnx")
    res = calibrate_reject_score(model, "synth:surface", count=160, seed=41, max_false_reject=0.1)
    assert res["defect_free_images"] + res["defective_images"] == 160 and res["defect_free_images"] >= 10
    assert res["false_reject"] <= 0.1 and res["escape"] <= res["uncalibrated"]["escape"]
    write_reject_conf(model, res)
    assert {p.key: p.value for p in onnx.load(str(model)).metadata_props}[REJECT_CONF_KEY] == \
        f"{res['reject_conf']:.2f}"
    det = OnnxDetector(model, conf_threshold=None)
    assert det.calibrated_reject_score == pytest.approx(res["reject_conf"])
    assert det.conf_threshold == pytest.approx(res["reject_conf"])  # reports every box the rule may need

    def camera(rule: dict) -> AgentConfig:
        return AgentConfig.model_validate({
            "device": "d1", "site": "plant", "data_dir": str(tmp_path), "model": {"path": str(model)},
            "cameras": [{"name": "c", "source": {"type": "synthetic", "seed": 1}, "zone": {"kind": "line", "id": "l1"},
                         "rule": {"type": "inspection", **rule}}]}).cameras[0]

    assert build_rule(camera({}), det.labels, det.calibrated_reject_score).reject_score == pytest.approx(
        res["reject_conf"])
    assert build_rule(camera({"reject_score": 0.7}), det.labels, det.calibrated_reject_score).reject_score == 0.7
    assert build_rule(camera({}), det.labels, None).reject_score == 0.5  # a file without one: as before


def test_both_thresholds_in_one_file_report_down_to_the_lower(tmp_path) -> None:
    from models.detect.reject_calibration import REJECT_CONF_KEY

    both = _without_calibration(FAST, tmp_path / "both.onnx")
    proto = onnx.load(str(both))
    set_metadata(proto, {COUNT_CONF_KEY: "0.5", REJECT_CONF_KEY: "0.3"})
    onnx.save(proto, str(both))
    det = OnnxDetector(both, conf_threshold=None)
    assert (det.conf_threshold, det.calibrated_reject_score, det.conf_source) == (0.3, 0.3, "file")


def test_reject_needs_defect_free_and_defective_frames_and_the_cli_reports(tmp_path) -> None:
    from models.detect.reject_calibration import calibrate_reject_score

    model = _without_calibration(STEEL, tmp_path / "steel.onnx")
    with pytest.raises(ValueError, match="hold no defect-free images"):
        calibrate_reject_score(model, "synth:tomato", count=6, seed=2)  # greenhouse frames always hold fruit
    runner = CliRunner()
    r = runner.invoke(model_app, ["calibrate", "--model", str(model), "--objective", "reject", "--count", "60",
                                  "--max-false-reject", "0.2", "--dry-run", "--json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert "false rejects" in r.output and "(picked)" in r.output and "budget 20.0%" in r.output
    assert json.loads(r.output.strip().splitlines()[-1])["data"] == "synth:surface"  # the reject default
    bad = runner.invoke(model_app, ["calibrate", "--model", str(model), "--objective", "speed"])
    assert bad.exit_code == 2 and "--objective 'speed': expected count or reject" in bad.output


def test_a_model_update_brings_its_reject_threshold_and_keeps_the_rule_state(tmp_path) -> None:
    from edge_agent.rules import InspectionRule, build_rule, rule_for_model
    from models.detect.reject_calibration import REJECT_CONF_KEY

    plain = OnnxDetector(_without_calibration(STEEL, tmp_path / "plain.onnx"), conf_threshold=None)
    calibrated_path = _without_calibration(STEEL, tmp_path / "calibrated.onnx")
    proto = onnx.load(str(calibrated_path))
    set_metadata(proto, {REJECT_CONF_KEY: "0.27"})
    onnx.save(proto, str(calibrated_path))
    calibrated = OnnxDetector(calibrated_path, conf_threshold=None)
    camera = AgentConfig.model_validate({
        "device": "d1", "site": "plant", "data_dir": str(tmp_path), "model": {"path": str(calibrated_path)},
        "cameras": [{"name": "c", "source": {"type": "synthetic", "seed": 1}, "zone": {"kind": "line", "id": "l1"},
                     "rule": {"type": "inspection"}}]}).cameras[0]
    rule = build_rule(camera, plain.labels, plain.calibrated_reject_score)
    assert isinstance(rule, InspectionRule) and rule.reject_score == 0.5
    rule._verdicts.extend([True, False])  # the defect-rate window survives a same-labels update
    updated, rebuilt = rule_for_model(camera, rule, plain.labels, calibrated)
    assert updated is rule and not rebuilt and rule.reject_score == 0.27 and len(rule._verdicts) == 2
    back, _ = rule_for_model(camera, rule, plain.labels, plain)  # rollback to a file without one
    assert back.reject_score == 0.5
    fixed = camera.model_copy(update={"rule": camera.rule.model_copy(update={"reject_score": 0.6})})
    kept, _ = rule_for_model(fixed, build_rule(fixed, plain.labels, None), plain.labels, calibrated)
    assert kept.reject_score == 0.6  # the config's own threshold wins over any file
    tomato = OnnxDetector(FAST, conf_threshold=None)
    other, rebuilt = rule_for_model(camera, rule, plain.labels, tomato)  # another label set: a new rule
    assert rebuilt and other is not rule and other.reject_score == 0.5
