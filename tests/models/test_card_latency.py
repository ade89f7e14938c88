"""The card's side-by-side latency: block-interleaved runs, and the extra run at the anchors' 320 input."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.detect.bench import bench_models


def test_bench_runs_whole_blocks_and_rejects_an_empty_one(trained: dict) -> None:
    res = bench_models([trained["onnx"]], (1,), runs=7, warmup=1, block=3)
    assert res["block"] == 3 and res["runs"] == 9  # rounded up to whole blocks
    assert bench_models([trained["onnx"]], (1,), runs=2, warmup=0, block=10)["runs"] == 2  # a block <= runs
    with pytest.raises(ValueError, match="block 0"):
        bench_models([trained["onnx"]], (1,), runs=2, block=0)


def test_side_by_side_times_larger_dynamic_files_again_at_320(trained: dict, tmp_path: Path, monkeypatch) -> None:
    """Only a dynamic-size file whose own input exceeds 320 gets the second run; its speed-up there is the
    anchor's median over its own, and the card says both runs."""
    import models.cards.detect as card
    from models.detect.export import export

    big = export(trained["best"], tmp_path / "big.onnx", name="shapes", input_size=384)
    small = export(trained["best"], tmp_path / "small.onnx", name="shapes", input_size=160)
    anchors = tmp_path / "anchors"
    anchors.mkdir()
    export(trained["best"], anchors / "fixed-320.onnx", name="anchor", input_size=320, dynamic_size=False)
    monkeypatch.setattr(card, "ANCHORS", anchors)

    res = card.side_by_side({"fp32": big, "int8": small}, runs=4)
    assert res["block"] == 4 and res["fastest_anchor"] == "fixed-320.onnx"
    at = res["at_320"]
    assert set(at["speedup_1t"]) == {"fp32"} and set(at["models"]) == {"fp32", "fixed-320.onnx"}
    assert at["speedup_1t"]["fp32"] == round(at["models"]["fixed-320.onnx"]["median_ms"]
                                             / at["models"]["fp32"]["median_ms"], 2)
    latency = {"session_median_ms": 1.0, "detect_median_ms": 2.0}
    text = card._latency_section({"models": {"fp32": {"file": "big.onnx", "latency": latency},  # noqa: SLF001
                                             "int8": {"file": "small.onnx", "latency": latency}},
                                  "side_by_side": res})
    assert "interleaved in blocks of 4 runs, each after one untimed run" in text and "At 320x320" in text
    assert card._blocks({"runs": 100}) == "run by run"  # noqa: SLF001 - figures recorded before blocks existed
    assert f"FP32 {at['models']['fp32']['median_ms']:.2f} ms ({at['speedup_1t']['fp32']:.1f}x)" in text

    fixed = export(trained["best"], tmp_path / "fixed.onnx", name="shapes", input_size=384, dynamic_size=False)
    assert "at_320" not in card.side_by_side({"fp32": fixed, "int8": small}, runs=2)  # cannot run at 320


def test_bench_models_script_runs_larger_dynamic_files_at_the_given_side(trained: dict, tmp_path: Path) -> None:
    import json
    import subprocess
    import sys

    from models.detect.export import export

    zoo, anchors = tmp_path / "zoo", tmp_path / "anchors"
    zoo.mkdir()
    anchors.mkdir()
    export(trained["best"], zoo / "big.onnx", name="big", input_size=384)
    export(trained["best"], zoo / "small.onnx", name="small", input_size=160)
    export(trained["best"], anchors / "fixed-320.onnx", name="anchor", input_size=320, dynamic_size=False)
    root = Path(__file__).resolve().parents[2]
    r = subprocess.run([sys.executable, str(root / "bench" / "models.py"), "--zoo", str(zoo), "--anchors", str(anchors),
                        "--side", "320", "--runs", "2", "--threads", "1", "--block", "1"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert res["models"]["big.onnx"]["input_hw"] == [320, 320]  # 384 by itself: run at the anchors' size
    assert res["models"]["small.onnx"]["input_hw"] is None and res["models"]["fixed-320.onnx"]["input_hw"] is None
    assert res["fastest_anchor"] == "fixed-320.onnx" and set(res["speedup_vs_fastest_anchor"]) == {"big.onnx",
                                                                                                    "small.onnx"}
