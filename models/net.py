"""Compact anchor-free detector (FCOS/GFL-style) for 320x320 edge inference.

Backbone of depthwise-separable blocks -> small top-down FPN -> one shared head on strides 8
and 16. Each location predicts per-class quality scores (sigmoid, trained with quality focal
loss so the score estimates IoU) and ltrb distances. ``forward`` returns raw maps for training;
``export_mode=True`` makes it return the decoded FieldLine native tensor [1, N, 4 + C].
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

STRIDES: tuple[int, ...] = (8, 16)


class ConvBN(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int = 3, s: int = 1, groups: int = 1, act: bool = True):
        super().__init__(
            nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.SiLU(inplace=True) if act else nn.Identity(),
        )


class DWBlock(nn.Module):
    """Depthwise 3x3 + pointwise 1x1, residual when shapes allow."""

    def __init__(self, cin: int, cout: int, s: int = 1):
        super().__init__()
        self.dw = ConvBN(cin, cin, 3, s, groups=cin)
        self.pw = ConvBN(cin, cout, 1)
        self.res = s == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pw(self.dw(x))
        return x + y if self.res else y


class TomatoNet(nn.Module):
    def __init__(self, num_classes: int = 3, width: int = 80, head_width: int = 96):
        super().__init__()
        w = width
        self.num_classes = num_classes
        self.stem = nn.Sequential(ConvBN(3, 16, 3, 2), ConvBN(16, 24, 3, 2))  # stride 4 (full convs)
        self.s3 = nn.Sequential(DWBlock(24, w, 2), DWBlock(w, w), DWBlock(w, w))  # stride 8
        self.s4 = nn.Sequential(DWBlock(w, 2 * w, 2), DWBlock(2 * w, 2 * w), DWBlock(2 * w, 2 * w))  # 16
        self.s5 = nn.Sequential(DWBlock(2 * w, 3 * w, 2), DWBlock(3 * w, 3 * w))  # 32 (context only)
        h = head_width
        self.lat3 = ConvBN(w, h, 1)
        self.lat4 = ConvBN(2 * w, h, 1)
        self.lat5 = ConvBN(3 * w, h, 1)
        self.fuse4 = DWBlock(h, h)
        self.fuse3 = DWBlock(h, h)
        self.down = ConvBN(h, h, 3, 2, groups=h)  # bottom-up path P3 -> P4
        self.fuse4b = DWBlock(h, h)
        self.head = nn.Sequential(DWBlock(h, h), DWBlock(h, h))
        self.cls = nn.Conv2d(h, num_classes, 1)
        self.reg = nn.Conv2d(h, 4, 1)
        self.level_scale = nn.Parameter(torch.ones(len(STRIDES)))
        nn.init.constant_(self.cls.bias, -4.6)  # prior 0.01
        nn.init.constant_(self.reg.bias, 0.5)
        self.export_mode = False

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        c3 = self.s3(self.stem(x))
        c4 = self.s4(c3)
        c5 = self.s5(c4)
        p4 = self.fuse4(self.lat4(c4) + F.interpolate(self.lat5(c5), scale_factor=2.0, mode="nearest"))
        p3 = self.fuse3(self.lat3(c3) + F.interpolate(p4, scale_factor=2.0, mode="nearest"))
        p4 = self.fuse4b(p4 + self.down(p3))
        return [p3, p4]

    def forward(self, x: torch.Tensor) -> torch.Tensor | list[tuple[torch.Tensor, torch.Tensor]]:
        outs = []
        for i, (f, s) in enumerate(zip(self.features(x), STRIDES)):
            h = self.head(f)
            dist = F.softplus(self.reg(h) * self.level_scale[i]) * s  # ltrb in input pixels
            outs.append((self.cls(h), dist))
        if not self.export_mode:
            return outs
        return decode(outs)


def grid_points(h: int, w: int, stride: int, device: torch.device | None = None) -> torch.Tensor:
    """(h*w, 2) xy centres of feature cells in input pixels."""
    ys, xs = torch.meshgrid(torch.arange(h, device=device), torch.arange(w, device=device), indexing="ij")
    return (torch.stack([xs, ys], -1).reshape(-1, 2).float() + 0.5) * stride


def flatten(outs: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Raw maps -> (B,N,C) logits, (B,N,4) ltrb, (N,2) points."""
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
