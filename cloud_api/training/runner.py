"""The training-job runner: one job at a time in a thread of the API, each step in a worker process.

A job: export the dataset's labelled frames (YOLO) into a work folder -> ``fieldline model train --init-from``
the base model -> ``export`` at the base model's input size -> ``eval`` the base and the new file on the
dataset's test split and on the original holdout (fresh generator frames of the base model's kind) -> when the
new file is better on the test split and not worse by more than ``HOLDOUT_TOLERANCE`` on the holdout:
``quantize`` and register the FP32 and INT8 files with a card (state ``done``), else ``rejected`` with the
reason. Progress goes to the job row and to the live WebSocket as ``{"type": "training", "data": job}``.

Each runner has its own worker id; it holds a lease on the job it runs and renews it every ``lease_s / 4``
seconds. At start and then every ``lease_s / 2`` seconds it fails only jobs whose lease has expired, so an API
worker that restarts never fails the jobs of the other workers still running theirs.
"""

from __future__ import annotations

import io
import json
import logging
import os
import secrets
import shutil
import socket
import threading
import time
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

from cloud_api.fleet.onnx_meta import ModelFileError
from cloud_api.fleet.registry import ModelRegistry
from cloud_api.training import base_model
from cloud_api.training.card import card_text
from cloud_api.training.steps import Cancelled, StepFailed, last_json, parse_progress, run_step
from cloud_api.training.store import TrainingJob, TrainingJobStore

log = logging.getLogger(__name__)

HOLDOUT_TOLERANCE = 0.02  # mAP50: the original holdout may drop at most 2 points
DEFAULTS: dict[str, Any] = {"steps": 600, "input_size": 384, "canvas": 256, "lr": 0.001, "seed": 1234,
                            "threads": 2, "holdout_count": 300, "replay": 400, "quantize": True}
REPLAY_SEED = 777  # replay frames of the base model's generator: neither the holdout's seed nor eval's 9001


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def decide(old: dict[str, float | None], new: dict[str, float | None]) -> tuple[bool, str]:
    """Register only a better model: higher test-split mAP50, original holdout at most 2 points lower."""
    if new["test"] is None or old["test"] is None:
        return False, "no test-split evaluation"
    if new["test"] <= old["test"]:
        return False, f"not better on the test split: mAP50 {new['test']:.3f} vs {old['test']:.3f} in service"
    if old.get("holdout") is not None and new.get("holdout") is not None \
            and new["holdout"] < old["holdout"] - HOLDOUT_TOLERANCE:  # type: ignore[operator]
        return False, (f"worse on the original holdout: mAP50 {new['holdout']:.3f} vs {old['holdout']:.3f} in "
                       f"service (more than {HOLDOUT_TOLERANCE * 100:.0f} points)")
    gain = f"test-split mAP50 {old['test']:.3f} -> {new['test']:.3f}"
    if old.get("holdout") is not None:
        gain += f", original holdout {old['holdout']:.3f} -> {new['holdout']:.3f}"
    return True, gain


