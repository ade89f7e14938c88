"""Detectors: one ``Detector`` interface, ONNX runtime implementations per output family."""

from edge_agent.detectors.base import Detector
from edge_agent.detectors.factory import build_detector
from edge_agent.detectors.onnx_detector import ModelLoadError, OnnxDetector

__all__ = ["Detector", "ModelLoadError", "OnnxDetector", "build_detector"]
