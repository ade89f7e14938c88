"""Train the compact anchor-free detector (models/detect/net.py) on any source: synthetic generators or any
dataset that ``fieldline model import`` reads (CPU friendly, time-boxed).

Recipe: every training frame is resized once to the detector's letterbox scale and cached; augmentation =
random scale (0.75-1.45) and placement on 114-grey square crops (256 for a 320 input: the net is fully
convolutional, inference stays at full size), horizontal (and optionally vertical) flip, small HSV jitter
(hue barely moves: for tomatoes hue *is* the ripeness label). Channels-last tensors make the depthwise
convs ~2.5x faster on CPU. Centre-sampling (or SimOTA) assigner, quality focal loss (IoU as soft class target)
+ GIoU, AdamW, warmup + cosine LR over the time budget, EMA of weights; validation mAP (through the ONNX
edge path) picks ``best.pt``; ``last.pt`` holds everything ``--resume`` needs.
"""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import time
from copy import deepcopy
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from models.detect.assigners import ASSIGNERS, centre_assign, simota_assign
from models.data.sources import DataSource
from models.detect.net import ARCHS, STRIDES, NetSpec, TomatoNet, count_parameters, flatten, ltrb_to_xyxy

INPUT = 320
TRAIN_CANVAS = 256  # fully convolutional: train on 256 crops (~2x faster), infer at 320
# Below 0.75 tiny fruit become label noise; a model runs best up to about the top of this range times its
# training scale (larger objects than that were never seen), so a file run at 1.5x wants a wider top.
SCALE_RANGE = (0.75, 1.45)
CACHE_SCALE = 0.5  # 640x480 -> 320x240, the exact letterbox scale used at inference


@dataclass
class TrainConfig:
    out_dir: Path = Path("/tmp/fieldline_train")
    data: str = "synth:tomato"  # synth:tomato | synth:surface | a dataset folder/file (then set ``fmt``)
    fmt: str | None = None  # yolo | coco | voc | supervisely
    mapping: str | None = None  # class renames/merges, e.g. "b_fully_ripened=ripe,l_fully_ripened=ripe"
    classes: tuple[str, ...] | None = None  # class-id order of the model
    split_seed: int = 0
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)  # train/val/test for images outside split folders
    images: int = 4000  # synthetic sources: images rendered for training
    val_images: int = 100  # synthetic: fresh validation frames; datasets: at most this many of the val split
    val_interval_s: float = 90.0  # validation mAP at the end of the first epoch after this much training time
    val_every_epochs: int | None = None  # when set, validate every N epochs instead (the same on any CPU)
    input_size: int = INPUT
    train_canvas: int | None = None  # square training crop; None = 0.8 x input (256 at 320), the input below 320
    flip_vertical: bool = False  # surfaces: defects have no up/down
    mosaic: float = 0.0  # share of training samples built as 2x2 mosaics of four images (small datasets)
    scale_range: tuple[float, float] = SCALE_RANGE  # random rescale of 70 % of the samples (1.0 for the rest)
    width: int = 80
    head_width: int = 96
    act: str = "silu"  # silu | relu (see models/detect/net.py: ReLU fuses into the convs on onnxruntime)
    stem: str = "conv"  # conv | patch
    head_depth: int = 2
    levels: int = 2  # output levels: 2 = strides 8, 16; 3 adds stride 32
    backbone: str = "scratch"  # scratch (random init) | a pretrained trunk of models/detect/backbones.py
    assigner: str = "centre"  # centre | simota (models/detect/assigners.py)
    seed: int = 1234
    epochs: int = 300  # upper bound; the time budget normally ends training first
    batch: int = 16
    lr: float = 3e-3
    weight_decay: float = 1e-4
    time_budget_s: float = 800.0  # optimisation time (validation excluded); the cosine LR runs over it
    max_steps: int | None = None  # optimiser steps; when set the LR schedule runs over them (the same run on
    # any CPU) and the time budget is only a cap
    threads: int = 2
    workers: int = 2  # processes used to render synthetic data
    init_from: Path | None = None  # fine-tune: start from this checkpoint's weights (best.pt / last.pt)
    average_from: float | None = None  # also write average.pt: mean of the EMA weights validated after this
    # share of the run (time budget or epochs, e.g. 0.67); less dependent on a small validation set than best.pt

    def validation_due(self, epoch: int, since_last_s: float) -> bool:
        """Whether the end of ``epoch`` gets a validation run: every N epochs when set, otherwise by training time."""
        if self.val_every_epochs:
            return (epoch + 1) % self.val_every_epochs == 0
        return since_last_s >= self.val_interval_s

    def progress(self, step: int, spent: float) -> float:
        """Share of the run done (1.0 = stop): by steps when ``max_steps`` is set, by time, whichever is further."""
        by_time = spent / self.time_budget_s
        return max(by_time, step / self.max_steps) if self.max_steps else by_time

    def source(self) -> DataSource:
        return DataSource.parse(self.data, self.fmt, self.mapping, self.classes, self.split_seed, self.fractions)

    def spec(self) -> NetSpec:
        return NetSpec(self.width, self.head_width, self.act, self.stem, self.head_depth,  # type: ignore[arg-type]
                       self.levels, self.backbone)

    @staticmethod
    def arch_fields(arch: str) -> dict:
        """The TrainConfig fields of a preset of :data:`models.detect.net.ARCHS` (``v1`` / ``fast``)."""
        if arch not in ARCHS:
            raise ValueError(f"unknown arch {arch!r}; choose one of {', '.join(ARCHS)}")
        return ARCHS[arch].to_dict()

    def canvas(self) -> int:
        if self.train_canvas:
            return self.train_canvas
        return self.input_size if self.input_size < INPUT else int(round(self.input_size * 0.8 / 32) * 32)


