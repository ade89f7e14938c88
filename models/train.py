"""Train TomatoNet on synthetic tomato scenes (CPU friendly, time-boxed).

Recipe: images pre-rendered at 640x480 and cached at the detector's letterbox scale (320x240);
augmentation = random scale (0.75-1.45) and placement on 114-grey 256x256 crops (the net is fully
convolutional; inference stays 320), horizontal flip, small HSV jitter (hue barely moves: hue *is*
the ripeness label). Channels-last tensors make the depthwise convs ~2.5x faster on CPU.
Static centre-sampling assigner, quality focal loss (IoU as soft class target) + GIoU, AdamW,
warmup + cosine LR, EMA of weights.
"""

from __future__ import annotations

import hashlib
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

from models.net import STRIDES, TomatoNet, count_parameters, flatten, ltrb_to_xyxy
from models.synth.tomato import LABELS, random_scene, render

INPUT = 320
TRAIN_CANVAS = 256  # fully convolutional: train on 256 crops (~2x faster), infer at 320
CACHE_SCALE = 0.5  # 640x480 -> 320x240, the exact letterbox scale used at inference


@dataclass
class TrainConfig:
    out_dir: Path = Path("/tmp/fieldline_train")
    images: int = 4000
    seed: int = 1234
    epochs: int = 40  # upper bound; the time budget normally ends training first
    batch: int = 16
    lr: float = 3e-3
    weight_decay: float = 1e-4
    time_budget_s: float = 800.0  # wall-clock length of the optimisation loop (cosine LR over it)
    threads: int = 2
    workers: int = 2  # processes used to render the dataset


