"""Static INT8 (QDQ, per-channel) quantisation with onnxruntime, calibrated on training-distribution frames.

:func:`quantize_checked` measures mAP50 of FP32 and INT8 on held-out frames; when INT8 loses more than
``max_drop`` it retries (other calibration, head convolutions in FP32, convolutions alone), writes the best
attempt, and refuses (writes nothing, raises :class:`QuantizationRefused`) if all lose too much, unless ``force``.

Calibration frames go through exactly the detector's letterbox + normalisation. The network's own layers
are quantised: convolutions and the activations between them (SiLU as Sigmoid, Mul; ReLU, which onnxruntime
folds into QLinearConv) and residual Adds, so that
onnxruntime runs the whole chain in INT8 (QLinearConv -> QLinearSigmoid -> QLinearMul); with the convs alone
every activation went back to float and INT8 was slower than FP32 (tomato-ripeness 6.2 ms vs 5.5; 4.8 ms with
the activations in INT8, same mAP). The in-graph box decode after the head stays float: it concatenates pixel
coordinates (0..320) with probabilities (0..1), and one shared INT8 scale for that tensor would wipe out the
scores.

Activation ranges come from the 99.999th percentile of each tensor's calibration values (``percentile``, the
default) rather than its extremes (``minmax``): a handful of outlier activations otherwise stretch the INT8
step so far that thin defects (scratches) vanish. Measured on the synthetic check frames with the convs alone
in INT8 (100 calibration frames): steel-defect mAP50 drop 3.0 -> 0.3 points (2.7 -> 0.0 with the head in FP32).

Weights are quantised to 7 bits by default (``reduce_range``): on x86 CPUs without VNNI (AVX2-only edge boxes)
onnxruntime's U8S8 kernels add pairs of uint8 x int8 products in int16 (VPMADDUBSW), which saturates with full
8-bit weights; with 7-bit weights the pair sums fit. Measured on an AVX2-only EPYC: a test ``seg`` anomaly model's
painted-defect AUROC 0.949 FP32 -> 0.574 INT8 with 8-bit weights, 0.941 with 7-bit. A file quantised on a VNNI
machine passes its own check there and then fails on such a box, so portability is the default;
``reduce_range=False`` keeps 8-bit weights for fleets known to have VNNI (or ARM).

The first convolution, over the picture's 3 colour channels, stays FP32 by default (``rgb_conv_fp32``): with 3
input channels the INT8 kernel cannot use the dot-product instructions and ran slower than the float one
(tomato-ripeness's 4x4/4 patch stem at 320, 1 thread, VNNI box: 138 us INT8 vs 93 us FP32 of a 0.9 ms run,
the whole file 0.86 -> 0.76 ms). Accuracy can go either way (within the check frames' noise): steel-defect
1.2.1 passed its half-point check only with the stem in INT8 (``rgb_conv_fp32=False``, the CLI's --rgb-conv-int8).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                      quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process

from edge_agent.detectors.preprocess import letterbox, to_tensor_rgb01
from edge_agent.detectors.session import CALIBRATED_THRESHOLD_KEYS
from models.data.sources import DataSource
from models.detect.evaluate import frames_map50
from models.detect.calibration_stream import (StreamingCalibration, calibration_chunk, fit_frame, small_check_warning,
                                       stream_ranges)
from models.detect.quantize_search import block_of, network_blocks, search_fp32_blocks

CALIB_SEED = 4242
CALIBRATIONS = ("percentile", "minmax")
PERCENTILE = 99.999


CHECK_SEED = 5151  # not the tests' 777 nor the card holdout 20261


class QuantizationRefused(RuntimeError):
    """INT8 lost more mAP than allowed; the message gives both figures."""


class FrameCalibration(StreamingCalibration):
    """Training frames through exactly the detector's letterbox + normalisation, decoded one at a time and handed
    to the calibrator in chunks (:mod:`models.detect.calibration_stream`)."""

    def __init__(self, input_name: str, input_size: int, count: int, seed: int, source: DataSource | None = None,
                 chunk: int | None = None):
        source = source or DataSource.parse("synth:tomato")
        if not source.is_synthetic:
            count = min(count, source.split_size("train"))
        frames = (to_tensor_rgb01(letterbox(img, input_size)[0]) for img, _, _ in source.frames("train", count, seed))
        super().__init__(input_name, frames, count, chunk or count)


SCOPES = {"layers": ("Conv", "Relu", "Sigmoid", "Mul", "Add"),  # the whole chain in INT8: the fastest
          "conv": ("Conv",)}  # activations in float between the convs: slower, sometimes closer to FP32
HEAD_PREFIXES = ("/cls", "/reg", "/head")


def quantize_qdq(pre: Path, out: Path, reader: CalibrationDataReader | None, ops: tuple[str, ...], nodes: list[str],
                 method: CalibrationMethod, options: dict[str, object], reduce_range: bool = True,
                 calibration_cache: Path | None = None) -> None:
    """The one onnxruntime call behind every FieldLine INT8 file: QDQ, per-channel symmetric int8 weights
    (7-bit with ``reduce_range``, see the module docstring), asymmetric uint8 activations.

    ``calibration_cache``: a JSON file of activation ranges, written on the first call and read (no calibration
    pass) by later ones with the same ``ops`` and ``method``: ranges depend on neither the nodes chosen nor the
    weights' precision."""
    quantize_static(str(pre), str(out), reader, quant_format=QuantFormat.QDQ, op_types_to_quantize=list(ops),
                    nodes_to_quantize=nodes, per_channel=True, reduce_range=reduce_range,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, calibrate_method=method,
                    extra_options={"WeightSymmetric": True, "ActivationSymmetric": False, **options},
                    calibration_cache_path=calibration_cache)


