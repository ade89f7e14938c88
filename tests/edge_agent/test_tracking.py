import itertools

import numpy as np
import pytest
from pydantic import ValidationError

from edge_agent.detections import Detections
from edge_agent.tracking import Tracker, TrackerConfig, UniqueCounter, box_iou, linear_assignment

LABELS = ("green", "half_ripe", "ripe")
GREEN, HALF, RIPE = 0, 1, 2


def box(cx: float, cy: float, size: float = 40.0) -> tuple[float, float, float, float]:
    return (cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2)


def frame(*objects: tuple[tuple[float, float, float, float], float, int]) -> Detections:
    """Detections from (box, score, class_id) triples."""
    if not objects:
        return Detections.empty(LABELS)
    boxes, scores, classes = zip(*objects)
    return Detections(np.array(boxes), np.array(scores), np.array(classes), None, LABELS)


def fruit(cx: float, cy: float, score: float = 0.9, cls: int = RIPE) -> tuple:
    return (box(cx, cy), score, cls)


def tracked(ids: list[int], labels: list[int]) -> Detections:
    n = len(ids)
    return Detections(np.tile(box(50, 50), (n, 1)), np.full(n, 0.9), np.array(labels), np.array(ids), LABELS)


def ids_of(dets: Detections) -> list[int]:
    return [] if dets.tracker_id is None else dets.tracker_id.tolist()


def test_moving_box_keeps_one_id_for_30_frames():
    tracker = Tracker()
    seen = []
    for f in range(30):
        out = tracker.update(frame(fruit(50 + 8 * f, 100)))
        seen.append(ids_of(out))
        if f == 2:
            assert tracker.new_ids() == [1]
    assert seen[:2] == [[], []]  # not confirmed before min_hits=3
    assert all(s == [1] for s in seen[2:])
    assert out.tracker_id.dtype == np.int64
    np.testing.assert_allclose(out.xyxy[0], box(50 + 8 * 29, 100))  # the detection's own box is returned


def test_occluded_box_comes_back_with_same_id_and_counts_once():
    tracker, counter = Tracker(), UniqueCounter()
    x = 60.0
    for f in range(25):
        x += 6  # keeps moving (rail camera) while hidden behind a leaf for frames 10..14
        hidden = 10 <= f < 15
        out = tracker.update(frame() if hidden else frame(fruit(x, 120)))
        counter.update(out)
        if hidden:
            assert ids_of(out) == []
        elif f >= 2:
            assert ids_of(out) == [1]
        assert tracker.ended_ids() == []
    assert counter.counts() == {"ripe": 1}
    assert counter.total() == 1


def test_low_score_detection_continues_a_track():
    tracker = Tracker()
    for f in range(5):
        tracker.update(frame(fruit(100 + 2 * f, 100)))
    for f in range(5, 12):  # half hidden behind a leaf: the score drops to 0.2
        out = tracker.update(frame(fruit(100 + 2 * f, 100, score=0.2)))
        assert ids_of(out) == [1]
        assert out.confidence[0] == pytest.approx(0.2)
    assert ids_of(tracker.update(frame(fruit(124, 100)))) == [1]


def test_low_score_detection_never_starts_a_track():
    tracker = Tracker()
    for _ in range(10):
        assert len(tracker.update(frame(fruit(200, 200, score=0.2)))) == 0
    assert tracker.active_ids() == []
    # and below low_threshold a box is ignored even for existing tracks
    for _ in range(3):
        tracker.update(frame(fruit(50, 50)))
    assert len(tracker.update(frame(fruit(50, 50, score=0.05)))) == 0
    assert tracker.active_ids() == [1]  # lost, not ended


def test_one_frame_false_positive_never_gets_an_id():
    tracker = Tracker()
    outputs = [tracker.update(frame(fruit(100, 100), fruit(400, 300)))]  # (400, 300) is a false positive
    outputs += [tracker.update(frame(fruit(100, 100))) for _ in range(5)]
    assert all(ids_of(o) in ([], [1]) for o in outputs)
    assert ids_of(outputs[-1]) == [1]
    # a two-frame flicker with min_hits=3 burns no id either: the next real object gets 2
    tracker.update(frame(fruit(100, 100), fruit(400, 300)))
    tracker.update(frame(fruit(100, 100), fruit(400, 300)))
    for _ in range(3):
        out = tracker.update(frame(fruit(100, 100), fruit(250, 250)))
    assert sorted(ids_of(out)) == [1, 2]


