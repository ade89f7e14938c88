"""Procedural greyscale tile / steel-strip surfaces with defects, exact masks and boxes.

Modelled on what the real sets look like (magnetic tiles: vertically brushed, banded columns,
strong lighting falloff, dark tile edges; NEU steel: grainy / mottled strip texture):

* a :class:`Surface` is pure data (texture recipe + seed, light, edges, a list of :class:`Defect`);
* :func:`render_surface` turns it into pixels. Texture and defect geometry depend only on the
  surface, so masks and boxes are identical for every render; the per-frame ``rng`` only adds
  sensor noise, exposure jitter and the JPEG round trip.

Defect kinds (``DEFECT_KINDS``): ``scratch`` (thin straight-ish line, bright or dark), ``crack``
(dark branching random walk), ``pit`` (small dark blowhole, sometimes with a bright rim),
``inclusion`` (cluster of small elongated dark flecks), ``patch`` (large irregular region of
different brightness/texture, or an uneven band along one side), ``fray`` (ragged dark chip
eaten into the part from an image border). The mask is the binary footprint of each drawn defect;
a defect's box is the bounding box of its own footprint (defects that end up < ``MIN_AREA`` px
inside the image get no box).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

DEFECT_KINDS: tuple[str, ...] = ("scratch", "crack", "pit", "inclusion", "patch", "fray")
TEXTURES: tuple[str, ...] = ("brushed", "grainy", "mottled")
MIN_AREA = 4


@dataclass
class Defect:
    kind: str
    points: list[tuple[float, float]]  # polyline / polygon / centres, in pixels
    width: float = 1.0  # line thickness or blob radius in px
    contrast: float = -0.3  # signed intensity change (fraction of local brightness)
    softness: float = 0.8  # gaussian sigma of the alpha edge, px
    seed: int = 0  # for the defect's own texture (patch grain, fray raggedness)


@dataclass
class Surface:
    size: int
    texture: str = "brushed"
    texture_seed: int = 0
    level: float = 0.45  # mean brightness 0..1
    grain: float = 0.05  # fine noise amplitude
    streak: float = 0.08  # brushed streak amplitude
    streak_angle: float = 0.0  # degrees from vertical
    bands: float = 0.06  # column banding amplitude (tile polish marks)
    mottle: float = 0.05  # low-frequency blotch amplitude
    gradient: float = 0.2  # linear lighting falloff strength
    gradient_dir: float = 0.0  # radians
    hotspot: float = 0.15  # specular hotspot strength
    hotspot_xy: tuple[float, float] = (0.5, 0.3)
    edges: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # dark part border width l,t,r,b (px)
    defects: list[Defect] = field(default_factory=list)
    blur: float = 0.5
    noise: float = 0.01  # sensor noise sigma, 0..1 scale
    jpeg_quality: int = 85  # 0 disables the JPEG round trip


# ----------------------------------------------------------------------------------------- sampling

def _polyline(rng: np.random.Generator, x: float, y: float, angle: float, length: float, step: float,
              wiggle: float) -> list[tuple[float, float]]:
    pts = [(x, y)]
    n = max(2, int(length / step))
    for _ in range(n):
        angle += rng.normal(0, wiggle)
        x, y = x + step * math.sin(angle), y + step * math.cos(angle)
        pts.append((float(x), float(y)))
    return pts


def random_defect(rng: np.random.Generator, size: int, kind: str | None = None) -> Defect:
    """One defect of ``kind`` (random kind if None) placed on a ``size`` x ``size`` surface."""
    kind = kind or str(rng.choice(DEFECT_KINDS))
    s = size / 256.0
    x, y = float(rng.uniform(0.1, 0.9) * size), float(rng.uniform(0.1, 0.9) * size)
    seed = int(rng.integers(0, 2**31 - 1))
    if kind == "scratch":
        ang = float(rng.normal(0, 0.25) if rng.uniform() < 0.6 else rng.uniform(-math.pi, math.pi))
        pts = _polyline(rng, x, y, ang, rng.uniform(25, 150) * s, 4 * s, 0.03)
        sign = 1 if rng.uniform() < 0.4 else -1
        return Defect(kind, pts, float(rng.uniform(1, 2.5) * s), sign * float(rng.uniform(0.25, 0.6)),
                      float(rng.uniform(0.4, 0.8)), seed)
    if kind == "crack":
        ang = float(rng.normal(0, 0.35))
        pts = _polyline(rng, x, y, ang, rng.uniform(30, 140) * s, 3 * s, 0.35)
        return Defect(kind, pts, float(rng.uniform(1, 2.2) * s), -float(rng.uniform(0.3, 0.65)),
                      float(rng.uniform(0.3, 0.7)), seed)
    if kind == "pit":
        n = 1 if rng.uniform() < 0.7 else int(rng.integers(2, 4))
        pts = [(x + rng.normal(0, 10 * s), y + rng.normal(0, 10 * s)) for _ in range(n)]
        return Defect(kind, [(float(a), float(b)) for a, b in pts], float(rng.uniform(2.5, 8) * s),
                      -float(rng.uniform(0.3, 0.7)), float(rng.uniform(0.6, 1.5)), seed)
    if kind == "inclusion":
        n = int(rng.integers(3, 10))
        ang = float(rng.normal(0, 0.3))
        pts = [(x + rng.normal(0, 18 * s), y + rng.normal(0, 18 * s)) for _ in range(n)]
        return Defect(kind, [(float(a), float(b)) for a, b in pts] + [(ang, 0.0)],
                      float(rng.uniform(1.5, 3.5) * s), -float(rng.uniform(0.25, 0.5)), 0.7, seed)
    if kind == "patch":
        if rng.uniform() < 0.4:  # uneven band along one side (like MT_Uneven)
            side = int(rng.integers(0, 4))
            depth = float(rng.uniform(0.12, 0.35) * size)
            pts = [(float(side), depth)]
            return Defect(kind, pts, -1.0, float(rng.choice([-1, 1]) * rng.uniform(0.15, 0.35)),
                          float(rng.uniform(1.5, 4)), seed)
        r = float(rng.uniform(15, 55) * s)
        n = 14
        radii = r * np.exp(np.convolve(rng.normal(0, 0.25, n + 4), np.ones(5) / 5, "valid"))[:n]
        stretch = float(rng.uniform(1.0, 2.2))
        pts = [(x + rr * math.cos(2 * math.pi * i / n), y + stretch * rr * math.sin(2 * math.pi * i / n))
               for i, rr in enumerate(radii)]
        return Defect(kind, pts, r, float(rng.choice([-1, 1], p=[0.75, 0.25]) * rng.uniform(0.15, 0.4)),
                      float(rng.uniform(1.5, 4)), seed)
    if kind == "fray":
        side = int(rng.integers(0, 4))
        along = float(rng.uniform(0.1, 0.9) * size)
        length = float(rng.uniform(20, 90) * s)
        depth = float(rng.uniform(6, 30) * s)
        return Defect(kind, [(float(side), along), (length, depth)], depth,
                      -float(rng.uniform(0.45, 0.8)), 0.6, seed)
    raise ValueError(f"unknown defect kind {kind!r} (known: {', '.join(DEFECT_KINDS)})")


def random_surface(rng: np.random.Generator, size: int = 256, defective: bool | None = None,
                   kinds: tuple[str, ...] | None = None, max_defects: int = 3) -> Surface:
    """Sample a surface; ``defective`` None = 50/50. Defect-free surfaces have an empty list."""
    texture = str(rng.choice(TEXTURES, p=[0.55, 0.25, 0.2]))
    s = size / 256.0
    brushed = texture == "brushed"
    edges = tuple(float(rng.uniform(2, 10) * s) if rng.uniform() < 0.12 else 0.0 for _ in range(4))
    surf = Surface(
        size=size, texture=texture, texture_seed=int(rng.integers(0, 2**31 - 1)),
        level=float(rng.uniform(0.22, 0.6)),
        grain=float(rng.uniform(0.02, 0.06) if brushed else rng.uniform(0.04, 0.12)),
        streak=float(rng.uniform(0.04, 0.14) if brushed else rng.uniform(0.0, 0.04)),
        streak_angle=float(rng.normal(0, 3) if rng.uniform() < 0.8 else rng.choice([90.0, -90.0]) + rng.normal(0, 3)),
        bands=float(rng.uniform(0.02, 0.12) if brushed else rng.uniform(0.0, 0.04)),
        mottle=float(rng.uniform(0.02, 0.08) if texture != "mottled" else rng.uniform(0.08, 0.18)),
        gradient=float(rng.uniform(0.0, 0.5)), gradient_dir=float(rng.uniform(-math.pi, math.pi)),
        hotspot=float(rng.uniform(0.0, 0.35)),
        hotspot_xy=(float(rng.uniform(0.1, 0.9)), float(rng.uniform(0.1, 0.9))),
        edges=edges,  # type: ignore[arg-type]
        blur=float(rng.uniform(0.3, 1.0)), noise=float(rng.uniform(0.004, 0.02)),
        jpeg_quality=int(rng.choice([0, 75, 85, 95])))
    if defective is None:
        defective = bool(rng.uniform() < 0.5)
    if defective:
        n = 1 if rng.uniform() < 0.7 else int(rng.integers(2, max(2, max_defects) + 1))
        pool = kinds or DEFECT_KINDS
        surf.defects = [random_defect(rng, size, str(rng.choice(pool))) for _ in range(n)]
    return surf


# ---------------------------------------------------------------------------------------- rendering

def _norm(a: np.ndarray) -> np.ndarray:
    return (a - a.mean()) / (a.std() + 1e-6)


def _value_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    g = rng.normal(0, 1, (cells + 1, cells + 1)).astype(np.float32)
    return _norm(cv2.resize(g, (size, size), interpolation=cv2.INTER_CUBIC))


def _texture(surf: Surface) -> np.ndarray:
    """Defect-free surface, float32 0..1 (no sensor noise)."""
    rng = np.random.default_rng(surf.texture_seed)
    n = surf.size
    big = int(n * 1.5)
    # brushed streaks: white noise blurred strongly along the brushing direction, then rotated
    w = rng.normal(0, 1, (big, big)).astype(np.float32)
    st = _norm(cv2.GaussianBlur(w, (0, 0), sigmaX=rng.uniform(0.5, 1.1), sigmaY=rng.uniform(15, 60) * n / 256))
    cols = _norm(cv2.GaussianBlur(rng.normal(0, 1, (1, big)).astype(np.float32), (0, 0), sigmaX=rng.uniform(1, 4)))
    st = surf.streak * st + surf.bands * np.repeat(cols, big, 0)
    m = cv2.getRotationMatrix2D((big / 2, big / 2), surf.streak_angle, 1.0)
    st = cv2.warpAffine(st, m, (big, big), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    o = (big - n) // 2
    img = st[o:o + n, o:o + n].copy()
    # grain: fine isotropic noise; grainy steel gets a second, coarser speckle scale
    img += surf.grain * _norm(cv2.GaussianBlur(rng.normal(0, 1, (n, n)).astype(np.float32), (0, 0), 0.7))
    if surf.texture == "grainy":
        img += 0.6 * surf.grain * _norm(cv2.GaussianBlur(rng.normal(0, 1, (n, n)).astype(np.float32), (0, 0), 2.0))
    # mottle: multi-octave low-frequency blotches
    mot = sum(_value_noise(rng, n, c) / (i + 1) for i, c in enumerate((3, 7, 16)))
    img += surf.mottle * _norm(mot)
    # lighting: linear falloff + soft specular hotspot, multiplicative
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32) / n
    lin = (xx - 0.5) * math.cos(surf.gradient_dir) + (yy - 0.5) * math.sin(surf.gradient_dir)
    hx, hy = surf.hotspot_xy
    hot = np.exp(-((xx - hx) ** 2 / 0.08 + (yy - hy) ** 2 / 0.3))
    light = (1 + surf.gradient * lin * 2) * (1 + surf.hotspot * hot)
    img = surf.level * (1 + img) * light
    # dark part borders (tile edges / chamfers), slightly ragged
    for side, width in enumerate(surf.edges):
        if width <= 0:
            continue
        prof = width * (1 + 0.15 * _norm(cv2.GaussianBlur(rng.normal(0, 1, (1, n)).astype(np.float32), (0, 0), 6)))[0]
        d = np.arange(n, dtype=np.float32)
        dist = {0: xx * n, 1: yy * n, 2: (n - 1) - xx * n, 3: (n - 1) - yy * n}[side]
        along = prof[(yy * n).astype(int)] if side in (0, 2) else prof[(xx * n).astype(int)]
        del d
        edge = np.clip((along - dist) / 2.0 + 0.5, 0, 1)
        img = img * (1 - 0.75 * edge)
    return img.astype(np.float32)


def _draw_defect(d: Defect, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(binary footprint uint8, soft alpha float32, optional texture override float32 around 1)."""
    fp = np.zeros((n, n), np.uint8)
    tex = None
    rng = np.random.default_rng(d.seed)
    if d.kind in ("scratch", "crack"):
        pts = np.round(np.array(d.points)).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(fp, [pts], False, 1, max(1, int(round(d.width))), cv2.LINE_8)
        if d.kind == "crack" and len(d.points) > 8:  # one side branch from the middle
            k = len(d.points) // 2
            bx, by = d.points[k]
            br = _polyline(rng, bx, by, float(rng.uniform(-1.5, 1.5)), len(d.points) * 1.2, 3, 0.3)
            cv2.polylines(fp, [np.round(np.array(br)).astype(np.int32).reshape(-1, 1, 2)], False, 1, 1)
    elif d.kind == "pit":
        for cx, cy in d.points:
            r = d.width * rng.uniform(0.7, 1.2)
            cv2.ellipse(fp, (int(round(cx)), int(round(cy))), (max(1, int(r)), max(1, int(r * rng.uniform(0.6, 1.0)))),
                        float(rng.uniform(0, 180)), 0, 360, 1, -1)
    elif d.kind == "inclusion":
        ang = d.points[-1][0]
        for cx, cy in d.points[:-1]:
            ln = d.width * rng.uniform(1.5, 5)
            dx, dy = math.sin(ang) * ln, math.cos(ang) * ln
            cv2.line(fp, (int(cx - dx), int(cy - dy)), (int(cx + dx), int(cy + dy)), 1,
                     max(1, int(round(d.width * rng.uniform(0.6, 1.2)))))
    elif d.kind == "patch":
        if d.width < 0:  # band along a side
            side, depth = int(d.points[0][0]), d.points[0][1]
            prof = depth * (1 + 0.12 * _norm(cv2.GaussianBlur(rng.normal(0, 1, (1, n)).astype(np.float32), (0, 0), 8)))[0]
            yy, xx = np.mgrid[0:n, 0:n]
            dist = {0: xx, 1: yy, 2: n - 1 - xx, 3: n - 1 - yy}[side]
            along = prof[yy] if side in (0, 2) else prof[xx]
            fp[dist < along] = 1
        else:
            cv2.fillPoly(fp, [np.round(np.array(d.points)).astype(np.int32)], 1)
        tex = 1 + 0.5 * _norm(cv2.GaussianBlur(rng.normal(0, 1, (n, n)).astype(np.float32), (0, 0), 1.2)) * 0.15
    elif d.kind == "fray":
        side, along = int(d.points[0][0]), d.points[0][1]
        length, depth = d.points[1]
        t = np.linspace(-1, 1, 40)
        prof = depth * np.clip(1 - t ** 2, 0, 1) ** 0.5 * (1 + 0.35 * rng.normal(0, 1, 40))
        poly = []
        for ti, p in zip(t, np.clip(prof, 0, None)):
            a = along + ti * length / 2
            poly.append({0: (p, a), 1: (a, p), 2: (n - 1 - p, a), 3: (a, n - 1 - p)}[side])
        ends = {0: [(-2, along + length / 2), (-2, along - length / 2)],
                1: [(along + length / 2, -2), (along - length / 2, -2)],
                2: [(n + 1, along + length / 2), (n + 1, along - length / 2)],
                3: [(along + length / 2, n + 1), (along - length / 2, n + 1)]}[side]
        cv2.fillPoly(fp, [np.round(np.array(poly + ends)).astype(np.int32)], 1)
    else:
        raise ValueError(f"unknown defect kind {d.kind!r}")
    alpha = cv2.GaussianBlur(fp.astype(np.float32), (0, 0), max(0.3, d.softness))
    if d.kind in ("scratch", "crack", "inclusion"):  # thin: keep the core at full strength
        alpha = np.maximum(alpha, fp.astype(np.float32) * 0.85)
    return fp, alpha, tex