def weight_range_metadata(reduce_range: bool) -> str:
    """Value of the ``fieldline.int8_weights`` metadata key."""
    return "7bit-portable" if reduce_range else "8bit-vnni"


def rgb_convs(model: onnx.ModelProto) -> set[str]:
    """Names of the convolutions over 3 input channels (weights [out, 3, k, k]): the ones reading the picture."""
    in_channels = {t.name: t.dims[1] for t in model.graph.initializer if len(t.dims) == 4}
    return {n.name for n in model.graph.node if n.op_type == "Conv" and in_channels.get(n.input[1]) == 3}


def network_nodes(model: onnx.ModelProto, keep_head_fp32: bool = False, scope: str = "layers",
                  rgb_conv_fp32: bool = False) -> list[str]:
    """The nodes to quantise: those inside the network's modules (the torch export names them
    ``/module/.../Op``), not the top-level box decode (``/Mul_5``, ``/Concat_5``...); without the detection
    head (shared head blocks + final cls/reg) when it is kept in FP32, nor the convs reading the picture
    (:func:`rgb_convs`) with ``rgb_conv_fp32``.

    Measured on the NEU-DET model: the final convs alone in FP32 recover about half of the INT8 loss, the
    whole head a little more; the backbone and neck stay INT8 (they hold most of the compute).
    """
    float_convs = rgb_convs(model) if rgb_conv_fp32 else set()
    return [n.name for n in model.graph.node if n.op_type in SCOPES[scope] and n.name.count("/") >= 2
            and not (keep_head_fp32 and n.name.startswith(HEAD_PREFIXES)) and n.name not in float_convs]


