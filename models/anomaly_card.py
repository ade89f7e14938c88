"""Build, measure and document `surface-anomaly`: zoo ONNX + metrics JSON + model card (from the JSON).

``python -m models.anomaly_card build`` runs everything (~6-8 min on 2 shared CPU cores):
one synthetic-only encoder pretext run shared by both models, the shipped fit on synthetic
defect-free surfaces, the magnetic-tile evaluation fit (its weights go to a temp dir only: the
MT licence does not allow shipping them), evaluations, latency. ``... card`` re-renders the card.
``... seg [seconds [size [crop [flips] [keep=DIR]]]]`` fits the ``seg`` method (``models.anomaly_seg``) on the same MT split for
``seconds`` (default 900; input side ``size``, trained on ``crop``-sized pieces), evaluates it the same way
and adds it to the metrics and the card.
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

ZOO = Path(__file__).parent / "zoo"
ONNX_NAME = "surface-anomaly.onnx"
METRICS_NAME = "surface-anomaly.metrics.json"
CARD_NAME = "surface-anomaly.card.md"

SEEDS = {"encoder": 0, "fit": 11, "val": 12, "test_free": 13, "test_defects": 14, "mt_split": 0}


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def build(out_dir: Path = ZOO, encoder_seconds: float = 150.0, fit_count: int = 400, val_count: int = 150,
          test_free: int = 150, per_kind: int = 40) -> dict[str, Any]:
    import torch

    from models.anomaly import (INPUT_SIZE, NAME, VERSION, evaluate_sets, export_anomaly_onnx, fit_anomaly,
                                load_gray, load_mt_groups, measure_latency, mt_split, onnx_scorer, score_images,
                                synth_free, synth_groups, train_encoder)

    torch.set_num_threads(2)
    t_all = time.perf_counter()
    enc, enc_info = train_encoder(encoder_seconds, SEEDS["encoder"])
    fit_x, val_x = synth_free(SEEDS["fit"], fit_count), synth_free(SEEDS["val"], val_count)
    shipped = fit_anomaly(fit_x, val_x, encoder=enc, seed=SEEDS["fit"])
    desc = (f"{fit_count} synthetic defect-free surfaces (models.synth.surface, seed {SEEDS['fit']}); "
            f"threshold on {val_count} more (seed {SEEDS['val']}); "
            + ("random-init encoder" if encoder_seconds <= 0 else "encoder pretext on synthetic surfaces only"))
    out_dir.mkdir(parents=True, exist_ok=True)
    onnx_path = export_anomaly_onnx(shipped, out_dir / ONNX_NAME, desc)

    sp = mt_split(seed=SEEDS["mt_split"])
    mt_fit, mt_val = load_gray(sp["fit"]), load_gray(sp["val"])
    mt_model = fit_anomaly(mt_fit, mt_val, encoder=enc, seed=SEEDS["fit"])
    fit_seconds = round(enc_info.get("encoder_total_seconds", 0.0) + shipped.info["fit_seconds"]
                        + mt_model.info["fit_seconds"], 1)

    # round trip: onnxruntime == torch on a few images
    ort_run = onnx_scorer(onnx_path)
    s_t, h_t = score_images(shipped.net, val_x[:4])
    s_o, h_o = ort_run(val_x[:4])
    roundtrip = {"max_abs_score_diff": float(np.abs(s_t - s_o).max()),
                 "max_abs_heatmap_diff": float(np.abs(h_t - h_o).max())}

    mt_test, mt_groups = load_gray(sp["test"]), load_mt_groups()
    syn_free_x = synth_free(SEEDS["test_free"], test_free)
    syn_groups = synth_groups(SEEDS["test_defects"], per_kind)
    shipped_syn = evaluate_sets(ort_run, shipped.threshold, syn_free_x, None, syn_groups)
    shipped_mt = evaluate_sets(ort_run, shipped.threshold, mt_test, None, mt_groups)
    with tempfile.TemporaryDirectory() as tmp:  # MT-trained weights never land in the repo
        mt_path = export_anomaly_onnx(mt_model, Path(tmp) / "mt.onnx", "magnetic-tile MT_Free fit split (NOT shippable)",
                                      name="surface-anomaly-mt-eval")
        mt_eval = evaluate_sets(onnx_scorer(mt_path), mt_model.threshold, mt_test, None, mt_groups)
        mt_bytes = mt_path.stat().st_size
    latency = measure_latency(onnx_path, runs=50, threads=1)
    metrics: dict[str, Any] = {
        "name": NAME, "version": VERSION, "input_size": INPUT_SIZE,
        "fit_seconds_total": fit_seconds, "wall_seconds_build": round(time.perf_counter() - t_all, 1),
        "encoder": enc_info, "seeds": SEEDS,
        "shipped": {"file": ONNX_NAME, "bytes": onnx_path.stat().st_size, "sha256": _sha(onnx_path),
                    "threshold": round(shipped.threshold, 6), "train_data": desc, "fit": shipped.info,
                    "onnx_roundtrip": roundtrip, "latency": latency,
                    "eval_synthetic": {"free_seed": SEEDS["test_free"], "defect_seed": SEEDS["test_defects"],
                                       "per_kind": per_kind, **shipped_syn},
                    "eval_magnetic_tile": {"split": "MT_Free test split + every defect image", **shipped_mt}},
        "mt_eval_model": {"shipped": False, "bytes": mt_bytes, "threshold": round(mt_model.threshold, 6),
                          "fit": mt_model.info,
                          "split": {"rule": "MT_Free sorted by name, permuted with numpy default_rng(0): "
                                            "70 % fit / 10 % threshold / 20 % test",
                                    "fit": len(sp["fit"]), "val": len(sp["val"]), "test": len(sp["test"])},
                          "eval": mt_eval},
    }
    previous = out_dir / METRICS_NAME
    if previous.is_file() and "seg_mt_eval_model" in (old := json.loads(previous.read_text())):
        metrics["seg_mt_eval_model"] = old["seg_mt_eval_model"]  # its own build step (``seg``), independent
    (out_dir / METRICS_NAME).write_text(json.dumps(metrics, indent=2) + "\n")
    (out_dir / CARD_NAME).write_text(render_card(metrics))
    return metrics


def build_seg(seconds: float = 900.0, out_dir: Path = ZOO, size: int | None = None,
              crop: int | None = None, flips: bool = False, keep_dir: Path | None = None) -> dict[str, Any]:
    """The ``seg`` method on the MT split (evaluation only, weights in a temp dir), added to the metrics.

    ``size``: the model's input side (default ``SEG_INPUT_SIZE``); ``crop``: train on crops of this side;
    ``keep_dir``: also copy the MT-fitted ONNX there for analysis (outside the repo: it may not be shipped)."""
    import torch

    from models.anomaly import evaluate_sets, export_anomaly_onnx, load_gray, load_mt_groups, measure_latency, \
        mt_split, onnx_scorer
    from models.anomaly_seg import SEG_INPUT_SIZE, fit_segmenter

    torch.set_num_threads(2)
    sp = mt_split(seed=SEEDS["mt_split"])
    size = size or SEG_INPUT_SIZE
    fit = fit_segmenter(load_gray(sp["fit"], size), load_gray(sp["val"], size), seconds=seconds,
                        seed=SEEDS["fit"], crop=crop, flips=flips)
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
    command = (f"python -m models.anomaly_card seg {seconds:g} {size} {crop or 'none'}" + (" flips" if flips else ""))
    metrics["seg_mt_eval_model"] = {"shipped": False, "bytes": size_bytes, "threshold": round(fit.threshold, 6),
                                    "fit": fit.info, "eval": ev, "latency": latency, "command": command}
    (out_dir / METRICS_NAME).write_text(json.dumps(metrics, indent=2) + "\n")
    (out_dir / CARD_NAME).write_text(render_card(metrics))
    return metrics


def _seg_summary_row(m: dict[str, Any]) -> str:
    seg = m.get("seg_mt_eval_model")
    if not seg:
        return ""
    o = seg["eval"]["overall"]
    return (f"| MT-fitted, method `seg` (not shipped) | magnetic tile | {o['image_auroc']:.3f} | "
            f"{o['pixel_auroc']:.3f} | {o['false_reject_rate']:.2f} / {o['recall']:.2f} |\n")


def _best_mt_auroc(m: dict[str, Any]) -> float:
    scores = [m["mt_eval_model"]["eval"]["overall"]["image_auroc"]]
    if m.get("seg_mt_eval_model"):
        scores.append(m["seg_mt_eval_model"]["eval"]["overall"]["image_auroc"])
    return max(scores)


def _seg_section(m: dict[str, Any]) -> str:
    seg = m.get("seg_mt_eval_model")
    if not seg:
        return ""
    f, lat = seg["fit"], seg["latency"]
    history = ", ".join(f"{step}: {auc:.3f}" for step, auc in f["proxy_history"])
    flips_text = " averaged over the picture and its three mirror images (`--flips`)" if f.get("flips") else ""
    return f"""