def render_surface(surf: Surface, rng: np.random.Generator | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """-> (image uint8 HxW greyscale, mask uint8 HxW 0/255, boxes (N,4) float32 xyxy, labels)."""
    rng = rng if rng is not None else np.random.default_rng(0)
    n = surf.size
    img = _texture(surf)
    mask = np.zeros((n, n), np.uint8)
    boxes, labels = [], []
    for d in surf.defects:
        fp, alpha, tex = _draw_defect(d, n)
        local = cv2.GaussianBlur(img, (0, 0), 6)
        target = local * (1 + d.contrast)
        if d.kind == "pit" and d.contrast < 0 and d.seed % 3 == 0:  # bright rim around some blowholes
            rim = cv2.GaussianBlur(cv2.dilate(fp, np.ones((3, 3), np.uint8)).astype(np.float32), (0, 0), 1.5) - alpha
            img = img + np.clip(rim, 0, 1) * local * 0.25
        if tex is not None:
            target = target * tex
            new = img * (1 + d.contrast) * tex
            img = img * (1 - alpha) + alpha * new
        else:
            img = img * (1 - alpha) + alpha * target
        if fp.sum() >= MIN_AREA:
            ys, xs = np.nonzero(fp)
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            labels.append(d.kind)
            mask[fp > 0] = 255
    gain = float(rng.uniform(0.93, 1.07))
    img = img * gain
    if surf.blur > 0:
        img = cv2.GaussianBlur(img, (0, 0), surf.blur)
    img = img + rng.normal(0, surf.noise, img.shape).astype(np.float32)
    out = np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)
    if surf.jpeg_quality:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(surf.jpeg_quality)])
        out = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
    return out, mask, np.array(boxes, np.float32).reshape(-1, 4), labels


