import numpy as np

from edge_agent.detections import Detections
from edge_agent.rules import CountRule

LABELS = ("green", "half_ripe", "ripe")


def frame(*class_ids: int) -> Detections:
    n = len(class_ids)
    return Detections(np.tile([0, 0, 10, 10], (n, 1)), np.full(n, 0.9), np.array(class_ids, dtype=np.int64),
                      None, LABELS)


def test_first_frame_publishes_every_label():
    rule = CountRule(LABELS, window=3, interval_s=60)
    decision = rule.update(frame(2, 2, 0), now_s=0)
    assert decision is not None
    assert decision.counts == {"green": 1, "half_ripe": 0, "ripe": 2}
    assert decision.reason == "change"


def test_one_frame_flicker_is_smoothed_away():
    rule = CountRule(LABELS, window=3, interval_s=60)
    for t in range(3):
        rule.update(frame(2, 2, 2), now_s=t)
    # a fruit hides behind a leaf for one frame: the median keeps 3 ripe, nothing is published
    assert rule.update(frame(2, 2), now_s=3) is None
    assert rule.update(frame(2, 2, 2), now_s=4) is None


def test_lasting_change_is_published_once():
    rule = CountRule(LABELS, window=3, interval_s=60)
    for t in range(3):
        rule.update(frame(2, 2), now_s=t)
    decisions = [rule.update(frame(2, 2, 2, 1), now_s=3 + t) for t in range(4)]
    published = [d for d in decisions if d is not None]
    assert len(published) == 1
    assert published[0].counts == {"green": 0, "half_ripe": 1, "ripe": 3}


def test_heartbeat_after_interval_without_change():
    rule = CountRule(LABELS, window=1, interval_s=10)
    assert rule.update(frame(0), now_s=0) is not None
    assert rule.update(frame(0), now_s=5) is None
    heartbeat = rule.update(frame(0), now_s=10.5)
    assert heartbeat is not None and heartbeat.reason == "interval"
