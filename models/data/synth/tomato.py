"""Procedural greenhouse tomato scenes with exact visible-extent boxes.

A :class:`Scene` is pure data (geometry, colours, light); :func:`render` turns it into pixels.
Geometry never depends on the per-frame ``rng`` passed to :func:`render`, so the same scene
always yields the same boxes while noise/exposure jitter changes frame to frame. That lets the
edge agent's synthetic camera keep one persistent shed and age its fruits' ``ripeness``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

LABELS: tuple[str, ...] = ("green", "half_ripe", "ripe")
MIN_VISIBLE = 0.35  # fruits with a smaller visible fraction get no box

Colour = tuple[int, int, int]


def ripeness_label(ripeness: float) -> str:
    """Collapse continuous ripeness 0..1 into the three model classes."""
    if ripeness < 0.4:
        return "green"
    if ripeness < 0.75:
        return "half_ripe"
    return "ripe"


@dataclass
class Fruit:
    x: float
    y: float
    radius: float
    ripeness: float
    aspect: float = 0.92  # vertical/horizontal radius ratio (tomatoes are a bit flat)
    angle: float = 0.0  # degrees
    tone: float = 0.0  # -1..1 per-fruit hue/brightness variation
    stem_x: float | None = None  # where the pedicel attaches on the truss (None: no pedicel)
    stem_y: float | None = None
    variety: str = "red"  # red (the default crop) | yellow (the shifted greenhouse's variety)


@dataclass
class Leaf:
    x: float
    y: float
    angle: float  # radians, direction of the midrib
    length: float
    width: float
    colour: Colour
    front: bool = False  # front leaves occlude fruits


@dataclass
class Stem:
    points: list[tuple[float, float]]
    thickness: int
    colour: Colour


@dataclass
class Light:
    gain: float = 1.0
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)  # BGR multipliers
    gradient: float = 0.0  # strength of a directional brightness falloff
    direction: float = 0.0  # radians; where the light comes from (also places highlights)


@dataclass
class Scene:
    width: int
    height: int
    fruits: list[Fruit]
    background: str = "plastic"  # plastic | foliage | dark | aisle
    bg_colour: Colour = (200, 205, 200)
    bg_blobs: list[tuple[float, float, float, float, float, Colour]] = field(default_factory=list)
    stems: list[Stem] = field(default_factory=list)
    leaves: list[Leaf] = field(default_factory=list)
    strings: list[tuple[float, float, Colour]] = field(default_factory=list)  # x_top, x_bottom
    flowers: list[tuple[float, float, float]] = field(default_factory=list)  # x, y, r
    light: Light = field(default_factory=Light)
    blur: float = 0.6  # gaussian sigma in pixels
    noise: float = 3.0  # gaussian pixel noise sigma
    jpeg_quality: int = 85  # 0 disables the JPEG round trip


@dataclass
class Rendered:
    image: np.ndarray  # BGR uint8 HxWx3
    boxes: np.ndarray  # (N,4) float32 xyxy pixels of visible fruits
    labels: list[str]
    fruit_index: np.ndarray  # (N,) index into scene.fruits for each box


# Ripeness -> HSV (OpenCV hue 0..180). Steeper around the 0.4 / 0.75 class thresholds so the
# colour change that defines a class boundary is visible, like the short "breaker" stage.
_R_KNOTS = np.array([0.0, 0.36, 0.44, 0.70, 0.79, 1.0])
_HUE = np.array([42.0, 36.0, 19.0, 11.0, 4.0, 1.0])
_SAT = np.array([130.0, 150.0, 200.0, 215.0, 215.0, 220.0])
_VAL = np.array([190.0, 200.0, 225.0, 225.0, 210.0, 195.0])


# A yellow variety: ripens from green through pale lemon (half ripe) to deep gold (ripe) instead of to red. Its
# hues sit in the red variety's short breaker band, so saturation tells them apart: pale lemon is far less
# saturated, deep gold far more, than a red fruit turning at the same hue.
_HUE_YELLOW = np.array([42.0, 38.0, 31.0, 28.0, 25.0, 24.0])
_SAT_YELLOW = np.array([130.0, 120.0, 95.0, 110.0, 245.0, 250.0])
_VAL_YELLOW = np.array([190.0, 205.0, 240.0, 245.0, 245.0, 240.0])
_VARIETIES = {"red": (_HUE, _SAT, _VAL), "yellow": (_HUE_YELLOW, _SAT_YELLOW, _VAL_YELLOW)}


def fruit_colour(ripeness: float, tone: float = 0.0, variety: str = "red") -> Colour:
    """Base BGR colour of a fruit at a given ripeness."""
    r = float(np.clip(ripeness, 0.0, 1.0))
    hue, sat, val = _VARIETIES[variety]
    h = float(np.interp(r, _R_KNOTS, hue)) + 1.5 * tone
    s = float(np.interp(r, _R_KNOTS, sat)) + 15 * tone
    v = float(np.interp(r, _R_KNOTS, val)) - 12 * tone
    hsv = np.array([[[h % 180, np.clip(s, 0, 255), np.clip(v, 0, 255)]]], dtype=np.uint8)
    b, g, rr = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(rr)


def _leaf_green(rng: np.random.Generator) -> Colour:
    h = rng.uniform(36, 52)
    s = rng.uniform(120, 220)
    v = rng.uniform(70, 190)
    hsv = np.array([[[h, s, v]]], dtype=np.uint8)
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def _sample_ripeness(rng: np.random.Generator) -> float:
    return float(np.clip(rng.uniform(-0.05, 1.05), 0.0, 1.0))


def random_scene(rng: np.random.Generator, width: int = 640, height: int = 480) -> Scene:
    """Sample one greenhouse view: plants with trusses of fruit, leaves, background, light."""
    s = math.sqrt(width * height / (640 * 480))  # size scale for other resolutions
    kind = str(rng.choice(["plastic", "foliage", "dark", "aisle"], p=[0.4, 0.3, 0.15, 0.15]))
    bg_colour: Colour
    if kind == "plastic":
        g = int(rng.uniform(170, 235))
        bg_colour = (g + int(rng.uniform(-5, 15)), g, g - int(rng.uniform(0, 15)))
    elif kind == "foliage":
        bg_colour = _leaf_green(rng)
    elif kind == "dark":
        g = int(rng.uniform(25, 70))
        bg_colour = (g, g + 10, g)
    else:
        bg_colour = (int(rng.uniform(60, 100)), int(rng.uniform(90, 130)), int(rng.uniform(110, 150)))
    blob_n = int(rng.integers(30, 90)) if kind != "dark" else int(rng.integers(10, 30))
    bg_blobs = []  # out-of-focus far leaves: elongated, so they do not read as fruit
    for _ in range(blob_n):
        a = rng.uniform(10, 50) * s
        bg_blobs.append((rng.uniform(0, width), rng.uniform(0, height), a, a * rng.uniform(0.22, 0.5),
                         rng.uniform(0, 180), _leaf_green(rng)))
    strings = [(rng.uniform(0, width), rng.uniform(0, width), (200, 200, 200))
               for _ in range(int(rng.integers(0, 3)))]

    stems: list[Stem] = []
    leaves: list[Leaf] = []
    fruits: list[Fruit] = []
    n_plants = int(rng.integers(1, 4))
    for p in range(n_plants):
        x0 = (p + rng.uniform(0.2, 0.8)) * width / n_plants
        pts = []
        lean = rng.uniform(-12, 12)
        for k in range(6):
            y = -10 + k * (height + 20) / 5
            pts.append((x0 + rng.normal(0, 7 * s) + k * lean * s, y))
        stem_col = (int(rng.uniform(60, 110)), int(rng.uniform(140, 190)), int(rng.uniform(120, 170)))
        stems.append(Stem(pts, int(rng.integers(5, 11) * s), stem_col))
        for _ in range(int(rng.integers(1, 4))):  # trusses
            k = int(rng.integers(0, 5))
            t = rng.uniform()
            sx = pts[k][0] * (1 - t) + pts[k + 1][0] * t
            sy = pts[k][1] * (1 - t) + pts[k + 1][1] * t
            side = rng.choice([-1.0, 1.0])
            cx = sx + side * rng.uniform(20, 70) * s
            cy = sy + rng.uniform(10, 60) * s
            stems.append(Stem([(sx, sy), (cx, cy - 10 * s)], int(max(2, 3 * s)), stem_col))
            base_r = rng.uniform(12.5, 36) * s
            base_ripe = _sample_ripeness(rng)
            for _ in range(int(rng.integers(1, 7))):
                r = base_r * rng.uniform(0.8, 1.15)
                ripe = float(np.clip(base_ripe + rng.normal(0, 0.12), 0, 1))
                if rng.uniform() < 0.2:
                    ripe = _sample_ripeness(rng)
                fx = cx + rng.normal(0, base_r * 1.1)
                fy = cy + abs(rng.normal(0, base_r * 1.0)) + base_r * 0.6
                fruits.append(Fruit(float(fx), float(fy), float(np.clip(r, 11 * s, 42 * s)), ripe,
                                    float(rng.uniform(0.82, 1.0)), float(rng.uniform(-25, 25)),
                                    float(rng.uniform(-1, 1)), float(cx), float(cy - 10 * s)))
        for _ in range(int(rng.integers(4, 10))):  # leaves attached to this stem
            k = int(rng.integers(0, 6))
            ang = rng.uniform(-math.pi, math.pi)
            leaves.append(Leaf(float(pts[k][0]), float(pts[k][1] + rng.uniform(0, 60)), float(ang),
                               float(rng.uniform(70, 200) * s), float(rng.uniform(20, 45) * s),
                               _leaf_green(rng), front=False))
    for _ in range(int(rng.integers(0, 5))):  # lone fruits, e.g. from plants just outside the view
        fruits.append(Fruit(float(rng.uniform(0, width)), float(rng.uniform(0, height)),
                            float(rng.uniform(11, 40) * s), _sample_ripeness(rng),
                            float(rng.uniform(0.82, 1.0)), float(rng.uniform(-25, 25)),
                            float(rng.uniform(-1, 1))))
    for _ in range(int(rng.integers(2, 9))):  # occluding leaves in front
        if fruits and rng.uniform() < 0.6:
            f = fruits[int(rng.integers(len(fruits)))]
            x, y = f.x + rng.normal(0, f.radius * 2), f.y + rng.normal(0, f.radius * 2)
        else:
            x, y = rng.uniform(0, width), rng.uniform(0, height)
        leaves.append(Leaf(float(x), float(y), float(rng.uniform(-math.pi, math.pi)),
                           float(rng.uniform(50, 160) * s), float(rng.uniform(16, 38) * s),
                           _leaf_green(rng), front=True))
    flowers = [(float(rng.uniform(0, width)), float(rng.uniform(0, height)), float(rng.uniform(3, 7) * s))
               for _ in range(int(rng.integers(0, 4)))]
    fruits.sort(key=lambda f: f.radius)  # smaller (farther) fruits drawn first
    light_kind = rng.choice(["sun", "shade", "artificial", "neutral"])
    tint = {"sun": (0.95, 1.0, 1.05), "shade": (1.08, 1.0, 0.94), "artificial": (0.88, 0.97, 1.1),
            "neutral": (1.0, 1.0, 1.0)}[str(light_kind)]
    gain = {"sun": 1.1, "shade": 0.75, "artificial": 0.95, "neutral": 1.0}[str(light_kind)]
    light = Light(gain * rng.uniform(0.85, 1.15),
                  tuple(float(c * rng.uniform(0.96, 1.04)) for c in tint),  # type: ignore[arg-type]
                  float(rng.uniform(0, 0.45)), float(rng.uniform(-math.pi, math.pi)))
    return Scene(width, height, fruits, kind, bg_colour, bg_blobs, stems, leaves, strings, flowers,
                 light, float(rng.uniform(0.3, 1.4)), float(rng.uniform(1, 7)),
                 int(rng.choice([0, 50, 70, 90])))


@dataclass(frozen=True)
class Shift:
    """An opt-in domain shift: a greenhouse the shipped model never saw (``synth:tomato-shift``).

    A share of the trusses is a yellow variety (ripe = golden, not red), a share of the frames is taken at
    dusk (dim, orange, noisy light) and the camera hangs lower with a longer lens (bigger fruit).
    """

    yellow: float = 0.6  # share of trusses (and lone fruits) of the yellow variety
    dusk: float = 0.6  # share of frames under dusk light
    zoom: float = 1.3  # fruit/leaf size factor of the closer camera


SHIFT = Shift()


def shifted_scene(rng: np.random.Generator, width: int = 640, height: int = 480, shift: Shift | None = None
                  ) -> Scene:
    """A :func:`random_scene` moved into the shifted greenhouse (``shift``, default :data:`SHIFT`); draws from
    ``rng`` only after it."""
    shift = shift or SHIFT
    scene = random_scene(rng, width, height)
    z = shift.zoom
    trusses: dict[tuple[float | None, float | None], str] = {}
    for f in scene.fruits:
        key = (f.stem_x, f.stem_y) if f.stem_x is not None else (f.x, f.y)
        if key not in trusses:
            trusses[key] = "yellow" if rng.uniform() < shift.yellow else "red"
        f.variety = trusses[key]
    if z != 1.0:
        _zoom(scene, z)
    if rng.uniform() < shift.dusk:
        scene.light = Light(float(rng.uniform(0.45, 0.65)),  # dim, slightly blue, steep falloff
                            (float(rng.uniform(1.0, 1.08)), 1.0, float(rng.uniform(0.92, 1.0))),
                            float(rng.uniform(0.4, 0.8)), scene.light.direction)
        scene.noise = float(rng.uniform(5, 10))
    return scene


def _zoom(scene: Scene, z: float) -> None:
    """A closer camera / longer lens: the plants scale by ``z`` around the image centre (background stays)."""
    cx, cy = scene.width / 2, scene.height / 2
    for f in scene.fruits:
        f.x, f.y, f.radius = cx + (f.x - cx) * z, cy + (f.y - cy) * z, f.radius * z
        if f.stem_x is not None and f.stem_y is not None:
            f.stem_x, f.stem_y = cx + (f.stem_x - cx) * z, cy + (f.stem_y - cy) * z
    for leaf in scene.leaves:
        leaf.x, leaf.y = cx + (leaf.x - cx) * z, cy + (leaf.y - cy) * z
        leaf.length, leaf.width = leaf.length * z, leaf.width * z
    for st in scene.stems:
        st.points = [(cx + (x - cx) * z, cy + (y - cy) * z) for x, y in st.points]
        st.thickness = max(1, int(round(st.thickness * z)))
    scene.flowers = [(cx + (x - cx) * z, cy + (y - cy) * z, r * z) for x, y, r in scene.flowers]


def _scale(c: Colour, k: float) -> Colour:
    return tuple(int(min(255, max(0, v * k))) for v in c)  # type: ignore[return-value]


def _leaflets(leaf: Leaf) -> list[tuple[tuple[int, int], tuple[int, int], float]]:
    """Ellipses (centre, axes, angle deg) making up one compound leaf along its midrib."""
    out = []
    dx, dy = math.cos(leaf.angle), math.sin(leaf.angle)
    n = max(2, int(leaf.length / (leaf.width * 1.4)))
    for i in range(n):
        t = (i + 0.7) / n * leaf.length
        side = 1 if i % 2 else -1
        off = leaf.width * 0.55
        cx = leaf.x + dx * t - dy * off * side
        cy = leaf.y + dy * t + dx * off * side
        ang = math.degrees(leaf.angle) + side * 35
        size = 1.0 - 0.35 * i / n
        out.append(((int(cx), int(cy)), (int(leaf.width * size), int(leaf.width * 0.5 * size)), ang))
    tip = (int(leaf.x + dx * leaf.length * 1.05), int(leaf.y + dy * leaf.length * 1.05))
    out.append((tip, (int(leaf.width * 0.8), int(leaf.width * 0.45)), math.degrees(leaf.angle)))
    return out


def _draw_leaf(img: np.ndarray, ids: np.ndarray | None, leaf: Leaf) -> None:
    dark = _scale(leaf.colour, 0.7)
    end = (int(leaf.x + math.cos(leaf.angle) * leaf.length), int(leaf.y + math.sin(leaf.angle) * leaf.length))
    cv2.line(img, (int(leaf.x), int(leaf.y)), end, dark, max(1, int(leaf.width / 8)), cv2.LINE_AA)
    for c, ax, ang in _leaflets(leaf):
        cv2.ellipse(img, c, ax, ang, 0, 360, leaf.colour, -1, cv2.LINE_AA)
        cv2.ellipse(img, c, (ax[0], max(1, ax[1] // 8)), ang, 0, 360, dark, -1)  # vein
        if ids is not None:
            cv2.ellipse(ids, c, ax, ang, 0, 360, 0, -1)
    if ids is not None:
        cv2.line(ids, (int(leaf.x), int(leaf.y)), end, 0, max(1, int(leaf.width / 8)))


def _draw_fruit(img: np.ndarray, ids: np.ndarray, f: Fruit, idx: int, light_dir: float) -> None:
    c = (int(round(f.x)), int(round(f.y)))
    ax = (max(1, int(round(f.radius))), max(1, int(round(f.radius * f.aspect))))
    base = fruit_colour(f.ripeness, f.tone, f.variety)
    lx, ly = math.cos(light_dir), math.sin(light_dir)
    cv2.ellipse(img, c, ax, f.angle, 0, 360, _scale(base, 0.62), -1, cv2.LINE_AA)
    cv2.ellipse(ids, c, ax, f.angle, 0, 360, idx + 1, -1)
    for k, (shift, size) in enumerate(((0.12, 0.86), (0.25, 0.55))):
        cc = (int(f.x + lx * f.radius * shift), int(f.y + ly * f.radius * shift))
        a2 = (max(1, int(ax[0] * size)), max(1, int(ax[1] * size)))
        cv2.ellipse(img, cc, a2, f.angle, 0, 360, _scale(base, 0.9 + 0.15 * k), -1, cv2.LINE_AA)
    hc = (int(f.x + lx * f.radius * 0.5), int(f.y + ly * f.radius * 0.5))
    hr = max(1, int(f.radius * 0.16))
    spec = tuple(int(0.45 * v + 0.55 * 245) for v in base)
    cv2.ellipse(img, hc, (hr, max(1, hr // 2 + 1)), math.degrees(light_dir) + 90, 0, 360, spec, -1, cv2.LINE_AA)
    # calyx: a small green star on top
    top = (f.x, f.y - f.radius * f.aspect * 0.8)
    calyx = (40, 120, 60) if f.ripeness > 0.3 else (40, 100, 50)
    for k in range(5):
        a = k * 2 * math.pi / 5 + f.tone
        end = (int(top[0] + math.cos(a) * f.radius * 0.35), int(top[1] + math.sin(a) * f.radius * 0.18))
        cv2.line(img, (int(top[0]), int(top[1])), end, calyx, max(1, int(f.radius / 12)), cv2.LINE_AA)


def _background(scene: Scene) -> np.ndarray:
    h, w = scene.height, scene.width
    img = np.empty((h, w, 3), np.uint8)
    img[:] = scene.bg_colour
    if scene.background in ("plastic", "aisle"):  # soft vertical folds of plastic sheeting
        xs = np.arange(w, dtype=np.float32)
        fold = (12 * np.sin(xs / (37 + len(scene.bg_blobs)) + len(scene.stems))).astype(np.int16)
        img[:] = np.clip(img.astype(np.int16) + fold[None, :, None], 0, 255).astype(np.uint8)
    if scene.background == "aisle":
        img[int(h * 0.7):] = (70, 95, 120)
    for x, y, a, b, ang, col in scene.bg_blobs:
        cv2.ellipse(img, (int(x), int(y)), (int(a), int(b)), ang, 0, 360, col, -1)
    return cv2.GaussianBlur(img, (0, 0), 3.0)


def _visible_boxes(scene: Scene, ids: np.ndarray) -> tuple[np.ndarray, list[str], np.ndarray]:
    boxes, labels, index = [], [], []
    h, w = ids.shape
    for i, f in enumerate(scene.fruits):
        r = int(math.ceil(f.radius)) + 2
        x0, y0 = int(round(f.x)) - r, int(round(f.y)) - r
        full = np.zeros((2 * r + 1, 2 * r + 1), np.uint8)
        ax = (max(1, int(round(f.radius))), max(1, int(round(f.radius * f.aspect))))
        cv2.ellipse(full, (int(round(f.x)) - x0, int(round(f.y)) - y0), ax, f.angle, 0, 360, 1, -1)
        total = int(full.sum())
        cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(w, x0 + 2 * r + 1), min(h, y0 + 2 * r + 1)
        if total == 0 or cx1 <= cx0 or cy1 <= cy0:
            continue
        vis = ids[cy0:cy1, cx0:cx1] == i + 1
        if vis.sum() < MIN_VISIBLE * total:
            continue
        ys, xs = np.nonzero(vis)
        boxes.append((cx0 + xs.min(), cy0 + ys.min(), cx0 + xs.max() + 1, cy0 + ys.max() + 1))
        labels.append(ripeness_label(f.ripeness))
        index.append(i)
    arr = np.array(boxes, np.float32).reshape(-1, 4)
    return arr, labels, np.array(index, np.int64)


def render(scene: Scene, rng: np.random.Generator) -> Rendered:
    """Draw the scene; ``rng`` only jitters exposure/noise, never geometry or boxes."""
    img = _background(scene)
    h, w = scene.height, scene.width
    ids = np.zeros((h, w), np.uint16)  # 0 = not a fruit, i+1 = visible pixel of fruit i
    for xt, xb, col in scene.strings:
        cv2.line(img, (int(xt), 0), (int(xb), h), col, 2, cv2.LINE_AA)
    for leaf in scene.leaves:
        if not leaf.front:
            _draw_leaf(img, None, leaf)
    for st in scene.stems:
        pts = np.array(st.points, np.int32).reshape(-1, 1, 2)
        cv2.polylines(img, [pts], False, st.colour, st.thickness, cv2.LINE_AA)
    for f in scene.fruits:
        if f.stem_x is not None and f.stem_y is not None:
            cv2.line(img, (int(f.stem_x), int(f.stem_y)), (int(f.x), int(f.y - f.radius * 0.8)),
                     (70, 150, 110), max(1, int(f.radius / 8)), cv2.LINE_AA)
    for x, y, r in scene.flowers:
        for k in range(5):
            a = k * 2 * math.pi / 5
            cv2.circle(img, (int(x + math.cos(a) * r), int(y + math.sin(a) * r)), max(1, int(r * 0.6)),
                       (40, 210, 235), -1)
    for i, f in enumerate(scene.fruits):
        _draw_fruit(img, ids, f, i, scene.light.direction)
    for leaf in scene.leaves:
        if leaf.front:
            _draw_leaf(img, ids, leaf)
    boxes, labels, index = _visible_boxes(scene, ids)

    lt = scene.light
    gain = lt.gain * float(rng.uniform(0.96, 1.04))
    ramp = np.linspace(-1, 1, w, dtype=np.float32)[None, :] * math.cos(lt.direction) + \
        np.linspace(-1, 1, h, dtype=np.float32)[:, None] * math.sin(lt.direction)
    shade = (1.0 + lt.gradient * 0.5 * ramp).astype(np.float32)  # brighter towards the light
    mult = shade[:, :, None] * (gain * np.array(lt.tint, np.float32))[None, None, :]
    out = img.astype(np.float32) * mult
    if scene.blur > 0.05:
        out = cv2.GaussianBlur(out, (0, 0), scene.blur)
    if scene.noise > 0:
        noise = np.empty((h, w, 3), np.float32)
        cv2.setRNGSeed(int(rng.integers(0, 2**31 - 1)))
        cv2.randn(noise, 0.0, scene.noise)
        out += noise
    image = np.clip(out, 0, 255).astype(np.uint8)
    if scene.jpeg_quality:
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, scene.jpeg_quality])
        image = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else image
    return Rendered(image, boxes, labels, index)


def generate_dataset(out_dir: Path, count: int, seed: int, width: int = 640, height: int = 480) -> Path:
    """Write ``count`` images + YOLO labels (class index into LABELS) + classes.txt under out_dir."""
    out_dir = Path(out_dir)
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    (out_dir / "labels").mkdir(parents=True, exist_ok=True)
    (out_dir / "classes.txt").write_text("\n".join(LABELS) + "\n")
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        scene = random_scene(rng, width, height)
        r = render(scene, rng)
        name = f"{seed}_{i:06d}"
        cv2.imwrite(str(out_dir / "images" / f"{name}.jpg"), r.image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        lines = []
        for (x1, y1, x2, y2), lab in zip(r.boxes, r.labels):
            lines.append(f"{LABELS.index(lab)} {(x1 + x2) / 2 / width:.6f} {(y1 + y2) / 2 / height:.6f} "
                         f"{(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}")
        (out_dir / "labels" / f"{name}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
    return out_dir
