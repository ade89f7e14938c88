"""The per-camera sampling policy: score band, count flicker, tracker label switches, random share, minimum
interval, near-duplicate suppression and the bytes-per-hour budget; ranking windows by informativeness (class
scores from the real zoo model); and the config's error messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from edge_agent.config import AgentConfig, SamplingConfig, SyntheticSource
from edge_agent.detections import Detections
from edge_agent.detectors.onnx_detector import OnnxDetector
from edge_agent.sampling import SamplingPolicy, dhash, hamming, informativeness
from edge_agent.sources import Frame
from edge_agent.sources.synthetic import SyntheticCamera
from edge_agent.tracking import Tracker, TrackerConfig

LABELS = ("ripe", "unripe")
ZOO_MODEL = Path(__file__).resolve().parents[2] / "models" / "zoo" / "tomato-ripeness.onnx"


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def dets(*items: tuple[int, float, tuple[float, float, float, float]]) -> Detections:
    if not items:
        return Detections.empty(LABELS)
    return Detections(np.array([b for _, _, b in items], np.float32), np.array([s for _, s, _ in items]),
                      np.array([c for c, _, _ in items]), None, LABELS)


def frame(seed: int, ts_ms: int = 0) -> Frame:
    image = np.random.default_rng(seed).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    return Frame(image, ts_ms, seed)


def policy(clock: Clock | None = None, **overrides) -> SamplingPolicy:
    values = {"enabled": True, "random_rate": 0.0, "min_interval_s": 0.0, "label_switch": False,
              "flicker_delta": 0, **overrides}
    return SamplingPolicy(SamplingConfig(**values), rng=np.random.default_rng(0), clock=clock or Clock())


BOX = (10.0, 10.0, 20.0, 20.0)


def test_a_score_in_the_band_picks_the_frame():
    p = policy(uncertain_band=(0.4, 0.6))
    assert p.trigger(frame(1), dets((0, 0.9, BOX)), None) is None
    assert p.trigger(frame(2), dets((0, 0.39, BOX), (1, 0.61, BOX)), None) is None
    pick = p.trigger(frame(3), dets((0, 0.95, BOX), (1, 0.5, BOX)), None)
    assert pick is not None and pick.reason == "uncertain_score" and pick.frame.index == 3


def test_a_count_that_jumps_for_one_frame_sends_the_odd_frame():
    p = policy(flicker_delta=2)
    two, four = dets((0, 0.9, BOX), (0, 0.9, BOX)), dets(*[(0, 0.9, BOX)] * 4)
    assert p.trigger(frame(1), two, None) is None
    assert p.trigger(frame(2), four, None) is None
    pick = p.trigger(frame(3), two, None)  # 2 -> 4 -> 2: frame 2 is the odd one
    assert pick is not None and (pick.reason, pick.frame.index) == ("count_flicker", 2)
    # a real change (2 -> 4 -> 4) is no flicker, nor a change smaller than the delta
    q = policy(flicker_delta=2)
    assert [q.trigger(frame(i), d, None) for i, d in enumerate([two, four, four])] == [None] * 3
    three = dets(*[(0, 0.9, BOX)] * 3)
    assert [q.trigger(frame(i), d, None) for i, d in enumerate([two, three, two])] == [None] * 3


def test_a_tracked_object_whose_label_changes_is_a_label_switch():
    p = policy(label_switch=True)
    tracker = Tracker(TrackerConfig(min_hits=1))
    box = (100.0, 100.0, 140.0, 140.0)
    for i in range(3):
        d = dets((0, 0.9, box))
        assert p.trigger(frame(i), d, tracker.update(d)) is None
    switched = dets((1, 0.9, box))
    tracked = tracker.update(switched)
    assert tracked.tracker_id is not None and len(tracked) == 1
    pick = p.trigger(frame(9), switched, tracked)
    assert pick is not None and pick.reason == "label_switch"


def test_the_random_share_is_about_the_rate():
    p = policy(random_rate=0.1)
    picks = [p.trigger(frame(0), dets((0, 0.9, BOX)), None) for _ in range(2000)]
    chosen = [x for x in picks if x is not None]
    assert all(x.reason == "random" for x in chosen) and 140 <= len(chosen) <= 260


def test_near_duplicates_and_the_interval_are_suppressed():
    clock = Clock()
    p = policy(clock, min_interval_s=5.0, dedup_distance=4)
    image = frame(1).image
    digest = p.admit("uncertain_score", image)
    assert digest is not None and p.charge("uncertain_score", 1000, digest)
    clock.t += 1
    assert p.admit("random", frame(2).image) is None  # within 5 s
    clock.t += 10
    noisy = np.clip(image.astype(int) + 2, 0, 255).astype(np.uint8)  # the same scene, slightly brighter
    assert hamming(dhash(noisy), digest) <= 4
    assert p.admit("random", noisy) is None
    other = p.admit("random", frame(2).image)
    assert other is not None and hamming(other, digest) > 4
    assert p.admit("on_demand", noisy) is not None  # an operator asked: no duplicate check, no interval
    assert dict(p.suppressed) == {"interval": 1, "duplicate": 1}


def test_the_hourly_budget_refuses_past_it_and_refills():
    clock = Clock()
    p = policy(clock, budget_bytes_per_hour=10_000, dedup_distance=0)
    sent = 0
    for i in range(5):
        digest = p.admit("uncertain_score", frame(i).image)
        assert digest is not None
        sent += p.charge("uncertain_score", 3000, digest)
    assert sent == 3 and p.suppressed["budget"] == 2 and p.picked["uncertain_score"] == 3
    clock.t += 1800  # half an hour refills half the budget: 1000 left + 5000
    assert [p.charge("random", 3000, n) for n in range(3)] == [True, True, False]
    assert p.charge("on_demand", 50_000, 3)  # always sent, and it spends the budget
    assert not p.charge("random", 1, 4)


def test_bad_sampling_config_names_the_field():
    with pytest.raises(ValidationError, match="uncertain_band") as err:
        SamplingConfig(uncertain_band=(0.7, 0.5))
    assert "low 0.7 must not be above high 0.5" in str(err.value)
    with pytest.raises(ValidationError, match="random_rate"):
        SamplingConfig(random_rate=2)
    config = {"device": "d", "site": "s", "model": {"path": "m.onnx"},
              "cameras": [{"name": "c", "source": {"type": "synthetic"}, "zone": {"kind": "shed", "id": "shed-1"},
                           "sampling": {"enabled": True, "dataset": "Bad Name"}}]}
    with pytest.raises(ValidationError, match=r"cameras\.0\.sampling\.dataset"):
        AgentConfig.model_validate(config)


def scored(*items: tuple[float, tuple[float, ...]]) -> Detections:
    """Detections whose boxes carry every class's score (confidence: the best one)."""
    scores = np.array([s for _, s in items], np.float32)
    return Detections(np.array([BOX] * len(items), np.float32), np.array([c for c, _ in items]),
                      scores.argmax(1), None, LABELS + ("half_ripe",), scores)


