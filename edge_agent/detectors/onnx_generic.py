"""ONNX Runtime detector for models from other families (YOLOv5/v8/11/26, YOLOX, NanoDet/PicoDet).

The model file carries no FieldLine metadata, so labels, input size and normalisation come from the
config. One pipeline for every family: resize (letterbox) -> tensor -> session -> family decoder
(:mod:`edge_agent.detectors.decoders`) -> top-k -> class-wise NMS -> cap -> back to frame pixels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import yaml

from edge_agent.detections import Detections
from edge_agent.detectors import decoders
from edge_agent.detectors.base import Detector
from edge_agent.detectors.decoders import Candidates
from edge_agent.detectors.nms import batched_nms
from edge_agent.detectors.session import ModelLoadError, file_sha256, open_session
from edge_agent.detectors.preprocess import fit_to_input, fitted_size, to_tensor

Decode = Callable[[list[np.ndarray]], Candidates]


def load_labels(spec: Sequence[str] | str | Path) -> tuple[str, ...]:
    """Labels from a list, or from a file: ``.txt`` one per line; ``.yaml``/``.yml`` a list, an ``{id: name}``
    mapping, or either under a ``names`` key (the usual dataset YAML)."""
    if not isinstance(spec, (str, Path)):
        labels = tuple(str(x) for x in spec)
    else:
        path = Path(spec)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ModelLoadError(f"labels file {path}: cannot read it ({exc.strerror or exc})") from None
        if path.suffix.lower() in (".yaml", ".yml"):
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise ModelLoadError(f"labels file {path}: not valid YAML ({exc})") from None
            if isinstance(data, dict) and "names" in data:
                data = data["names"]
            if isinstance(data, dict):
                try:
                    ids = sorted(int(k) for k in data)
                except (TypeError, ValueError):
                    raise ModelLoadError(f"labels file {path}: mapping keys must be class ids 0..C-1") from None
                if ids != list(range(len(ids))):
                    raise ModelLoadError(f"labels file {path}: class ids must be 0..{len(ids) - 1} without gaps")
                data = [data.get(i, data.get(str(i))) for i in ids]
            if not isinstance(data, list):
                raise ModelLoadError(f"labels file {path}: expected a list of names or an {{id: name}} mapping")
            labels = tuple(str(x) for x in data)
        else:
            labels = tuple(line.strip() for line in text.splitlines() if line.strip())
    if not labels:
        raise ModelLoadError(f"labels {spec!s}: no class names")
    return labels


class OnnxGenericDetector(Detector):
    """Runs a non-native ONNX detector described by a config of ``type`` yolov5/yolov8/yolo_e2e/yolox/nanodet."""

    def __init__(self, config) -> None:  # a ForeignModelConfig subclass from edge_agent.config
        self.config = config
        self.path = Path(config.path)
        if not self.path.is_file():
            raise ModelLoadError(f"{self.path}: model file not found")
        self._labels = load_labels(config.labels)
        self._session = open_session(self.path, config.threads)
        inp = self._session.get_inputs()[0]
        self._input_name = inp.name
        self._input_dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
        self._input_hw = self._resolve_input_size(inp.shape)
        self._output_names = [o.name for o in self._session.get_outputs()]
        self._decode = self._make_decoder()
        self._check_output_shapes()
        self._sha256 = file_sha256(self.path)
        meta = self._session.get_modelmeta()
        self._name = self.path.stem
        self._version = str(meta.version) if meta.version else "0"

    # ------------------------------------------------------------------ set-up
    def _resolve_input_size(self, shape: Sequence) -> tuple[int, int]:
        fixed = (shape[2], shape[3]) if len(shape) == 4 and all(isinstance(d, int) for d in shape[2:]) else None
        size = self.config.input_size
        if size is None:
            if fixed is None:
                raise ModelLoadError(f"{self.path}: the input {self._input_name} has a dynamic size {list(shape)}; "
                                     "set model.input_size")
            return fixed
        hw = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        if fixed is not None and fixed != hw:
            raise ModelLoadError(f"{self.path}: model.input_size {list(hw)} does not match the model's fixed input "
                                 f"[{fixed[0]}, {fixed[1]}] (height, width)")
        return hw

    def _make_decoder(self) -> Decode:
        c, t, n = self.config, self.config.type, len(self._labels)
        thr = float(c.conf_threshold)
        if t == "yolov5":
            return lambda outs: decoders.decode_yolov5(outs[0], n, thr)
        if t == "yolov8":
            return lambda outs: decoders.decode_yolov8(outs[0], n, thr)
        if t == "yolo_e2e":
            return lambda outs: decoders.decode_yolo_e2e(outs[0], n, thr)
        if t == "yolox":
            grid = None if c.decoded else decoders.make_grid(self._input_hw, c.strides)
            return lambda outs: decoders.decode_yolox(outs[0], n, thr, self._input_hw, c.strides, c.decoded, grid)
        if t == "nanodet":
            grid = decoders.make_grid(self._input_hw, c.strides)
            return lambda outs: decoders.decode_nanodet(outs, n, thr, self._input_hw, c.strides, c.reg_max,
                                                        c.cell_offset, grid)
        raise ModelLoadError(f"{self.path}: no decoder for model type {t!r}")

    def _check_output_shapes(self) -> None:
        """Catch a wrong ``type``/``labels`` at load time by decoding one blank input."""
        h, w = self._input_hw
        blank = np.zeros((1, 3, h, w), self._input_dtype)
        try:
            self._decode(self._session.run(self._output_names, {self._input_name: blank}))
        except decoders.OutputLayoutError as exc:
            raise ModelLoadError(f"{self.path}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - onnxruntime rejects the input
            first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(f"{self.path}: the model does not run on a {h}x{w} input ({first})") from exc

    # ------------------------------------------------------------------ properties
    @property
    def labels(self) -> tuple[str, ...]:  # type: ignore[override]
        return self._labels

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the network input."""
        return self._input_hw

    @property
    def sha256(self) -> str:
        return self._sha256

    @property
    def name(self) -> str:
        return self._name

    @property
    def version(self) -> str:
        return self._version

    def input_fit(self, width: int, height: int) -> tuple[int, int]:
        h, w = self._input_hw
        if self.config.resize == "stretch":
            return w, h
        return fitted_size(width, height, w, h)

    # ------------------------------------------------------------------ stages (public for the bench)
    def preprocess(self, frame: np.ndarray):
        h, w = self._input_hw
        canvas, mapping = fit_to_input(frame, h, w, self.config.resize, self.config.pad_value)
        tensor = to_tensor(canvas, self.config.normalization)
        return tensor if self._input_dtype is np.float32 else tensor.astype(self._input_dtype), mapping

    def infer(self, tensor: np.ndarray) -> list[np.ndarray]:
        return self._session.run(self._output_names, {self._input_name: tensor})

    def postprocess(self, outputs: list[np.ndarray], mapping) -> Detections:
        cand = self._decode(outputs)
        c = self.config
        if len(cand) > c.max_candidates:
            top = np.argpartition(-cand.scores, c.max_candidates)[:c.max_candidates]
            cand = Candidates(cand.xyxy[top], cand.scores[top], cand.class_id[top], cand.needs_nms)
        if cand.needs_nms:
            idx = batched_nms(cand.xyxy, cand.scores, cand.class_id, c.iou_threshold, c.max_detections)
        else:
            idx = np.argsort(-cand.scores, kind="stable")[:c.max_detections]
        xyxy = mapping.to_frame(cand.xyxy[idx])
        visible = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])  # boxes wholly in the padding collapse
        idx, xyxy = idx[visible], xyxy[visible]
        if len(idx) == 0:
            return Detections.empty(self._labels)
        return Detections(xyxy, cand.scores[idx], cand.class_id[idx], None, self._labels)

    def detect(self, frame: np.ndarray) -> Detections:
        if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3 \
                or frame.dtype != np.uint8 or frame.shape[0] == 0 or frame.shape[1] == 0:
            desc = f"{type(frame).__name__} {getattr(frame, 'shape', '')} {getattr(frame, 'dtype', '')}"
            raise ValueError(f"frame must be a BGR uint8 array of shape HxWx3, got {desc.strip()}")
        tensor, mapping = self.preprocess(frame)
        return self.postprocess(self.infer(tensor), mapping)