def _fit(img: np.ndarray, boxes: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Resize so the longer side is ``size`` (the detector's letterbox scale)."""
    h, w = img.shape[:2]
    s = size / max(h, w)
    if abs(s - 1) > 1e-6:
        img = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))),
                         interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    return img, np.asarray(boxes, np.float32).reshape(-1, 4) * s


def build_cache(src: DataSource, count: int, seed: int, size: int, out_dir: Path, workers: int = 2) -> Path:
    """Fit every training frame to the input scale once; one npz (images padded to size x size + their shapes)."""
    key = src.data_hash("train", count if src.is_synthetic else None, seed)
    path = Path(out_dir) / f"cache_{key}_{size}.npz"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if src.is_synthetic:
        step = 100
        chunks = [(src, seed, s, min(count, s + step), size) for s in range(0, count, step)]
        with mp.get_context("fork").Pool(workers) as pool:
            items = [it for part in pool.map(_synth_chunk, chunks) for it in part]
    else:
        items = [(*_fit(img, b, size), labs) for img, b, labs in src.frames("train")]
    labels = src.labels()
    imgs = np.full((len(items), size, size, 3), 114, np.uint8)
    shapes = np.zeros((len(items), 2), np.int32)
    for k, (img, _, _) in enumerate(items):
        imgs[k, :img.shape[0], :img.shape[1]] = img
        shapes[k] = img.shape[:2]
    np.savez(path, images=imgs, shapes=shapes,
             boxes=np.concatenate([it[1] for it in items]) if items else np.zeros((0, 4), np.float32),
             labels=np.array([labels.index(lab) for it in items for lab in it[2]], np.int64),
             counts=np.array([len(it[2]) for it in items]))
    path.with_suffix(".json").write_text(json.dumps({"render_seconds": round(time.perf_counter() - t0, 1),
                                                     "data_hash": key}))
    return path


def _synth_chunk(args: tuple[DataSource, int, int, int, int]) -> list[tuple[np.ndarray, np.ndarray, list[str]]]:
    """Frames start..stop of a synthetic source (frame i depends only on [seed, i])."""
    src, seed, start, stop, size = args
    return [(*_fit(img, b, size), labs) for img, b, labs in src.frames("train", stop - start, seed, start=start)]


