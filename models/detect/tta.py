"""Flip test-time averaging for the detector, built into the exported graph.

The net is dense and anchor-free: every feature cell predicts class scores and ltrb distances. Run on a
mirrored picture, cell j of a level sees what cell W-1-j sees in the original, with left/right (or
top/bottom) swapped. So mirroring the output maps back and swapping those distances lines the passes up
cell by cell, and the maps can be averaged *before* decoding and NMS: one box set, same output contract,
nothing for the edge agent to know. It costs one extra network pass per mirror.
"""

from __future__ import annotations

import torch
from torch import nn

from models.detect.net import TomatoNet, flatten, ltrb_to_xyxy

# name -> flip dims of an NCHW tensor (3 = width: left/right mirror, 2 = height: upside down)
FLIP_SETS: dict[str, list[list[int]]] = {
    "none": [],
    "h": [[3]],  # scenes with a floor and a sky (greenhouse rows): mirror left/right only
    "hv": [[3], [2], [2, 3]],  # top-down surfaces (strip, tiles): all four mirror images
}


def unflip(dist: torch.Tensor, dims: list[int]) -> torch.Tensor:
    """ltrb distance map of a mirrored pass -> the original picture's frame."""
    d = torch.flip(dist, dims)
    left, top, right, bottom = d[:, 0:1], d[:, 1:2], d[:, 2:3], d[:, 3:4]
    if 3 in dims:
        left, right = right, left
    if 2 in dims:
        top, bottom = bottom, top
    return torch.cat([left, top, right, bottom], 1)


class FlipAveraged(nn.Module):
    """Export wrapper: ``detections`` [1, N, 4+C] from class probabilities and distances averaged over
    the picture and its mirror images (``flips`` in :data:`FLIP_SETS`)."""

    def __init__(self, net: TomatoNet, flips: str):
        super().__init__()
        if flips not in FLIP_SETS:
            raise ValueError(f"unknown flips {flips!r}; choose one of {', '.join(FLIP_SETS)}")
        self.net = net
        self.flip_dims = FLIP_SETS[flips]

    def averaged_maps(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per level (class probabilities, ltrb distances), averaged over the passes."""
        self.net.export_mode = False
        sums = [(c.sigmoid(), d) for c, d in self.net(x)]
        for dims in self.flip_dims:
            mirrored = self.net(torch.flip(x, dims))
            sums = [(p + torch.flip(c.sigmoid(), dims), d + unflip(dm, dims))
                    for (p, d), (c, dm) in zip(sums, mirrored)]
        n = 1 + len(self.flip_dims)
        return [(p / n, d / n) for p, d in sums]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs, dist, points = flatten(self.averaged_maps(x))
        return torch.cat([ltrb_to_xyxy(points, dist), probs], -1)
