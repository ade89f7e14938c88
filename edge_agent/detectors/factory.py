"""The one place that turns a ``model:`` config into a :class:`Detector` (agent, CLI, doctor, OTA)."""

from __future__ import annotations

from pathlib import Path

from edge_agent.detectors.base import Detector


def build_detector(model_config, path: str | Path | None = None) -> Detector:
    """Load the detector described by ``model_config`` (any ``ModelConfig`` variant).

    ``path`` overrides ``model_config.path`` (an OTA candidate file with the running settings). With
    ``precision: auto`` the faster of the file and its FP32/INT8 twin is kept (``detector.precision_choice``).
    Raises :class:`~edge_agent.detectors.onnx_detector.ModelLoadError` naming the file on failure.
    """
    if path is not None:
        model_config = model_config.model_copy(update={"path": Path(path)})
    if model_config.precision == "auto":
        from edge_agent.detectors.precision import choose_faster

        detector, choice = choose_faster(Path(model_config.path), lambda p: _load(model_config, p))
        detector.precision_choice = choice
        return detector
    return _load(model_config, Path(model_config.path))


def _load(model_config, path: Path) -> Detector:
    model_config = model_config.model_copy(update={"path": path})
    if model_config.type == "fieldline":
        from edge_agent.detectors.onnx_detector import OnnxDetector

        return OnnxDetector(model_config.path, model_config.conf_threshold, model_config.iou_threshold,
                            model_config.threads, max_det=model_config.max_detections,
                            input_size=model_config.input_size, letterbox=model_config.letterbox,
                            agnostic_nms=model_config.nms == "agnostic")
    if model_config.type == "anomaly":
        from edge_agent.detectors.anomaly import AnomalyDetector

        return AnomalyDetector(model_config.path, model_config.threshold, model_config.threads,
                               min_area=model_config.min_area)
    from edge_agent.detectors.onnx_generic import OnnxGenericDetector

    return OnnxGenericDetector(model_config)