def augment(img: np.ndarray, boxes: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
            size: int = TRAIN_CANVAS, flip_vertical: bool = False,
            scale_range: tuple[float, float] = SCALE_RANGE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scale, place on (or crop to) a size x size grey canvas, flip, S/V jitter."""
    s = 1.0 if rng.uniform() < 0.3 else float(rng.uniform(*scale_range))
    h, w = img.shape[:2]
    nw, nh = max(8, int(round(w * s))), max(8, int(round(h * s)))
    im = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR if s > 1 else cv2.INTER_AREA)
    b = boxes * np.array([nw / w, nh / h, nw / w, nh / h], np.float32)
    canvas = np.full((size, size, 3), 114, np.uint8)
    ox = int(rng.integers(0, size - nw + 1)) if nw <= size else -int(rng.integers(0, nw - size + 1))
    oy = int(rng.integers(0, size - nh + 1)) if nh <= size else -int(rng.integers(0, nh - size + 1))
    sx0, sy0 = max(0, -ox), max(0, -oy)
    dx0, dy0 = max(0, ox), max(0, oy)
    cw, ch = min(nw - sx0, size - dx0), min(nh - sy0, size - dy0)
    canvas[dy0:dy0 + ch, dx0:dx0 + cw] = im[sy0:sy0 + ch, sx0:sx0 + cw]
    b = b + np.array([ox, oy, ox, oy], np.float32)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    cb = np.clip(b, [dx0, dy0, dx0, dy0], [dx0 + cw, dy0 + ch, dx0 + cw, dy0 + ch])
    carea = (cb[:, 2] - cb[:, 0]) * (cb[:, 3] - cb[:, 1])
    keep = (carea >= 0.4 * np.maximum(area, 1e-6)) & (cb[:, 2] - cb[:, 0] >= 2) & (cb[:, 3] - cb[:, 1] >= 2)
    cb, lab = cb[keep], labels[keep]
    if rng.uniform() < 0.5:
        canvas = canvas[:, ::-1]
        cb = np.stack([size - cb[:, 2], cb[:, 1], size - cb[:, 0], cb[:, 3]], 1)
    if flip_vertical and rng.uniform() < 0.5:
        canvas = canvas[::-1]
        cb = np.stack([cb[:, 0], size - cb[:, 3], cb[:, 2], size - cb[:, 1]], 1)
    hsv = cv2.cvtColor(np.ascontiguousarray(canvas), cv2.COLOR_BGR2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-1.5, 1.5)) % 180
    hsv[..., 1] *= rng.uniform(0.75, 1.25)
    hsv[..., 2] *= rng.uniform(0.7, 1.3)
    canvas = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2BGR)
    return canvas, cb.astype(np.float32), lab


def mosaic(tiles: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Four augmented square tiles -> one 2x2 image (small datasets: more objects and contexts per step)."""
    half = tiles[0][0].shape[0]
    canvas = np.empty((2 * half, 2 * half, 3), np.uint8)
    boxes, labels = [], []
    for k, (img, b, lab) in enumerate(tiles):
        ox, oy = (k % 2) * half, (k // 2) * half
        canvas[oy:oy + half, ox:ox + half] = img
        boxes.append(b + np.array([ox, oy, ox, oy], np.float32))
        labels.append(lab)
    return canvas, np.concatenate(boxes).astype(np.float32), np.concatenate(labels)


def box_iou_pairs(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Element-wise IoU and GIoU of two (K,4) xyxy tensors."""
    lt, rb = torch.maximum(a[:, :2], b[:, :2]), torch.minimum(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(1)
    union = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(1) + (b[:, 2:] - b[:, :2]).prod(1) - inter
    iou = inter / union.clamp(min=1e-6)
    hull = (torch.maximum(a[:, 2:], b[:, 2:]) - torch.minimum(a[:, :2], b[:, :2])).prod(1)
    return iou, iou - (hull - union) / hull.clamp(min=1e-6)


def compute_loss(outs: list, targets: list[tuple[torch.Tensor, torch.Tensor]], assigner: str = "centre"
                 ) -> tuple[torch.Tensor, dict]:
    """Quality focal loss + 2 x GIoU over the positives that ``assigner`` (models/detect/assigners.py) picks."""
    if assigner not in ASSIGNERS:
        raise ValueError(f"unknown assigner {assigner!r}; choose one of {', '.join(ASSIGNERS)}")
    logits, dist, points = flatten(outs)
    strides = torch.cat([torch.full((o[0].shape[2] * o[0].shape[3],), float(s)) for o, s in zip(outs, STRIDES)])
    boxes = ltrb_to_xyxy(points[None], dist)
    qtarget = torch.zeros_like(logits)
    giou_terms, n_pos = [], 0
    for b, (gt, lab) in enumerate(targets):
        if assigner == "simota":
            pos, idx = simota_assign(points, strides, gt, lab, boxes[b].detach(), logits[b].detach())
        else:
            pos, idx = centre_assign(points, strides, gt)
        if pos.any():
            tb, tl = gt[idx[pos]], lab[idx[pos]]
            iou, giou = box_iou_pairs(boxes[b, pos], tb)
            qtarget[b, pos.nonzero()[:, 0], tl] = iou.detach().clamp(min=0.01)
            giou_terms.append(1 - giou)
            n_pos += int(pos.sum())
    prob = logits.sigmoid()
    qfl = F.binary_cross_entropy_with_logits(logits, qtarget, reduction="none") * (prob - qtarget).abs().pow(2)
    norm = max(n_pos, 1)
    l_cls = qfl.sum() / norm
    l_box = torch.cat(giou_terms).sum() / norm if giou_terms else logits.sum() * 0
    loss = l_cls + 2.0 * l_box
    return loss, {"cls": float(l_cls.detach()), "box": float(l_box.detach()), "pos": n_pos / max(len(targets), 1)}


class EMA:
    def __init__(self, model: torch.nn.Module, decay: float = 0.997, tau: float = 200.0):
        self.model = deepcopy(model).eval()
        self.decay, self.tau, self.updates = decay, tau, 0
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        d = self.decay * (1 - math.exp(-self.updates / self.tau))
        msd = model.state_dict()
        for k, v in self.model.state_dict().items():
            if v.dtype.is_floating_point:
                v.mul_(d).add_(msd[k].detach(), alpha=1 - d)
            else:
                v.copy_(msd[k])


def validate(net: TomatoNet, frames: list, labels: tuple[str, ...], input_size: int) -> dict:
    """mAP of the net on held-out frames through the edge path (ONNX export + OnnxDetector + pycocotools)."""
    import tempfile

    from edge_agent.detectors.onnx_detector import OnnxDetector
    from models.detect.evaluate import coco_map, run_detector
    from models.detect.export import export_net

    with tempfile.TemporaryDirectory() as tmp:
        path = export_net(net, Path(tmp) / "val.onnx", labels, "val", "0", input_size=input_size)
        det = OnnxDetector(path, conf_threshold=0.001, threads=torch.get_num_threads())
        gts, dets = run_detector(det, frames)
    return coco_map(gts, dets, labels)


def _checkpoint(model: TomatoNet, ema: EMA, cfg: TrainConfig, labels: tuple[str, ...],
                backbone: dict | None = None) -> dict:
    return {"ema": ema.model.state_dict(), "labels": list(labels), "input_size": cfg.input_size,
            **cfg.spec().to_dict(), "backbone_record": backbone}


class WeightAverage:
    """Running mean of state dicts (floating tensors averaged; counters such as BN's batch count take the last)."""

    def __init__(self, state: dict | None = None, count: int = 0):
        self.state, self.count = state, count

    @torch.no_grad()
    def add(self, weights: dict) -> None:
        self.count += 1
        if self.state is None:
            self.state = {k: v.detach().clone() for k, v in weights.items()}
            return
        for k, v in weights.items():
            if v.dtype.is_floating_point:
                self.state[k].add_(v.detach() - self.state[k], alpha=1 / self.count)
            else:
                self.state[k].copy_(v)


def load_initial_weights(model: TomatoNet, path: Path | str, labels: tuple[str, ...], cfg: TrainConfig,
                         sample: torch.Tensor | None = None) -> dict:
    """Copy a checkpoint's (EMA) weights into ``model`` before training: fine-tuning a small dataset from a
    model trained on plenty of (e.g. synthetic) images instead of from random weights.

    The network widths must match. Class rows of the classification layer are copied by label name, so the
    label order may differ; labels the checkpoint does not know start from the fresh initialisation. A run may
    add the stride-32 output level to a 2-level checkpoint: its layers start fresh (the shared head is copied).
    ``path`` may also be a FieldLine ONNX file or a zoo model's name (:mod:`models.detect.onnx_init`; ``sample``: training
    pictures to re-estimate its folded batch-norms on). Returns what was loaded, for ``train_info.json``.
    """
    from models.detect.onnx_init import load_onnx_weights, resolve_init_source

    path = resolve_init_source(path)
    if path.suffix == ".onnx":
        return load_onnx_weights(model, path, labels, cfg.levels, sample)
    try:
        st = torch.load(path, map_location="cpu", weights_only=False)
    except Exception:  # noqa: BLE001 - not a torch file: an ONNX file under another name, or neither
        return load_onnx_weights(model, path, labels, cfg.levels, sample)
    if not isinstance(st, dict) or "ema" not in st:
        raise ValueError(f"--init-from {path}: not a FieldLine training checkpoint (best.pt or last.pt)")
    theirs = NetSpec.from_dict(st).to_dict()
    for key, want in cfg.spec().to_dict().items():
        if theirs[key] != want and not (key == "levels" and theirs[key] < want):
            raise ValueError(f"--init-from {path}: {key} {theirs[key]} differs from this run's {want}")
    source_labels = list(st.get("labels") or [])
    weights, own = st["ema"], model.state_dict()
    shared = [lab for lab in labels if lab in source_labels]
    for name, tensor in weights.items():
        if name in ("cls.weight", "cls.bias"):
            for lab in shared:  # the class axis is the first one
                own[name][labels.index(lab)] = tensor[source_labels.index(lab)]
        elif name in own and own[name].shape == tensor.shape:
            own[name].copy_(tensor)
        elif name == "level_scale" and tensor.shape[0] < own[name].shape[0]:  # a level added: the new one keeps 1
            own[name][:tensor.shape[0]] = tensor
        else:
            raise ValueError(f"--init-from {path}: layer {name} does not fit this network")
    model.load_state_dict(own)
    return {"path": str(path), "source_labels": source_labels, "labels_copied": shared,
            "backbone_record": st.get("backbone_record")}


def _picture_sample(images: np.ndarray, count: int = 16) -> torch.Tensor:
    """The first cached training pictures as RGB 0..1 tensors (batch-norm statistics of an ONNX start)."""
    x = np.ascontiguousarray(images[:count, :, :, ::-1])
    return torch.from_numpy(x).permute(0, 3, 1, 2).float().div(255)


def start_weights(model: TomatoNet, cfg: TrainConfig, resume: bool) -> dict:
    """The pretrained trunk's packaged weights into ``model`` (not when resuming: last.pt holds them); the record
    of where the trunk's first weights came from, for train_info.json, the checkpoints and the ONNX metadata."""
    if cfg.backbone == "scratch":
        return {"name": "scratch", "init": "random"}
    from models.detect.backbones import BACKBONES, load_pretrained

    if cfg.backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {cfg.backbone!r}; choose one of scratch, {', '.join(BACKBONES)}")
    if resume or cfg.init_from:  # the weights come from last.pt / the --init-from model (their record replaces this)
        return {"name": cfg.backbone, "init": "checkpoint"}
    return {**load_pretrained(model.backbone, cfg.backbone), "init": "pretrained"}


PLAIN_LINE_S = 30.0  # seconds of training between progress lines when stdout is not a terminal


def _status(epoch: int, step: int, loss: float, val_text: str) -> str:
    """The progress text of the live bar and of the plain lines."""
    return f"ep {epoch} step {step} loss {loss:.3f} val mAP50 {val_text}"


def _clock(seconds: float) -> str:
    return f"{int(seconds) // 60}:{int(seconds) % 60:02d}"


def _eta(cfg: TrainConfig, step: int, spent: float) -> str:
    done = cfg.progress(step, spent)
    return _clock(spent / done * (1 - done)) if 0 < done < 1 else "0:00"


def train(cfg: TrainConfig | None = None, progress: bool = True, resume: bool = False) -> Path:
    """Run the recipe; returns the path of the best EMA checkpoint (``best.pt``, by validation mAP50).

    ``resume`` continues from ``out_dir/last.pt`` (weights, EMA, optimiser, step, time spent, RNG states).
    """
    cfg = cfg or TrainConfig()
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed + 1)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    src = cfg.source()
    labels = src.labels()
    t_gen = time.perf_counter()
    cache = build_cache(src, cfg.images, cfg.seed, cfg.input_size, out, cfg.workers)
    meta = cache.with_suffix(".json")  # rendering time is recorded once, when the cache is built
    gen_s = json.loads(meta.read_text())["render_seconds"] if meta.exists() else time.perf_counter() - t_gen
    data = np.load(cache)
    images, shapes, counts = data["images"], data["shapes"], data["counts"]
    if len(images) == 0:
        raise ValueError(f"{src.describe()}: no training images")
    offsets = np.concatenate([[0], np.cumsum(counts)])
    all_boxes, all_labels = data["boxes"], data["labels"]
    if src.is_synthetic:
        val_frames = list(src.frames("val", cfg.val_images, cfg.seed + 7919))
    else:
        val_frames = list(src.frames("val", cfg.val_images)) if src.split_size("val") else []

    model = TomatoNet(len(labels), spec=cfg.spec()).to(memory_format=torch.channels_last)
    backbone = start_weights(model, cfg, resume)
    init = load_initial_weights(model, cfg.init_from, labels, cfg, _picture_sample(images)) \
        if cfg.init_from and not resume else None
    if init and init.get("backbone_record"):
        backbone = {**init["backbone_record"], "init": "checkpoint"}
    ema = EMA(model)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    batch = min(cfg.batch, len(images))
    steps_per_epoch = max(1, len(images) // batch)
    total = min(steps_per_epoch * cfg.epochs, cfg.max_steps or steps_per_epoch * cfg.epochs)
    warmup = min(150, max(1, total // 10))  # steps; after it LR follows a cosine over the run (time or steps)
    step, first_epoch, spent, log, val_log, best_map = 0, 0, 0.0, [], [], -1.0
    last = out / "last.pt"
    if resume:
        if not last.exists():
            raise FileNotFoundError(f"{last}: nothing to resume")
        st = torch.load(last, map_location="cpu", weights_only=False)
        if st.get("labels") != list(labels):
            raise ValueError(f"{last}: trained on labels {st.get('labels')}, the data has {list(labels)}")
        model.load_state_dict(st["model"])
        ema.model.load_state_dict(st["ema"])
        ema.updates = st["ema_updates"]
        opt.load_state_dict(st["opt"])
        step, first_epoch, spent = st["step"], st["epoch"] + 1, st["spent"]
        backbone = st.get("backbone_record", backbone)
        log, val_log, best_map = st["log"], st["val_log"], st["best_map"]
        rng.bit_generator.state = st["np_rng"]
        torch.set_rng_state(st["torch_rng"])
    best = out / "best.pt"
    average = WeightAverage(*(st.get("average", (None, 0)) if resume else (None, 0)))
    canvas = cfg.canvas()
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    bar = Progress(TextColumn("[bold]train"), BarColumn(), TextColumn("{task.fields[info]}"),
                   TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), disable=not progress)
    plain_lines = progress and not bar.console.is_terminal
    last_val = last_line = spent
    val_text = f"{val_log[-1]['map50']:.3f}" if val_log else "-"
    with bar:
        task = bar.add_task("train", total=1.0, completed=min(1.0, cfg.progress(step, spent)), info="")
        for epoch in range(first_epoch, cfg.epochs):
            if step >= total or cfg.progress(step, spent) >= 1.0:
                break
            order = rng.permutation(len(images))
            model.train()
            for k in range(steps_per_epoch):
                done = cfg.progress(step, spent)  # the schedule runs on optimisation time or steps
                if step >= total or done >= 1.0:
                    break
                t_step = time.perf_counter()
                xs, targets = [], []
                def sample(i: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
                    sl = slice(offsets[i], offsets[i + 1])
                    h, w = shapes[i]
                    return augment(images[i][:h, :w], all_boxes[sl], all_labels[sl], rng, size, cfg.flip_vertical,
                                   cfg.scale_range)

                for i in order[k * batch:(k + 1) * batch]:
                    if cfg.mosaic and rng.uniform() < cfg.mosaic:
                        others = rng.integers(0, len(images), 3)
                        im, bx, lb = mosaic([sample(j, canvas // 2) for j in (i, *others)])
                    else:
                        im, bx, lb = sample(i, canvas)
                    xs.append(im[:, :, ::-1])  # BGR -> RGB, the model contract
                    targets.append((torch.from_numpy(bx), torch.from_numpy(lb)))
                x = torch.from_numpy(np.ascontiguousarray(np.stack(xs))).permute(0, 3, 1, 2).float().div(255)
                x = x.contiguous(memory_format=torch.channels_last)
                lr = cfg.lr * (step + 1) / warmup if step < warmup else \
                    cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, done))))
                for g in opt.param_groups:
                    g["lr"] = lr
                loss, parts = compute_loss(model(x), targets, cfg.assigner)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
                opt.step()
                ema.update(model)
                step += 1
                spent += time.perf_counter() - t_step
                if step % 10 == 0 or step == 1:
                    log.append({"step": step, "epoch": epoch, "loss": round(float(loss.detach()), 4),
                                **{k2: round(v, 4) for k2, v in parts.items()}, "lr": lr})
                status = _status(epoch, step, float(loss.detach()), val_text)
                bar.update(task, completed=min(1.0, cfg.progress(step, spent)), info=status)
                if plain_lines and spent - last_line >= PLAIN_LINE_S:
                    last_line = spent  # logs and pipes get no live bar: a plain line every 30 s of training
                    bar.console.print(f"train {status} | {_clock(spent)} trained, ETA {_eta(cfg, step, spent)}")
            finished = step >= total or cfg.progress(step, spent) >= 1.0 or epoch == cfg.epochs - 1
            if val_frames and (finished or cfg.validation_due(epoch, spent - last_val)):
                last_val = spent
                res = validate(ema.model, val_frames, labels, cfg.input_size)
                val_log.append({"step": step, "epoch": epoch, "map50": res["map50"], "map50_95": res["map50_95"]})
                val_text = f"{res['map50']:.3f}"
                if res["map50"] > best_map:
                    best_map = res["map50"]
                    torch.save(_checkpoint(model, ema, cfg, labels, backbone), best)
                if cfg.average_from is not None and max(cfg.progress(step, spent), step / total) >= cfg.average_from:
                    average.add(ema.model.state_dict())
            elif not val_frames:
                torch.save(_checkpoint(model, ema, cfg, labels, backbone), best)
            torch.save({**_checkpoint(model, ema, cfg, labels, backbone),  # exportable too: EMA weights + network shape
                        "model": model.state_dict(), "ema_updates": ema.updates, "opt": opt.state_dict(),
                        "epoch": epoch, "step": step, "spent": spent, "log": log, "val_log": val_log,
                        "best_map": best_map, "np_rng": rng.bit_generator.state, "torch_rng": torch.get_rng_state(),
                        "average": (average.state, average.count)}, last)
            status = _status(epoch, step, float(loss.detach()), val_text)
            bar.update(task, info=status)
            if plain_lines and finished:
                bar.console.print(f"train {status} | {_clock(spent)} trained, ETA {_eta(cfg, step, spent)}")
    if not best.exists():
        torch.save(_checkpoint(model, ema, cfg, labels, backbone), best)
    averaged = None
    if average.count:
        avg_net = deepcopy(ema.model)
        avg_net.load_state_dict(average.state)
        res = validate(avg_net, val_frames, labels, cfg.input_size) if val_frames else {}
        averaged = {"checkpoints": average.count, "val_map50": res.get("map50"), "val_map50_95": res.get("map50_95")}
        torch.save({**_checkpoint(model, ema, cfg, labels, backbone), "ema": average.state}, out / "average.pt")
    info = {"config": {k: str(v) for k, v in asdict(cfg).items()}, "data": src.describe(), "labels": list(labels),
            "steps": step, "epochs_done": round(step / steps_per_epoch, 2), "train_seconds": round(spent, 1),
            "data_seconds": round(gen_s, 1), "parameters": count_parameters(model), "images_seen": step * batch,
            "train_images": int(len(images)), "val_images": len(val_frames),
            "train_data_hash": src.data_hash("train", cfg.images if src.is_synthetic else None, cfg.seed),
            "train_seed": cfg.seed, "input_size": cfg.input_size, "best_val_map50": best_map if val_log else None,
            "init_from": init, "average": averaged, "backbone": backbone,
            "val_log": val_log, "loss_log": log[-20:], "first_losses": log[:3]}
    (out / "train_info.json").write_text(json.dumps(info, indent=2))
    return best


if __name__ == "__main__":
    train()
