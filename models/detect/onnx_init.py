"""``train --init-from`` a FieldLine ONNX file (a zoo model by name, or any FP32 file the exporter wrote).

The zoo ships ONNX files, not training checkpoints, so the weights are read back from the graph: the torch exporter
names every node after its module (``/s3/s3.0/dw/dw.0/Conv`` is module ``s3.0.dw.0``), and in eval mode it folds
each batch-norm into the convolution before it (weight scaled, bias added). Each Conv's weight and bias go back
into the module of that name; a folded batch-norm first becomes the identity with the folded bias as its shift, so
the network in eval mode computes exactly what the file computes. Training normalises by batch statistics instead,
so the batch-norms are then re-estimated on training pictures: running mean/variance of their input, and scale
and shift that map them back onto the folded function (still exact in eval mode). The shared head's ``level_scale``
is the scalar the exporter multiplies each level's box output by.

INT8 (QDQ) files are refused (their weights are rounded): fine-tune from the FP32 file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from models.zoo_index import ZOO

_CALL_SUFFIX = re.compile(r"_\d+$")
ONNX_MAGIC_SUFFIXES = (".onnx",)


def resolve_init_source(value: str | Path) -> Path:
    """A path as given, else a zoo model by name (``tomato-ripeness`` -> models/zoo/tomato-ripeness.onnx)."""
    path = Path(value)
    if path.is_file():
        return path
    zoo = ZOO / f"{value}.onnx"
    if path.suffix == "" and zoo.is_file():
        return zoo
    names = sorted(p.name[:-5] for p in ZOO.glob("*.onnx") if not p.name.endswith(".int8.onnx"))
    raise FileNotFoundError(f"--init-from {value}: no such checkpoint or ONNX file, nor a zoo model of that name "
                            f"(zoo: {', '.join(names)})")


def module_path(node_name: str) -> str:
    """``/s3/s3.0/dw/dw.0/Conv`` -> ``s3.0.dw.0``; ``/head/head.0/dw/dw.0_1/Conv`` (a second call) -> ``head.0.dw.0``.

    The exporter names a scope by the module's name relative to its nearest named parent, and a Sequential's child
    by the parent's name plus its index, so a scope that extends the previous one replaces it."""
    parts: list[str] = []
    for comp in (_CALL_SUFFIX.sub("", c) for c in node_name.strip("/").split("/")[:-1]):
        if parts and comp.startswith(parts[-1] + "."):
            parts[-1] = comp
        else:
            parts.append(comp)
    return ".".join(parts)


def read_onnx_weights(path: Path) -> tuple[dict[str, tuple[np.ndarray, np.ndarray | None]], list[float], dict]:
    """(conv module -> (weight, bias), per-level box scales, metadata) of a FieldLine FP32 detector file."""
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # noqa: BLE001 - any parse error means the same to the user
        raise ValueError(f"--init-from {path}: neither a FieldLine checkpoint (best.pt, last.pt) nor a readable "
                         f"ONNX file ({type(exc).__name__})") from None
    meta = {p.key: p.value for p in model.metadata_props}
    if meta.get("fieldline.decoder") != "fieldline":
        raise ValueError(f"--init-from {path}: not a FieldLine detector (decoder "
                         f"{meta.get('fieldline.decoder', 'not recorded')}); anomaly models cannot start a detector")
    if any(n.op_type in ("DequantizeLinear", "QLinearConv") for n in model.graph.node):
        raise ValueError(f"--init-from {path}: an INT8 file (rounded weights); start from the FP32 file "
                         f"({path.name.replace('.int8.onnx', '.onnx')})")
    if meta.get("fieldline.flips", "none") != "none":
        raise ValueError(f"--init-from {path}: exported with --flips {meta['fieldline.flips']}; start from a file "
                         "exported without mirror averaging")
    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    convs: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    producer: dict[str, str] = {}
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        name = module_path(node.name)
        producer[node.output[0]] = name
        if name in convs or node.input[1] not in values:
            continue  # a shared module's second call
        bias = values.get(node.input[2]) if len(node.input) > 2 else None
        convs[name] = (values[node.input[1]], bias)
    scales = [float(values[i]) for node in model.graph.node if node.op_type == "Mul"
              and producer.get(node.input[0]) == "reg" for i in node.input[1:] if i in values
              and values[i].size == 1]
    return convs, scales, meta


def conv_bn_pairs(model: nn.Module) -> dict[str, str]:
    """Conv module -> the batch-norm that normalises its output (the next of the two kinds a forward pass runs)."""
    names = {m: n for n, m in model.named_modules()}
    order: list[str] = []
    hooks = [m.register_forward_hook(lambda mod, i, o: order.append(names[mod])) for m in names
             if isinstance(m, (nn.Conv2d, nn.BatchNorm2d))]
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, 64, 64))
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
    modules = dict(model.named_modules())
    pairs: dict[str, str] = {}
    for a, b in zip(order, order[1:]):
        if isinstance(modules[a], nn.Conv2d) and isinstance(modules[b], nn.BatchNorm2d) and a not in pairs:
            pairs[a] = b
    return pairs


def shape_flags(convs: dict[str, tuple[np.ndarray, np.ndarray | None]], levels: int) -> str:
    """The ``train`` options that build the file's network (for the error when this run's differs)."""
    if "backbone._conv_stem" in convs:
        flags = ["--backbone efficientnet-lite0"]
    else:
        stem = convs.get("stem.0.0")
        flags = [f"--arch {'fast' if stem is not None and stem[0].shape[-1] == 4 else 'v1'}"]
        if "s3.0.pw.0" in convs:
            flags.append(f"--width {convs['s3.0.pw.0'][0].shape[0]}")
    if "lat3.0" in convs:
        flags.append(f"--head-width {convs['lat3.0'][0].shape[0]}")
    flags.append(f"--head-depth {len({n.split('.')[1] for n in convs if n.startswith('head.')})}")
    flags.append(f"--levels {levels}")
    return " ".join(flags)


