"""`fieldline model import|stats|predict|bench` run in-process with typer's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
from typer.testing import CliRunner

from models.cli.app import model_app
from tests.support.dataset_builders import build_supervisely, build_voc, build_yolo

ZOO = Path(__file__).resolve().parents[2] / "models" / "zoo"
INT8 = ZOO / "tomato-ripeness.int8.onnx"
runner = CliRunner()


def _run(*args: str):
    return runner.invoke(model_app, [str(a) for a in args], catch_exceptions=False)


def test_import_remaps_writes_yolo_and_prints_stats(tmp_path: Path) -> None:
    src = build_supervisely(tmp_path / "sly")
    r = _run("import", src, "--format", "supervisely", "--map", "cat=pet,dog=pet", "--out", tmp_path / "yolo",
             "--seed", "3", "--json")
    assert r.exit_code == 0, r.output
    assert "pet" in r.output and "instances" in r.output  # the table
    stats = json.loads(r.output.strip().splitlines()[-1])
    assert stats["instances_per_class"] == {"pet": 3} and stats["images_without_boxes"] == 1
    assert (tmp_path / "yolo" / "classes.txt").read_text() == "pet\n"
    assert "names:\n- pet" in (tmp_path / "yolo" / "data.yaml").read_text()
    again = _run("stats", tmp_path / "yolo", "--format", "yolo", "--json")
    assert json.loads(again.output.strip().splitlines()[-1])["box_sizes"] == stats["box_sizes"]


def test_stats_table_and_errors_exit_2(tmp_path: Path) -> None:
    r = _run("stats", build_voc(tmp_path / "voc"), "-f", "voc")
    assert r.exit_code == 0 and "cat" in r.output and "dog" in r.output and "small (<32²) 1" in r.output
    src = build_yolo(tmp_path / "y")
    (src / "labels" / "b.txt").write_text("1 0.5 0.5 0.5 0.5\n0 0.1 0.1 0.1\n")
    bad = runner.invoke(model_app, ["stats", str(src), "--format", "yolo"])
    assert bad.exit_code == 2
    assert "labels/b.txt line 2: expected 5 numbers, got 4" in bad.output
    assert runner.invoke(model_app, ["stats", str(src), "--format", "kitti"]).exit_code == 2
    assert "no class named 'cow'" in runner.invoke(model_app, ["stats", str(tmp_path / "voc"), "-f", "voc",
                                                                "--map", "cow=x"]).output


def test_predict_draws_boxes_on_a_synthetic_image(tmp_path: Path) -> None:
    from models.data.synth.tomato import random_scene, render

    rng = np.random.default_rng([42, 0])
    frame = render(random_scene(rng), rng).image
    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "shed.png"), frame)
    r = _run("predict", tmp_path / "in", "--model", INT8, "--out", tmp_path / "out", "--conf", "0.3")
    assert r.exit_code == 0, r.output
    n = int(r.output.split(":")[1].split()[0])
    assert n > 0, r.output
    drawn = cv2.imread(str(tmp_path / "out" / "shed.png"))
    assert drawn.shape == frame.shape
    assert (np.abs(drawn.astype(int) - frame.astype(int)).max(axis=2) > 40).sum() > 100 * n  # box outlines


def test_predict_bad_model_exit_2(tmp_path: Path) -> None:
    r = runner.invoke(model_app, ["predict", str(tmp_path), "--model", str(tmp_path / "none.onnx"),
                                  "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "model file not found" in r.output


def test_bench_json_last_line_lists_the_models() -> None:
    r = _run("bench", INT8, ZOO / "tomato-ripeness.onnx", "--threads", "1,2", "--runs", "3", "--warmup", "1",
             "--block", "2", "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.output.strip().splitlines()[-1])
    m = res["models"]["tomato-ripeness.int8.onnx"]
    assert set(m["latency"]) == {"1", "2"} and m["latency"]["1"]["median_ms"] > 0
    assert m["bytes"] == INT8.stat().st_size and 100_000 < m["parameters"] < 1_000_000  # the detector budget
    assert res["threads"] == [1, 2] and "tomato-ripeness.onnx" in res["models"]
    assert res["block"] == 2 and res["runs"] == 4  # whole blocks of --block runs


def test_synth_surface_writes_a_dataset_the_importer_reads(tmp_path: Path) -> None:
    out = tmp_path / "surf"
    r = _run("synth", "--out", out, "--kind", "surface", "--count", "8", "--seed", "4", "--defect-fraction", "0.5")
    assert r.exit_code == 0, r.output
    assert len(list((out / "masks").glob("*.png"))) == 8  # masks sit beside images/ ...
    stats = json.loads(_run("stats", out, "--format", "yolo", "--json").output.strip().splitlines()[-1])
    assert stats["images"] == 8  # ... and are not read as images
    assert stats["images_without_boxes"] == 4
    assert set(stats["instances_per_class"]) <= {"scratch", "crack", "pit", "inclusion", "patch", "fray"}
    assert _run("synth", "--out", tmp_path / "x", "--kind", "leaves").exit_code == 2


def test_quantize_rejects_an_unknown_calibration_before_any_work(tmp_path: Path) -> None:
    r = _run("quantize", "--model", ZOO / "steel-defect.onnx", "--out", tmp_path / "q.onnx", "--data", "synth:surface",
             "--calibration", "entropy")
    assert r.exit_code == 2 and "calibration 'entropy'" in r.output and "percentile" in r.output
    assert not (tmp_path / "q.onnx").exists()
