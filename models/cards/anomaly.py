"""Build, measure and document `surface-anomaly`: zoo ONNX + metrics JSON + model card (from the JSON).

Each step adds its part to the metrics and re-renders the card (``python -m models.cards.anomaly ...``):

- ``shipped [seconds [keep=DIR]]``: the shipped model, method ``seg`` (input 128, mirror average) fitted for
  ``seconds`` (default 3600) on synthetic defect-free surfaces; measured on the synthetic holdout and on real
  magnetic tiles (MT) with its threshold unchanged.
- ``int8``: the INT8 copy of the shipped model (``models.anomaly.quantize``), measured the same way; the
  faster file that passes the check is the default (also run at the end of ``shipped``).
- ``knn [encoder_seconds]``: the ``knn`` method (the 1.x default) on the same synthetic data and on the MT split,
  for comparison (~5 min; no file shipped).
- ``seg [seconds [size [crop|none [flips] [keep=DIR] [every=N] [entry=KEY]]]]``: the ``seg`` method fitted on
  the MT split (default 900 s; checkpoint pass every N steps; result under metrics KEY). MT-fitted weights only
  ever go to a temp dir (or ``keep=DIR`` outside the repo): the MT dataset has no licence, so they are not shipped.
- ``combine KEY=FILE KEY=FILE ... [int8]``: MT-fitted ``seg`` models kept by ``seg ... keep=DIR`` (KEY: their
  metrics entry) joined into one model (``models.anomaly.combine``) on the MT validation split, measured on the
  test split; ``int8``: the branches quantized first.
- ``patchcore [size=N] [layers=4,7] [dim=N] [coreset=N] [sigma=S] [trial]``: the ``patchcore`` method (pretrained
  EfficientNet-Lite0 features) fitted on the MT split and measured (evaluation only); each run is a row of the
  card's table of what was tried, and without ``trial`` also the described ``patchcore`` entry.
- ``card``: re-render the card from the metrics.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from models.cards.anomaly_text import render_card
from models.zoo_index import ZOO

ONNX_NAME = "surface-anomaly.onnx"
INT8_NAME = "surface-anomaly.int8.onnx"
METRICS_NAME = "surface-anomaly.metrics.json"
CARD_NAME = "surface-anomaly.card.md"

SHIPPED_VERSION = "2.0.0"  # 1.x: kNN method; 2.x: seg method (same ONNX contract)
SEEDS = {"encoder": 0, "fit": 11, "val": 12, "test_free": 13, "test_defects": 14, "mt_split": 0}


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def build_knn(out_dir: Path = ZOO, encoder_seconds: float = 0.0, fit_count: int = 400, val_count: int = 150,
              test_free: int = 150, per_kind: int = 40, keep_dir: Path | None = None) -> dict[str, Any]:
    """The ``knn`` method (the 1.x shipped default): fitted on the same synthetic surfaces as the shipped model
    and on the MT split, both measured; recorded as ``knn_synthetic`` and ``mt_eval_model`` for comparison.

    The ONNX files go to a temp dir (``keep_dir``: copy the synthetic one there); the zoo file is not touched."""
    import torch

    from models.anomaly.core import (INPUT_SIZE, evaluate_sets, export_anomaly_onnx, fit_anomaly, load_gray,
                                load_mt_groups, mt_split, onnx_scorer, score_images, synth_free, train_encoder)

    torch.set_num_threads(2)
    t_all = time.perf_counter()
    enc, enc_info = train_encoder(encoder_seconds, SEEDS["encoder"])
    fit_x, val_x = synth_free(SEEDS["fit"], fit_count), synth_free(SEEDS["val"], val_count)
    knn = fit_anomaly(fit_x, val_x, encoder=enc, seed=SEEDS["fit"])
    desc = (f"{fit_count} synthetic defect-free surfaces (models.data.synth.surface, seed {SEEDS['fit']}); "
            f"threshold on {val_count} more (seed {SEEDS['val']}); "
            + ("random-init encoder" if encoder_seconds <= 0 else "encoder pretext on synthetic surfaces only"))
    sp = mt_split(seed=SEEDS["mt_split"])
    mt_model = fit_anomaly(load_gray(sp["fit"]), load_gray(sp["val"]), encoder=enc, seed=SEEDS["fit"])
    fit_seconds = round(enc_info.get("encoder_total_seconds", 0.0) + knn.info["fit_seconds"]
                        + mt_model.info["fit_seconds"], 1)
    s_t, h_t = score_images(knn.net, val_x[:4])
    mt_groups = load_mt_groups()
    with tempfile.TemporaryDirectory() as tmp:  # MT-trained weights never land in the repo
        knn_path = export_anomaly_onnx(knn, Path(tmp) / "knn.onnx", desc)
        if keep_dir is not None:
            Path(keep_dir).mkdir(parents=True, exist_ok=True)
            shutil.copy(knn_path, Path(keep_dir) / "surface-anomaly-knn.onnx")
        knn_measured = measure_model(knn_path, knn.threshold, test_free, per_kind, (s_t, h_t, val_x[:4]), mt_groups)
        mt_path = export_anomaly_onnx(mt_model, Path(tmp) / "mt.onnx", "magnetic-tile MT_Free fit split (NOT shippable)",
                                      name="surface-anomaly-mt-eval")
        mt_eval = evaluate_sets(onnx_scorer(mt_path), mt_model.threshold, load_gray(sp["test"]), None, mt_groups)
        mt_bytes = mt_path.stat().st_size
    metrics = json.loads((out_dir / METRICS_NAME).read_text())
    metrics["knn_synthetic"] = {
        "shipped": False, "version": "1.0.0", "input_size": INPUT_SIZE, "encoder": enc_info,
        "fit_seconds_total": fit_seconds, "wall_seconds_build": round(time.perf_counter() - t_all, 1),
        "threshold": round(knn.threshold, 6), "train_data": desc, "fit": knn.info,
        "command": f"python -m models.cards.anomaly knn {encoder_seconds:g}", **knn_measured}
    metrics["mt_eval_model"] = {
        "shipped": False, "bytes": mt_bytes, "threshold": round(mt_model.threshold, 6), "fit": mt_model.info,
        "split": {"rule": "MT_Free sorted by name, permuted with numpy default_rng(0): 70 % fit / 10 % threshold / "
                          "20 % test", "fit": len(sp["fit"]), "val": len(sp["val"]), "test": len(sp["test"])},
        "eval": mt_eval}
    (out_dir / METRICS_NAME).write_text(json.dumps(metrics, indent=2) + "\n")
    (out_dir / CARD_NAME).write_text(render_card(metrics))
    return metrics


def build_seg(seconds: float = 900.0, out_dir: Path = ZOO, size: int | None = None,
              crop: int | None = None, flips: bool = False, keep_dir: Path | None = None,
              eval_every: int = 100, entry: str = "seg_mt_eval_model") -> dict[str, Any]:
    """The ``seg`` method on the MT split (evaluation only, weights in a temp dir), added to the metrics.

    ``size``: the model's input side (default ``SEG_INPUT_SIZE``); ``crop``: train on crops of this side;
    ``keep_dir``: also copy the MT-fitted ONNX there for analysis (outside the repo: it may not be shipped);
    ``eval_every``: steps between checkpoint passes (a pass at 256 px with mirror views costs ~60 s);
    ``entry``: the metrics key the result goes to."""
    import torch

    from models.anomaly.core import evaluate_sets, export_anomaly_onnx, load_gray, load_mt_groups, measure_latency, \
        mt_split, onnx_scorer
    from models.anomaly.seg import SEG_INPUT_SIZE, fit_segmenter

    torch.set_num_threads(2)
    sp = mt_split(seed=SEEDS["mt_split"])
    size = size or SEG_INPUT_SIZE
    fit = fit_segmenter(load_gray(sp["fit"], size), load_gray(sp["val"], size), seconds=seconds,
                        seed=SEEDS["fit"], crop=crop, flips=flips, eval_every=eval_every)
    with tempfile.TemporaryDirectory() as tmp:  # MT-trained weights never land in the repo
        path = export_anomaly_onnx(fit, Path(tmp) / "mt-seg.onnx", "magnetic-tile MT_Free fit split (NOT shippable)",
                                   name="surface-anomaly-mt-seg-eval")
        ev = evaluate_sets(onnx_scorer(path), fit.threshold, load_gray(sp["test"], size), None,
                           load_mt_groups(size=size))
        latency = measure_latency(path, runs=50, threads=1)
        size_bytes = path.stat().st_size
        if keep_dir is not None:
            Path(keep_dir).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(keep_dir) / path.name)
    metrics = json.loads((out_dir / METRICS_NAME).read_text())
    command = (f"python -m models.cards.anomaly seg {seconds:g} {size} {crop or 'none'}" + (" flips" if flips else "")
               + (f" every={eval_every}" if eval_every != 100 else "")
               + (f" entry={entry}" if entry != "seg_mt_eval_model" else ""))
    metrics[entry] = {"shipped": False, "bytes": size_bytes, "threshold": round(fit.threshold, 6),
                      "fit": fit.info, "eval": ev, "latency": latency, "command": command}
    (out_dir / METRICS_NAME).write_text(json.dumps(metrics, indent=2) + "\n")
    (out_dir / CARD_NAME).write_text(render_card(metrics))
    return metrics


PATCHCORE_ENTRY = "patchcore_mt_eval_model"


def build_patchcore(size: int | None = None, layers: tuple[int, ...] | None = None, dim: int | None = None,
                    coreset: int = 4096, sigma: float = 4.0, out_dir: Path = ZOO,
                    default: bool = True, threads: int = 2) -> dict[str, Any]:
    """The ``patchcore`` method (pretrained Lite0 features, ``models.anomaly.patchcore``) on the MT split, evaluation
    only (weights in a temp dir): fit time, image/pixel AUROC of the ONNX file and its 1-thread latency.

    Every run adds a row to ``metrics["patchcore_trials"]`` (what was tried); ``default``: the run is also the
    ``patchcore_mt_eval_model`` entry the card describes in full."""
    import torch

    from models.anomaly.core import evaluate_sets, export_anomaly_onnx, load_gray, load_mt_groups, measure_latency, \
        mt_split, onnx_scorer
    from models.anomaly.patchcore import DEFAULT_DIM, DEFAULT_LAYERS, PATCHCORE_INPUT_SIZE, fit_patchcore

    torch.set_num_threads(threads)
    size, layers = size or PATCHCORE_INPUT_SIZE, tuple(layers or DEFAULT_LAYERS)
    dim = DEFAULT_DIM if dim is None else dim
    sp = mt_split(seed=SEEDS["mt_split"])
    fit = fit_patchcore(load_gray(sp["fit"], size), load_gray(sp["val"], size), layers=layers, dim=dim,
                        coreset=coreset, sigma=sigma, seed=SEEDS["fit"])
    with tempfile.TemporaryDirectory() as tmp:  # MT-fitted weights never land in the repo
        path = export_anomaly_onnx(fit, Path(tmp) / "mt-patchcore.onnx",
                                   "magnetic-tile MT_Free fit split (NOT shippable)",
                                   name="surface-anomaly-mt-patchcore-eval")
        ev = evaluate_sets(onnx_scorer(path), fit.threshold, load_gray(sp["test"], size), None,
                           load_mt_groups(size=size))
        latency = measure_latency(path, runs=50, threads=1)
        size_bytes = path.stat().st_size
    command = (f"python -m models.cards.anomaly patchcore size={size} layers={','.join(map(str, layers))} dim={dim} "
               f"coreset={coreset} sigma={sigma:g}" + ("" if default else " trial"))
    metrics = json.loads((out_dir / METRICS_NAME).read_text())
    row = {"input_size": size, "layers": list(layers), "dim": fit.info["feature_dim"], "coreset": coreset,
           "sigma": sigma, "image_auroc": ev["overall"]["image_auroc"], "pixel_auroc": ev["overall"]["pixel_auroc"],
           "fit_seconds": fit.info["fit_seconds"], "fit_cpu_seconds": fit.info["fit_cpu_seconds"],
           "session_median_ms": latency["session_median_ms"], "session_min_ms": latency["session_min_ms"],
           "loadavg_1m": latency["loadavg_1m"], "command": command}
    trials = [t for t in metrics.get("patchcore_trials", []) if t["command"].removesuffix(" trial") !=
              command.removesuffix(" trial")]
    metrics["patchcore_trials"] = trials + [row]
    if default:
        metrics[PATCHCORE_ENTRY] = {"shipped": False, "bytes": size_bytes, "threshold": round(fit.threshold, 6),
                                    "fit": fit.info, "eval": ev, "latency": latency, "command": command}
    (out_dir / METRICS_NAME).write_text(json.dumps(metrics, indent=2) + "\n")
    (out_dir / CARD_NAME).write_text(render_card(metrics))
    return metrics


def build_combined(branches: dict[str, Path], out_dir: Path = ZOO, int8: bool = False) -> dict[str, Any]:
    """Two or more MT-fitted ``seg`` models (metrics key -> its kept ONNX file) joined by
    ``models.anomaly.combine`` on the MT validation split, measured on the MT test split (evaluation only).

    ``int8``: quantize each branch first (``models.anomaly.quantize``: calibrated on MT fit images, checked and
    thresholded on the validation split), combine the INT8 files, and time FP32 and INT8 combined in one run;
    recorded as ``combined_mt_eval_model_int8``."""
    from edge_agent.detectors.anomaly import read_anomaly_metadata
    from models.anomaly.core import evaluate_sets, load_gray, load_mt_groups, measure_latency, mt_split, onnx_scorer
    from models.anomaly.combine import combine_anomaly_models
    from models.anomaly.quantize import calibration_cap, quantize_anomaly

    metrics = json.loads((out_dir / METRICS_NAME).read_text())
    for key, path in branches.items():  # the file must be the one the metrics entry describes
        recorded, found = metrics[key]["threshold"], float(read_anomaly_metadata(path)["threshold"])
        if abs(recorded - found) > 1e-6:
            raise SystemExit(f"{path}: threshold {found} is not the {key} model's ({recorded}); wrong file")
    sizes = {key: metrics[key]["fit"]["input_size"] for key in branches}
    size = max(sizes.values())
    sp = mt_split(seed=SEEDS["mt_split"])
    vals = {s: load_gray(sp["val"], s) for s in {*sizes.values(), size}}
    with tempfile.TemporaryDirectory() as tmp:  # MT-trained weights never land in the repo
        files, quantized = list(branches.values()), {}
        if int8:
            files = []
            for key, path in branches.items():
                s = sizes[key]
                files.append(Path(tmp) / f"{key}.int8.onnx")
                quantized[key] = quantize_anomaly(path, files[-1], load_gray(sp["fit"][:calibration_cap(s)], s),
                                                  vals[s], vals[s])
                quantized[key].pop("out")  # a machine path
        val = vals[size]
        path = Path(tmp) / "mt-combined.onnx"
        report = combine_anomaly_models(files, path, val, name="surface-anomaly-mt-combined-eval")
        ev = evaluate_sets(onnx_scorer(path), report["threshold"], load_gray(sp["test"], size), None,
                           load_mt_groups(size=size))
        entry = {"shipped": False, "bytes": path.stat().st_size, "threshold": report["threshold"],
                 "branches": list(branches), "combine": report, "eval": ev}
        if int8:
            fp32 = combine_anomaly_models(list(branches.values()), Path(tmp) / "fp32.onnx", val)
            entry.update(quantize=quantized, latency=measure_latency(path, runs=30, threads=1),
                         fp32_latency_same_run=measure_latency(Path(tmp) / "fp32.onnx", runs=30, threads=1),
                         fp32_threshold=fp32["threshold"])
        else:
            entry["latency"] = measure_latency(path, runs=30, threads=1)
    entry["command"] = ("python -m models.cards.anomaly combine " + " ".join(f"{k}=FILE" for k in branches)
                        + (" int8" if int8 else ""))
    metrics["combined_mt_eval_model" + ("_int8" if int8 else "")] = entry
    (out_dir / METRICS_NAME).write_text(json.dumps(metrics, indent=2) + "\n")
    (out_dir / CARD_NAME).write_text(render_card(metrics))
    return metrics


def build_shipped(seconds: float = 3600.0, out_dir: Path = ZOO, fit_count: int = 400, val_count: int = 150,
                  test_free: int = 150, per_kind: int = 40, keep_dir: Path | None = None) -> dict[str, Any]:
    """The shipped model: method ``seg`` (input 128, ``--flips``) fitted on synthetic defect-free surfaces only.

    Exports it to the zoo, measures it like the kNN model (synthetic holdout + real magnetic tiles, threshold
    unchanged) and makes it ``metrics["shipped"]`` (the ``knn`` step records the kNN method beside it).
    ``keep_dir``: also copy the exported ONNX there (a safety copy outside the repo)."""
    import torch

    from models.anomaly.core import export_anomaly_onnx, synth_free
    from models.anomaly.seg import SEG_INPUT_SIZE, fit_segmenter

    torch.set_num_threads(2)
    size = SEG_INPUT_SIZE
    fit_x, val_x = synth_free(SEEDS["fit"], fit_count, size), synth_free(SEEDS["val"], val_count, size)
    fit = fit_segmenter(fit_x, val_x, seconds=seconds, seed=SEEDS["fit"], flips=True)
    desc = (f"{fit_count} synthetic defect-free surfaces (models.data.synth.surface, seed {SEEDS['fit']}) with painted "
            f"defects; checkpoint and threshold on {val_count} more (seed {SEEDS['val']})")
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = export_anomaly_onnx(fit, out_dir / ONNX_NAME, desc, version=SHIPPED_VERSION)
    if keep_dir is not None:
        Path(keep_dir).mkdir(parents=True, exist_ok=True)
        shutil.copy(onnx_path, Path(keep_dir) / ONNX_NAME)
    with torch.no_grad():
        h_t, s_t = fit.net(torch.from_numpy(val_x[:4]))
    metrics = json.loads((out_dir / METRICS_NAME).read_text())
    command = f"python -m models.cards.anomaly shipped {seconds:g}"
    metrics.update(version=SHIPPED_VERSION, input_size=size)
    metrics["shipped"] = {"file": ONNX_NAME, "train_data": desc, "threshold": round(fit.threshold, 6),
                          "fit": fit.info, "command": command,
                          **measure_model(onnx_path, fit.threshold, test_free, per_kind,
                                            (s_t.numpy(), h_t[:, 0].numpy(), val_x[:4]))}
    (out_dir / METRICS_NAME).write_text(json.dumps(metrics, indent=2) + "\n")
    return build_int8(out_dir, val_count, test_free, per_kind)


def build_int8(out_dir: Path = ZOO, val_count: int = 150, test_free: int = 150,
               per_kind: int = 40) -> dict[str, Any]:
    """INT8 copy of the shipped model (``models.anomaly.quantize``), measured like FP32; the faster of the two
    files that passes the check becomes ``metrics["default"]``."""
    from models.anomaly.core import measure_latency, synth_free
    from models.anomaly.quantize import CHECK_SEED, calibration_cap, quantize_anomaly
    from models.detect.quantize import QuantizationRefused

    metrics = json.loads((out_dir / METRICS_NAME).read_text())
    size, shipped = metrics["input_size"], metrics["shipped"]
    calib = synth_free(SEEDS["fit"], calibration_cap(size), size)  # the first fitting images (per-image seeds)
    try:
        report = quantize_anomaly(out_dir / ONNX_NAME, out_dir / INT8_NAME, calib, synth_free(CHECK_SEED, 100, size),
                                  synth_free(SEEDS["val"], val_count, size), target_frr=shipped["fit"]["target_frr"])
    except QuantizationRefused as exc:
        (out_dir / INT8_NAME).unlink(missing_ok=True)
        metrics.pop("shipped_int8", None)
        metrics["default"] = "fp32"
        metrics["int8_refused"] = str(exc)
    else:
        metrics.pop("int8_refused", None)
        report.pop("out")  # a machine path
        metrics["shipped_int8"] = {"file": INT8_NAME, "threshold": report["int8_threshold"], "quantize": report,
                                   **measure_model(out_dir / INT8_NAME, report["int8_threshold"], test_free, per_kind)}
        shipped["latency"] = measure_latency(out_dir / ONNX_NAME, runs=50, threads=1)  # same run as INT8's
        metrics["shipped_int8"]["latency"] = measure_latency(out_dir / INT8_NAME, runs=50, threads=1)
        faster = metrics["shipped_int8"]["latency"]["session_median_ms"] < shipped["latency"]["session_median_ms"]
        metrics["default"] = "int8" if faster else "fp32"
    (out_dir / METRICS_NAME).write_text(json.dumps(metrics, indent=2) + "\n")
    (out_dir / CARD_NAME).write_text(render_card(metrics))
    return metrics


def measure_model(onnx_path: Path, threshold: float, test_free: int = 150, per_kind: int = 40,
                    torch_outputs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                    mt_groups: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> dict[str, Any]:
    """File facts, onnxruntime-vs-torch round trip (``(scores, heatmaps, inputs)`` from torch), the synthetic
    holdout and the real magnetic-tile test split at ``threshold``, and 1-thread latency. ``mt_groups``: the MT
    defect images at the model's input size, when the caller has them loaded already."""
    from edge_agent.detectors.anomaly import read_anomaly_metadata
    from models.anomaly.core import evaluate_sets, load_gray, load_mt_groups, measure_latency, mt_split, onnx_scorer, \
        synth_free, synth_groups

    size = int(read_anomaly_metadata(onnx_path)["input_size"])
    run = onnx_scorer(onnx_path)
    out: dict[str, Any] = {"bytes": onnx_path.stat().st_size, "sha256": _sha(onnx_path)}
    if torch_outputs is not None:
        s_t, h_t, x = torch_outputs
        s_o, h_o = run(x)
        out["onnx_roundtrip"] = {"max_abs_score_diff": float(np.abs(s_t - s_o).max()),
                                 "max_abs_heatmap_diff": float(np.abs(h_t - h_o).max())}
    syn = evaluate_sets(run, threshold, synth_free(SEEDS["test_free"], test_free, size), None,
                        synth_groups(SEEDS["test_defects"], per_kind, size))
    mt = evaluate_sets(run, threshold, load_gray(mt_split(seed=SEEDS["mt_split"])["test"], size), None,
                       mt_groups or load_mt_groups(size=size))
    return {**out, "latency": measure_latency(onnx_path, runs=50, threads=1),
            "eval_synthetic": {"free_seed": SEEDS["test_free"], "defect_seed": SEEDS["test_defects"],
                               "per_kind": per_kind, **syn},
            "eval_magnetic_tile": {"split": "MT_Free test split + every defect image", **mt}}


