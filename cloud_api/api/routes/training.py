"""Training jobs of the learning loop (issue 40): operators and admins start and cancel, viewers read.

A job fine-tunes the model in service (a zoo name or a registered sha256) on a dataset's labelled frames in a
worker process, evaluates the new file against the base on the dataset's test split and on the original
holdout, and registers it (FP32 + INT8, with a card) only when it is better; see ``cloud_api.training.runner``.
Progress and state changes go out on the live WebSocket as ``{"type": "training", "data": job}``.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, HTTPException, Path, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from fieldline.contract import NAME_PATTERN

from cloud_api.api.deps import OperatorDep, PrincipalDep, StoreDep
from cloud_api.fleet.registry import ModelRegistry
from cloud_api.training import base_candidates, base_model
from cloud_api.training.runner import TrainingRunner
from cloud_api.training.store import ACTIVE, TrainingJobStore


@asynccontextmanager
async def training_lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Runs the job runner thread while the app runs (jobs left running by a previous process become failed)."""
    hub = app.state.live
    runner = TrainingRunner(app.state.store, app.state.settings.data_dir,
                            publish=lambda job: hub.publish("training", {"job": job["id"], **job}))
    app.state.training_runner = runner
    runner.start()
    try:
        yield
    finally:
        runner.stop()


router = APIRouter(prefix="/training", tags=["training"], lifespan=training_lifespan)
JobPath = Annotated[str, Path(pattern=r"^tj-[0-9a-f]{1,16}-[0-9a-f]{6}$", description="Job id")]
_NOT_FOUND = {404: {"description": "No such job"}}


class JobIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    dataset: str = Field(pattern=NAME_PATTERN, description="Dataset whose labelled frames the job trains on")
    base_model: str = Field(min_length=1, max_length=100,
                            description="The model in service: a zoo name (tomato-ripeness) or a registered sha256")
    steps: int = Field(default=600, ge=1, le=100_000, description="Optimiser steps of the fine-tuning")
    input_size: int = Field(default=384, ge=64, le=1024, multiple_of=32, description="Training input size")
    lr: float = Field(default=0.001, gt=0, le=0.1)
    seed: int = Field(default=1234, ge=0)
    threads: int = Field(default=2, ge=1, le=64, description="PyTorch threads of the worker process")
    holdout_count: int = Field(default=300, ge=1, le=5000,
                               description="Fresh generator frames of the original holdout (seed 20261)")
    replay: int = Field(default=400, ge=0, le=5000,
                        description="Frames of the base model's own generator mixed into the training split, so the "
                                    "new greenhouse does not make the old ones worse (0: none)")
    quantize: bool = Field(default=True, description="Also register an INT8 file (fieldline model quantize)")


def _jobs(request: Request) -> TrainingJobStore:
    return TrainingJobStore(request.app.state.store._conn)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _get(request: Request, job_id: str) -> dict[str, Any]:
    job = _jobs(request).get(job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no training job {job_id}")
    return job.to_json()


@router.post("/jobs", status_code=status.HTTP_202_ACCEPTED, responses={
    404: {"description": "No such dataset"}, 422: {"description": "Unusable base model or bad parameters"}},
    summary="Start a training job (operator): fine-tune the model in service on a dataset")
def start_job(request: Request, body: JobIn, principal: OperatorDep, store: StoreDep) -> dict[str, Any]:
    if store.get_dataset(body.dataset) is None:  # type: ignore[attr-defined]
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no dataset {body.dataset!r}")
    registry = ModelRegistry(store, request.app.state.settings.data_dir)  # type: ignore[arg-type]
    try:
        base = base_model.resolve(body.base_model, registry.path_of,
                                  lambda sha: store.get_model(sha) is not None)  # type: ignore[attr-defined]
    except base_model.BaseModelError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    params = {**body.model_dump(exclude={"dataset", "base_model"}), "role": principal.role,
              "base_sha256": base.sha256}
    job = _jobs(request).create(body.dataset, body.base_model, params, principal.username, _now_ms())
    runner: TrainingRunner | None = getattr(request.app.state, "training_runner", None)
    if runner is not None:
        runner.wake()
    request.app.state.live.publish("training", {"job": job.id, **job.to_json()})
    return job.to_json()


@router.get("/base-models", summary="Models a job can start from, with how many devices run each")
def base_models(_: PrincipalDep, store: StoreDep) -> list[dict[str, Any]]:
    """Zoo FP32 detectors and registered FP32 FieldLine files (``base_model``: what ``POST /jobs`` takes), most
    devices in service first: the /training page preselects the first one whose labels are the dataset's."""
    return base_candidates.candidates(store.list_models(), store.list_devices())  # type: ignore[attr-defined]


@router.get("/jobs", summary="Training jobs, newest first")
def list_jobs(request: Request, _: PrincipalDep,
              dataset: Annotated[str | None, Query(pattern=NAME_PATTERN)] = None,
              limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[dict[str, Any]]:
    return [j.to_json() for j in _jobs(request).list(limit, dataset)]


@router.get("/jobs/{job_id}", responses=_NOT_FOUND,
            summary="One job: state, progress {step, steps, loss}, result {old, new, registered_sha256, reason}")
def get_job(request: Request, job_id: JobPath, _: PrincipalDep) -> dict[str, Any]:
    return _get(request, job_id)


@router.post("/jobs/{job_id}/cancel", responses={**_NOT_FOUND, 409: {"description": "The job has finished"}},
             summary="Cancel a job (operator): a queued one at once, a running one's worker process is killed")
def cancel_job(request: Request, job_id: JobPath, _: OperatorDep) -> dict[str, Any]:
    jobs = _jobs(request)
    job = jobs.get(job_id)
    if job is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no training job {job_id}")
    if job.state not in ACTIVE:
        raise HTTPException(status.HTTP_409_CONFLICT, f"training job {job_id} is {job.state}; nothing to cancel")
    job = jobs.request_cancel(job_id, _now_ms())
    assert job is not None
    if job.state == "cancelled":
        request.app.state.live.publish("training", {"job": job.id, **job.to_json()})
    return job.to_json()
