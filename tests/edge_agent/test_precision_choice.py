"""``precision: auto`` keeps the faster of a model's FP32 and INT8 files, timed on this CPU.

Which precision is faster depends on the CPU, so the pairs here are made so that one file is clearly
slower on any machine: real FieldLine exports of one (untrained) net at input 96 and at input 512
(~28x the pixels). The file names say FP32/INT8; the rule under test is the timing, not the arithmetic.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from edge_agent.config import AgentConfig
from edge_agent.detectors import ModelLoadError, build_detector
from edge_agent.detectors.precision import cpu_summary, cpu_text, precision_pair
from edge_agent.doctor import check_model
from models.detect.export import export_net
from models.detect.net import TomatoNet

LABELS = ("green", "half_ripe", "ripe")


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    torch.manual_seed(0)
    net = TomatoNet(len(LABELS))
    out = tmp_path_factory.mktemp("exports")
    return {size: export_net(net, out / f"net{size}.onnx", LABELS, "pair-test", "1.0.0", input_size=size)
            for size in (96, 512)}


def _pair(folder: Path, fp32: Path, int8: Path | None) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    a, b = folder / "model.onnx", folder / "model.int8.onnx"
    shutil.copy(fp32, a)
    if int8 is not None:
        shutil.copy(int8, b)
    return a, b


def _config(path: Path, precision: str = "auto") -> AgentConfig:
    return AgentConfig.model_validate({
        "device": "d1", "site": "s1", "data_dir": str(path.parent / "data"),
        "model": {"path": str(path), "precision": precision},
        "cameras": [{"name": "c1", "source": {"type": "synthetic", "seed": 1}, "zone": {"kind": "shed", "id": "s1"}}],
    })


def test_twin_names() -> None:
    assert precision_pair(Path("z/a.int8.onnx")) == (Path("z/a.onnx"), Path("z/a.int8.onnx"))
    assert precision_pair(Path("z/a.onnx")) == (Path("z/a.onnx"), Path("z/a.int8.onnx"))


def test_auto_keeps_fp32_when_int8_is_slower(exports: dict[str, Path], tmp_path: Path) -> None:
    fp32, int8 = _pair(tmp_path, exports[96], exports[512])
    det = build_detector(_config(int8).model)  # configured as the INT8 file, as the old examples did
    choice = det.precision_choice
    assert choice is not None and choice.chosen == fp32 and det.path == fp32
    assert det.input_size == 96
    assert choice.median_ms["int8"] > 2 * choice.median_ms["fp32"] > 0
    assert "FP32 kept" in choice.reason


def test_auto_takes_int8_when_it_is_faster(exports: dict[str, Path], tmp_path: Path) -> None:
    fp32, int8 = _pair(tmp_path, exports[512], exports[96])
    det = build_detector(_config(fp32).model)
    assert det.precision_choice.chosen == int8 and det.path == int8
    assert "INT8 is faster" in det.precision_choice.reason
    assert "precision auto: model.int8.onnx" in check_model(_config(fp32)).detail


def test_auto_without_a_twin_uses_the_file_and_says_so(exports: dict[str, Path], tmp_path: Path) -> None:
    fp32, _ = _pair(tmp_path, exports[96], None)
    det = build_detector(_config(fp32).model)
    assert det.path == fp32 and det.precision_choice.median_ms == {}
    assert "no model.int8.onnx next to it" in det.precision_choice.reason


def test_auto_with_a_corrupt_twin_names_it(exports: dict[str, Path], tmp_path: Path) -> None:
    fp32, int8 = _pair(tmp_path, exports[96], None)
    int8.write_bytes(b"not an onnx file")
    with pytest.raises(ModelLoadError, match=r"model\.int8\.onnx: not a valid ONNX model"):
        build_detector(_config(fp32).model)


def test_file_precision_loads_exactly_the_path(exports: dict[str, Path], tmp_path: Path) -> None:
    _, int8 = _pair(tmp_path, exports[96], exports[512])
    det = build_detector(_config(int8, "file").model)
    assert det.path == int8 and det.precision_choice is None and det.input_size == 512


def test_unknown_precision_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="precision"):
        _config(tmp_path / "m.onnx", "fastest")


@pytest.mark.parametrize(("cpuinfo", "model", "dot"), [
    ("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx2 fma\n", "AMD EPYC", []),
    ("model name\t: Intel Xeon\nflags\t\t: avx2 avx512f avx512_vnni\n"
     "model name\t: Intel Xeon\nflags\t\t: avx2 avx512f avx512_vnni\n", "Intel Xeon", ["avx512_vnni"]),
    ("processor\t: 0\nFeatures\t: fp asimd asimddp crc32\nCPU part\t: 0xd0b\n", None, ["asimddp"]),
])
def test_cpu_summary_reads_int8_dot_product_flags(tmp_path: Path, cpuinfo: str, model: str | None,
                                                   dot: list[str]) -> None:
    path = tmp_path / "cpuinfo"
    path.write_text(cpuinfo)
    cpu = cpu_summary(path)
    assert cpu["int8_dot"] == dot
    if model:
        assert cpu["model"] == model
    assert ("no VNNI" in cpu_text(cpu)) == (not dot)


def test_cpu_summary_without_cpuinfo(tmp_path: Path) -> None:
    assert cpu_summary(tmp_path / "missing")["int8_dot"] is None
