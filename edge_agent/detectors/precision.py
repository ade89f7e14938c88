"""``precision: auto``: keep the faster of a model's FP32 and INT8 files on the CPU the agent runs on.

INT8 is not faster everywhere: onnxruntime's integer kernels pay off with VNNI (x86) or dot-product
instructions (ARM), and on a plain AVX2 CPU a small INT8 model can be slower than its FP32 file. A card's
latency table was measured on one machine, so the agent times both files here, at start-up, with its own
thread count, and keeps the faster one. FP32 is kept unless INT8 is clearly faster (``INT8_MARGIN``):
INT8 may cost up to a point of mAP, so it has to pay for it.
"""

from __future__ import annotations

import logging
import platform
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from edge_agent.detectors.base import Detector

log = logging.getLogger(__name__)

INT8_SUFFIX = ".int8.onnx"
INT8_MARGIN = 0.95  # INT8 is chosen only when its median is below 95 % of FP32's
INT8_DOT_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "asimddp")  # x86 VNNI / AMX, ARM dot product


@dataclass(frozen=True)
class PrecisionChoice:
    """What ``precision: auto`` picked and why (medians in ms of ``detect`` on a 640x480 frame)."""

    chosen: Path
    fp32: Path | None  # the files found; None when missing
    int8: Path | None
    median_ms: dict[str, float] = field(default_factory=dict)
    reason: str = ""


def cpu_summary(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, object]:
    """CPU model and its INT8 dot-product instructions (which decide whether INT8 models pay off here)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return {"model": platform.processor() or platform.machine(), "int8_dot": None}
    model, flags = platform.machine(), set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "cpu model") and model == platform.machine():
            model = value.strip()
        elif key in ("flags", "features"):
            flags.update(value.split())
    return {"model": model, "int8_dot": sorted(flags.intersection(INT8_DOT_FLAGS))}


def cpu_text(cpu: dict[str, object]) -> str:
    """One line for cards and tables, e.g. ``AMD EPYC, no INT8 dot-product instructions (no VNNI)``."""
    dot = cpu.get("int8_dot")
    if dot is None:
        return str(cpu.get("model"))
    return f"{cpu.get('model')}, " + (f"INT8 dot product: {', '.join(dot)}" if dot
                                      else "no INT8 dot-product instructions (no VNNI)")


def precision_pair(path: Path) -> tuple[Path, Path]:
    """``(fp32, int8)`` file names of a model given by either one (``NAME.onnx`` / ``NAME.int8.onnx``)."""
    name = path.name
    if name.endswith(INT8_SUFFIX):
        return path.with_name(name[: -len(INT8_SUFFIX)] + ".onnx"), path
    if name.endswith(".onnx"):
        return path, path.with_name(name[: -len(".onnx")] + INT8_SUFFIX)
    return path, path.with_name(name + INT8_SUFFIX)


def time_detectors(detectors: dict[str, Detector], runs: int = 20, warmup: int = 3) -> dict[str, float]:
    """Median ``detect`` time (ms) of each detector on the same mid-grey frame with noise, runs interleaved so
    that a busy moment of the machine costs every detector alike."""
    frame = np.random.default_rng(0).integers(90, 140, (480, 640, 3), dtype=np.uint8)
    for det in detectors.values():
        for _ in range(warmup):
            det.detect(frame)
    times: dict[str, list[float]] = {tag: [] for tag in detectors}
    for _ in range(runs):
        for tag, det in detectors.items():
            t = time.perf_counter()
            det.detect(frame)
            times[tag].append((time.perf_counter() - t) * 1000)
    return {tag: round(statistics.median(ts), 3) for tag, ts in times.items()}


def choose_faster(path: Path, load: Callable[[Path], Detector], runs: int = 20) -> tuple[Detector, PrecisionChoice]:
    """Load ``path`` and its FP32/INT8 sibling, time both, return the faster detector and the choice.

    When the sibling does not exist the given file is used as it is (and the choice says so); a sibling that
    exists but does not load is an error, as it would be if it were configured directly.
    """
    fp32, int8 = precision_pair(path)
    other = int8 if path == fp32 else fp32
    if not other.exists():
        chosen = load(path)
        choice = PrecisionChoice(path, fp32 if path == fp32 else None, int8 if path == int8 else None,
                                 reason=f"no {other.name} next to it: {path.name} used as configured")
        return chosen, choice
    detectors = {"fp32": load(fp32), "int8": load(int8)}
    medians = time_detectors(detectors, runs)
    tag = "int8" if medians["int8"] < INT8_MARGIN * medians["fp32"] else "fp32"
    reason = (f"INT8 {medians['int8']:.2f} ms vs FP32 {medians['fp32']:.2f} ms per frame on this CPU: "
              + ("INT8 is faster" if tag == "int8" else
                 f"INT8 is not at least {100 - INT8_MARGIN * 100:.0f} % faster, FP32 kept"))
    choice = PrecisionChoice(fp32 if tag == "fp32" else int8, fp32, int8, medians, reason)
    log.info("precision auto: %s (%s)", choice.chosen.name, reason)
    return detectors[tag], choice