def main(argv: list[str]) -> None:
    cmd = argv[0] if argv else "card"
    if cmd == "knn":
        m = build_knn(encoder_seconds=float(argv[1]) if len(argv) > 1 else 0.0)
        print(json.dumps({k: m["knn_synthetic"][k] for k in ("fit_seconds_total", "wall_seconds_build")}))
    elif cmd == "seg":
        opts = dict(a.split("=", 1) for a in argv[4:] if "=" in a)
        entry = opts.get("entry", "seg_mt_eval_model")
        m = build_seg(float(argv[1]) if len(argv) > 1 else 900.0, size=int(argv[2]) if len(argv) > 2 else None,
                      crop=int(argv[3]) if len(argv) > 3 and argv[3] != "none" else None, flips="flips" in argv[4:],
                      keep_dir=Path(opts["keep"]) if "keep" in opts else None,
                      eval_every=int(opts.get("every", 100)), entry=entry)
        print(json.dumps(m[entry]["eval"]["overall"]))
    elif cmd == "shipped":
        keep = [a.split("=", 1)[1] for a in argv[2:] if a.startswith("keep=")]
        m = build_shipped(float(argv[1]) if len(argv) > 1 else 3600.0, keep_dir=Path(keep[0]) if keep else None)
        print(json.dumps({k: m["shipped"][k]["overall"] for k in ("eval_synthetic", "eval_magnetic_tile")}))
    elif cmd == "int8":
        m = build_int8()
        print(json.dumps({"default": m["default"], **m.get("shipped_int8", {}).get("quantize", {})}))
    elif cmd == "combine":
        branches = {k: Path(v) for k, v in (a.split("=", 1) for a in argv[1:] if "=" in a)}
        int8 = "int8" in argv[1:]
        m = build_combined(branches, int8=int8)
        print(json.dumps(m["combined_mt_eval_model" + ("_int8" if int8 else "")]["eval"]["overall"]))
    elif cmd == "patchcore":
        opts = dict(a.split("=", 1) for a in argv[1:] if "=" in a)
        m = build_patchcore(int(opts["size"]) if "size" in opts else None,
                            tuple(int(t) for t in opts["layers"].split(",")) if "layers" in opts else None,
                            int(opts["dim"]) if "dim" in opts else None, int(opts.get("coreset", 4096)),
                            float(opts.get("sigma", 4.0)), default="trial" not in argv[1:],
                            threads=int(opts.get("threads", 2)))
        print(json.dumps(m["patchcore_trials"][-1]))
    elif cmd == "card":
        m = json.loads((ZOO / METRICS_NAME).read_text())
        (ZOO / CARD_NAME).write_text(render_card(m))
    else:
        raise SystemExit("usage: python -m models.cards.anomaly [shipped [seconds [keep=DIR]] | int8 | knn [encoder_seconds] "
                         "| seg [seconds [size [crop|none [flips] [keep=DIR] [every=N] [entry=KEY]]]] "
                         "| combine KEY=FILE KEY=FILE ... [int8] "
                         "| patchcore [size=N] [layers=4,7] [dim=N] [coreset=N] [sigma=S] [trial] | card]")


if __name__ == "__main__":
    main(sys.argv[1:])
