"""Compact anchor-free detector (FCOS/GFL-style) for 320x320 edge inference.

Backbone of depthwise-separable blocks -> small top-down FPN -> one shared head on strides 8
and 16 (and 32 with ``NetSpec.levels = 3``, for objects that fill much of the picture). Each location
predicts per-class quality scores (sigmoid, trained with quality focal loss so the score estimates IoU)
and ltrb distances. ``forward`` returns raw maps for training;
``export_mode=True`` makes it return the decoded FieldLine native tensor [1, N, 4 + C].

The shape is a :class:`NetSpec`. Two presets (``ARCHS``): ``v1`` (SiLU, two full 3x3 stride-2 stem convs,
two head blocks) and ``fast`` (ReLU, a 4x4 stride-4 patch stem, one head block, width 64). On onnxruntime's
CPU kernels ReLU fuses into the convolution (FP32 and INT8 alike) while SiLU runs as separate passes over
every activation (24 % of the v1 FP32 time, 37 % of its INT8 time), and the v1 stem on the 160x160 and
80x80 maps was another 20 %: at 320, 1 thread, random weights, the same run: v1 4.15 ms, fast 1.69 ms.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from models.detect.arch import ARCHS, Activation, NetSpec  # noqa: F401  (re-exported)

STRIDES: tuple[int, ...] = (8, 16, 32)  # of the output levels; a net uses the first ``spec.levels``
SIZE_MULTIPLE = 32  # the deepest map (s5) is upsampled onto stride 16: input sides must divide by 32


def _activation(act: Activation) -> nn.Module:
    return nn.ReLU(inplace=True) if act == "relu" else nn.SiLU(inplace=True)


class ConvBN(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int = 3, s: int = 1, groups: int = 1, act: Activation | None = "silu",
                 pad: int | None = None):
        super().__init__(
            nn.Conv2d(cin, cout, k, s, k // 2 if pad is None else pad, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            _activation(act) if act else nn.Identity(),
        )


class DWBlock(nn.Module):
    """Depthwise 3x3 + pointwise 1x1, residual when shapes allow."""

    def __init__(self, cin: int, cout: int, s: int = 1, act: Activation = "silu"):
        super().__init__()
        self.dw = ConvBN(cin, cin, 3, s, groups=cin, act=act)
        self.pw = ConvBN(cin, cout, 1, act=act)
        self.res = s == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw(self.dw(x))
        return x + y if self.res else y


class TomatoNet(nn.Module):
    def __init__(self, num_classes: int = 3, width: int = 80, head_width: int = 96, spec: NetSpec | None = None):
        """``spec`` gives the whole shape; without it, the v1 shape at ``width`` / ``head_width``."""
        super().__init__()
        spec = spec or NetSpec(width=width, head_width=head_width)
        self.spec = spec
        w, a = spec.width, spec.act
        self.num_classes = num_classes
        if spec.backbone != "scratch":  # pretrained trunk (weights loaded by the trainer) + a fresh stride-32 block
            from models.detect.backbones import build_trunk

            self.backbone, c3, c4 = build_trunk(spec.backbone)
            c5 = c4 + c4 // 2
            self.s5 = nn.Sequential(DWBlock(c4, c5, 2, a))  # 32 (context only)
        else:
            if spec.stem == "patch":  # stride 4 in one step: each output sees its own 4x4 pixel patch
                c0 = 32
                self.stem = nn.Sequential(ConvBN(3, c0, 4, 4, act=a, pad=0))
            else:
                c0 = 24
                self.stem = nn.Sequential(ConvBN(3, 16, 3, 2, act=a), ConvBN(16, c0, 3, 2, act=a))
            self.s3 = nn.Sequential(DWBlock(c0, w, 2, a), DWBlock(w, w, act=a), DWBlock(w, w, act=a))  # stride 8
            self.s4 = nn.Sequential(DWBlock(w, 2 * w, 2, a), DWBlock(2 * w, 2 * w, act=a),
                                    DWBlock(2 * w, 2 * w, act=a))  # 16
            self.s5 = nn.Sequential(DWBlock(2 * w, 3 * w, 2, a), DWBlock(3 * w, 3 * w, act=a))  # 32 (context only)
            c3, c4, c5 = w, 2 * w, 3 * w
        h = spec.head_width
        self.lat3 = ConvBN(c3, h, 1, act=a)
        self.lat4 = ConvBN(c4, h, 1, act=a)
        self.lat5 = ConvBN(c5, h, 1, act=a)
        self.fuse4 = DWBlock(h, h, act=a)
        self.fuse3 = DWBlock(h, h, act=a)
        self.down = ConvBN(h, h, 3, 2, groups=h, act=a)  # bottom-up path P3 -> P4
        self.fuse4b = DWBlock(h, h, act=a)
        if spec.levels not in (2, 3):
            raise ValueError(f"levels {spec.levels}: a net has 2 (strides 8, 16) or 3 (also 32) output levels")
        self.strides = STRIDES[:spec.levels]
        if spec.levels == 3:  # bottom-up P4 -> P5 onto the stride-32 context map
            self.down5 = ConvBN(h, h, 3, 2, groups=h, act=a)
            self.fuse5b = DWBlock(h, h, act=a)
        self.head = nn.Sequential(*(DWBlock(h, h, act=a) for _ in range(spec.head_depth)))
        self.cls = nn.Conv2d(h, num_classes, 1)
        self.reg = nn.Conv2d(h, 4, 1)
        self.level_scale = nn.Parameter(torch.ones(len(self.strides)))
        nn.init.constant_(self.cls.bias, -4.6)  # prior 0.01
        nn.init.constant_(self.reg.bias, 0.5)
        self.export_mode = False

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.spec.backbone != "scratch":
            c3, c4 = self.backbone(x)
        else:
            c3 = self.s3(self.stem(x))
            c4 = self.s4(c3)
        l5 = self.lat5(self.s5(c4))
        p4 = self.fuse4(self.lat4(c4) + F.interpolate(l5, scale_factor=2.0, mode="nearest"))
        p3 = self.fuse3(self.lat3(c3) + F.interpolate(p4, scale_factor=2.0, mode="nearest"))
        p4 = self.fuse4b(p4 + self.down(p3))
        if len(self.strides) == 2:
            return [p3, p4]
        return [p3, p4, self.fuse5b(l5 + self.down5(p4))]

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[tuple[torch.Tensor, torch.Tensor]]:
        outs = []
        for i, (f, s) in enumerate(zip(self.features(x), self.strides)):
            h = self.head(f)
            dist = softplus(self.reg(h) * self.level_scale[i]) * s  # ltrb in input pixels
            outs.append((self.cls(h), dist))
        if not self.export_mode:
            return outs
        return decode(outs)


def softplus(x: torch.Tensor) -> torch.Tensor:
    """``F.softplus``, but as Exp -> Add -> Log in an exported graph: onnxruntime's Softplus kernel is not
    vectorised (at 320, 1 thread: 63 us for the 6400 values of the stride-8 map, 7 % of tomato-ripeness's run;
    the three vectorised ops take a few). Clamped at 80 so that exp cannot overflow (softplus(80) = 80 in float)."""
    if torch.onnx.is_in_onnx_export():
        return torch.log(torch.exp(torch.clamp(x, max=80.0)) + 1.0)
    return F.softplus(x)


def grid_points(h: int, w: int, stride: int, device: torch.device | None = None) -> torch.Tensor:
    """(h*w, 2) xy centres of feature cells in input pixels."""
    ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    return (torch.stack([xs, ys], -1).reshape(-1, 2).float() + 0.5) * stride


def flatten(outs: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Raw maps (one pair per output level, finest first) -> (B,N,C) logits, (B,N,4) ltrb, (N,2) points."""
    logits, dists, points = [], [], []
    for (c, d), s in zip(outs, STRIDES):
        b, nc, h, w = c.shape
        logits.append(c.permute(0, 2, 3, 1).reshape(b, h * w, nc))
        dists.append(d.permute(0, 2, 3, 1).reshape(b, h * w, 4))
        points.append(grid_points(h, w, s, c.device))
    return torch.cat(logits, 1), torch.cat(dists, 1), torch.cat(points, 0)


def ltrb_to_xyxy(points: torch.Tensor, dist: torch.Tensor) -> torch.Tensor:
    return torch.cat([points - dist[..., :2], points + dist[..., 2:]], -1)


def decode(outs: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    logits, dist, points = flatten(outs)
    return torch.cat([ltrb_to_xyxy(points, dist), logits.sigmoid()], -1)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