def test_min_hits_one_confirms_immediately():
    tracker = Tracker(TrackerConfig(min_hits=1))
    assert ids_of(tracker.update(frame(fruit(100, 100)))) == [1]
    assert tracker.new_ids() == [1]


def test_crossing_objects_keep_their_ids():
    tracker = Tracker()
    rng = np.random.default_rng(3)
    by_object: dict[str, set[int]] = {"a": set(), "b": set()}
    for f in range(30):
        a = ("a", fruit(40 + 10 * f, 100))  # moving right
        b = ("b", fruit(340 - 10 * f, 130))  # moving left, 30 px lower: IoU at most ~0.14 when they meet
        objects = [a, b]
        rng.shuffle(objects)  # detector output order carries no identity
        out = tracker.update(frame(*(o for _, o in objects)))
        for name, (bx, _, _) in objects:
            hit = np.nonzero(np.all(np.isclose(out.xyxy, bx), axis=1))[0]
            if f >= 2:
                assert len(hit) == 1
                by_object[name].add(int(out.tracker_id[hit[0]]))
    assert len(by_object["a"]) == 1 and len(by_object["b"]) == 1
    assert by_object["a"] != by_object["b"]


def test_ended_ids_reported_once_and_ids_never_reused():
    tracker = Tracker(TrackerConfig(max_age=5))
    for _ in range(3):
        tracker.update(frame(fruit(100, 100)))
    ended_at = []
    for f in range(8):
        tracker.update(frame())
        if tracker.ended_ids():
            ended_at.append((f, tracker.ended_ids()))
    assert ended_at == [(5, [1])]  # kept through 5 missed frames, ended on the 6th
    outs = [tracker.update(frame(fruit(100, 100))) for _ in range(3)]
    assert ids_of(outs[-1]) == [2]
    # reset drops live tracks, reports them, and still never reuses an id
    assert tracker.reset() == [2]
    outs = [tracker.update(frame(fruit(100, 100))) for _ in range(3)]
    assert ids_of(outs[-1]) == [3]


def test_unconfirmed_track_ending_is_not_reported():
    tracker = Tracker()
    tracker.update(frame(fruit(100, 100)))
    tracker.update(frame())
    assert tracker.ended_ids() == [] and tracker.active_ids() == []


def test_class_aware_matching_and_label_flips():
    strict = Tracker(TrackerConfig(class_aware=True))
    loose = Tracker()
    labels = [HALF, HALF, HALF, RIPE, HALF, RIPE, RIPE, RIPE]  # ripeness flickers between neighbours
    for cls in labels:
        out_strict = strict.update(frame(fruit(100, 100, cls=cls)))
        out_loose = loose.update(frame(fruit(100, 100, cls=cls)))
    assert ids_of(out_loose) == [1]  # one fruit, one id
    # class-aware: the lasting flip to RIPE started a second track (double count) while 1 is lost
    assert ids_of(out_strict) == [2]
    assert strict.active_ids() == [1, 2]


def test_unique_counter_majority_label_and_untracked():
    counter = UniqueCounter()
    counter.update(tracked([1, 2], [RIPE, GREEN]))
    counter.update(tracked([1, 2], [HALF, GREEN]))
    counter.update(tracked([1, 2, 3], [RIPE, HALF, HALF]))
    counter.update(tracked([3], [RIPE]))  # tie 1:1 -> the most recent label wins
    counter.update(frame(fruit(10, 10)))  # untracked detections are ignored
    assert counter.label_of(1) == "ripe" and counter.label_of(2) == "green" and counter.label_of(3) == "ripe"
    assert counter.counts() == {"ripe": 2, "green": 1}
    assert counter.counts(LABELS) == {"green": 1, "half_ripe": 0, "ripe": 2}
    counter.reset()
    assert counter.counts() == {} and counter.total() == 0


def test_empty_frames_and_config_validation():
    tracker = Tracker()
    out = tracker.update(Detections.empty(LABELS))
    assert len(out) == 0 and out.tracker_id is not None and out.labels == LABELS
    with pytest.raises(ValidationError, match="extra"):
        TrackerConfig(high_thresh=0.6)
    with pytest.raises(ValidationError, match="low_threshold"):
        TrackerConfig(low_threshold=0.7, high_threshold=0.5)
    schema = TrackerConfig.model_json_schema()
    assert all("description" in field for field in schema["properties"].values())