class TrainingRunner:
    """Claims queued jobs and runs them; ``publish(job_json)`` is called on every change."""

    def __init__(self, store: Any, data_dir: Path, publish: Any, poll_s: float = 1.0, lease_s: float = 60.0) -> None:
        self.store = store
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
        self.lease_ms = int(lease_s * 1000)
        self.jobs = TrainingJobStore(store._conn)  # the API store's per-thread connections
        self.registry = ModelRegistry(store, data_dir)
        self.work_root = Path(data_dir) / "training"
        self._publish = publish
        self._poll_s = poll_s
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._heart: threading.Thread | None = None
        self._old_holdout: dict[tuple[str, str, int], float] = {}  # (sha256, source, count) -> mAP50

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.jobs.ensure_schema()
        self.recover()
        self._thread = threading.Thread(target=self._loop, name="training-runner", daemon=True)
        self._thread.start()
        self._heart = threading.Thread(target=self._heartbeat, name="training-lease", daemon=True)
        self._heart.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for thread in (self._thread, self._heart):
            if thread is not None:
                thread.join(timeout=30)

    def recover(self) -> int:
        """Fail the jobs whose runner is gone (lease expired); the jobs of live runners are left alone."""
        failed = self.jobs.fail_orphans(now_ms())
        if failed:
            log.warning("%d training job(s) lost their API worker (lease expired): marked failed", failed)
        return failed

    def _heartbeat(self) -> None:
        """Renew this runner's leases every lease/4 and recover other workers' expired jobs every lease/2."""
        beat_s = self.lease_ms / 4000
        beats = 0
        while not self._stop.wait(beat_s):
            try:
                self.jobs.renew_leases(self.worker, now_ms(), self.lease_ms)
                beats += 1
                if beats % 2 == 0:
                    self.recover()
            except Exception:  # noqa: BLE001 - a store hiccup: the next beat tries again, well within the lease
                log.exception("training lease renewal failed")

    def wake(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            job = self.jobs.claim_next(now_ms(), self.worker, self.lease_ms)
            if job is None:
                self._wake.wait(self._poll_s)
                self._wake.clear()
                continue
            self._emit(job)
            try:
                self._run(job)
            except Exception as exc:  # noqa: BLE001 - a bug in one job must not stop the runner
                log.exception("training job %s failed", job.id)
                self._finish(job.id, "failed", error=f"{type(exc).__name__}: {exc}")

    # ------------------------------------------------------------ one job

    def _emit(self, job: TrainingJob | None) -> None:
        if job is not None:
            self._publish(job.to_json())

    def _update(self, job_id: str, **fields: Any) -> TrainingJob | None:
        job = self.jobs.update(job_id, now_ms(), **fields)
        self._emit(job)
        return job

    def _finish(self, job_id: str, state: str, **fields: Any) -> None:
        self._update(job_id, state=state, **fields)

    def _run(self, job: TrainingJob) -> None:
        params = {**DEFAULTS, **job.params}
        work = self.work_root / job.id
        work.mkdir(parents=True, exist_ok=True)
        log_file = work / "job.log"
        result: dict[str, Any] = {"old": {"test": None, "holdout": None}, "new": {"test": None, "holdout": None},
                                  "registered_sha256": None, "reason": None}

        def cancelled() -> bool:
            return self._stop.is_set() or self.jobs.cancel_requested(job.id)

        try:
            base = base_model.resolve(job.base_model, self.registry.path_of,
                                      lambda sha: self.store.get_model(sha) is not None)
            data_dir, data = self._export(job.dataset, work / "data")
            if not data["frames_by_split"].get("train"):
                raise ValueError(f"dataset {job.dataset}: no labelled frames in the train split")
            if not data["frames_by_split"].get("test"):
                raise ValueError(f"dataset {job.dataset}: no labelled frames in the test split (needed to compare "
                                 "the new model with the one in service)")
            holdout = base.holdout_source()
            if holdout and int(params["replay"]) > 0 and tuple(data["labels"]) == base.labels:
                data["replay"] = self._replay(holdout, int(params["replay"]), data_dir, log_file, cancelled)
            self._update(job.id, progress={"step": 0, "steps": params["steps"], "loss": None, "stage": "train"},
                         result={**result, "data": data})
            checkpoint, info = self._train(job, params, base, data_dir, work, log_file, cancelled)
            result["train"] = {"steps": info["steps"], "train_s": info["train_seconds"],
                               "best_val_map50": info.get("best_val_map50"), "train_images": info["train_images"]}
            new_file = work / f"{base.name}.onnx"
            version = f"{base.version}-ft.{job.id[-6:]}"
            run_step(["model", "export", "--checkpoint", str(checkpoint), "--out", str(new_file), "--name", base.name,
                      "--version", version, "--train-info", str(checkpoint.parent / "train_info.json"),
                      "--input-size", str(base.input_size)], log_file, cancelled)
            self._update(job.id, state="evaluating",
                         progress={"step": params["steps"], "steps": params["steps"], "stage": "evaluate"})
            result["holdout_data"] = f"{holdout} ({params['holdout_count']} frames, seed " \
                                     f"{base_model.HOLDOUT_SEED})" if holdout else None
            test = {"data": str(data_dir), "format": "yolo", "split": "test"}
            todo = [("old", "test", {"model": str(base.path), **test}),
                    ("new", "test", {"model": str(new_file), **test})]
            if holdout:
                ho = {"data": holdout, "count": int(params["holdout_count"]), "seed": base_model.HOLDOUT_SEED}
                key = (base.sha256, holdout, int(params["holdout_count"]))
                if key in self._old_holdout:
                    result["old"]["holdout"] = self._old_holdout[key]
                else:
                    todo.append(("old", "holdout", {"model": str(base.path), **ho}))
                todo.append(("new", "holdout", {"model": str(new_file), **ho}))
            out = run_step(["--evaluate", json.dumps([t[2] for t in todo])], log_file, cancelled)
            for (who, what, _), res in zip(todo, json.loads(out.strip().splitlines()[-1])):
                result[who][what] = res["map50"]
            if holdout:
                self._old_holdout[key] = result["old"]["holdout"]
            accepted, reason = decide(result["old"], result["new"])
            result["reason"] = reason
            result["data"] = data
            if not accepted:
                self._finish(job.id, "rejected", result=result)
                return
            self._update(job.id, progress={"step": params["steps"], "steps": params["steps"], "stage": "register"},
                         result=result)
            train = {k: params[k] for k in ("steps", "input_size", "lr", "seed")}
            train["export_input_size"] = base.input_size
            card = card_text(name=base.name, version=version, data=data, train=train, result=result, job_id=job.id,
                             created_by=job.created_by,
                             base={"name": base.name, "version": base.version, "sha256": base.sha256})
            files = [new_file]
            if params["quantize"]:
                int8 = self._quantize(new_file, data_dir, data, log_file, cancelled, result)
                if int8 is not None:
                    files.append(int8)
            metrics = json.dumps({"training_job": job.id, "old": result["old"], "new": result["new"],
                                  "dataset": job.dataset})
            shas = []
            for f in files:
                record, _ = self.registry.add(f.read_bytes(), actor=job.created_by,
                                              role=str(job.params.get("role", "operator")), now_ms=now_ms(),
                                              card=card, metrics=metrics)
                shas.append(record.sha256)
            result["registered_fp32_sha256"] = shas[0]
            result["registered_sha256"] = shas[-1]  # the INT8 file when quantized: the one to roll out
            result["version"] = version
            self._finish(job.id, "done", result=result)
        except Cancelled:
            self._finish(job.id, "failed" if self._stop.is_set() else "cancelled", result=result,
                         error="the API stopped while the job ran" if self._stop.is_set() else "cancelled")
        except (StepFailed, ValueError, ModelFileError, OSError) as exc:
            self._finish(job.id, "failed", result=result, error=str(exc))
        finally:
            shutil.rmtree(work / "data", ignore_errors=True)
            shutil.rmtree(work / "replay", ignore_errors=True)  # the frames stay in the dataset; logs stay here
            for cache in (work / "run").glob("cache_*"):
                cache.unlink(missing_ok=True)

    def _export(self, dataset: str, dest: Path) -> tuple[Path, dict[str, Any]]:
        """The dataset's labelled frames as YOLO (H3's export) under ``dest``; what they are."""
        from cloud_api.services.datasets import export_zip

        record = self.store.get_dataset(dataset)
        if record is None:
            raise ValueError(f"dataset {dataset!r} does not exist")
        statuses = ("labelled", "in_training")
        frames, _ = self.store.list_frames(dataset, status=statuses, limit=10 ** 9)
        shutil.rmtree(dest, ignore_errors=True)
        with zipfile.ZipFile(io.BytesIO(export_zip(self.store, record, "yolo", statuses))) as zf:
            zf.extractall(dest)
        by_split = Counter(f.split for f in frames)
        return dest, {"dataset": dataset, "frames": len(frames), "labels": list(record.labels),
                      "frames_by_split": {s: by_split.get(s, 0) for s in ("train", "val", "test")},
                      "reasons": dict(Counter(f.reason for f in frames))}

    @staticmethod
    def _replay(source: str, count: int, data_dir: Path, log_file: Path, cancelled: Any) -> dict[str, Any]:
        """``count`` fresh frames of the base model's generator into the training split (rehearsal: what the
        model already knew stays in the mix)."""
        kind = source.split(":", 1)[1]
        out = data_dir.parent / "replay"
        shutil.rmtree(out, ignore_errors=True)
        run_step(["model", "synth", "--out", str(out), "--kind", kind, "--count", str(count), "--seed",
                  str(REPLAY_SEED)], log_file, cancelled)
        for sub in ("images", "labels"):
            dest = data_dir / sub / "train"
            dest.mkdir(parents=True, exist_ok=True)
            for f in (out / sub).iterdir():
                f.rename(dest / f"replay_{f.name}")
        shutil.rmtree(out, ignore_errors=True)
        return {"source": source, "frames": count, "seed": REPLAY_SEED}

    def _train(self, job: TrainingJob, params: dict[str, Any], base: base_model.BaseModel, data_dir: Path,
               work: Path, log_file: Path, cancelled: Any) -> tuple[Path, dict[str, Any]]:
        steps = int(params["steps"])

        def on_line(line: str) -> None:
            p = parse_progress(line)
            if p is not None:
                self._update(job.id, progress={"step": p.step, "steps": steps, "loss": p.loss, "epoch": p.epoch,
                                               "val_map50": p.val_map50, "stage": "train"})

        run_dir = work / "run"
        flags = run_step(["--shape-flags", str(base.path)], log_file, cancelled).strip().splitlines()[-1].split()
        args = ["model", "train", "--data", str(data_dir), "--format", "yolo", *flags,
                "--init-from", str(base.path), "--input-size", str(params["input_size"]),
                "--canvas", str(min(int(params["canvas"]), int(params["input_size"]))),
                "--scale-range", "0.75,2", "--lr", str(params["lr"]), "--seed", str(params["seed"]),
                "--steps", str(steps), "--threads", str(params["threads"]), "--val-every-epochs", "5",
                "--out-dir", str(run_dir)]
        out = run_step(args, log_file, cancelled, on_line)
        checkpoint = Path(out.strip().splitlines()[-1].strip())
        if not checkpoint.is_file():
            raise StepFailed(f"training printed no checkpoint path (last line: {checkpoint})")
        info = json.loads((run_dir / "train_info.json").read_text())
        self._update(job.id, progress={"step": info["steps"], "steps": steps, "stage": "export",
                                       "train_s": info["train_seconds"], "val_map50": info.get("best_val_map50")})
        return checkpoint, info

    @staticmethod
    def _quantize(model: Path, data_dir: Path, data: dict[str, Any], log_file: Path, cancelled: Any,
                  result: dict[str, Any]) -> Path | None:
        out_file = model.with_suffix(".int8.onnx")
        train_n = data["frames_by_split"]["train"]
        try:
            out = run_step(["model", "quantize", "--model", str(model), "--out", str(out_file), "--data",
                            str(data_dir), "--format", "yolo", "--calib-count", str(min(300, train_n)),
                            "--check-count", str(min(200, max(1, data["frames"] - train_n) + train_n // 4))],
                           log_file, cancelled)
        except StepFailed as exc:
            result["quantize"] = {"refused": str(exc)}
            return None
        report = last_json(out)
        result["quantize"] = {"fp32_map50": report.get("fp32_map50"), "int8_map50": report.get("int8_map50")}
        return out_file