def test_the_window_sends_its_most_informative_frame_and_skips_near_duplicates():
    p = policy(rank_window=3, dedup_distance=4)
    confident = scored((0.95, (0.95, 0.02, 0.03)), (0.9, (0.9, 0.05, 0.05)))
    torn = scored((0.7, (0.05, 0.7, 0.6)), (0.9, (0.9, 0.05, 0.05)))  # above the band, but ripe vs half_ripe
    unsure = scored((0.5, (0.5, 0.1, 0.15)), (0.45, (0.1, 0.45, 0.1)))  # two boxes in the band
    cfg = p.config
    assert informativeness(unsure, cfg) > informativeness(torn, cfg) > informativeness(confident, cfg)
    assert p.trigger(frame(1), confident, None) is None and p.trigger(frame(2), unsure, None) is None
    pick = p.trigger(frame(3), torn, None)  # the window's end: its best frame, whichever came last
    assert pick is not None and (pick.reason, pick.frame.index) == ("uncertain_score", 2)
    digest = p.admit(pick.reason, pick.frame.image)
    assert digest is not None and p.charge(pick.reason, 1000, digest)
    # the next window: the same unsure picture again is a near-duplicate of that upload, so the torn one goes
    picks = [p.trigger(f, d, None) for f, d in ((frame(2), unsure), (frame(4), torn), (frame(5), confident))]
    assert picks[:2] == [None, None] and picks[2] is not None and picks[2].frame.index == 4
    # a window of confident frames only (below min_score) sends nothing; random_rate 1: a random frame of each
    assert [p.trigger(frame(i), confident, None) for i in range(6, 9)] == [None] * 3
    q = policy(rank_window=2, random_rate=1.0, seed=3)
    sent = [q.trigger(frame(i), unsure, None) for i in range(10)]
    assert [x.reason for x in sent if x is not None] == ["random"] * 5 and sent[::2] == [None] * 5


def test_the_zoo_model_reports_class_scores_that_agree_with_its_boxes():
    detector = OnnxDetector(ZOO_MODEL, conf_threshold=0.2)
    image = SyntheticCamera(SyntheticSource(type="synthetic", seed=7, width=320, height=240)).read().image
    found = detector.detect(image)
    assert len(found) and found.class_scores is not None and found.class_scores.shape == (len(found), 3)
    assert np.array_equal(found.class_scores.argmax(1), found.class_id)
    assert np.allclose(found.class_scores.max(1), found.confidence)
    kept = found.filter(found.confidence > 0.5)
    assert kept.class_scores is not None and len(kept.class_scores) == len(kept)