def quantize(fp32: Path, out: Path, calib_count: int = 300, seed: int = CALIB_SEED,
             keep_head_fp32: bool = False, source: DataSource | None = None,
             calibration: str = "percentile", scope: str = "layers", reduce_range: bool = True,
             fp32_blocks: Sequence[str] = (), calibration_cache: Path | None = None,
             rgb_conv_fp32: bool = True) -> Path:
    """One INT8 file: ``scope`` ``layers`` (convs, SiLU activations, residual adds) or ``conv`` (convs only);
    the network blocks named in ``fp32_blocks`` (see :func:`models.detect.quantize_search.block_of`) stay FP32, and
    so does the first convolution with ``rgb_conv_fp32`` (see the module docstring)."""
    if calibration not in CALIBRATIONS:
        raise ValueError(f"calibration {calibration!r}: expected one of {', '.join(CALIBRATIONS)}")
    if scope not in SCOPES:
        raise ValueError(f"scope {scope!r}: expected one of {', '.join(SCOPES)}")
    src = onnx.load(str(fp32))
    meta = {p.key: p.value for p in src.metadata_props}
    size = int(meta.get("fieldline.input_size", "320"))
    input_name = src.graph.input[0].name
    options: dict[str, object] = {}
    if calibration == "percentile":
        method = CalibrationMethod.Percentile
        options["CalibPercentile"] = PERCENTILE
    else:
        method = CalibrationMethod.MinMax
    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        nodes = network_nodes(onnx.load(str(pre)), keep_head_fp32, scope, rgb_conv_fp32)
        if not nodes:
            raise ValueError(f"{fp32}: no network layers to quantise (expected torch-exported nodes named "
                             "/module/.../Conv)")
        unknown = set(fp32_blocks) - set(network_blocks(nodes))
        if unknown:
            raise ValueError(f"{fp32}: no network block named {', '.join(sorted(unknown))} (blocks: "
                             f"{', '.join(network_blocks(nodes))})")
        nodes = [n for n in nodes if block_of(n) not in fp32_blocks]
        cache = calibration_cache or Path(tmp) / "ranges.json"
        if not cache.exists():  # streamed, chunk by chunk, into the cache quantize_static reads (bounded memory)
            chunk = calibration_chunk(onnx.load(str(pre)), size)
            stream_ranges(pre, lambda: FrameCalibration(input_name, size, calib_count, seed, source, chunk),
                          SCOPES[scope], method, options, cache)
        quantize_qdq(pre, out, None, SCOPES[scope], nodes, method, options, reduce_range, cache)
    q = onnx.load(str(out))
    del q.metadata_props[:]
    for k, v in meta.items():
        if k not in CALIBRATED_THRESHOLD_KEYS:  # FP32 scores' thresholds: calibrate the INT8 file itself
            q.metadata_props.add(key=k, value=v)
    q.metadata_props.add(key="fieldline.quantization", value=f"int8-qdq-per-channel-{calibration}"
                         + ("-head-fp32" if keep_head_fp32 else "") + ("-rgb-conv-fp32" if rgb_conv_fp32 else "")
                         + ("-mixed" if fp32_blocks else ""))
    if fp32_blocks:
        q.metadata_props.add(key="fieldline.fp32_blocks", value=",".join(fp32_blocks))
    q.metadata_props.add(key="fieldline.quantized_ops", value=",".join(SCOPES[scope]))
    q.metadata_props.add(key="fieldline.int8_weights", value=weight_range_metadata(reduce_range))
    onnx.save(q, str(out))
    return Path(out)


def check_frames(source: DataSource, count: int, calib_count: int, max_side: int | None = None) -> tuple[list, dict]:
    """The frames INT8 is compared with FP32 on, and how they were chosen (for the report).

    Synthetic sources: ``count`` fresh frames of a seed never used for training. Datasets: the val split (else
    test), topped up to ``count`` with training pictures the calibration did not see. The check measures how
    far INT8 strays from FP32 on the same pictures, not generalisation, so unseen training pictures serve;
    and a small val split alone cannot carry a 1-point limit (NEU-DET's 30 validation pictures passed INT8 files
    that lost 1.1 and, for a wider network, 6.9 points on the test split: models/recipes/neu-det.sh).
    ``max_side``: frames larger than that (the model's input) are kept at it, as the detector would letterbox
    them, so the frames held in memory do not grow with the pictures' size.
    """
    if source.is_synthetic:
        return ([fit_frame(f, max_side) for f in source.frames("test", count, CHECK_SEED)],
                {"data": source, "count": count, "seed": CHECK_SEED})
    split = "val" if source.split_size("val") else "test"
    frames = [fit_frame(f, max_side) for f in source.frames(split, count)]
    topped = 0
    if len(frames) < count and source.split_size("train") > calib_count:
        extra = [fit_frame(f, max_side) for f in source.frames("train", count - len(frames), start=calib_count)]
        frames += extra
        topped = len(extra)
    return frames, {"data": source, "count": len(frames), "split": split, "train_frames": topped}


def training_frames_warning(check: dict) -> str | None:
    """Why a check partly run on training pictures may understate the INT8 loss (None when it was not)."""
    topped = check.get("train_frames", 0)
    if not topped:
        return None
    return (f"{topped} of the {check['count']} check frames are training pictures (the {check['split']} split has "
            f"{check['count'] - topped}): the model has learnt them, and INT8 may stray less there than on new "
            "pictures (NEU-DET, one network: 0.4 points down on such a check, 1.4 on its test split). Evaluate the "
            "INT8 file on held-out pictures (`fieldline model eval --split test`), or give the dataset a val split "
            "of --check-count pictures.")


