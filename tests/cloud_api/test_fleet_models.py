"""Model registry over real HTTP and SQLite: uploads (raw and multipart), refusals, listing, downloads, audit."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from cloud_api.fleet import download_tokens
from cloud_api.services.users import create_user
from tests.cloud_api.cloudapi_builders import PASSWORD, ApiServer, login, settings_for

ZOO = Path(__file__).resolve().parents[2] / "models" / "zoo"
INT8, FP32 = ZOO / "tomato-ripeness.int8.onnx", ZOO / "tomato-ripeness.onnx"


def foreign_onnx(names: dict[int, str] | None = None) -> bytes:
    """A tiny YOLOv8-shaped export with no fieldline.* metadata (optionally Ultralytics' own ``names``)."""
    graph = helper.make_graph(
        [helper.make_node("Identity", ["images"], ["output0"])], "foreign",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 320, 320])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 3, 320, 320])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    if names is not None:
        model.metadata_props.add(key="names", value=repr(names))
        model.metadata_props.add(key="imgsz", value="[320, 320]")
    return model.SerializeToString()


@pytest.fixture()
def api(tmp_path):
    with ApiServer(settings_for(tmp_path)) as server:
        store = server.server.config.app.state.store
        create_user(store, "olga", PASSWORD, "operator")
        create_user(store, "vic", PASSWORD, "viewer")
        yield server


def test_a_fieldline_export_is_read_stored_by_sha256_and_listed_with_its_card(api, tmp_path):
    data = INT8.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    olga = login(api, "olga")
    response = olga.post("/models", files={"file": (INT8.name, data)},
                         data={"card": (ZOO / "tomato-ripeness.card.md").read_text(),
                               "metrics": (ZOO / "tomato-ripeness.metrics.json").read_text()})
    assert response.status_code == 201, response.text
    body = response.json()
    model = body["model"]
    assert body["created"] is True
    assert (model["sha256"], model["name"], model["version"], model["decoder"]) == (
        sha, "tomato-ripeness", "2.2.2", "fieldline")
    assert model["labels"] == ["green", "half_ripe", "ripe"] and model["input_size"] == 576
    assert model["train_data_hash"] == "453f6214e2cbf6fa" and model["fieldline_native"] is True
    assert model["figures"]["variant"] == "int8" and model["figures"]["map50"] == pytest.approx(0.9551)
    in_file = {p.key: p.value for p in onnx.load(str(INT8)).metadata_props}["fieldline.count_conf"]
    assert model["figures"]["count_conf"] == pytest.approx(float(in_file))
    assert model["card"].startswith("# Model card: tomato-ripeness 2.2.2")
    assert (tmp_path / "data" / "models" / f"{sha}.onnx").read_bytes() == data

    again = olga.post("/models", content=data, headers={"Content-Type": "application/octet-stream"})
    assert again.status_code == 200 and again.json()["created"] is False
    fp32 = olga.post("/models", content=FP32.read_bytes(), headers={"Content-Type": "application/octet-stream"})
    assert fp32.status_code == 201, fp32.text

    listing = login(api, "vic").get("/models").json()  # viewers read
    assert [g["name"] for g in listing] == ["tomato-ripeness"]
    (version,) = listing[0]["versions"]
    assert version["version"] == "2.2.2"
    assert {f["sha256"] for f in version["files"]} == {sha, hashlib.sha256(FP32.read_bytes()).hexdigest()}
    assert {f["has_card"] for f in version["files"]} == {True, False}

    audit = api.get("/audit", target_kind="model")
    assert [(a["action"], a["actor"], a["result"]) for a in audit] == [
        ("model.upload", "olga", "ok"), ("model.upload", "olga", "ok")]


@pytest.mark.parametrize(("payload", "problem"), [
    (b"\x08\x01garbage" * 100, "not an ONNX file"),
    (b"just some text, not a model", "not an ONNX file"),
    (b"", "the upload is empty"),
])
def test_a_corrupt_or_non_onnx_file_is_refused_with_the_reason(api, payload, problem):
    response = login(api, "olga").post("/models", files={"file": ("bad.onnx", payload)})
    assert response.status_code == 422
    assert problem in response.json()["detail"]
    assert api.get("/models") == []
    (entry,) = api.get("/audit")
    assert (entry["action"], entry["result"]) == ("model.upload", "refused") and problem in entry["detail"]["error"]