## Method `seg` on real magnetic tiles (evaluation only, not shipped)

`fieldline model anomaly fit --method seg` (`models/anomaly_seg.py`): a U-Net ({f['parameters']:,}
parameters, width {f['width']}) learns to segment defects painted onto the defect-free images (spots,
thin polylines, smooth blobs, missing edge pieces, other tiles' texture); no real defect is used to fit it
or to pick its checkpoint. Input {f['input_size']}x{f['input_size']} grey, per-image standardisation;
heatmap = defect probability{flips_text} (5x5 average), score = its max. Same MT split as above
({f['train_images']} fit / {f['val_images']} threshold and checkpoint). Training: {f['fit_seconds']:.0f} s on 2 CPU
threads, {f['steps']} steps of batch {f['batch']}; checkpoint = step {f['best_step']} ({f['checkpoint_rule']};
proxy AUROC by step: {history}). Threshold {seg['threshold']:.4f} ({f['threshold_rule']}).
Latency: median {lat['session_median_ms']:.1f} ms, 1 thread.{_command_text(seg)}

{_table(seg['eval'])}

The painted-defect network separates large low-contrast defects (fray, break) far better than the kNN
bank; the decision threshold at a 1 % false-reject rate sits near the top of the defect-free score range,
so its recall is low: on a real line, pick the threshold from the line's accepted false-reject rate.
"""


def _command_text(seg: dict[str, Any]) -> str:
    return f" Reproduce with `{seg['command']}`." if seg.get("command") else ""


def _encoder_text(enc: dict[str, Any]) -> str:
    if not enc.get("encoder_steps"):
        return ("seeded random init (torch seed {}), not trained. A DRAEM-like pretext (segmenting synthetic "
                "defects on synthetic surfaces, `train_encoder`) is implemented, but in the 100 s CPU budget "
                "tried during development it scored worse on magnetic tiles than the random init "
                "(image AUROC 0.54 vs 0.58 with the earlier global-standardisation input), so it is off.").format(
                    enc.get("encoder_seed", 0))
    return (f"seeded random init, then {enc['encoder_seconds']:.0f} s ({enc['encoder_steps']} steps) of a "
            "pretext task on synthetic surfaces only: segment synthetic defects with a 1x1 head that is then "
            "discarded.")


def _table(ev: dict[str, Any]) -> str:
    rows = [f"| {k} | {v['images']} | {v['image_auroc']:.3f} | {v['pixel_auroc']:.3f} | {v['recall_at_threshold']:.2f} |"
            for k, v in ev["per_group"].items()]
    o = ev["overall"]
    rows.append(f"| **all** | {sum(v['images'] for v in ev['per_group'].values())} | **{o['image_auroc']:.3f}** | "
                f"**{o['pixel_auroc']:.3f}** | {o['recall']:.2f} |")
    return ("| defect set | images | image AUROC | pixel AUROC | recall at threshold |\n|---|---|---|---|---|\n"
            + "\n".join(rows) + f"\n\nDefect-free test images: {ev['free_images']}; false-reject rate at the "
            f"threshold: {o['false_reject_rate']:.3f}.")


def render_card(m: dict[str, Any]) -> str:
    s, mt, enc = m["shipped"], m["mt_eval_model"], m["encoder"]
    f = s["fit"]
    lat = s["latency"]
    return f"""# Model card: {m['name']} {m['version']}

Anomaly detector for surfaces where defects are too rare to label: fitted on **defect-free images
only**, it outputs a per-pixel anomaly heatmap and an image score (max of the heatmap). An image is
anomalous when score > `fieldline.threshold` ({s['threshold']:.4f}). Load with
`edge_agent.detectors.anomaly.AnomalyDetector` (`score(frame)`, or `detect(frame)` for `anomaly`
boxes = connected regions of heatmap > threshold).

ONNX contract: input `image` float32 [1,1,{m['input_size']},{m['input_size']}] greyscale 0..1, plain resize (no
letterbox); outputs `heatmap` [1,1,{m['input_size']},{m['input_size']}] and `score` [1]. Metadata: `fieldline.decoder =
anomaly`, `fieldline.threshold`, `fieldline.input_size`, `fieldline.normalization = gray_0_1`,
`fieldline.name`, `fieldline.version`, `fieldline.train_data`.

## How it was made

- **Method** (`models/anomaly.py`, PatchCore-style, no pretrained weights): local contrast
  normalisation (Gaussian 16 px) -> 3-stage conv encoder (strides 2/4/8), stride-4 + upsampled
  stride-8 features, 3x3 average (patch context) -> PCA to {f['feature_dim']} dims (fitted on
  defect-free patches) -> distance to the nearest of {f['bank_size']} memory-bank vectors (greedy
  k-centre coreset of {f['patches_sampled']:,} sampled patch features, border patches
  over-sampled) -> bilinear upsample + Gaussian blur (sigma {f['heatmap_sigma']} px); score = max of the
  heatmap ignoring a {m['input_size'] // 32} px frame. Bank, PCA and blur kernels are ONNX initialisers.
- **Encoder**: {_encoder_text(enc)}
- **Data (shipped)**: {s['train_data']}.
- **Threshold rule**: {f['threshold_rule']}.
- **Fit time**: {m['fit_seconds_total']:.0f} s total on 2 shared CPU threads for the encoder + both fits
  (shipped fit {f['fit_seconds']:.0f} s, MT fit {mt['fit']['fit_seconds']:.0f} s).
- **File**: `{s['file']}`, {s['bytes'] / 1024:.0f} KiB, sha256 `{s['sha256'][:16]}...`; onnxruntime vs
  torch max abs difference: score {s['onnx_roundtrip']['max_abs_score_diff']:.1e}, heatmap
  {s['onnx_roundtrip']['max_abs_heatmap_diff']:.1e}.

## Summary

| model | data | image AUROC (all defects) | pixel AUROC (all) | FRR / recall at its threshold |
|---|---|---|---|---|
| shipped | synthetic holdout | {s['eval_synthetic']['overall']['image_auroc']:.3f} | {s['eval_synthetic']['overall']['pixel_auroc']:.3f} | {s['eval_synthetic']['overall']['false_reject_rate']:.2f} / {s['eval_synthetic']['overall']['recall']:.2f} |
| shipped | magnetic tile | {s['eval_magnetic_tile']['overall']['image_auroc']:.3f} | {s['eval_magnetic_tile']['overall']['pixel_auroc']:.3f} | {s['eval_magnetic_tile']['overall']['false_reject_rate']:.2f} / {s['eval_magnetic_tile']['overall']['recall']:.2f} |
| MT-fitted (not shipped) | magnetic tile | {mt['eval']['overall']['image_auroc']:.3f} | {mt['eval']['overall']['pixel_auroc']:.3f} | {mt['eval']['overall']['false_reject_rate']:.2f} / {mt['eval']['overall']['recall']:.2f} |
{_seg_summary_row(m)}
The project target (MT image AUROC >= 0.90) is **{'met' if _best_mt_auroc(m) >= 0.9 else 'not met'}**.
Random conv features without pretrained weights localise small, contrasty defects (blowholes,
cracks: pixel AUROC {mt['eval']['per_group']['MT_Blowhole']['pixel_auroc']:.2f} / {mt['eval']['per_group']['MT_Crack']['pixel_auroc']:.2f} on MT) but the image score (max of the map) is dominated by the
normal texture's own variation (vertical streaks, tile edges), and large low-contrast defects
(break, fray, uneven) are barely separated. The shipped threshold, picked on synthetic
defect-free surfaces, rejects most real tiles: always refit the bank and threshold on the
line's own defect-free images.

## Accuracy of the shipped model

### Synthetic holdout (fresh seeds, {s['eval_synthetic']['per_kind']} images per defect kind)

{_table(s['eval_synthetic'])}

### Real magnetic tiles (realism gap)

Same MT test split as below ({s['eval_magnetic_tile']['free_images']} defect-free test images + all 392
defect images), shipped threshold unchanged.

{_table(s['eval_magnetic_tile'])}

## Evaluation-only model fitted on real magnetic tiles (not shipped)

Same encoder and recipe, memory bank and threshold fitted on MT_Free. Split: {mt['split']['rule']}
({mt['split']['fit']} / {mt['split']['val']} / {mt['split']['test']}). Threshold {mt['threshold']:.4f}. These
weights are **not** in the repository (dataset has no licence; research/evaluation use only).

{_table(mt['eval'])}

Images and masks resized to {m['input_size']}x{m['input_size']}; masks binarised `> 127` as the dataset README
advises. {mt['eval']['pixel_eval_note']}. AUROC is rank-based (Mann-Whitney, ties averaged), computed
with numpy. Each defect folder is scored against the same defect-free test images; 5 MT_Uneven
masks are (nearly) empty and add no positive pixels.
{_seg_section(m)}
## Latency

onnxruntime CPU, {lat['threads']} thread, {m['input_size']}x{m['input_size']}: median {lat['session_median_ms']:.1f} ms,
p95 {lat['session_p95_ms']:.1f} ms over {lat['runs']} runs (1-min load average {lat['loadavg_1m']} on the
shared 2-core dev box: pessimistic; re-measure on the target device).

## Limits

- The shipped bank only knows synthetic textures: fit a bank on your own line's defect-free images
  (`fieldline model anomaly fit --images DIR`, about 2 minutes; `--method seg --seconds 900` for the
  painted-defect U-Net, better on real tiles when measured) before relying on it; the MT numbers above
  show the gap between the synthetic and real textures.
- Large, low-contrast defects (uneven bands, fray along the border) are harder than local ones.
- Input is resized without keeping the aspect ratio: fit and run on crops of similar shape.

## Licence notes

Shipped weights: trained only on data generated by `models/synth/surface.py` (project code).
Magnetic-tile (Huang et al., "Surface defect saliency of magnetic tile", The Visual Computer 2020)
has no stated licence: used here for evaluation only; weights fitted on it are not distributed.
"""


def main(argv: list[str]) -> None:
    cmd = argv[0] if argv else "build"
    if cmd == "build":
        secs = float(argv[1]) if len(argv) > 1 else 150.0
        m = build(encoder_seconds=secs)
        print(json.dumps({k: m[k] for k in ("fit_seconds_total", "wall_seconds_build")}))
    elif cmd == "seg":
        keep = [a.split("=", 1)[1] for a in argv[4:] if a.startswith("keep=")]
        m = build_seg(float(argv[1]) if len(argv) > 1 else 900.0, size=int(argv[2]) if len(argv) > 2 else None,
                      crop=int(argv[3]) if len(argv) > 3 and argv[3] != "none" else None, flips="flips" in argv[4:],
                      keep_dir=Path(keep[0]) if keep else None)
        print(json.dumps(m["seg_mt_eval_model"]["eval"]["overall"]))
    elif cmd == "card":
        m = json.loads((ZOO / METRICS_NAME).read_text())
        (ZOO / CARD_NAME).write_text(render_card(m))
    else:
        raise SystemExit("usage: python -m models.anomaly_card [build [encoder_seconds] | seg [seconds [size [crop|none "
                         "[flips] [keep=DIR]]]] "
                         "| card]")


if __name__ == "__main__":
    main(sys.argv[1:])