def quantize_checked(fp32: Path, out: Path, source: DataSource | None = None, calib_count: int = 300,
                     check_count: int = 200, max_drop: float = 0.01, force: bool = False,
                     keep_head_fp32: bool = False, calibration: str = "auto", reduce_range: bool = True,
                     search: bool = True, rgb_conv_fp32: bool = True) -> dict:
    """Quantise, compare mAP50 with FP32 on held-out frames, refuse beyond ``max_drop``.

    Tries, fastest first, until one is within ``max_drop``: the whole chain in INT8 (``layers``), then with
    the head convs in FP32, then the convs alone (``conv``) both ways; each with every calibration (``auto``:
    percentile, then minmax; which suits a model depends on its data). When none is within the limit and
    ``search`` is on, the best of them is the start of a mixed-precision search
    (:mod:`models.detect.quantize_search`): the blocks that break under INT8 stay FP32. The best attempt is the one
    written (with ``force`` when none is within the limit).
    """
    if calibration != "auto" and calibration not in CALIBRATIONS:
        raise ValueError(f"calibration {calibration!r}: expected auto or one of {', '.join(CALIBRATIONS)}")
    source = source or DataSource.parse("synth:tomato")
    size = int({p.key: p.value for p in onnx.load(str(fp32)).metadata_props}.get("fieldline.input_size", "320"))
    frames, check = check_frames(source, check_count, calib_count, size)  # decoded once for every attempt
    base = frames_map50(fp32, frames)
    ladder = [(scope, head, c) for scope in SCOPES for head in ([True] if keep_head_fp32 else [False, True])
              for c in (CALIBRATIONS if calibration == "auto" else (calibration,))]
    attempts: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        def attempt(scope: str, head_fp32: bool, method: str, fp32_blocks: Sequence[str] = ()) -> float:
            candidate = Path(tmp) / f"attempt-{len(attempts)}.onnx"
            quantize(fp32, candidate, calib_count, keep_head_fp32=head_fp32, source=source, calibration=method,
                     scope=scope, reduce_range=reduce_range, fp32_blocks=fp32_blocks,
                     calibration_cache=Path(tmp) / f"ranges-{scope}-{method}.json", rgb_conv_fp32=rgb_conv_fp32)
            q = frames_map50(candidate, frames)
            attempts.append({"scope": scope, "calibration": method, "head_fp32": head_fp32,
                             "fp32_blocks": list(fp32_blocks), "map50": q, "drop": round(base - q, 4),
                             "file": candidate})
            return q

        for scope, head_fp32, method in ladder:
            if base - attempt(scope, head_fp32, method) <= max_drop:
                break
        start = min(attempts, key=lambda a: a["drop"])
        if search and start["drop"] > max_drop:
            scope, head_fp32, method = start["scope"], start["head_fp32"], start["calibration"]
            blocks = network_blocks(network_nodes(onnx.load(str(fp32)), head_fp32, scope, rgb_conv_fp32))
            search_fp32_blocks(blocks, lambda kept: attempt(scope, head_fp32, method, kept), base, start["map50"],
                               max_drop)
        best = min(attempts, key=lambda a: a["drop"])  # the first of equals: the faster, earlier variant
        if best["drop"] <= max_drop or force:
            shutil.move(best["file"], out)
    for a in attempts:
        del a["file"]
    report = {"fp32_map50": base, "int8_map50": best["map50"], "drop": best["drop"], "head_fp32": best["head_fp32"],
              "calibration": best["calibration"], "scope": best["scope"], "fp32_blocks": best["fp32_blocks"],
              "attempts": attempts, "max_drop": max_drop,
              "calib_count": calib_count, "int8_weights": weight_range_metadata(reduce_range),
              "rgb_conv_fp32": rgb_conv_fp32,
              "check": {k: (v.describe() if isinstance(v, DataSource) else v) for k, v in check.items()},
              "out": str(out)}
    if best["drop"] > max_drop:
        if not force:  # nothing written: a file already at ``out`` (an earlier INT8 model) stays as it was
            searched = " and with the blocks that lose most kept in FP32" if search else ""
            raise QuantizationRefused(
                f"INT8 mAP50 {best['map50']:.3f} vs FP32 {base:.3f}: a drop of {100 * best['drop']:.1f} points "
                f"exceeds {100 * max_drop:.1f} (best of {len(attempts)} attempts: calibrations "
                f"{', '.join(sorted({a['calibration'] for a in attempts}))}, head in INT8 and in FP32, activations "
                f"in INT8 and in float{searched}); nothing "
                f"written. Use --force to keep it anyway, or calibrate on more frames (--calib-count).")
        report["forced"] = True
    warnings = [w for w in (small_check_warning(check["count"], max_drop), training_frames_warning(check)) if w]
    if warnings:
        report["check"]["warning"] = " ".join(warnings)
    return report