def surface_batch(seed: int, count: int, size: int = 256, defect_fraction: float = 0.0,
                  kinds: tuple[str, ...] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """In-memory set: (images (N,H,W) uint8, masks (N,H,W) uint8 0/255, is_defective (N,) bool).

    Image i uses ``default_rng([seed, i])``; the first round(count*defect_fraction) are defective.
    """
    n_def = int(round(count * defect_fraction))
    imgs, masks, flags = [], [], []
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        surf = random_surface(rng, size, defective=i < n_def, kinds=kinds)
        img, m, _, _ = render_surface(surf, rng)
        imgs.append(img)
        masks.append(m)
        flags.append(i < n_def)
    return np.stack(imgs), np.stack(masks), np.array(flags, bool)


def generate_surface_dataset(out_dir: Path, count: int, seed: int, defect_fraction: float = 0.5,
                             size: int = 256) -> Path:
    """Write images/*.png (the rendered frame, lossless), masks/*.png (0/255),
    labels/*.txt (YOLO, class index into DEFECT_KINDS), classes.txt and annotations.json."""
    out_dir = Path(out_dir)
    for sub in ("images", "masks", "labels"):
        (out_dir / sub).mkdir(parents=True, exist_ok=True)
    (out_dir / "classes.txt").write_text("\n".join(DEFECT_KINDS) + "\n")
    rng_order = np.random.default_rng(seed)
    defective = np.zeros(count, bool)
    defective[rng_order.permutation(count)[:int(round(count * defect_fraction))]] = True
    ann = []
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        surf = random_surface(rng, size, defective=bool(defective[i]))
        img, mask, boxes, labels = render_surface(surf, rng)
        name = f"{seed}_{i:06d}"
        cv2.imwrite(str(out_dir / "images" / f"{name}.png"), img)
        cv2.imwrite(str(out_dir / "masks" / f"{name}.png"), mask)
        lines = [f"{DEFECT_KINDS.index(lab)} {(x1 + x2) / 2 / size:.6f} {(y1 + y2) / 2 / size:.6f} "
                 f"{(x2 - x1) / size:.6f} {(y2 - y1) / size:.6f}" for (x1, y1, x2, y2), lab in zip(boxes, labels)]
        (out_dir / "labels" / f"{name}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
        ann.append({"image": f"images/{name}.png", "mask": f"masks/{name}.png", "defective": bool(labels),
                    "boxes": boxes.round(1).tolist(), "labels": labels, "texture": surf.texture})
    (out_dir / "annotations.json").write_text(json.dumps({"size": size, "seed": seed, "classes": list(DEFECT_KINDS),
                                                          "images": ann}, indent=1) + "\n")
    return out_dir
