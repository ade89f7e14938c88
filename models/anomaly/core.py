"""`surface-anomaly`: a defect-free-only anomaly detector (PatchCore-style kNN on small conv features).

Recipe (all CPU, no pretrained weights):

1. **Input**: greyscale, resized (no letterbox) to ``input_size`` square, 0..1; inside the graph
   a local contrast normalisation (minus a Gaussian(16 px) local mean, over the local std + 0.02)
   removes lighting gradients and exposure.
2. **Features**: a 3-stage conv encoder (strides 2/4/8, reflect padding). Its weights are the
   seeded random init (``encoder_seconds=0``, the shipped recipe) or, optionally, trained for a
   wall-clock budget on *synthetic* surfaces (``models.data.synth.surface``) to segment synthetic
   defects (a DRAEM-like "synthetic-defect contrast" pretext task; in short CPU budgets it did
   not beat the random init, see the model card). Stride-4 and upsampled stride-8 maps are
   concatenated, averaged over 3x3 neighbourhoods (local patch context, as in PatchCore) and
   projected by PCA (fitted on the defect-free training patches) to ``dim`` channels.
3. **Memory bank**: patch features of the defect-free training images (a random sample, with the
   rarer border patches over-sampled), reduced by greedy k-centre coreset selection to
   ``coreset`` vectors.
4. **Map and score**: per stride-4 location the Euclidean distance to the nearest bank vector,
   bilinearly upsampled to the input size and Gaussian-smoothed (sigma 2 px) = the heatmap;
   image score = max of the heatmap inside a thin frame (``input_size // 32`` px are ignored at
   the image border for the score only: corner/edge patches are noisy).
5. **Threshold** (documented rule): the ``1 - target_frr`` quantile of the image scores of
   held-out *defect-free* validation images (default target false-reject rate 1 %), i.e. a fixed
   false-reject rate; it also binarises the heatmap for boxes (so every flagged image has a box).

Everything from the standardisation to the score is one torch module, exported to ONNX with the
bank, PCA and blur kernel as initialisers: the edge needs only onnxruntime + numpy + OpenCV.
"""

from __future__ import annotations

import io
import json
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
import onnx
import torch
import torch.nn.functional as F
from torch import nn

from models.paths import shared_path

INPUT_SIZE = 256
NAME = "surface-anomaly"
VERSION = "1.0.0"
MT_ROOT = shared_path("datasets", "magnetic-tile")  # ../shared beside the repo
MT_DEFECTS = ("MT_Blowhole", "MT_Break", "MT_Crack", "MT_Fray", "MT_Uneven")


# -------------------------------------------------------------------------------------- the network

