"""Join several anomaly models of one line into one ONNX file, e.g. the ``seg`` method at two input sizes.

Why: at 128 px a U-Net sees the whole part (large uneven areas, frayed edges); at 256 px thin cracks and small
holes stay visible, but a model trained on crops loses the global view. Their errors differ, so their
combination beats either (magnetic tiles: see the surface-anomaly card).

Inside the graph the picture comes in at the largest branch's input size; each smaller branch gets an
integer-factor area average of it (what ``cv2.INTER_AREA`` does). Each branch's heatmap is upsampled to the
input size and put on one scale, the z-score of that branch's image scores on defect-free validation images
(their mean and std); the maps are averaged, and the score is the map's max (a thin frame ignored, as in each
branch), so every image over the threshold has a region over it. Averaging the branch z-scores instead scored
the same on magnetic tiles (painted-defect proxy 0.9346 vs 0.9342, MT image AUROC 0.892 vs 0.893). The
threshold is the ``1 - target_frr`` quantile of the combined scores of the same defect-free images. Same ONNX
contract as a single model (``image`` -> ``heatmap``, ``score``): the edge agent needs nothing new.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import onnx
from onnx import TensorProto, compose, helper, numpy_helper, version_converter

from models.anomaly.core import anomaly_metadata, onnx_scorer, read_model_metadata

VERSION = "1.0.0"


def _load_branch(path: Path) -> tuple[onnx.ModelProto, dict[str, str]]:
    meta = read_model_metadata(path)
    model = onnx.load(str(path))
    if meta.get("normalization") != "gray_0_1":
        raise ValueError(f"{path}: normalization {meta.get('normalization')!r}; combine needs gray_0_1")
    names = ([i.name for i in model.graph.input], [o.name for o in model.graph.output])
    if names != (["image"], ["heatmap", "score"]):
        raise ValueError(f"{path}: inputs/outputs {names}; expected ['image'] -> ['heatmap', 'score']")
    return model, meta


def _default_opset(model: onnx.ModelProto) -> int:
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def _graph(branches: list[tuple[onnx.ModelProto, int]], size: int,
           stats: list[tuple[float, float]], with_branch_scores: bool = False) -> onnx.ModelProto:
    """The combined model: ``image`` [1,1,size,size] -> ``heatmap`` (mean z-map), ``score`` (its inner max);
    ``with_branch_scores`` adds ``branch_scores`` [n] (each branch's z-score) for fitting the statistics."""
    opset = max(_default_opset(m) for m, _ in branches)
    domains = {o.domain: o.version for m, _ in branches for o in m.opset_import if o.domain not in ("", "ai.onnx")}
    nodes, inits, z_maps, z_scores = [], [], [], []
    for i, ((model, branch_size), (mean, std)) in enumerate(zip(branches, stats)):
        p = f"b{i}_"
        if _default_opset(model) != opset:
            model = version_converter.convert_version(model, opset)
        g = compose.add_prefix(model, p).graph
        factor = size // branch_size
        if factor == 1:
            nodes.append(helper.make_node("Identity", ["image"], [p + "image"]))
        else:
            nodes.append(helper.make_node("AveragePool", ["image"], [p + "image"], kernel_shape=[factor] * 2,
                                          strides=[factor] * 2))
        nodes.extend(g.node)
        inits.extend(g.initializer)
        inits += [numpy_helper.from_array(np.array(mean, np.float32), p + "z_mean"),
                  numpy_helper.from_array(np.array(std, np.float32), p + "z_std")]
        heatmap = p + "heatmap"
        if factor > 1:
            inits.append(numpy_helper.from_array(np.array([1, 1, factor, factor], np.float32), p + "up_scales"))
            nodes.append(helper.make_node("Resize", [heatmap, "", p + "up_scales"], [p + "heatmap_up"],
                                          mode="linear"))
            heatmap = p + "heatmap_up"
        for src, dst in ((heatmap, z_maps), (p + "score", z_scores))[:2 if with_branch_scores else 1]:
            nodes.append(helper.make_node("Sub", [src, p + "z_mean"], [src + "_centred"]))
            nodes.append(helper.make_node("Div", [src + "_centred", p + "z_std"], [src + "_z"]))
            dst.append(src + "_z")
    nodes.append(helper.make_node("Mean", z_maps, ["heatmap"]))
    border = size // 32  # as in each branch: the score ignores a thin frame (edge effects)
    inits += [numpy_helper.from_array(np.array(v, np.int64), n) for n, v in
              (("inner_start", [border, border]), ("inner_end", [size - border, size - border]),
               ("inner_axes", [2, 3]))]
    nodes.append(helper.make_node("Slice", ["heatmap", "inner_start", "inner_end", "inner_axes"], ["inner"]))
    if opset >= 18:  # ReduceMax took its axes as an attribute before opset 18
        inits.append(numpy_helper.from_array(np.array([1, 2, 3], np.int64), "score_axes"))
        nodes.append(helper.make_node("ReduceMax", ["inner", "score_axes"], ["score"], keepdims=0))
    else:
        nodes.append(helper.make_node("ReduceMax", ["inner"], ["score"], axes=[1, 2, 3], keepdims=0))
    outputs = [helper.make_tensor_value_info("heatmap", TensorProto.FLOAT, [1, 1, size, size]),
               helper.make_tensor_value_info("score", TensorProto.FLOAT, [1])]
    if with_branch_scores:
        nodes.append(helper.make_node("Concat", z_scores, ["branch_scores"], axis=0))
        outputs.append(helper.make_tensor_value_info("branch_scores", TensorProto.FLOAT, [len(branches)]))
    graph = helper.make_graph(nodes, "fieldline_anomaly_combined",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 1, size, size])],
                              outputs, inits)
    combined = helper.make_model(graph, producer_name="fieldline", opset_imports=[
        helper.make_opsetid("", opset), *(helper.make_opsetid(d, v) for d, v in sorted(domains.items()))])
    combined.ir_version = max(m.ir_version for m, _ in branches)
    onnx.checker.check_model(combined)
    return combined