def _set_folded(conv: nn.Conv2d, bn: nn.BatchNorm2d, weight: torch.Tensor, bias: torch.Tensor) -> None:
    """The file's folded conv -> conv weight + an identity batch-norm shifted by the folded bias."""
    conv.weight.copy_(weight)
    bn.weight.fill_(1.0)
    bn.bias.copy_(bias)
    bn.running_mean.zero_()
    bn.running_var.fill_(1.0 - bn.eps)


@torch.no_grad()
def reestimate_batchnorm(model: nn.Module, bns: list[str], sample: torch.Tensor, batch: int = 8) -> None:
    """Give the identity batch-norms of :func:`_set_folded` the statistics of their input on ``sample`` (RGB 0..1),
    with the scale and shift that keep the eval-mode function: y = sqrt(var + eps) (x - mean) / sqrt(var + eps)
    + mean + b = x + b."""
    modules = dict(model.named_modules())
    sums: dict[str, list[torch.Tensor]] = {n: [] for n in bns}

    def hook(name: str):
        def run(mod: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
            x = inputs[0].float()
            sums[name].append(torch.stack([x.mean((0, 2, 3)), (x * x).mean((0, 2, 3))]) * x.shape[0])
        return run

    hooks = [modules[n].register_forward_hook(hook(n)) for n in bns]
    was = model.training
    model.eval()
    try:
        for start in range(0, len(sample), batch):
            model(sample[start:start + batch])
    finally:
        for h in hooks:
            h.remove()
        model.train(was)
    for name in bns:
        if not sums[name]:
            continue
        mean, sq = (torch.stack(sums[name]).sum(0) / len(sample)).unbind(0)
        var = (sq - mean * mean).clamp(min=0) * len(sample) / max(len(sample) - 1, 1)
        bn = modules[name]
        bn.bias.copy_(bn.bias + mean)  # the identity's shift b becomes mean + b
        bn.running_mean.copy_(mean)
        bn.running_var.copy_(var)
        bn.weight.copy_((var + bn.eps).sqrt())


@torch.no_grad()
def load_onnx_weights(model: nn.Module, path: Path, labels: tuple[str, ...], levels: int,
                      sample: torch.Tensor | None = None) -> dict:
    """The weights of FieldLine ONNX file ``path`` into ``model`` (see the module docstring); what was loaded.

    Class rows of ``cls`` are copied by label name (labels the file does not know start fresh); a 3-level run may
    start from a 2-level file (its stride-32 layers start fresh). ``sample``: training pictures (N,3,H,W, RGB 0..1)
    for the batch-norm re-estimation (without it the batch-norms keep the identity of the folded form)."""
    convs, scales, meta = read_onnx_weights(path)
    source_labels = json.loads(meta.get("fieldline.labels", "[]"))
    modules = dict(model.named_modules())
    own = [n for n, m in modules.items() if isinstance(m, nn.Conv2d)]
    fresh_ok = ("down5", "fuse5b") if len(scales) < levels else ()
    needs = f"train with {shape_flags(convs, len(scales))} to start from it"
    unknown = [n for n in convs if n not in modules]
    missing = [n for n in own if n not in convs and not n.startswith(fresh_ok)]
    if unknown or missing:
        first = f"layer {unknown[0]} is not in this network" if unknown else f"this network's {missing[0]} is not in it"
        raise ValueError(f"--init-from {path}: a different network ({first}); {needs}")
    pairs = conv_bn_pairs(model)
    folded: list[str] = []
    shared = [lab for lab in labels if lab in source_labels]
    for name in own:
        if name not in convs:
            continue
        w, b = (None if a is None else torch.from_numpy(np.array(a, np.float32)) for a in convs[name])
        conv = modules[name]
        if name == "cls":
            if w.shape[1:] != conv.weight.shape[1:]:
                raise ValueError(f"--init-from {path}: layer cls is {tuple(w.shape)}, here {tuple(conv.weight.shape)}; "
                                 f"{needs}")
            for lab in shared:
                conv.weight[labels.index(lab)] = w[source_labels.index(lab)]
                conv.bias[labels.index(lab)] = b[source_labels.index(lab)]
            continue
        if w.shape != conv.weight.shape:
            raise ValueError(f"--init-from {path}: layer {name} is {tuple(w.shape)} in the file, "
                             f"{tuple(conv.weight.shape)} here; {needs}")
        if name in pairs:
            _set_folded(conv, modules[pairs[name]], w, b if b is not None else torch.zeros(w.shape[0]))
            folded.append(pairs[name])
        else:
            conv.weight.copy_(w)
            if conv.bias is not None and b is not None:
                conv.bias.copy_(b)
    scale = getattr(model, "level_scale", None)
    if scale is not None and scales:
        scale[:len(scales)] = torch.tensor(scales[:len(scale)])
    if sample is not None and len(sample):
        reestimate_batchnorm(model, folded, sample)
    backbone = meta.get("fieldline.backbone")
    return {"path": str(path), "format": "onnx", "model": f"{meta.get('fieldline.name')} "
            f"{meta.get('fieldline.version')}", "source_labels": source_labels, "labels_copied": shared,
            "batchnorm_sample": 0 if sample is None else int(len(sample)),
            "backbone_record": json.loads(backbone) if backbone else None}
