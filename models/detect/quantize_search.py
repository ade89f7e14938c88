"""Mixed precision for a network that loses too much under INT8: find the blocks that break and keep them in FP32.

A block is one module of the network (``s3/s3.0``, ``fuse4``, ``head/head.1``, ``cls``...): the torch exporter
names every node ``/module/submodule/.../Op``, and the second call of a shared module (the head runs once per
stride) gets a ``_1`` suffix, which is dropped so that a shared block is one block.

The search, run when no whole-network attempt is within the limit:

1. sensitivity: one INT8 file per block with that block alone in FP32, its mAP50 on the check frames;
2. greedy: the blocks that helped alone, most helpful first, kept in FP32 together one more at a time, until the
   file is within the limit or half of the blocks would be FP32 (beyond that an FP32 file is the honest answer).

Cost: one file and one check per block plus a few; the activation ranges are computed once (a calibration cache)
and the check frames are rendered once, so each file costs a quantiser pass and a check run (seconds at 224).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

MAX_FP32_SHARE = 0.5
_CALL_SUFFIX = re.compile(r"_\d+$")


def block_of(node_name: str) -> str:
    """``/head/head.0/dw/dw.0_1/Conv`` -> ``head/head.0``; ``/reg_1/Conv`` -> ``reg``."""
    parts = [_CALL_SUFFIX.sub("", p) for p in node_name.strip("/").split("/")[:-1]]
    return "/".join(parts[:2])


def network_blocks(nodes: Sequence[str]) -> list[str]:
    """The blocks of ``nodes`` in graph order, each once."""
    return list(dict.fromkeys(block_of(n) for n in nodes))


def search_fp32_blocks(blocks: Sequence[str], measure: Callable[[tuple[str, ...]], float], base: float,
                       all_int8: float, max_drop: float, max_share: float = MAX_FP32_SHARE) -> list[dict]:
    """The attempts of the search (see the module docstring), in the order made.

    ``measure(fp32_blocks)`` writes the INT8 file with those blocks in FP32 and returns its mAP50; ``base`` is
    FP32's, ``all_int8`` that of the file with every block in INT8 (a block "helps" when the file with it alone in
    FP32 scores higher). Each attempt: ``{"fp32_blocks": [...], "map50": m, "drop": base - m}``. Stops at the first attempt
    within ``max_drop``.
    """
    attempts: list[dict] = []

    def attempt(fp32: tuple[str, ...]) -> bool:
        m = measure(fp32)
        attempts.append({"fp32_blocks": list(fp32), "map50": m, "drop": round(base - m, 4)})
        return base - m <= max_drop

    for block in blocks:
        if attempt((block,)):
            return attempts
    alone = {a["fp32_blocks"][0]: a["map50"] for a in attempts}
    ranked = sorted((b for b in blocks if alone[b] > all_int8), key=lambda b: -alone[b])
    limit = max(1, int(max_share * len(blocks)))
    for n in range(2, min(len(ranked), limit) + 1):
        if attempt(tuple(ranked[:n])):
            break
    return attempts
