"""Over-the-air model updates: fetch, verify sha256, load and run on a sample frame, swap, keep the previous.

A download from the FieldLine cloud API carries the device's download token (``args.token`` of the model
command, sent as ``Authorization: Bearer``): the API serves a model file only against a token it issued
for this device and this file's sha256 (see the API's OpenAPI description, "Model downloads").

Files live in ``{data_dir}/models/``: ``current.onnx`` (what runs), ``previous.onnx`` (the one before, for
rollback). A candidate that fails any step is deleted and the running model is left untouched.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import httpx
import numpy as np

from edge_agent.detectors.base import Detector
from edge_agent.detectors.session import file_sha256

MAX_MODEL_BYTES = 200 * 1024 * 1024


class OtaError(RuntimeError):
    """An update that was refused; the message says which step failed."""


def _fetch(url: str, target: Path, timeout_s: float, token: str | None = None) -> None:
    parsed = urlparse(url)
    if parsed.scheme in ("http", "https"):
        # httpx drops the Authorization header on a redirect to another origin, so the token stays with its API
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            with httpx.stream("GET", url, timeout=timeout_s, follow_redirects=True, headers=headers) as response:
                if response.status_code != 200:
                    raise OtaError(f"download {url}: HTTP {response.status_code}{_reason(response)}")
                size = 0
                with target.open("wb") as out:
                    for chunk in response.iter_bytes(1 << 16):
                        size += len(chunk)
                        if size > MAX_MODEL_BYTES:
                            raise OtaError(f"download {url}: larger than {MAX_MODEL_BYTES} bytes")
                        out.write(chunk)
        except httpx.HTTPError as exc:
            raise OtaError(f"download {url}: {exc}") from None
    elif parsed.scheme in ("file", ""):
        source = Path(parsed.path if parsed.scheme == "file" else url)
        if not source.is_file():
            raise OtaError(f"download {url}: no such file")
        shutil.copyfile(source, target)
    else:
        raise OtaError(f"download {url}: unsupported scheme {parsed.scheme!r} (http, https, file)")


def _reason(response: httpx.Response) -> str:
    """The API's ``detail`` (e.g. "download token expired"), so the reply says why; never the token."""
    try:
        response.read()
        detail = response.json().get("detail")
    except (ValueError, AttributeError, httpx.HTTPError):
        return ""
    return f" ({detail})" if isinstance(detail, str) else ""


def sha256_of(path: Path) -> str:
    return file_sha256(path)


class ModelStore:
    """The agent's local model slots."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir / "models"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.current = self.dir / "current.onnx"
        self.previous = self.dir / "previous.onnx"

    def install(
        self,
        url: str,
        sha256: str,
        running: Path,
        load: Callable[[Path], Detector],
        sample: np.ndarray | None,
        timeout_s: float = 60.0,
        token: str | None = None,
    ) -> Detector:
        """Fetch and check a candidate; on success it becomes ``current`` and ``running`` becomes ``previous``."""
        candidate = self.dir / "candidate.onnx"
        try:
            _fetch(url, candidate, timeout_s, token)
            actual = sha256_of(candidate)
            if actual != sha256.lower():
                raise OtaError(f"sha256 mismatch: expected {sha256.lower()}, got {actual}")
            self._try(candidate, load, sample)  # refuses the update before anything is swapped
            if running.resolve() != self.previous.resolve():
                shutil.copyfile(running, self.previous.with_suffix(".tmp"))
                os.replace(self.previous.with_suffix(".tmp"), self.previous)
            os.replace(candidate, self.current)
            return load(self.current)  # reloaded from its final path, which the agent persists and reports
        finally:
            candidate.unlink(missing_ok=True)

    def rollback(self, load: Callable[[Path], Detector], sample: np.ndarray | None) -> Detector:
        """Make ``previous`` current again (after checking it still loads and runs)."""
        if not self.previous.is_file():
            raise OtaError("rollback: there is no previous model")
        self._try(self.previous, load, sample)
        swap = self.dir / "swap.onnx"
        if self.current.is_file():
            os.replace(self.current, swap)
        os.replace(self.previous, self.current)
        if swap.is_file():
            os.replace(swap, self.previous)
        return load(self.current)

    @staticmethod
    def _try(path: Path, load: Callable[[Path], Detector], sample: np.ndarray | None) -> Detector:
        try:
            detector = load(path)
        except Exception as exc:  # noqa: BLE001 - any load failure refuses the update
            raise OtaError(f"load test failed: {exc}") from None
        if sample is not None:
            try:
                detector.detect(sample)
            except Exception as exc:  # noqa: BLE001
                raise OtaError(f"test inference on a sample frame failed: {exc}") from None
        return detector