class Encoder(nn.Module):
    def __init__(self, width: int = 32):
        super().__init__()
        self.c1 = nn.Conv2d(1, width, 5, 2, 2, padding_mode="reflect")
        self.c2 = nn.Conv2d(width, 2 * width, 3, 2, 1, padding_mode="reflect")
        self.c3 = nn.Conv2d(2 * width, 2 * width, 3, 2, 1, padding_mode="reflect")
        self.out_channels = 4 * width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: standardised [B,1,S,S] -> patch features [B, 4w, S/4, S/4]."""
        f1 = F.relu(self.c1(x))
        f2 = F.relu(self.c2(f1))
        f3 = F.relu(self.c3(f2))
        f = torch.cat([f2, F.interpolate(f3, scale_factor=2.0, mode="bilinear", align_corners=False)], 1)
        return F.avg_pool2d(f, 3, 1, 1, count_include_pad=False)


def _gauss_kernel(sigma: float) -> torch.Tensor:
    r = int(math.ceil(3 * sigma))
    t = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-t ** 2 / (2 * sigma ** 2))
    return k / k.sum()


def _sep_blur(x: torch.Tensor, kx: torch.Tensor, ky: torch.Tensor, mode: str = "replicate") -> torch.Tensor:
    r = kx.shape[-1] // 2
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode=mode), kx)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode=mode), ky)


class LocalNorm(nn.Module):
    """Local contrast normalisation: (x - G*x) / (sqrt(G*(x - G*x)^2) + eps), G = Gaussian(sigma).

    Removes lighting gradients and exposure so the features see local structure; eps (in 0..1
    grey units) keeps flat, dark areas from blowing up noise.
    """

    def __init__(self, sigma: float = 16.0, eps: float = 0.02):
        super().__init__()
        k = _gauss_kernel(sigma)
        self.register_buffer("kx", k.reshape(1, 1, 1, -1))
        self.register_buffer("ky", k.reshape(1, 1, -1, 1))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        d = x - _sep_blur(x, self.kx, self.ky, "reflect")
        return d / (torch.sqrt(_sep_blur(d * d, self.kx, self.ky, "reflect") + 1e-8) + self.eps)


class AnomalyNet(nn.Module):
    """[B,1,S,S] grey 0..1 -> (heatmap [B,1,S,S], score [B])."""

    def __init__(self, encoder: Encoder, mean: torch.Tensor, proj: torch.Tensor, bank: torch.Tensor,
                 input_size: int = INPUT_SIZE, sigma: float = 2.0):
        super().__init__()
        self.encoder = encoder
        self.norm = LocalNorm()
        self.input_size = input_size
        self.margin = max(1, input_size // 32)
        self.register_buffer("mean", mean.reshape(1, -1, 1, 1).float())
        self.register_buffer("proj", proj.float())  # [C_in, D]
        self.register_buffer("bank_t", bank.t().contiguous().float())  # [D, M]
        self.register_buffer("bank_sq", (bank.float() ** 2).sum(1).reshape(1, -1))  # [1, M]
        k = _gauss_kernel(sigma)
        self.register_buffer("kx", k.reshape(1, 1, 1, -1))
        self.register_buffer("ky", k.reshape(1, 1, -1, 1))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Projected patch features [B, D, S/4, S/4]."""
        f = self.encoder(self.norm(x)) - self.mean
        return torch.einsum("bchw,cd->bdhw", f, self.proj)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.features(x)
        b, d, h, w = f.shape
        q = f.permute(0, 2, 3, 1).reshape(b, h * w, d)
        d2 = (q * q).sum(-1, keepdim=True) - 2 * torch.matmul(q, self.bank_t) + self.bank_sq
        dist = torch.sqrt(torch.clamp(d2.min(dim=-1).values, min=0.0)).reshape(b, 1, h, w)
        up = F.interpolate(dist, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        hm = _sep_blur(up, self.kx, self.ky)
        m = self.margin  # the score ignores a thin frame: corner/edge patches are noisy (border effects)
        return hm, hm[:, :, m:self.input_size - m, m:self.input_size - m].amax(dim=(1, 2, 3))


# ------------------------------------------------------------------------------- data helpers

def to_input(img: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """BGR/grey uint8 image of any size -> float32 [1,1,size,size] grey 0..1 (plain resize)."""
    if img.ndim == 3:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY) if img.shape[2] == 3 else img[..., 0]
    g = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    return (g.astype(np.float32) / 255.0)[None, None]


def _read_gray(path: Path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None or img.size == 0:
        raise ValueError(f"{path}: not a readable image (missing, corrupt or not an image format OpenCV reads)")
    return img


def load_gray(paths: Sequence[Path], size: int = INPUT_SIZE) -> np.ndarray:
    """Image files -> float32 [N,1,size,size] grey 0..1; ValueError naming the first unreadable file."""
    return np.concatenate([to_input(_read_gray(p), size) for p in paths])


def load_masks(paths: Sequence[Path], size: int = INPUT_SIZE) -> np.ndarray:
    """PNG masks -> bool [N,size,size] (README: binarise > 127; area resize then > 0.5)."""
    out = []
    for p in paths:
        m = (_read_gray(p) > 127).astype(np.float32)
        out.append(cv2.resize(m, (size, size), interpolation=cv2.INTER_AREA) >= 0.5)
    return np.stack(out)


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Rank-based (Mann-Whitney) AUROC with average ranks for ties; nan if one class is absent."""
    labels = np.asarray(labels).astype(bool).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    npos, nneg = int(labels.sum()), int((~labels).sum())
    if npos == 0 or nneg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    s = scores[order]
    ranks = np.empty(len(s), np.float64)
    starts = np.r_[0, np.flatnonzero(np.diff(s)) + 1]
    ends = np.r_[starts[1:], len(s)]
    avg = (starts + ends + 1) / 2.0  # 1-based average rank of each tie group
    ranks[order] = np.repeat(avg, ends - starts)
    return float((ranks[labels].sum() - npos * (npos + 1) / 2) / (npos * nneg))


# ------------------------------------------------------------------ self-supervised encoder pretext

def train_encoder(seconds: float, seed: int = 0, size: int = 128, batch: int = 12, width: int = 32,
                  pool: int = 384) -> tuple[Encoder, dict[str, Any]]:
    """Random-init encoder, then ``seconds`` of training to segment synthetic defects on synthetic surfaces.

    A 1x1 head on the stride-4 features predicts the (downsampled) defect mask; BCE with positive
    re-weighting. The head is thrown away: only the encoder is kept for the kNN features.
    """
    from models.data.synth.surface import surface_batch

    torch.manual_seed(seed)
    enc = Encoder(width)
    info: dict[str, Any] = {"encoder_seconds": seconds, "encoder_seed": seed, "encoder_steps": 0}
    if seconds <= 0:
        return enc, info
    t0 = time.perf_counter()
    imgs, masks, _ = surface_batch(seed + 1000, pool, size, defect_fraction=0.75)
    info["pretext_images"] = pool
    head, norm = nn.Conv2d(enc.out_channels, 1, 1), LocalNorm()
    opt = torch.optim.AdamW(list(enc.parameters()) + list(head.parameters()), lr=2e-3, weight_decay=1e-4)
    x_all = torch.from_numpy(imgs.astype(np.float32) / 255.0)[:, None]
    m_all = F.avg_pool2d(torch.from_numpy((masks > 0).astype(np.float32))[:, None], 4)
    g = torch.Generator().manual_seed(seed)
    steps, loss_ema = 0, None
    t_train = time.perf_counter()
    while time.perf_counter() - t_train < seconds:
        idx = torch.randint(0, pool, (batch,), generator=g)
        x, m = x_all[idx], m_all[idx]
        if steps % 2:
            x, m = x.flip(-1), m.flip(-1)
        logit = head(enc(norm(x)))
        loss = F.binary_cross_entropy_with_logits(logit, m, pos_weight=torch.tensor(10.0))
        opt.zero_grad()
        loss.backward()
        opt.step()
        loss_ema = float(loss.detach()) if loss_ema is None else 0.95 * loss_ema + 0.05 * float(loss.detach())
        steps += 1
    info.update(encoder_steps=steps, pretext_final_loss=round(loss_ema or 0.0, 4),
                encoder_total_seconds=round(time.perf_counter() - t0, 1))
    enc.eval()
    return enc, info


# --------------------------------------------------------------------------------------- fitting

def greedy_coreset(x: torch.Tensor, m: int, seed: int = 0) -> torch.Tensor:
    """Indices of ``m`` rows of ``x`` chosen by greedy k-centre (farthest-point) selection."""
    n = x.shape[0]
    if m >= n:
        return torch.arange(n)
    g = torch.Generator().manual_seed(seed)
    idx = [int(torch.randint(0, n, (1,), generator=g))]
    sq = (x * x).sum(1)
    mind = torch.full((n,), float("inf"))
    chosen = torch.empty(m, dtype=torch.long)
    for i in range(m):
        c = idx[-1]
        chosen[i] = c
        d = sq - 2 * (x @ x[c]) + sq[c]
        mind = torch.minimum(mind, d)
        idx.append(int(torch.argmax(mind)))
    return chosen


@dataclass
class FitResult:
    net: nn.Module  # AnomalyNet (knn) or anomaly_seg.SegAnomalyNet: [B,1,S,S] -> (heatmap, score)
    threshold: float
    info: dict[str, Any] = field(default_factory=dict)


@torch.no_grad()
def _raw_features(enc: Encoder, x: np.ndarray, batch: int = 16) -> torch.Tensor:
    out, norm = [], LocalNorm()
    for i in range(0, len(x), batch):
        out.append(enc(norm(torch.from_numpy(x[i:i + batch]))))
    return torch.cat(out)


@torch.no_grad()
def score_images(net: AnomalyNet, x: np.ndarray, batch: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """-> (scores [N], heatmaps [N,S,S]) with the torch module."""
    sc, hm = [], []
    for i in range(0, len(x), batch):
        h, s = net(torch.from_numpy(x[i:i + batch]))
        sc.append(s.numpy())
        hm.append(h[:, 0].numpy())
    return np.concatenate(sc), np.concatenate(hm)


@torch.no_grad()
def fit_anomaly(train: np.ndarray, val: np.ndarray | None = None, *, encoder: Encoder | None = None,
                encoder_seconds: float = 0.0, seed: int = 0, dim: int = 48, coreset: int = 4096,
                max_patches: int = 60000, target_frr: float = 0.01, sigma: float = 2.0,
                whiten: bool = False) -> FitResult:
    """Fit on defect-free images ``train`` ([N,1,S,S] float 0..1, see :func:`to_input`).

    ``val`` (defect-free, not in ``train``) sets the threshold: the ``1 - target_frr`` quantile of
    their image scores. Without ``val`` a seeded 15 % of ``train`` is held out for it.
    """
    t0 = time.perf_counter()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    rng = np.random.default_rng(seed)
    if val is None:
        perm = rng.permutation(len(train))
        nv = max(2, int(round(0.15 * len(train))))
        val, train = train[perm[:nv]], train[perm[nv:]]
    info: dict[str, Any] = {}
    if encoder is None:
        encoder, einfo = train_encoder(encoder_seconds, seed)
        info.update(einfo)
    encoder.eval()
    size = train.shape[-1]
    feats = _raw_features(encoder, train)  # [N, C, h, w]
    c = feats.shape[1]
    h, w = feats.shape[-2:]
    ring = torch.ones(h, w, dtype=torch.bool)
    ring[2:-2, 2:-2] = False  # border patches are rare but always present: over-sample them
    per_img = feats.permute(0, 2, 3, 1)
    border, inner = per_img[:, ring].reshape(-1, c), per_img[:, ~ring].reshape(-1, c)
    nb = min(len(border), max_patches // 3)
    border = border[torch.from_numpy(rng.choice(len(border), nb, replace=False))]
    ni = min(len(inner), max_patches - nb)
    inner = inner[torch.from_numpy(rng.choice(len(inner), ni, replace=False))]
    flat = torch.cat([border, inner])
    mean = flat.mean(0)
    cov = torch.cov((flat - mean).t())
    evals, evecs = torch.linalg.eigh(cov)
    order = torch.argsort(evals, descending=True)[:dim]
    proj = evecs[:, order]
    if whiten:
        proj = proj / torch.sqrt(evals[order].clamp(min=1e-6) + 1e-3 * evals.max())[None]
    else:  # keep relative variances, overall unit scale
        proj = proj / torch.sqrt(evals[order].sum() / dim)
    z = (flat - mean) @ proj
    t1 = time.perf_counter()
    sel = greedy_coreset(z, min(coreset, len(z)), seed)
    bank = z[sel]
    info["coreset_seconds"] = round(time.perf_counter() - t1, 1)
    net = AnomalyNet(encoder, mean, proj, bank, size, sigma).eval()
    vs, _ = score_images(net, val)
    thr = float(np.quantile(vs, 1 - target_frr)) if len(vs) else float("nan")
    info.update(fit_seconds=round(time.perf_counter() - t0, 1), train_images=int(len(train)),
                val_images=int(len(val)), feature_dim=dim, bank_size=int(len(bank)), input_size=size,
                patches_sampled=int(len(flat)), whiten=whiten, target_frr=target_frr, seed=seed, heatmap_sigma=sigma,
                threshold_rule=f"{1 - target_frr:.2f} quantile of defect-free validation image scores "
                               f"(target false-reject rate {target_frr:.0%})",
                val_score_median=round(float(np.median(vs)), 4), val_score_max=round(float(vs.max()), 4))
    return FitResult(net, thr, info)


# ---------------------------------------------------------------------------------------- export

def read_model_metadata(path: Path) -> dict[str, str]:
    """fieldline.* metadata (without the prefix) of an anomaly model file; ValueError saying what is wrong
    with the file (missing, not ONNX, or not a FieldLine anomaly model)."""
    from edge_agent.detectors.anomaly import read_anomaly_metadata

    if not Path(path).is_file():
        raise ValueError(f"{path}: no such file")
    try:
        meta = read_anomaly_metadata(path)
    except Exception as exc:  # noqa: BLE001 - onnx parse errors have no common base class
        raise ValueError(f"{path}: not a readable ONNX file ({type(exc).__name__}: {exc})") from None
    if meta.get("decoder") != "anomaly" or not meta.get("input_size", "").isdigit():
        raise ValueError(f"{path}: not a FieldLine anomaly model (fieldline.decoder = {meta.get('decoder')!r}; "
                         "expected 'anomaly' with a numeric fieldline.input_size)")
    return meta


def anomaly_metadata(threshold: float, input_size: int, train_data: str, name: str = NAME,
                     version: str = VERSION) -> dict[str, str]:
    return {
        "fieldline.decoder": "anomaly",
        "fieldline.labels": json.dumps(["anomaly"]),
        "fieldline.threshold": f"{threshold:.6f}",
        "fieldline.input_size": str(input_size),
        "fieldline.normalization": "gray_0_1",
        "fieldline.resize": "stretch",
        "fieldline.outputs": json.dumps(["heatmap", "score"]),
        "fieldline.name": name,
        "fieldline.version": version,
        "fieldline.train_data": train_data,
    }


def export_anomaly_onnx(fit: FitResult, out: Path, train_data: str, name: str = NAME,
                        version: str = VERSION) -> Path:
    """ONNX: input ``image`` [1,1,S,S] grey 0..1 -> ``heatmap`` [1,1,S,S], ``score`` [1]."""
    net = fit.net.eval()
    s = net.input_size
    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        # the TorchScript exporter is deliberate (static graph, no onnxscript dependency)
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*",
                                category=DeprecationWarning)
        torch.onnx.export(net, (torch.zeros(1, 1, s, s),), buf, dynamo=False, opset_version=17,
                          input_names=["image"], output_names=["heatmap", "score"], do_constant_folding=True)
    model = onnx.load_from_string(buf.getvalue())
    model.producer_name = "fieldline"
    method = {"seg": "U-Net defect probability map, trained on defect-free images with painted defects",
              "patchcore": "kNN patch anomaly map on pretrained EfficientNet-Lite0 features (memory bank of "
                           "defect-free patches)"}.get(fit.info.get("method", ""),
                                                       "kNN patch anomaly map (memory bank of defect-free patches)")
    model.doc_string = f"FieldLine {name} {version}: {method}; image score = max of the map"
    meta = anomaly_metadata(fit.threshold, s, train_data, name, version)
    if fit.info.get("method"):
        meta["fieldline.method"] = str(fit.info["method"])
    if fit.info.get("backbone"):  # a pretrained trunk: its package record, as the detectors' exports carry it
        meta["fieldline.backbone"] = json.dumps(fit.info["backbone"], sort_keys=True)
    for k, v in meta.items():
        model.metadata_props.add(key=k, value=v)
    onnx.checker.check_model(model)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, out)
    return out


# ------------------------------------------------------------------------------------ evaluation

def mt_split(root: Path = MT_ROOT, seed: int = 0, fit: float = 0.7, val: float = 0.1
             ) -> dict[str, list[Path]]:
    """Deterministic MT_Free split: sorted names, permuted with ``seed``: fit / val / test."""
    free = sorted((root / "MT_Free" / "Imgs").glob("*.jpg"))
    perm = np.random.default_rng(seed).permutation(len(free))
    nf, nv = int(round(fit * len(free))), int(round(val * len(free)))
    return {"fit": [free[i] for i in sorted(perm[:nf])], "val": [free[i] for i in sorted(perm[nf:nf + nv])],
            "test": [free[i] for i in sorted(perm[nf + nv:])]}


def _rates(scores: np.ndarray, y: np.ndarray, thr: float) -> dict[str, float]:
    pred = scores > thr
    return {"false_reject_rate": round(float(pred[~y].mean()), 4) if (~y).any() else float("nan"),
            "recall": round(float(pred[y].mean()), 4) if y.any() else float("nan")}


def evaluate_sets(scorer, threshold: float, free: np.ndarray, free_masks: np.ndarray | None,
                  groups: dict[str, tuple[np.ndarray, np.ndarray]]) -> dict[str, Any]:
    """Image + pixel AUROC of each defect group vs the defect-free test images, and overall.

    ``scorer(x) -> (scores, heatmaps)``; ``groups`` maps name -> (images, bool masks).
    """
    fs, fh = scorer(free)
    fm = np.zeros(fh.shape, bool) if free_masks is None else free_masks
    res: dict[str, Any] = {"free_images": int(len(free)), "per_group": {}}
    all_s, all_y = [fs], [np.zeros(len(fs), bool)]
    pix_h, pix_m = [fh[:, ::2, ::2].ravel()], [fm[:, ::2, ::2].ravel()]
    for name, (x, m) in groups.items():
        s, h = scorer(x)
        y = np.r_[np.zeros(len(fs), bool), np.ones(len(s), bool)]
        sc = np.r_[fs, s]
        ph = np.r_[fh[:, ::2, ::2].ravel(), h[:, ::2, ::2].ravel()]
        pm = np.r_[fm[:, ::2, ::2].ravel(), m[:, ::2, ::2].ravel()]
        res["per_group"][name] = {"images": int(len(s)), "image_auroc": round(auroc(y, sc), 4),
                                  "pixel_auroc": round(auroc(pm, ph), 4), "recall_at_threshold":
                                  round(float((s > threshold).mean()), 4)}
        all_s.append(s)
        all_y.append(np.ones(len(s), bool))
        pix_h.append(h[:, ::2, ::2].ravel())
        pix_m.append(m[:, ::2, ::2].ravel())
    s_all, y_all = np.concatenate(all_s), np.concatenate(all_y)
    res["overall"] = {"image_auroc": round(auroc(y_all, s_all), 4),
                      "pixel_auroc": round(auroc(np.concatenate(pix_m), np.concatenate(pix_h)), 4),
                      **_rates(s_all, y_all, threshold)}
    res["pixel_eval_note"] = f"pixel AUROC on every 2nd pixel in x and y of the {fh.shape[-1]}x{fh.shape[-2]} maps/masks"
    return res


def load_mt_groups(root: Path = MT_ROOT, size: int = INPUT_SIZE) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    out = {}
    for d in MT_DEFECTS:
        imgs = sorted((root / d / "Imgs").glob("*.jpg"))
        out[d] = (load_gray(imgs, size), load_masks([p.with_suffix(".png") for p in imgs], size))
    return out


def synth_groups(seed: int, per_kind: int, size: int = INPUT_SIZE) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    from models.data.synth.surface import DEFECT_KINDS, surface_batch

    out = {}
    for k, kind in enumerate(DEFECT_KINDS):
        imgs, masks, _ = surface_batch(seed + 100 * k, per_kind, size, defect_fraction=1.0, kinds=(kind,))
        out[kind] = ((imgs.astype(np.float32) / 255.0)[:, None], masks > 0)
    return out


def synth_free(seed: int, count: int, size: int = INPUT_SIZE) -> np.ndarray:
    from models.data.synth.surface import surface_batch

    imgs, _, _ = surface_batch(seed, count, size, defect_fraction=0.0)
    return (imgs.astype(np.float32) / 255.0)[:, None]


def onnx_scorer(path: Path, threads: int = 1):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])

    def run(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        sc, hm = [], []
        for i in range(len(x)):
            h, s = sess.run(None, {"image": x[i:i + 1]})
            sc.append(s)
            hm.append(h[:, 0])
        return np.concatenate(sc), np.concatenate(hm)

    return run


def measure_latency(path: Path, runs: int = 50, threads: int = 1) -> dict[str, float]:
    import os

    import onnxruntime as ort

    from edge_agent.detectors.precision import cpu_summary

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    s = int(sess.get_inputs()[0].shape[-1])
    x = np.random.default_rng(0).uniform(0, 1, (1, 1, s, s)).astype(np.float32)
    for _ in range(5):
        sess.run(None, {"image": x})
    t = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sess.run(None, {"image": x})
        t.append((time.perf_counter() - t0) * 1000)
    return {"session_median_ms": round(float(np.median(t)), 2), "session_p95_ms": round(float(np.percentile(t, 95)), 2),
            "session_min_ms": round(float(np.min(t)), 2),
            "threads": threads, "runs": runs, "loadavg_1m": round(os.getloadavg()[0], 2), "cpu": cpu_summary()}
