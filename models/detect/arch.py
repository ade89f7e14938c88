"""The detector's shape presets, without torch (cards and CLIs read them; ``models.detect.net`` builds them)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Activation = Literal["silu", "relu"]


@dataclass(frozen=True)
class NetSpec:
    """Everything that decides the network's layers (recorded in checkpoints)."""

    width: int = 80  # channels at stride 8 (x2 at 16, x3 at 32)
    head_width: int = 96
    act: Activation = "silu"
    stem: Literal["conv", "patch"] = "conv"  # conv: 3x3/2 (16 ch) + 3x3/2 (24 ch); patch: one 4x4/4 conv (32 ch)
    head_depth: int = 2  # depthwise-separable blocks in the shared head
    levels: int = 2  # output levels of the shared head: 2 = strides 8 and 16; 3 adds stride 32 (large objects)
    backbone: str = "scratch"  # scratch: the trunk above, random init; else a pretrained one (models/detect/backbones.py)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> NetSpec:
        """Missing keys take the v1 values: checkpoints before NetSpec were all v1."""
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


ARCHS: dict[str, NetSpec] = {
    "v1": NetSpec(),
    "fast": NetSpec(width=64, head_width=64, act="relu", stem="patch", head_depth=1),
}