def test_linear_assignment_is_optimal():
    rng = np.random.default_rng(0)
    for n, m in [(1, 1), (2, 3), (3, 2), (4, 4), (3, 5), (5, 3)]:
        cost = rng.random((n, m))
        pairs = linear_assignment(cost)
        k = min(n, m)
        assert len({r for r, _ in pairs}) == k and len({c for _, c in pairs}) == k
        if n <= m:
            best = min(sum(cost[i, p[i]] for i in range(n)) for p in itertools.permutations(range(m), n))
        else:
            best = min(sum(cost[p[j], j] for j in range(m)) for p in itertools.permutations(range(n), m))
        assert sum(cost[r, c] for r, c in pairs) == pytest.approx(best)
    # greedy would take the 0.9 pair and leave the other row unmatched; optimal takes both 0.8s
    iou = np.array([[0.9, 0.8], [0.8, 0.0]])
    assert linear_assignment(1 - iou) == [(0, 1), (1, 0)]
    assert linear_assignment(np.zeros((0, 3))) == []


def test_box_iou():
    iou = box_iou(np.array([box(50, 50), box(50, 50)]), np.array([box(50, 50), box(70, 50), box(500, 500)]))
    np.testing.assert_allclose(iou, [[1.0, 1 / 3, 0.0]] * 2)


def _best_total_by_brute_force(iou: np.ndarray) -> float:
    """Largest summed IoU over every one-to-one assignment of the rows (rows <= columns)."""
    n, m = iou.shape
    return max(sum(iou[r, c] for r, c in zip(range(n), cols)) for cols in itertools.permutations(range(m), n))


def test_component_matching_is_optimal_on_random_sparse_overlaps() -> None:
    from edge_agent.tracking import match_by_iou

    rng = np.random.default_rng(5)
    for _ in range(200):
        n, m = int(rng.integers(1, 6)), int(rng.integers(1, 6))
        iou = rng.uniform(0.3, 1.0, (n, m)) * (rng.uniform(size=(n, m)) < 0.35)
        pairs = match_by_iou(iou)
        assert len({r for r, _ in pairs}) == len(pairs) == len({c for _, c in pairs})  # one to one
        assert all(iou[r, c] > 0 for r, c in pairs)
        total = sum(iou[r, c] for r, c in pairs)
        ref = _best_total_by_brute_force(iou) if n <= m else _best_total_by_brute_force(iou.T)
        assert total == pytest.approx(ref)


def test_kalman_bank_matches_the_textbook_filter() -> None:
    """Batched predict/update == the explicit matrix form x' = F x, P' = F P F^T + Q; K = P H^T (H P H^T + R)^-1."""
    from edge_agent.tracking import KalmanBank

    bank = KalmanBank()
    boxes = np.array([[10, 20, 50, 80], [100, 100, 120, 110]], np.float64)
    bank.add(boxes)
    x, p = bank.mean.copy(), bank.cov.copy()
    bank.predict(np.array([False, True]))
    f = np.eye(8) + np.eye(8, k=4)
    h = np.eye(4, 8)
    for i in range(2):
        xi = x[i].copy()
        if i == 1:
            xi[6:8] = 0
        size = np.tile(xi[2:4], 2)
        q = np.diag(np.concatenate([size / 20, size / 160]) ** 2)
        np.testing.assert_allclose(bank.mean[i], f @ xi)
        np.testing.assert_allclose(bank.cov[i], f @ p[i] @ f.T + q)
    x, p = bank.mean.copy(), bank.cov.copy()
    z_box = np.array([[14, 22, 54, 84]], np.float64)
    bank.update([0], z_box)
    z = np.array([34, 53, 40, 62], np.float64)
    r = np.diag((np.tile(x[0, 2:4], 2) / 20) ** 2)
    k = p[0] @ h.T @ np.linalg.inv(h @ p[0] @ h.T + r)
    np.testing.assert_allclose(bank.mean[0], x[0] + k @ (z - h @ x[0]), rtol=1e-9)
    np.testing.assert_allclose(bank.cov[0], (np.eye(8) - k @ h) @ p[0], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(bank.mean[1], x[1])  # rows not updated stay as predicted

    # a second predict, now with a velocity and cross-covariances from the update: still F x and F P F^T + Q
    x, p = bank.mean.copy(), bank.cov.copy()
    assert np.abs(x[0, 4:]).max() > 0 and np.abs(p[0, :4, 4:]).max() > 0
    bank.predict(np.array([False, False]))
    for i in range(2):
        size = np.tile(x[i, 2:4], 2)
        q = np.diag(np.concatenate([size / 20, size / 160]) ** 2)
        np.testing.assert_allclose(bank.mean[i], f @ x[i], rtol=1e-12)
        np.testing.assert_allclose(bank.cov[i], f @ p[i] @ f.T + q, rtol=1e-12)
