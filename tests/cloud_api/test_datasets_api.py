"""Datasets REST against the real API (uvicorn; SQLite with image files, and PostgreSQL with images in the
database): push, leases for two operators, optimistic versions (409), label checks (422), fixed splits, export
that the model toolkit's loaders read, YOLO zip import; the store shared by two workers on PostgreSQL."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from cloud_api.ingest.messages import DeadLetterItem, MessageClassifier, SampleItem
from cloud_api.services.users import create_user
from cloud_api.storage.postgres_store import PostgresStore
from cloud_api.storage.sqlite_datasets import LeaseLost, NewFrame, VersionConflict, split_of
from cloud_api.storage.sqlite_store import SqliteStore
from fieldline.contract import Event, ModelRef, Zone, build_sample, sample_topic
from models.data.sources import DataSource
from models.data.datasets import load_dataset, write_yolo
from models.data.samples import Dataset, Sample
from tests.cloud_api.cloudapi_builders import PASSWORD, SITE, T0, ApiServer, event_payload, login, settings_for

LABELS = ["ripe", "unripe"]


def jpeg(seed: int, size: tuple[int, int] = (64, 48)) -> bytes:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    return cv2.imencode(".jpg", image)[1].tobytes()


def push(client, name: str, seed: int, **meta) -> dict:
    meta = {"source": "test", "reason": "random", "predictions": [
        {"label": "ripe", "score": 0.42, "box": [0.1, 0.1, 0.4, 0.5]}], **meta}
    response = client.post(f"/datasets/{name}/frames", files={
        "image": ("f.jpg", jpeg(seed), "image/jpeg"), "meta": ("meta.json", json.dumps(meta), "application/json")})
    assert response.status_code in (200, 201), response.text
    return response.json()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def api(request, tmp_path_factory):
    """One API per backend for the module (PostgreSQL: a database of its own, not emptied per test)."""
    storage = {} if request.param == "sqlite" else {
        "storage": "postgres",
        "postgres_dsn": request.getfixturevalue("postgres_server").create_database("datasets_api")}
    with ApiServer(settings_for(tmp_path_factory.mktemp("datasets"), **storage)) as server:
        store = server.server.config.app.state.store
        for user, role in (("ann", "operator"), ("ben", "operator"), ("vic", "viewer")):
            create_user(store, user, PASSWORD, role)
        yield server


@pytest.fixture(scope="module")
def users(api):
    clients = {name: login(api, name) for name in ("ann", "ben", "vic")}
    yield clients
    for client in clients.values():
        client.close()


def make_dataset(client, name: str, frames: int) -> list[dict]:
    """A dataset with ``frames`` new frames (ids ``{name}-{i}``, so their splits are the same every run)."""
    assert client.post("/datasets", json={"name": name, "labels": LABELS}).status_code == 201
    return [push(client, name, seed, id=f"{name}-{seed}") for seed in range(frames)]


def test_two_operators_never_get_the_same_frame_and_a_stale_save_is_409(api, users):
    ann, ben = users["ann"], users["ben"]
    frames = make_dataset(ann, "leases", 3)
    first = ann.post("/datasets/leases/next", json={}).json()
    second = ben.post("/datasets/leases/next", json={}).json()
    assert first["id"] == frames[0]["id"] and second["id"] == frames[1]["id"]
    assert first["lease"]["user"] == "ann" and first["predictions"][0]["label"] == "ripe"
    assert ann.post("/datasets/leases/next", json={}).json()["id"] == first["id"]  # still hers
    # ann moves on: her lease on the first frame is released, ben may get it
    assert ann.post("/datasets/leases/next", json={"after": first["id"]}).json()["id"] == frames[2]["id"]
    assert ben.post("/datasets/leases/next", json={"after": second["id"]}).json()["id"] == first["id"]

    box = {"label": "unripe", "box": [0.2, 0.2, 0.6, 0.7]}
    saved = ben.put(f"/datasets/leases/frames/{first['id']}/labels",
                    json={"labels": [box], "status": "labelled", "version": 1})
    assert saved.status_code == 200, saved.text
    assert (saved.json()["version"], saved.json()["labelled_by"], saved.json()["lease"]) == (2, "ben", None)
    stale = ann.put(f"/datasets/leases/frames/{first['id']}/labels",
                    json={"labels": [], "status": "skipped", "version": 1})
    assert stale.status_code == 409 and "version 2" in stale.json()["detail"]
    assert api.get(f"/datasets/leases/frames/{first['id']}")["labels"] == [box]
    stats = api.get("/datasets/leases")
    assert stats["by_status"] == {"new": 2, "labelled": 1, "skipped": 0, "in_training": 0}
    assert "leases" in [d["name"] for d in api.get("/datasets")]
    assert users["vic"].post("/datasets/leases/next", json={}).status_code == 403  # viewers do not label
    # ben's move released second; ann takes it (releasing frames[2]), ben takes frames[2]: none left for ann
    assert ann.post("/datasets/leases/next", json={"after": frames[2]["id"]}).json()["id"] == second["id"]
    assert ben.post("/datasets/leases/next", json={}).json()["id"] == frames[2]["id"]
    assert ann.post("/datasets/leases/next", json={"after": second["id"]}).status_code == 204


def test_a_lease_is_renewed_by_its_holder_only(api, users):
    ann, ben = users["ann"], users["ben"]
    make_dataset(ann, "renew", 2)
    frame = ann.post("/datasets/renew/next", json={}).json()
    url = f"/datasets/renew/frames/{frame['id']}/lease"
    renewed = ann.post(url)
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["lease"]["user"] == "ann"
    assert renewed.json()["lease"]["until_ms"] >= frame["lease"]["until_ms"]
    taken = ben.post(url)
    assert taken.status_code == 409 and "leased to ann" in taken.json()["detail"]
    assert users["vic"].post(url).status_code == 403
    assert ann.post("/datasets/renew/frames/nope/lease").status_code == 404
    # a lapsed lease (until 1 ms after the epoch) is free: ben may take the frame over, then ann has lost it
    api.server.config.app.state.store.lease_next("renew", "ann", None, 0, 1)
    assert ben.post(url).json()["lease"]["user"] == "ben"
    assert ann.post(url).status_code == 409
    saved = ben.put(f"/datasets/renew/frames/{frame['id']}/labels", json={"labels": [], "status": "skipped",
                                                                         "version": frame["version"]})
    assert saved.status_code == 200, saved.text
    gone = ben.post(url)
    assert gone.status_code == 409 and "is skipped now (by ben)" in gone.json()["detail"]


@pytest.mark.parametrize("labels, words", [
    ([{"label": "rotten", "box": [0.1, 0.1, 0.2, 0.2]}], "'rotten' is not a label"),
    ([{"label": "ripe", "box": [0.5, 0.1, 0.4, 0.2]}], "x1 < x2"),
    ([{"label": "ripe", "box": [0.1, 0.1, 1.4, 0.2]}], "0..1"),
    ([{"label": "ripe", "box": [0.1, 0.1]}], "four numbers"),
])
def test_bad_labels_are_422_naming_the_box(api, users, labels, words):
    ann = users["ann"]
    if ann.get("/datasets/checks").status_code == 404:
        make_dataset(ann, "checks", 1)
    frame = ann.get("/datasets/checks/frames").json()["frames"][0]
    response = ann.put(f"/datasets/checks/frames/{frame['id']}/labels",
                       json={"labels": labels, "status": "labelled", "version": frame["version"]})
    assert response.status_code == 422 and words in response.json()["detail"]
    assert "labels[0]" in response.json()["detail"] or "four numbers" in response.json()["detail"]


def test_splits_are_fixed_when_a_frame_is_made(api, users):
    ann = users["ann"]
    frames = make_dataset(ann, "splits", 20)
    assert [f["split"] for f in frames] == [split_of(f["id"]) for f in frames]
    given = push(ann, "splits", 99, split="test", id="bench-frame-1")
    assert given["split"] == "test" and push(ann, "splits", 99, split="train", id="bench-frame-1")["split"] == "test"
    target = frames[0]
    ann.put(f"/datasets/splits/frames/{target['id']}/labels", json={"labels": [], "status": "skipped", "version": 1})
    reopened = ann.patch(f"/datasets/splits/frames/{target['id']}", json={"status": "new"})
    assert reopened.status_code == 200 and reopened.json()["status"] == "new"
    assert reopened.json()["split"] == target["split"]
    by_split = api.get("/datasets/splits")["by_split"]
    assert sum(by_split.values()) == 21 and by_split["train"] >= 10


def _extract(data: bytes, out: Path) -> Path:
    zipfile.ZipFile(io.BytesIO(data)).extractall(out)
    return out


def test_export_is_read_by_the_model_toolkit_loaders(api, users, tmp_path):
    ann = users["ann"]
    frames = make_dataset(ann, "export", 6)
    boxes = {}
    for i, frame in enumerate(frames[:5]):  # five labelled, one left new (not exported)
        labels = [{"label": LABELS[i % 2], "box": [0.1, 0.2, 0.5, 0.6]}] + (
            [{"label": "ripe", "box": [0.6, 0.1, 0.9, 0.4]}] if i == 0 else [])
        boxes[frame["id"]] = labels
        assert ann.put(f"/datasets/export/frames/{frame['id']}/labels",
                       json={"labels": labels, "status": "labelled", "version": 1}).status_code == 200
    yolo = ann.get("/datasets/export/export", params={"format": "yolo"})
    assert yolo.status_code == 200 and yolo.headers["content-type"] == "application/zip"
    ds = load_dataset(_extract(yolo.content, tmp_path / "yolo"), "yolo")
    assert ds.classes == LABELS and len(ds.samples) == 5
    by_name = {s.image.stem: s for s in ds.samples}
    first = by_name[frames[0]["id"]]
    assert first.labels == ["ripe", "ripe"] and first.split == frames[0]["split"]
    np.testing.assert_allclose(first.boxes[0], [0.1 * 64, 0.2 * 48, 0.5 * 64, 0.6 * 48], atol=0.01)
    source = DataSource.parse(str(tmp_path / "yolo"), "yolo")  # what `fieldline model train --data` builds
    splits = {f["split"] for f in frames[:5]}
    assert sum(1 for split in splits for _ in source.frames(split, count=10, seed=0)) == 5

    coco = ann.get("/datasets/export/export", params={"format": "coco"})
    cds = load_dataset(_extract(coco.content, tmp_path / "coco"), "coco")
    assert sorted(cds.classes) == sorted(LABELS) and len(cds.samples) == 5
    cfirst = next(s for s in cds.samples if s.image.stem == frames[0]["id"])
    np.testing.assert_allclose(cfirst.boxes[1], [0.6 * 64, 0.1 * 48, 0.9 * 64, 0.4 * 48], atol=0.01)


def test_a_yolo_zip_imports_labelled_frames_once(api, users, tmp_path):
    ann = users["ann"]
    make_dataset(ann, "imported", 0)
    src = tmp_path / "src"
    src.mkdir()
    samples = []
    for i in range(4):
        path = src / f"img{i}.jpg"
        path.write_bytes(jpeg(100 + i, (80, 60)))
        samples.append(Sample(path, 80, 60, np.array([[8, 6, 40, 30]], np.float32), ["green"], "train" if i else "val"))
    write_yolo(Dataset(["green"], samples, src), tmp_path / "yolo")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in (tmp_path / "yolo").rglob("*"):
            if path.is_file():
                zf.write(path, path.relative_to(tmp_path / "yolo").as_posix())
    response = ann.post("/datasets/imported/import", params={"format": "yolo"}, content=buf.getvalue(),
                        headers={"Content-Type": "application/zip"})
    assert response.status_code == 200, response.text
    assert response.json() == {"imported": 4, "skipped": 0, "errors": []}
    again = ann.post("/datasets/imported/import", params={"format": "yolo"}, content=buf.getvalue(),
                     headers={"Content-Type": "application/zip"}).json()
    assert (again["imported"], again["skipped"]) == (0, 4)
    dataset = api.get("/datasets/imported")
    assert dataset["labels"] == LABELS + ["green"] and dataset["by_status"]["labelled"] == 4
    frames = api.get("/datasets/imported/frames", status="labelled")["frames"]
    assert sorted(f["split"] for f in frames) == ["train", "train", "train", "val"]
    np.testing.assert_allclose(frames[0]["labels"][0]["box"], [0.1, 0.1, 0.5, 0.5], atol=1e-4)
    bad = ann.post("/datasets/imported/import", params={"format": "yolo"}, content=b"not a zip",
                   headers={"Content-Type": "application/zip"})
    assert bad.status_code == 422 and "not a zip" in bad.json()["detail"]


def test_frame_image_and_missing_things(api, users):
    ann = users["ann"]
    frame = make_dataset(ann, "images", 1)[0]
    image = ann.get(f"/datasets/images/frames/{frame['id']}/image")
    assert image.status_code == 200 and image.content == jpeg(0)
    assert ann.get("/datasets/images/frames/nope").status_code == 404
    assert ann.get("/datasets/none/frames").status_code == 404
    assert ann.post("/datasets", json={"name": "images", "labels": ["x"]}).status_code == 409
    assert ann.post("/datasets", json={"name": "requests", "labels": ["x"]}).status_code == 422
    assert users["vic"].post("/datasets", json={"name": "v", "labels": ["x"]}).status_code == 403


def test_an_event_marked_wrong_becomes_a_frame_from_its_snapshot(api, users):
    store = api.server.config.app.state.store
    with_snapshot = Event.model_validate(event_payload(seq=1, snapshot="edge-1-0-1"))
    without = Event.model_validate(event_payload(seq=2, device="edge-9"))
    store.write_events([with_snapshot, without], T0)
    store.write_snapshot(SITE, "edge-1", "edge-1-0-1", jpeg(7), T0)
    ann = users["ann"]
    copied = ann.post("/datasets/requests/from-event", json={"event_id": "edge-1-0-1", "note": "not ripe"})
    assert copied.status_code == 202, copied.text
    body = copied.json()
    assert body["request_id"] is None and body["dataset"] == "tomato-ripeness"
    frame = ann.get(f"/datasets/tomato-ripeness/frames/{body['frame']}").json()
    assert (frame["reason"], frame["status"], frame["source"]["kind"]) == ("on_demand", "new", "event")
    assert frame["predictions"] == [{"label": "ripe", "score": 0.9, "box": [0.1, 0.1, 0.2, 0.2]}]
    assert frame["note"].startswith("not ripe") and (frame["width"], frame["height"]) == (64, 48)
    assert ann.get(f"/datasets/tomato-ripeness/frames/{body['frame']}/image").content == jpeg(7)
    # no snapshot: the device is asked (a sample command is stored for the dispatcher)
    asked = ann.post("/datasets/requests/from-event", json={"event_id": "edge-9-0-2"})
    assert asked.status_code == 202 and asked.json()["frame"] is None
    command = ann.get(f"/commands/{asked.json()['request_id']}").json()
    assert (command["name"], command["device"], command["args"]["camera"]) == ("sample", "edge-9", "cam-1")
    assert command["args"]["request_id"] == asked.json()["request_id"]
    assert ann.get(f"/datasets/requests/{asked.json()['request_id']}").json()["frames"] == []
    assert ann.post("/datasets/requests/from-event", json={"event_id": "nope"}).status_code == 404
    assert users["vic"].post("/datasets/requests/from-event", json={"event_id": "edge-1-0-1"}).status_code == 403


def _sample_message(**changes) -> tuple[str, bytes]:
    sample = build_sample(jpeg=jpeg(3), id="edge-1-abcdef0123456789-1-s1", device="edge-1", site=SITE, camera="c",
                          zone=Zone(kind="shed", id="shed-1"), ts_ms=T0, reason="random", width=64, height=48,
                          model=ModelRef(name="tomato-ripeness", version="1", sha256="ab" * 32))
    data = json.loads(sample.to_json())
    data.update(changes)
    return sample_topic(SITE, "edge-1", sample.id), json.dumps(data).encode()


@pytest.mark.parametrize("changes, topic_device, reason", [
    ({}, "edge-1", None),
    ({"image_sha256": "0" * 64}, "edge-1", "image_sha256: does not match"),
    ({"id": "other"}, "edge-1", "id: payload says 'other'"),
    ({}, "edge-2", "device: payload says 'edge-1'"),
])
def test_sample_messages_are_checked_on_ingest(changes, topic_device, reason):
    topic, payload = _sample_message(**changes)
    item = MessageClassifier(snapshot_max_bytes=10**6).classify(topic.replace("/edge-1/", f"/{topic_device}/"),
                                                                payload)
    if reason is None:
        assert isinstance(item, SampleItem) and item.jpeg == jpeg(3)
    else:
        assert isinstance(item, DeadLetterItem) and reason in item.reason


def test_a_zip_that_unpacks_too_far_is_refused(api, users, monkeypatch):
    from cloud_api.services import datasets as service

    monkeypatch.setattr(service, "MAX_EXTRACTED_BYTES", 1000)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("classes.txt", "red\n" + " " * 5000)
    users["ann"].post("/datasets", json={"name": "bombs", "labels": ["red"]})
    response = users["ann"].post("/datasets/bombs/import", params={"format": "yolo"}, content=buf.getvalue(),
                                 headers={"Content-Type": "application/zip"})
    assert response.status_code == 422 and "unpacks to more than 1000 bytes" in response.json()["detail"]


def test_two_workers_share_frames_and_images_and_never_lease_the_same_frame(open_store, tmp_path):
    """Two stores on one database (two API workers): a frame one adds, the other reads with its image; the same
    JPEG is stored once; leases and versions hold across them; label counts read the JSON labels."""
    one, two = open_store(), open_store()
    assert one.datasets_ready() and two.datasets_ready()
    assert one.create_dataset("shared", LABELS, "", "ann", T0) is not None
    assert two.create_dataset("shared", LABELS, "", "ben", T0) is None  # the name is taken, whoever asks
    for i in range(3):  # frames 0 and 2 have the same JPEG
        record, created = one.add_frame(NewFrame(id=f"f{i}", dataset="shared", source_kind="push", ts_ms=T0 + i,
                                                 reason="random", width=64, height=48, predictions=[]),
                                        jpeg(i % 2), T0)
        assert created and record.image_sha256 == hashlib.sha256(jpeg(i % 2)).hexdigest()
    assert one.add_frame(NewFrame(id="f0", dataset="shared", source_kind="push", ts_ms=T0, reason="random",
                                  width=64, height=48, predictions=[]), jpeg(0), T0)[1] is False
    frames, total = two.list_frames("shared")
    assert total == 3 and [two.frame_jpeg(f) for f in frames] == [jpeg(0), jpeg(1), jpeg(0)]
    if isinstance(one, SqliteStore) and not isinstance(one, PostgresStore):
        assert sorted(p.name for p in one.datasets_dir.rglob("*.jpg")) == sorted(
            f"{hashlib.sha256(jpeg(k)).hexdigest()}.jpg" for k in (0, 1))
    else:
        assert one._conn().execute("SELECT count(*) FROM dataset_images").fetchone()[0] == 2  # noqa: SLF001
        assert not (tmp_path / "datasets").exists()

    first = one.lease_next("shared", "ann", None, T0, 60_000)
    second = two.lease_next("shared", "ben", None, T0, 60_000)
    assert (first.id, second.id) == ("f0", "f1")
    with pytest.raises(LeaseLost, match="leased to ann"):
        two.renew_lease("shared", "f0", "ben", T0 + 1, 60_000)
    box = {"label": "ripe", "box": [0.1, 0.1, 0.5, 0.5]}
    saved = two.save_labels("shared", "f1", [box, box], "labelled", 1, "ben", T0 + 2)
    assert saved.version == 2 and one.get_frame("shared", "f1").labels == [box, box]
    with pytest.raises(VersionConflict, match="version 2"):
        one.save_labels("shared", "f1", [], "skipped", 1, "ann", T0 + 3)
    assert one.label_counts("shared") == {"ripe": 2}
    assert one.dataset_counts("shared") == ({"new": 2, "labelled": 1, "skipped": 0, "in_training": 0},
                                           {"train": sum(f.split == "train" for f in frames),
                                            "val": sum(f.split == "val" for f in frames),
                                            "test": sum(f.split == "test" for f in frames)})
