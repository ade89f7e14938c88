"""Rules on hand-made detections: zones, unique counting over a sweep, inspection (frame and line), alerts."""

from __future__ import annotations

import numpy as np

from edge_agent.config import CameraConfig
from edge_agent.detections import Detections
from edge_agent.health import AlertGate, CameraHealth
from edge_agent.rules import AlertOut, EventOut, build_rule
from edge_agent.tracking import Tracker
from edge_agent.config import CameraAlertsConfig
from edge_agent.rules import ZoneRef

TOMATO = ("green", "half_ripe", "ripe")
FACTORY = ("part", "scratch", "pit")
SIZE = (640, 480)


def dets(boxes: list[tuple[float, float, float, float]], classes: list[int], labels: tuple[str, ...],
         scores: list[float] | None = None) -> Detections:
    scores = scores or [0.9] * len(boxes)
    return Detections(np.array(boxes, np.float32).reshape(-1, 4), np.array(scores, np.float32),
                      np.array(classes, np.int64), None, labels)


def camera(**overrides) -> CameraConfig:
    data = {"name": "cam-1", "source": {"type": "synthetic"}, "zone": {"kind": "shed", "id": "shed-01"},
            "smoothing_frames": 1, "publish_interval_s": 60, "snapshots": {"periodic_s": None}}
    data.update(overrides)
    return CameraConfig.model_validate(data)


def events(outcomes) -> list[EventOut]:
    return [o for o in outcomes if isinstance(o, EventOut)]


def test_polygon_zones_split_counts_by_row():
    cam = camera(zones=[
        {"type": "polygon", "id": "shed-01", "row": "r1", "points": [[0, 0], [0.5, 0], [0.5, 1], [0, 1]]},
        {"type": "polygon", "id": "shed-01", "row": "r2", "points": [[0.5, 0], [1, 0], [1, 1], [0.5, 1]]},
    ])
    rule = build_rule(cam, TOMATO)
    frame = dets([(10, 10, 30, 30), (50, 50, 70, 70), (400, 10, 420, 30)], [2, 2, 0], TOMATO)
    out = {e.zone.row: e.counts for e in events(rule.process(frame, None, SIZE, 0.0))}
    assert out == {"r1": {"green": 0, "half_ripe": 0, "ripe": 2}, "r2": {"green": 1, "half_ripe": 0, "ripe": 0}}


def test_unique_mode_counts_each_tracked_fruit_once_per_sweep():
    cam = camera(rule={"type": "count", "mode": "unique", "sweep_s": 100})
    rule, tracker = build_rule(cam, TOMATO), Tracker()
    published = []
    for t in range(20):  # a rail camera passes two fruits; one hides behind a leaf for frames 8-10
        boxes, classes = [(100 + 5 * t, 100, 130 + 5 * t, 130)], [2]
        if not 8 <= t <= 10:
            boxes.append((300 + 5 * t, 200, 330 + 5 * t, 230))
            classes.append(0)
        frame = dets(boxes, classes, TOMATO)
        published += events(rule.process(frame, tracker.update(frame), SIZE, float(t)))
    assert published[-1].counts == {"green": 1, "half_ripe": 0, "ripe": 1}
    after_sweep = events(rule.process(dets([], [], TOMATO), tracker.update(dets([], [], TOMATO)), SIZE, 150.0))
    assert after_sweep[-1].counts == {"green": 0, "half_ripe": 0, "ripe": 0}


def test_overripe_share_raises_an_alert():
    cam = camera(rule={"type": "count", "overripe_label": "ripe", "overripe_share": 0.5})
    out = build_rule(cam, TOMATO).process(dets([(0, 0, 9, 9)] * 3, [2, 2, 0], TOMATO), None, SIZE, 0.0)
    alerts = [o for o in out if isinstance(o, AlertOut)]
    assert [a.code for a in alerts] == ["overripe"] and "67%" in alerts[0].message


def test_inspection_frame_mode_rejects_on_confident_defects_and_snapshots_rejects():
    cam = camera(zone={"kind": "line", "id": "line-1"}, rule={"type": "inspection", "reject_score": 0.6, "part_label": "part"})
    rule = build_rule(cam, FACTORY)
    passed = events(rule.process(dets([(0, 0, 50, 50), (5, 5, 9, 9)], [0, 1], FACTORY, [0.9, 0.4]), None, SIZE, 0))
    rejected = events(rule.process(dets([(5, 5, 9, 9)], [2], FACTORY, [0.8]), None, SIZE, 1))
    assert (passed[0].verdict, passed[0].snapshot, passed[0].counts) == ("pass", False, {"scratch": 1})
    assert (rejected[0].verdict, rejected[0].snapshot, rejected[0].counts) == ("reject", True, {"pit": 1})
    assert len(passed[0].detections) == 1  # the part itself is not a defect


