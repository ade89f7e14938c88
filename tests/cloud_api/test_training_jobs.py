"""Training jobs against the real API (uvicorn, SQLite, registry files) with real worker processes: a short job on a
tiny dataset of the shifted greenhouse runs train -> export -> eval (test split and original holdout) and ends
done (registered, with a card) or rejected (with the reason); progress reaches the WebSocket; cancel kills the
worker; roles."""

from __future__ import annotations

import json
import threading

import cv2
import pytest
from websockets.sync.client import connect

from cloud_api.services.users import create_user
from models.data.sources import DataSource
from models.data.synth.tomato import LABELS
from tests.cloud_api.cloudapi_builders import PASSWORD, TOKEN, ApiServer, login, settings_for, wait_until

SPLITS = ["train"] * 6 + ["val", "test", "test"]


def push_truth(client, name: str) -> None:
    """Frames of the shifted greenhouse labelled from the generator's truth, with fixed splits."""
    frames = DataSource.parse("synth:tomato-shift").frames("train", len(SPLITS), 31)
    for i, ((img, boxes, labels), split) in enumerate(zip(frames, SPLITS)):
        h, w = img.shape[:2]
        meta = {"source": "test", "reason": "uncertain_score", "split": split, "id": f"{name}-{i}", "predictions": [],
                "labels": [{"label": lab, "box": [float(b[0]) / w, float(b[1]) / h, float(b[2]) / w, float(b[3]) / h]}
                           for b, lab in zip(boxes, labels)]}
        r = client.post(f"/datasets/{name}/frames", files={
            "image": ("f.jpg", cv2.imencode(".jpg", img)[1].tobytes(), "image/jpeg"),
            "meta": ("meta.json", json.dumps(meta), "application/json")})
        assert r.status_code == 201, r.text


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with ApiServer(settings_for(tmp_path_factory.mktemp("training"))) as server:
        store = server.server.config.app.state.store
        create_user(store, "ann", PASSWORD, "operator")
        create_user(store, "vic", PASSWORD, "viewer")
        assert server.client.post("/datasets", json={"name": "shift", "labels": list(LABELS)}).status_code == 201
        push_truth(server.client, "shift")
        yield server


def job_body(**extra) -> dict:
    return {"dataset": "shift", "base_model": "tomato-ripeness", "steps": 3, "input_size": 128, "threads": 1,
            "holdout_count": 4, "replay": 4, "quantize": False, **extra}


def wait_state(api, job_id: str, states: tuple[str, ...], timeout: float = 240) -> dict:
    return wait_until(lambda: (j := api.get(f"/training/jobs/{job_id}"))["state"] in states and j, timeout,
                      f"job {job_id} in {states}")


def test_a_short_job_ends_done_or_rejected_with_figures_and_reports_on_the_websocket(api):
    ann = login(api, "ann")
    messages: list[dict] = []
    ws = connect(f"ws://127.0.0.1:{api.port}/api/v1/ws", additional_headers={"Authorization": f"Bearer {TOKEN}"})

    def read() -> None:
        try:
            for raw in ws:
                messages.append(json.loads(raw))
        except Exception:  # noqa: BLE001 - the socket closes at the end of the test
            pass

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    r = ann.post("/training/jobs", json=job_body())
    assert r.status_code == 202, r.text
    job = r.json()
    assert (job["state"], job["dataset"], job["created_by"]) == ("queued", "shift", "ann")
    final = wait_state(api, job["id"], ("done", "rejected", "failed"))
    ws.close()
    reader.join(5)
    assert final["state"] in ("done", "rejected"), final.get("error")
    result = final["result"]
    for who in ("old", "new"):
        assert 0.0 <= result[who]["test"] <= 1.0 and 0.0 <= result[who]["holdout"] <= 1.0
    assert result["data"]["frames_by_split"] == {"train": 6, "val": 1, "test": 2}
    assert result["data"]["replay"]["frames"] == 4 and result["data"]["reasons"] == {"uncertain_score": 9}
    assert final["progress"]["step"] == 3 and final["progress"]["steps"] == 3
    better = result["new"]["test"] > result["old"]["test"] and \
        result["new"]["holdout"] >= result["old"]["holdout"] - 0.02
    assert (final["state"] == "done") == better, result["reason"]
    if final["state"] == "done":
        model = api.get(f"/models/{result['registered_sha256']}")
        assert "Dataset `shift`: 9 labelled frames" in model["card"]
        assert model["version"].startswith("2.2.2-ft.")
    else:
        assert result["registered_sha256"] is None and result["reason"].startswith(("not better", "worse"))
    states = [m["data"]["state"] for m in messages if m["type"] == "training" and m["data"]["job"] == job["id"]]
    assert states[0] == "queued" and "running" in states and "evaluating" in states and states[-1] == final["state"]
    assert any(m["data"]["progress"].get("stage") == "train" for m in messages if m["type"] == "training")
    assert ann.post(f"/training/jobs/{job['id']}/cancel").status_code == 409  # finished: nothing to cancel