def _run(model: onnx.ModelProto, x: np.ndarray, output: str) -> np.ndarray:
    """``output`` of ``model`` for each image of ``x``, flattened: [N, size of the output]."""
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return np.stack([np.ravel(sess.run([output], {"image": x[i:i + 1]})[0]) for i in range(len(x))])


def combine_anomaly_models(paths: Sequence[Path], out: Path, val: np.ndarray, *, target_frr: float = 0.01,
                           name: str = "surface-anomaly-combined", version: str = VERSION) -> dict[str, Any]:
    """Combine the anomaly models ``paths`` into ``out``; ``val``: defect-free images [N,1,S,S] (grey 0..1) at
    the largest input size S, not used to fit the branches if possible. Returns a report (statistics, threshold).
    """
    if len(paths) < 2:
        raise ValueError(f"combine needs at least 2 models, got {len(paths)}")
    loaded = [(Path(p), *_load_branch(Path(p))) for p in paths]
    sizes = [int(meta["input_size"]) for _, _, meta in loaded]
    size = max(sizes)
    for (path, _, _), s in zip(loaded, sizes):
        if size % s:
            raise ValueError(f"{path}: input size {s} does not divide the largest input size {size}; the smaller "
                             "branches get an integer-factor downsample of the picture")
    if val.ndim != 4 or val.shape[1:] != (1, size, size) or len(val) < 2:
        raise ValueError(f"need at least 2 defect-free validation images of shape [1,{size},{size}], got "
                         f"{list(val.shape)}")
    branches = [(model, s) for (_, model, _), s in zip(loaded, sizes)]
    raw = _run(_graph(branches, size, [(0.0, 1.0)] * len(branches), with_branch_scores=True), val,
               "branch_scores")  # [N, branches]: the raw scores (a z-scale of mean 0, std 1)
    stats = [(float(raw[:, i].mean()), float(raw[:, i].std()) or 1.0) for i in range(len(branches))]
    combined = _graph(branches, size, stats)
    scores = _run(combined, val, "score")[:, 0]
    threshold = float(np.quantile(scores, 1 - target_frr))
    report: dict[str, Any] = {
        "method": "combined", "input_size": size, "val_images": int(len(val)), "target_frr": target_frr,
        "threshold": round(threshold, 6),
        "rule": "heatmap = mean over branches of (branch heatmap - mean) / std, with the mean and std of that "
                "branch's defect-free validation image scores; score = max of that map inside a "
                f"{size // 32} px frame",
        "threshold_rule": f"{1 - target_frr:.2f} quantile of defect-free validation image scores "
                          f"(target false-reject rate {target_frr:.0%})",
        "branches": [{"file": path.name, "name": meta.get("name", ""), "input_size": s,
                      "z_mean": round(mean, 6), "z_std": round(std, 6)}
                     for (path, _, meta), s, (mean, std) in zip(loaded, sizes, stats)],
    }
    train_data = " + ".join(dict.fromkeys(meta.get("train_data", "?") for _, _, meta in loaded))
    combined.doc_string = (f"FieldLine {name} {version}: max of the mean of the z-scored maps of "
                           + ", ".join(f"{meta.get('name', path.stem)} ({s} px)"
                                       for (path, _, meta), s in zip(loaded, sizes)))
    for k, v in anomaly_metadata(threshold, size, train_data, name, version).items():
        combined.metadata_props.add(key=k, value=v)
    combined.metadata_props.add(key="fieldline.branches", value=json.dumps(report["branches"]))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(combined, out)
    check = onnx_scorer(out)(val[:2])[0]
    if not np.allclose(check, scores[:2], atol=1e-4):
        raise RuntimeError(f"{out}: the saved file scores {check} but the combined graph scored {scores[:2]}")
    return report
