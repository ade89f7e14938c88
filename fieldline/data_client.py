"""A small HTTP client of the cloud API's datasets (``/api/v1/datasets``), for ``fieldline data`` and training jobs.

    client = DataClient("http://cloud:8000", token)
    client.pull("tomato-ripeness", Path("/tmp/ds"), fmt="yolo")   # then: fieldline model train --data /tmp/ds
    client.push_dir("greenhouse-b", Path("cvat-export"), fmt="coco")

Errors are :class:`DataClientError` with the HTTP status and the API's ``detail``.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

TOKEN_ENV = ("FIELDLINE_TOKEN", "FIELDLINE_API_TOKEN")


class DataClientError(RuntimeError):
    """A call that failed: ``status`` is the HTTP status (0 when the API was not reached)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


def token_from_env() -> str | None:
    return next((os.environ[name] for name in TOKEN_ENV if os.environ.get(name)), None)


class DataClient:
    def __init__(self, api: str, token: str | None = None, timeout: float = 120.0) -> None:
        self.base = api.rstrip("/") + "/api/v1"
        token = token or token_from_env()
        self._http = httpx.Client(headers={"Authorization": f"Bearer {token}"} if token else {}, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> DataClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, ok: tuple[int, ...] = (200, 201, 202), **kwargs: Any) -> httpx.Response:
        url = self.base + path
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise DataClientError(f"could not reach {url}: {exc}") from None
        if response.status_code not in ok:
            try:
                detail = response.json().get("detail")
            except ValueError:
                detail = response.text[:500]
            raise DataClientError(f"{method} {url}: HTTP {response.status_code}: {detail}", response.status_code)
        return response

    # ------------------------------------------------------------ datasets

    def datasets(self) -> list[dict[str, Any]]:
        return self._call("GET", "/datasets").json()

    def dataset(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"/datasets/{name}").json()

    def create_dataset(self, name: str, labels: list[str], description: str = "") -> dict[str, Any]:
        return self._call("POST", "/datasets", json={"name": name, "labels": labels,
                                                     "description": description}).json()

    def ensure_dataset(self, name: str, labels: list[str], description: str = "") -> dict[str, Any]:
        """The dataset, made with ``labels`` when missing; labels it lacks are added."""
        try:
            found = self.dataset(name)
        except DataClientError as exc:
            if exc.status != 404:
                raise
            return self.create_dataset(name, labels, description)
        missing = [label for label in labels if label not in found["labels"]]
        if missing:
            found = self._call("PATCH", f"/datasets/{name}", json={"add_labels": missing}).json()
        return found

    # ------------------------------------------------------------ frames

    def frames(self, name: str, *, status: str | None = None, split: str | None = None, reason: str | None = None,
               limit: int = 1000, offset: int = 0) -> dict[str, Any]:
        params = {k: v for k, v in {"status": status, "split": split, "reason": reason}.items() if v}
        return self._call("GET", f"/datasets/{name}/frames", params={**params, "limit": limit,
                                                                        "offset": offset}).json()

    def all_frames(self, name: str, **filters: Any) -> Iterator[dict[str, Any]]:
        offset = 0
        while True:
            page = self.frames(name, offset=offset, **filters)
            yield from page["frames"]
            offset += len(page["frames"])
            if not page["frames"] or offset >= page["total"]:
                return

    def frame(self, name: str, frame_id: str) -> dict[str, Any]:
        return self._call("GET", f"/datasets/{name}/frames/{frame_id}").json()

    def image(self, name: str, frame_id: str) -> bytes:
        return self._call("GET", f"/datasets/{name}/frames/{frame_id}/image").content

    def push_frame(self, name: str, jpeg: bytes, meta: dict[str, Any]) -> dict[str, Any]:
        """One frame (multipart ``image`` + ``meta``); meta as in the API (source, reason, predictions, labels ...)."""
        files = {"image": ("frame.jpg", jpeg, "image/jpeg"),
                 "meta": ("meta.json", json.dumps(meta), "application/json")}
        return self._call("POST", f"/datasets/{name}/frames", files=files).json()

    def next(self, name: str, after: str | None = None) -> dict[str, Any] | None:
        """Lease the next new frame (None when there is none)."""
        response = self._call("POST", f"/datasets/{name}/next", ok=(200, 204), json={"after": after})
        return None if response.status_code == 204 else response.json()

    def save_labels(self, name: str, frame_id: str, labels: list[dict[str, Any]], version: int,
                    status: str = "labelled") -> dict[str, Any]:
        return self._call("PUT", f"/datasets/{name}/frames/{frame_id}/labels",
                          json={"labels": labels, "status": status, "version": version}).json()

    def set_status(self, name: str, frame_id: str, status: str) -> dict[str, Any]:
        return self._call("PATCH", f"/datasets/{name}/frames/{frame_id}", json={"status": status}).json()

    # ------------------------------------------------------------ export / import

    def export(self, name: str, fmt: str = "yolo", status: str = "labelled") -> bytes:
        return self._call("GET", f"/datasets/{name}/export", params={"format": fmt, "status": status}).content

    def pull(self, name: str, out: Path, fmt: str = "yolo", status: str = "labelled") -> Path:
        """Export into the folder ``out`` (made if needed), ready for ``fieldline model train --data out``."""
        data = self.export(name, fmt, status)
        out.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            archive.extractall(out)
        return out

    def import_zip(self, name: str, data: bytes, fmt: str = "yolo") -> dict[str, Any]:
        return self._call("POST", f"/datasets/{name}/import", params={"format": fmt}, content=data,
                          headers={"Content-Type": "application/zip"}).json()

    def push_dir(self, name: str, src: Path, fmt: str = "yolo") -> dict[str, Any]:
        """Zip a local YOLO or COCO folder and import it (the API reads it with ``models.data.importers``)."""
        return self.import_zip(name, zip_folder(src), fmt)

    # ------------------------------------------------------------ on-demand samples

    def request_sample(self, site: str, device: str, camera: str | None = None,
                       note: str | None = None) -> dict[str, Any]:
        return self._call("POST", "/datasets/requests", json={"site": site, "device": device, "camera": camera,
                                                              "note": note}).json()


def zip_folder(src: Path) -> bytes:
    """Every file under ``src`` in a zip, paths relative to ``src``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as archive:
        for path in sorted(src.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(src).as_posix())
    return buf.getvalue()