def test_cancel_kills_a_running_job_and_drops_a_queued_one(api):
    ann = login(api, "ann")
    running = ann.post("/training/jobs", json=job_body(steps=20000)).json()
    queued = ann.post("/training/jobs", json=job_body()).json()
    wait_until(lambda: api.get(f"/training/jobs/{running['id']}")["progress"].get("stage") == "train", 120,
               "the long job to train")
    dropped = ann.post(f"/training/jobs/{queued['id']}/cancel")
    assert dropped.status_code == 200 and dropped.json()["state"] == "cancelled"
    assert ann.post(f"/training/jobs/{running['id']}/cancel").json()["cancel_requested"] is True
    final = wait_state(api, running["id"], ("cancelled", "failed", "done", "rejected"), 60)
    assert (final["state"], final["error"]) == ("cancelled", "cancelled")
    listed = {j["id"]: j["state"] for j in api.get("/training/jobs", dataset="shift")}
    assert listed[queued["id"]] == "cancelled" and listed[running["id"]] == "cancelled"


def test_roles_and_bad_requests(api):
    vic, ann = login(api, "vic"), login(api, "ann")
    assert vic.post("/training/jobs", json=job_body()).status_code == 403
    assert vic.get("/training/jobs").status_code == 200
    assert api.anon.get("/training/jobs").status_code == 401
    assert ann.post("/training/jobs", json=job_body(dataset="nope")).status_code == 404
    bad = ann.post("/training/jobs", json=job_body(base_model="no-such-model"))
    assert bad.status_code == 422 and "no-such-model" in bad.text
    assert ann.post("/training/jobs", json=job_body(base_model="0" * 64)).status_code == 422
    assert ann.get("/training/jobs/tj-1-abcdef").status_code == 404
    assert vic.post("/training/jobs/tj-1-abcdef/cancel").status_code == 403


def test_model_train_pulls_a_dataset_from_the_api(api, tmp_path):
    from typer.testing import CliRunner

    from fieldline.cli import app

    out = tmp_path / "run"
    args = ["model", "train", "--data", "api:shift", "--api", api.root, "--token", TOKEN, "--steps", "1",
            "--input-size", "64", "--arch", "fast", "--threads", "1", "--out-dir", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    info = json.loads((out / "train_info.json").read_text())
    assert info["train_images"] == 6 and info["labels"] == list(LABELS) and info["steps"] == 1
    assert sorted(p.name for p in (out / "data-shift" / "images").iterdir()) == ["test", "train", "val"]
    missing = CliRunner().invoke(app, ["model", "train", "--data", "api:shift", "--out-dir", str(out)])
    assert missing.exit_code == 2 and "needs --api URL" in missing.output
    unknown = CliRunner().invoke(app, [*args[:2], "--data", "api:nope", *args[4:]])
    assert unknown.exit_code == 2 and "404" in unknown.output


def test_the_runner_starts_and_jobs_list_on_either_store(storage, tmp_path):
    with ApiServer(settings_for(tmp_path, **storage)) as server:
        assert server.get("/training/jobs") == []
        assert server.client.get("/training/jobs/tj-1-abcdef").status_code == 404
        assert server.server.config.app.state.training_runner._thread.is_alive()
