"""`train --init-from` a zoo model by name or a FieldLine ONNX file: the weights read back from the graph compute
what the file computes; anything it cannot use is one clear line (it was a raw UnpicklingError)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from typer.testing import CliRunner

from models.detect.arch import ARCHS
from models.cli.app import model_app
from models.detect.export import export_net
from models.detect.net import TomatoNet
from models.detect.onnx_init import load_onnx_weights, module_path, resolve_init_source
from models.zoo_index import ZOO
from tests.support.shapes import shapes_dataset

ZOO_FILE = ZOO / "tomato-ripeness.onnx"
LABELS = ("green", "half_ripe", "ripe")


def _run_file(path: Path, x: np.ndarray) -> np.ndarray:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {"images": x})[0]


def _run_net(net: TomatoNet, x: np.ndarray, train_mode: bool = False) -> np.ndarray:
    net.export_mode = True
    net.train(train_mode)
    try:
        with torch.no_grad():
            return net(torch.from_numpy(x)).numpy()
    finally:
        net.export_mode = False


def test_module_path_of_exported_node_names() -> None:
    assert module_path("/s3/s3.0/dw/dw.0/Conv") == "s3.0.dw.0"
    assert module_path("/stem/stem.0/stem.0.0/Conv") == "stem.0.0"
    assert module_path("/head/head.0/pw/pw.0_1/Conv") == "head.0.pw.0"
    assert module_path("/reg_1/Conv") == "reg"
    assert module_path("/backbone/_blocks.3/_depthwise_conv/Conv") == "backbone._blocks.3._depthwise_conv"


def test_zoo_model_by_name_loads_and_computes_what_the_file_computes() -> None:
    assert resolve_init_source("tomato-ripeness") == ZOO_FILE
    net = TomatoNet(3, spec=ARCHS["fast"])
    info = load_onnx_weights(net, resolve_init_source("tomato-ripeness"), LABELS, levels=2)
    assert info["labels_copied"] == list(LABELS) and info["model"].startswith("tomato-ripeness ")
    x = np.random.default_rng(1).uniform(0, 1, (1, 3, 160, 224)).astype(np.float32)
    want = _run_file(ZOO_FILE, x)
    assert np.allclose(_run_net(net, x), want, atol=2e-3)


def test_batchnorm_reestimation_keeps_the_function_and_fits_training_mode(tmp_path: Path) -> None:
    torch.manual_seed(0)
    source = TomatoNet(2, spec=replace(ARCHS["fast"], width=32, head_width=32))
    with torch.no_grad():  # non-trivial batch-norms, so that folding them matters
        for m in source.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.3, 0.3)
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    path = export_net(source, tmp_path / "src.onnx", ["a", "b"], "src", "1.0.0", input_size=96)
    sample = torch.rand(16, 3, 96, 96)
    net = TomatoNet(2, spec=source.spec)
    info = load_onnx_weights(net, path, ("b", "a"), levels=2, sample=sample)  # label order differs
    assert info["batchnorm_sample"] == 16
    x = sample[:4].numpy()
    want = _run_file(path, x[:1])
    got = _run_net(net, x[:1])
    assert np.allclose(got[..., :4], want[..., :4], atol=2e-3)
    assert np.allclose(got[..., 4], want[..., 5], atol=1e-4) and np.allclose(got[..., 5], want[..., 4], atol=1e-4)
    # in training mode (batch statistics) the re-estimated batch-norms stay close to the file's function
    eval_out = _run_net(net, x)
    train_out = _run_net(net, x, train_mode=True)
    assert np.abs(train_out[..., 4:] - eval_out[..., 4:]).mean() < 0.05


def test_what_it_cannot_use_is_one_clear_line(tmp_path: Path) -> None:
    v1 = TomatoNet(3, spec=ARCHS["v1"])
    with pytest.raises(ValueError, match=r"a different network .*train with --arch fast --width 64 --head-width 64 "
                                         r"--head-depth 1 --levels 2"):
        load_onnx_weights(v1, ZOO_FILE, LABELS, levels=2)
    with pytest.raises(ValueError, match="an INT8 file"):
        load_onnx_weights(TomatoNet(3, spec=ARCHS["fast"]), ZOO / "tomato-ripeness.int8.onnx", LABELS, levels=2)
    with pytest.raises(ValueError, match="not a FieldLine detector"):
        load_onnx_weights(TomatoNet(3, spec=ARCHS["fast"]), ZOO / "surface-anomaly.onnx", LABELS, levels=2)
    with pytest.raises(FileNotFoundError, match="nor a zoo model of that name .*tomato-ripeness"):
        resolve_init_source("tomato-ripe")


def test_cli_train_init_from_zoo_file(tmp_path: Path) -> None:
    data = shapes_dataset(tmp_path / "data", count=12)
    runner = CliRunner()
    base = ["train", "--data", str(data), "--format", "yolo", "--input-size", "128", "--steps", "2", "--batch", "4",
            "--threads", "1", "--val-every-epochs", "100"]
    bad = runner.invoke(model_app, [*base, "--out-dir", str(tmp_path / "a"), "--init-from", str(ZOO_FILE)])
    assert bad.exit_code == 2 and "Traceback" not in bad.output and "UnpicklingError" not in bad.output
    assert len([ln for ln in bad.output.splitlines() if ln.strip()]) == 1 and "--arch fast" in bad.output
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    r = runner.invoke(model_app, [*base, "--out-dir", str(tmp_path / "b"), "--init-from", str(junk)])
    assert r.exit_code == 2 and "neither a FieldLine checkpoint" in r.output and "Traceback" not in r.output
    ok = runner.invoke(model_app, [*base, "--out-dir", str(tmp_path / "c"), "--arch", "fast",
                                   "--init-from", "tomato-ripeness"])
    assert ok.exit_code == 0, ok.output
    info = json.loads((tmp_path / "c" / "train_info.json").read_text())
    assert info["init_from"]["path"] == str(ZOO_FILE) and info["init_from"]["format"] == "onnx"
    assert info["init_from"]["labels_copied"] == []  # the shapes' labels are not the tomato ones