def test_a_foreign_export_needs_its_decoder_and_takes_labels_from_the_file(api):
    olga = login(api, "olga")
    data = foreign_onnx({0: "person", 1: "tomato"})
    missing = olga.post("/models", files={"file": ("yolo.onnx", data)}, data={"name": "yolo", "version": "8.1"})
    assert missing.status_code == 422 and "say which decoder" in missing.json()["detail"]
    response = olga.post("/models", files={"file": ("yolo.onnx", data)},
                         data={"decoder": "yolov8", "name": "yolo", "version": "8.1"})
    assert response.status_code == 201, response.text
    model = response.json()["model"]
    assert (model["decoder"], model["labels"], model["input_size"], model["fieldline_native"]) == (
        "yolov8", ["person", "tomato"], 320, False)
    no_names = olga.post("/models?decoder=yolox&name=x&version=1", content=foreign_onnx(),
                         headers={"Content-Type": "application/octet-stream"})
    assert no_names.status_code == 422 and "labels" in no_names.json()["detail"]
    with_labels = olga.post("/models?decoder=yolox&name=x&version=1&labels=a,b", content=foreign_onnx(),
                            headers={"Content-Type": "application/octet-stream"})
    assert with_labels.status_code == 201 and with_labels.json()["model"]["labels"] == ["a", "b"]
    wrong = olga.post("/models?decoder=yolov8", content=INT8.read_bytes(),
                      headers={"Content-Type": "application/octet-stream"})
    assert wrong.status_code == 422 and "decoder" in wrong.json()["detail"]


def test_viewers_cannot_upload_and_other_media_types_are_refused(api):
    viewer = login(api, "vic").post("/models", content=INT8.read_bytes(),
                                    headers={"Content-Type": "application/octet-stream"})
    assert viewer.status_code == 403
    text = login(api, "olga").post("/models", content=b"{}", headers={"Content-Type": "application/json"})
    assert text.status_code == 415 and "application/octet-stream" in text.json()["detail"]


def test_model_files_download_only_with_a_token_for_that_device_and_file(api):
    olga = login(api, "olga")
    data = INT8.read_bytes()
    sha = olga.post("/models", content=data, headers={"Content-Type": "application/octet-stream"}).json()["model"][
        "sha256"]
    url = f"/models/{sha}/file"
    assert api.anon.get(url).status_code == 401  # no open URL
    assert api.anon.get(url, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert olga.get(url).content == data  # a signed-in user may fetch it

    store = api.server.config.app.state.store
    key = store.fleet_key(download_tokens.KEY_NAME)
    far = 10**13
    good = download_tokens.issue(key, "farm", "dev-1", sha, far)
    response = api.anon.get(url, headers={"Authorization": f"Bearer {good}"})
    assert response.status_code == 200 and hashlib.sha256(response.content).hexdigest() == sha

    cases = {
        "expired": download_tokens.issue(key, "farm", "dev-1", sha, 1),
        "for another file": download_tokens.issue(key, "farm", "dev-1", "0" * 64, far),
        "bad signature": download_tokens.issue(b"k" * 32, "farm", "dev-1", sha, far),
        "malformed": good.replace("dev-1", "DEV 1"),
    }
    for reason, token in cases.items():
        refused = api.anon.get(url, headers={"Authorization": f"Bearer {token}"})
        assert refused.status_code == 401 and reason in refused.json()["detail"], (reason, refused.text)
    tampered = good.replace(".farm.", ".other.")  # another device's name with this device's signature
    assert "bad signature" in api.anon.get(url, headers={"Authorization": f"Bearer {tampered}"}).json()["detail"]

    downloads = [a for a in api.get("/audit", target=sha) if a["action"] == "model.download"]
    assert [(a["actor"], a["role"]) for a in downloads] == [("farm/dev-1", "device")]
    assert api.anon.get(f"/models/{'1' * 64}/file", headers={"Authorization": f"Bearer {olga.headers['Authorization'][7:]}"}).status_code == 404


def test_the_openapi_description_documents_the_download_scheme(api):
    spec = json.loads(api.client.get(f"{api.root}/openapi.json").text)
    download = spec["paths"]["/api/v1/models/{sha256}/file"]["get"]
    assert "signed for that one device and that one file (sha256)" in download["description"]
    upload = spec["paths"]["/api/v1/models"]["post"]["requestBody"]["content"]
    assert set(upload) == {"application/octet-stream", "multipart/form-data"}


def test_an_onnx_file_the_checker_refuses_is_named(api):
    graph = helper.make_graph([helper.make_node("NoSuchOp", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    onnx.load_model_from_string(data)  # it parses: only the checker can tell
    response = login(api, "olga").post("/models?decoder=yolov8&name=n&version=1&labels=a", content=data,
                                       headers={"Content-Type": "application/octet-stream"})
    assert response.status_code == 422 and "ONNX checker refused" in response.json()["detail"]
    assert "NoSuchOp" in response.json()["detail"]