def _render_chunk(args: tuple[int, int, int]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    seed, start, stop = args
    out = []
    for i in range(start, stop):
        rng = np.random.default_rng([seed, i])
        r = render(random_scene(rng), rng)
        img = cv2.resize(r.image, None, fx=CACHE_SCALE, fy=CACHE_SCALE, interpolation=cv2.INTER_AREA)
        labels = np.array([LABELS.index(lab) for lab in r.labels], np.int64)
        out.append((img, r.boxes * CACHE_SCALE, labels))
    return out


def build_cache(count: int, seed: int, out_dir: Path, workers: int = 2) -> Path:
    """Render ``count`` scenes once and store them as one npz (reused across runs)."""
    path = Path(out_dir) / f"cache_{seed}_{count}.npz"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    step = 100
    chunks = [(seed, s, min(count, s + step)) for s in range(0, count, step)]
    with mp.get_context("fork").Pool(workers) as pool:
        items = [it for part in pool.map(_render_chunk, chunks) for it in part]
    imgs = np.stack([it[0] for it in items])
    counts = np.array([len(it[2]) for it in items])
    np.savez(path, images=imgs, boxes=np.concatenate([it[1] for it in items]),
             labels=np.concatenate([it[2] for it in items]), counts=counts)
    path.with_suffix(".json").write_text(json.dumps({"render_seconds": round(time.perf_counter() - t0, 1)}))
    return path


def data_hash(count: int, seed: int) -> str:
    """Identifies the training set by generator recipe (module source) + seed + count."""
    src = Path(__file__).with_name("synth").joinpath("tomato.py").read_bytes()
    return hashlib.sha256(src + f"|{seed}|{count}".encode()).hexdigest()[:16]


def augment(img: np.ndarray, boxes: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
            size: int = TRAIN_CANVAS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scale, place on (or crop to) a size x size grey canvas, flip, S/V jitter."""
    s = 1.0 if rng.uniform() < 0.3 else float(rng.uniform(0.75, 1.45))  # tiny fruit = label noise
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
    hsv = cv2.cvtColor(np.ascontiguousarray(canvas), cv2.COLOR_BGR2HSV).astype(np.float32)
    hsv[..., 0] = (hsv[..., 0] + rng.uniform(-1.5, 1.5)) % 180
    hsv[..., 1] *= rng.uniform(0.75, 1.25)
    hsv[..., 2] *= rng.uniform(0.7, 1.3)
    canvas = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2BGR)
    return canvas, cb.astype(np.float32), lab


def assign(points: torch.Tensor, strides: torch.Tensor, gt: torch.Tensor, radius: float = 2.5
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre sampling: returns (pos mask (N,), gt index (N,)). Each GT keeps >=1 location."""
    n = points.shape[0]
    if gt.shape[0] == 0:
        return torch.zeros(n, dtype=torch.bool), torch.zeros(n, dtype=torch.long)
    px, py = points[:, 0:1], points[:, 1:2]
    inside = (px > gt[:, 0]) & (px < gt[:, 2]) & (py > gt[:, 1]) & (py < gt[:, 3])
    cx, cy = (gt[:, 0] + gt[:, 2]) / 2, (gt[:, 1] + gt[:, 3]) / 2
    r = radius * strides[:, None]
    centre = ((px - cx).abs() < r) & ((py - cy).abs() < r)
    side = torch.maximum(gt[:, 2] - gt[:, 0], gt[:, 3] - gt[:, 1])
    level_ok = (strides[:, None] < 12) | (side[None, :] >= 2 * strides[:, None])
    cand = inside & centre & level_ok
    fine = strides == STRIDES[0]
    d = (px - cx) ** 2 + (py - cy) ** 2
    d[~fine] = float("inf")
    cand[d.argmin(0), torch.arange(gt.shape[0])] = True
    area = ((gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1]))[None, :].expand(n, -1).clone()
    area[~cand] = float("inf")
    best_area, idx = area.min(1)
    return torch.isfinite(best_area), idx


def box_iou_pairs(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Element-wise IoU and GIoU of two (K,4) xyxy tensors."""
    lt, rb = torch.maximum(a[:, :2], b[:, :2]), torch.minimum(a[:, 2:], b[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(1)
    union = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(1) + (b[:, 2:] - b[:, :2]).prod(1) - inter
    iou = inter / union.clamp(min=1e-6)
    hull = (torch.maximum(a[:, 2:], b[:, 2:]) - torch.minimum(a[:, :2], b[:, :2])).prod(1)
    return iou, iou - (hull - union) / hull.clamp(min=1e-6)


def compute_loss(outs: list, targets: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, dict]:
    logits, dist, points = flatten(outs)
    strides = torch.cat([torch.full((o[0].shape[2] * o[0].shape[3],), float(s)) for o, s in zip(outs, STRIDES)])
    boxes = ltrb_to_xyxy(points[None], dist)
    qtarget = torch.zeros_like(logits)
    giou_terms, n_pos = [], 0
    for b, (gt, lab) in enumerate(targets):
        pos, idx = assign(points, strides, gt)
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


def train(cfg: TrainConfig | None = None, progress: bool = True) -> Path:
    """Run the whole recipe; returns the path of the EMA checkpoint (``best.pt``)."""
    cfg = cfg or TrainConfig()
    torch.manual_seed(cfg.seed)
    torch.set_num_threads(cfg.threads)
    rng = np.random.default_rng(cfg.seed + 1)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t_gen = time.perf_counter()
    cache = build_cache(cfg.images, cfg.seed, out, cfg.workers)
    meta = cache.with_suffix(".json")  # rendering time is recorded once, when the cache is built
    gen_s = json.loads(meta.read_text())["render_seconds"] if meta.exists() else time.perf_counter() - t_gen
    data = np.load(cache)
    images, counts = data["images"], data["counts"]
    offsets = np.concatenate([[0], np.cumsum(counts)])
    all_boxes, all_labels = data["boxes"], data["labels"]

    model = TomatoNet(len(LABELS)).to(memory_format=torch.channels_last)  # ~2.5x faster on CPU
    ema = EMA(model)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = len(images) // cfg.batch
    total = steps_per_epoch * cfg.epochs
    warmup = min(150, total // 10)  # steps; after it LR follows a cosine over the time budget
    step, t0, log = 0, time.perf_counter(), []
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(TextColumn("[bold]train"), BarColumn(), TextColumn("{task.completed:.0f}/{task.total:.0f} s"),
                   TextColumn("{task.fields[info]}"), TimeElapsedColumn(), disable=not progress)
    with bar:
        task = bar.add_task("train", total=cfg.time_budget_s, info="")
        for epoch in range(cfg.epochs):
            order = rng.permutation(len(images))
            model.train()
            for k in range(steps_per_epoch):
                done = (time.perf_counter() - t0) / cfg.time_budget_s  # schedule runs on wall clock
                if step >= total or done >= 1.0:
                    break
                batch, targets = [], []
                for i in order[k * cfg.batch:(k + 1) * cfg.batch]:
                    sl = slice(offsets[i], offsets[i + 1])
                    im, bx, lb = augment(images[i], all_boxes[sl], all_labels[sl], rng)
                    batch.append(im[:, :, ::-1])  # BGR -> RGB, the model contract
                    targets.append((torch.from_numpy(bx), torch.from_numpy(lb)))
                x = torch.from_numpy(np.ascontiguousarray(np.stack(batch))).permute(0, 3, 1, 2).float().div(255)
                x = x.contiguous(memory_format=torch.channels_last)
                lr = cfg.lr * (step + 1) / warmup if step < warmup else \
                    cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, done))))
                for g in opt.param_groups:
                    g["lr"] = lr
                loss, parts = compute_loss(model(x), targets)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
                opt.step()
                ema.update(model)
                step += 1
                if step % 10 == 0:
                    log.append({"step": step, "loss": float(loss.detach()), **parts, "lr": lr})
                bar.update(task, completed=time.perf_counter() - t0,
                           info=f"ep {epoch} step {step} loss {float(loss.detach()):.3f} cls {parts['cls']:.3f} "
                                f"box {parts['box']:.3f}")
            torch.save({"model": model.state_dict(), "ema": ema.model.state_dict(), "epoch": epoch, "step": step},
                       out / "last.pt")
            if step >= total or time.perf_counter() - t0 >= cfg.time_budget_s:
                break
    train_s = time.perf_counter() - t0
    best = out / "best.pt"
    torch.save(ema.model.state_dict(), best)
    info = {"config": {k: str(v) for k, v in asdict(cfg).items()}, "steps": step,
            "epochs_done": round(step / steps_per_epoch, 2), "train_seconds": round(train_s, 1),
            "data_seconds": round(gen_s, 1), "parameters": count_parameters(model),
            "images_seen": step * cfg.batch, "train_data_hash": data_hash(cfg.images, cfg.seed),
            "train_seed": cfg.seed, "train_images": cfg.images, "loss_log": log[-20:]}
    (out / "train_info.json").write_text(json.dumps(info, indent=2))
    return best


if __name__ == "__main__":
    train()
