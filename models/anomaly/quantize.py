"""Static INT8 (QDQ, per-channel) for ``seg`` anomaly models, checked without any labelled defect.

The U-Net's layers (convolutions, ReLUs, the decoder's upsampling and skip concatenations) run in INT8; the
per-image standardisation in front and the sigmoid / 5x5 average / max behind stay float (they are cheap, and
the score's last digits decide the threshold). Calibration: defect-free images of the fitting distribution and
the same images with painted defects: ranges seen on defect-free images alone clip the strong activations a
defect causes (measured on the test model: defect scores 0.85-0.92 in FP32 came out 0.70-0.72 in INT8).

Check: image AUROC of held-out defect-free images against the same images with painted defects (the ``seg``
fit's checkpoint proxy), FP32 vs INT8; beyond ``max_drop`` nothing is written unless ``force``. The INT8 file
gets its own threshold, the same quantile of its own scores on the threshold images as the FP32 fit used.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod
from onnxruntime.quantization.shape_inference import quant_pre_process

from models.anomaly.core import auroc, onnx_scorer
from models.detect.quantize import PERCENTILE, QuantizationRefused, quantize_qdq, weight_range_metadata

INT8_OPS = ("Conv", "Relu", "Concat", "Resize")
CHECK_SEED = 5151
CALIB_SEED = 4242
# onnxruntime's percentile calibration keeps every activation of every image in memory: at 128 px with the
# mirror average, about 135 MB per image (400 + 400 painted were OOM-killed at 24 GiB; 24 + 24 peak at 6.3 GB);
# millions of values per tensor even so. Memory grows with the pixel count, so the cap is in pixels.
MAX_CALIB = 24
MAX_CALIB_PIXELS = MAX_CALIB * 128 * 128


def calibration_cap(input_size: int) -> int:
    """How many defect-free calibration images (each also painted) a model of this input size gets:
    24 at 128 px, 6 at 256 px, never fewer than 4."""
    return max(4, MAX_CALIB_PIXELS // (input_size * input_size))


class ArrayCalibration(CalibrationDataReader):
    """Images [N,1,S,S] (grey 0..1), one at a time."""

    def __init__(self, images: np.ndarray, input_name: str = "image") -> None:
        self._images = iter(images)
        self._name = input_name

    def get_next(self) -> dict[str, np.ndarray] | None:
        x = next(self._images, None)
        return None if x is None else {self._name: x[None]}


def unet_nodes(model: onnx.ModelProto) -> list[str]:
    """The U-Net's own layers (torch names them ``/unet/...``), without the final 1x1 logit conv."""
    return [n.name for n in model.graph.node if n.op_type in INT8_OPS and n.name.startswith("/unet/")
            and not n.name.startswith("/unet/out")]


def quantize_anomaly(fp32: Path, out: Path, calib: np.ndarray, check_free: np.ndarray, threshold_images: np.ndarray,
                     *, max_drop: float = 0.01, force: bool = False, target_frr: float = 0.01,
                     reduce_range: bool = True) -> dict[str, Any]:
    """Write an INT8 copy of the ``seg`` anomaly model ``fp32`` to ``out`` and return the check report.

    ``calib``: defect-free images for the activation ranges (the first :func:`calibration_cap`, each also used with a
    painted defect);
    ``check_free``: held-out defect-free images, scored plain and with painted defects; ``threshold_images``:
    defect-free images for the INT8 threshold (``1 - target_frr`` quantile). Raises :class:`QuantizationRefused`
    (nothing written) beyond ``max_drop``."""
    from models.anomaly.seg import proxy_set

    src = onnx.load(str(fp32))
    meta = {p.key: p.value for p in src.metadata_props}
    if meta.get("fieldline.decoder") != "anomaly":
        raise ValueError(f"{fp32}: not an anomaly model (fieldline.decoder = {meta.get('fieldline.decoder')!r})")
    if "fieldline.branches" in meta:
        raise ValueError(f"{fp32}: a combined model; quantize each branch model, then combine the INT8 files "
                         "(`fieldline model anomaly combine`)")
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        nodes = unet_nodes(onnx.load(str(pre)))
        if not nodes:
            raise ValueError(f"{fp32}: no U-Net layers to quantise (only models fitted with --method seg are "
                             "supported; run knn and patchcore models in FP32)")
        candidate = Path(tmp) / "int8.onnx"
        calib = calib[:calibration_cap(int(calib.shape[-1]))]
        calib_set = np.concatenate([calib, proxy_set(calib, CALIB_SEED, copies=1)])
        with contextlib.redirect_stdout(sys.stderr):  # onnxruntime prints calibration progress: keep stdout clean
            quantize_qdq(pre, candidate, ArrayCalibration(calib_set, src.graph.input[0].name), INT8_OPS, nodes,
                         CalibrationMethod.Percentile, {"CalibPercentile": PERCENTILE}, reduce_range)
        painted = proxy_set(check_free, CHECK_SEED, copies=1)
        labels = np.r_[np.zeros(len(check_free)), np.ones(len(painted))]
        check = np.concatenate([check_free, painted])
        fp32_auc = auroc(labels, onnx_scorer(fp32)(check)[0])
        int8_run = onnx_scorer(candidate)
        int8_auc = auroc(labels, int8_run(check)[0])
        drop = round(fp32_auc - int8_auc, 4)
        threshold = float(np.quantile(int8_run(threshold_images)[0], 1 - target_frr))
        report = {"fp32_check_auroc": round(fp32_auc, 4), "int8_check_auroc": round(int8_auc, 4), "drop": drop,
                  "max_drop": max_drop, "int8_threshold": round(threshold, 6),
                  "fp32_threshold": float(meta["fieldline.threshold"]), "calib_images": int(len(calib)),
                  "calib_painted": int(len(calib)),
                  "check": f"{len(check_free)} held-out defect-free images vs the same with painted defects "
                           f"(seed {CHECK_SEED})", "quantized_ops": ",".join(INT8_OPS),
                  "int8_weights": weight_range_metadata(reduce_range), "out": str(out)}
        if drop > max_drop and not force:
            raise QuantizationRefused(
                f"INT8 check AUROC {int8_auc:.3f} vs FP32 {fp32_auc:.3f}: a drop of {100 * drop:.1f} points exceeds "
                f"{100 * max_drop:.1f}; nothing written. Use --force to keep it anyway, or calibrate on more images.")
        report["forced"] = drop > max_drop
        q = onnx.load(str(candidate))
    del q.metadata_props[:]
    for key, value in {**meta, "fieldline.threshold": f"{threshold:.6f}",
                       "fieldline.quantization": "int8-qdq-per-channel-percentile",
                       "fieldline.quantized_ops": ",".join(INT8_OPS),
                       "fieldline.int8_weights": weight_range_metadata(reduce_range)}.items():
        q.metadata_props.add(key=key, value=value)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    onnx.save(q, str(out))
    return report