def test_inspection_line_mode_one_event_per_part_with_its_defects():
    cam = camera(zone={"kind": "line", "id": "line-1"}, rule={
        "type": "inspection", "mode": "line", "part_label": "part",
        "line": {"type": "line", "id": "line-1", "start": [0.5, 0], "end": [0.5, 1]}})
    rule, tracker = build_rule(cam, FACTORY), Tracker()
    verdicts = []
    for t in range(30):  # two parts ride the conveyor left to right; the second carries a scratch
        x = 40 + 20 * t
        boxes, classes, scores = [(x, 100, x + 60, 160), (x - 200, 300, x - 140, 360)], [0, 0], [0.9, 0.9]
        boxes.append((x - 180, 320, x - 170, 330))
        classes.append(1)
        scores.append(0.95)
        frame = dets(boxes, classes, FACTORY, scores)
        verdicts += [(e.verdict, e.counts) for e in events(rule.process(frame, tracker.update(frame), SIZE, t))]
    assert verdicts == [("pass", {}), ("reject", {"scratch": 1})]


def test_defect_rate_alert_after_enough_parts():
    cam = camera(zone={"kind": "line", "id": "line-1"},
                 rule={"type": "inspection", "defect_rate_window": 20, "defect_rate_alert": 0.2})
    rule = build_rule(cam, FACTORY)
    codes = []
    for t in range(20):
        frame = dets([(1, 1, 5, 5)], [1], FACTORY) if t % 3 == 0 else dets([], [], FACTORY)
        codes += [o.code for o in rule.process(frame, None, SIZE, t) if isinstance(o, AlertOut)]
    assert "defect_rate_high" in codes


def test_black_and_frozen_frames_alert_and_the_gate_dedups():
    health = CameraHealth("cam-1", ZoneRef("shed", "shed-01"), CameraAlertsConfig(frozen_after_s=5))
    black = np.zeros((48, 64, 3), np.uint8)
    codes = [a.code for t in range(3) for a in health.on_frame(black, float(t))]
    assert codes == ["camera_black"]
    still = np.full((480, 640, 3), 120, np.uint8)
    frozen = [a.code for t in range(10) for a in health.on_frame(still, 10.0 + t)]
    assert "camera_frozen" in frozen
    gate = AlertGate()
    assert gate.allow("k", 0, 600) and not gate.allow("k", 10, 600) and gate.allow("k", 700, 600)
    assert gate.suppressed == 1


def test_frames_are_health_checked_even_when_the_detector_fails():
    """A broken model and a covered lens at once: the loop reports both, and keeps running."""
    import threading

    from edge_agent.camera_loop import CameraCounters, CameraLoop
    from edge_agent.detectors.base import Detector
    from edge_agent.sources import Frame, Source

    class BrokenModel(Detector):
        labels = ("ripe",)

        def detect(self, frame: np.ndarray) -> Detections:
            raise RuntimeError("ONNX Runtime: bad allocation")

    class BlackFrames(Source):
        def __init__(self, count: int) -> None:
            self.left = count

        def read(self) -> Frame | None:
            if self.left == 0:
                self.ended = True
                return None
            self.left -= 1
            return Frame(np.zeros((48, 64, 3), np.uint8), 0, 3 - self.left)

    camera = CameraConfig.model_validate({"name": "cam-1", "source": {"type": "synthetic"}, "zone": {"id": "shed-01"}})
    codes: list[str] = []
    stop = threading.Event()
    loop = CameraLoop(camera, BlackFrames(3), BrokenModel, lambda cam, frame, det, outs: codes.extend(
        o.code for o in outs if isinstance(o, AlertOut)), CameraCounters())
    safety_net = threading.Timer(10, stop.set)  # the source ends after 3 frames; this only bounds a hang
    safety_net.start()
    loop.run(stop)
    safety_net.cancel()
    assert codes.count("model_error") == 3 and "camera_black" in codes
    assert loop.counters.model_errors == 3
