from typing import Annotated

import numpy as np
import pytest
from pydantic import Field, TypeAdapter, ValidationError

from edge_agent.detections import Detections
from edge_agent.zones import Crossing, LineCounter, LineZoneConfig, PolygonZone, PolygonZoneConfig

LABELS = ("part", "defect")
W, H = 200, 100
# A "U" (concave): two arms from y=0.2 down to the base at y=0.8, a notch between x=0.4 and 0.6.
U_SHAPE = [(0.2, 0.2), (0.4, 0.2), (0.4, 0.6), (0.6, 0.6), (0.6, 0.2), (0.8, 0.2), (0.8, 0.8), (0.2, 0.8)]


def boxes_at(*centres: tuple[float, float], size: float = 4.0, ids: list[int] | None = None,
             classes: list[int] | None = None) -> Detections:
    """Square boxes around pixel centres, optionally with tracker ids."""
    n = len(centres)
    xyxy = [(x - size / 2, y - size / 2, x + size / 2, y + size / 2) for x, y in centres]
    return Detections(np.array(xyxy).reshape(-1, 4), np.full(n, 0.9), np.array(classes or [0] * n),
                      None if ids is None else np.array(ids), LABELS)


def px(nx: float, ny: float) -> tuple[float, float]:
    return (nx * W, ny * H)


def test_points_inside_and_outside_a_concave_polygon():
    zone = PolygonZone(U_SHAPE)
    dets = boxes_at(px(0.3, 0.4), px(0.7, 0.4), px(0.5, 0.7),  # left arm, right arm, base: inside
                    px(0.5, 0.4), px(0.1, 0.5), px(0.5, 0.9), px(0.9, 0.1))  # notch and outside
    assert zone.trigger(dets, W, H).tolist() == [True, True, True, False, False, False, False]
    assert zone.trigger(Detections.empty(LABELS), W, H).shape == (0,)


def test_bottom_center_versus_center_anchor():
    square = [(0.0, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0)]  # the lower half of the frame
    tall = boxes_at(px(0.5, 0.4), size=30)  # centre at y=40 px (upper half), bottom at y=55 px (lower half)
    assert PolygonZone(square, anchor="center").trigger(tall, W, H).tolist() == [False]
    assert PolygonZone(square, anchor="bottom_center").trigger(tall, W, H).tolist() == [True]


def test_boundary_counts_as_inside():
    # a box resting on the frame's bottom edge, zone drawn down to y = 1.0
    zone = PolygonZone([(0.0, 0.5), (1.0, 0.5), (1.0, 1.0), (0.0, 1.0)], anchor="bottom_center")
    dets = Detections(np.array([[90, 80, 110, 100]]), np.array([0.9]), np.array([0]), None, LABELS)
    assert zone.trigger(dets, W, H).tolist() == [True]


@pytest.mark.parametrize("polygon, message", [
    ([(0.1, 0.1), (0.9, 0.9)], "at least 3 points"),
    ([(0.1, 0.1), (1.2, 0.1), (0.5, 0.9)], "outside the normalised frame"),
    ([(0.1, 0.1), (0.5, -0.1), (0.5, 0.9)], "outside the normalised frame"),
    ([(0.1, 0.1), (0.5, 0.5), (0.9, 0.9)], "zero area"),
    ([(0.3, 0.3), (0.3, 0.3), (0.3, 0.3), (0.3, 0.3)], "zero area"),
    ([(0.1, 0.1), (0.5, float("nan")), (0.5, 0.9)], "finite"),
])
def test_bad_polygons_raise(polygon, message):
    with pytest.raises(ValueError, match=message):
        PolygonZone(polygon)


def test_bad_anchor_and_frame_size_raise():
    with pytest.raises(ValueError, match="anchor"):
        PolygonZone(U_SHAPE, anchor="top")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="frame size"):
        PolygonZone(U_SHAPE).trigger(boxes_at((1, 1)), 0, 100)


def line_track(counter: LineCounter, track_id: int, ys: list[float], x: float = 100.0,
               label_class: int = 0) -> list[Crossing]:
    """Feed one track through positions (x, y) in pixels, one frame each; all crossings."""
    out: list[Crossing] = []
    for y in ys:
        out += counter.trigger(boxes_at((x, y), ids=[track_id], classes=[label_class]), W, H)
    return out


def test_line_counts_each_direction_once_despite_jitter():
    counter = LineCounter((0.0, 0.5), (1.0, 0.5))  # horizontal line at y = 50 px
    # approach from above, then jitter by one pixel across the line: never a full crossing
    assert line_track(counter, 7, [20, 35, 45, 49, 51, 49, 51, 50, 49]) == []
    # now it really passes downwards: one "in" (to the right of start→end, i.e. down in the image)
    assert line_track(counter, 7, [55, 60], label_class=1) == [Crossing(7, "in", "defect")]
    # jitter around the line again and come back fully: one "out"
    assert line_track(counter, 7, [51, 49, 51, 40]) == [Crossing(7, "out", "part")]
    # crossing again in either direction is not counted a second time
    assert line_track(counter, 7, [60, 40, 60]) == []
    assert (counter.in_count, counter.out_count) == (1, 1)


def test_line_ignores_untracked_detections_and_counts_tracks_separately():
    counter = LineCounter((0.0, 0.5), (1.0, 0.5))
    for y in [30, 40, 60, 70]:
        assert counter.trigger(boxes_at((100, y)), W, H) == []  # no tracker ids
    crossings = []
    for y in [30, 40, 60, 70]:
        crossings += counter.trigger(boxes_at((60, y), (140, 100 - y), ids=[1, 2]), W, H)
    assert crossings == [Crossing(1, "in", "part"), Crossing(2, "out", "part")]


def test_line_crossing_outside_the_segment_is_not_counted():
    counter = LineCounter((0.25, 0.5), (0.75, 0.5))  # x from 50 to 150 px
    assert line_track(counter, 1, [30, 70], x=20.0) == []  # passes left of the segment
    assert line_track(counter, 2, [30, 70], x=100.0) == [Crossing(2, "in", "part")]
    counter.forget([2])
    assert counter.trigger(boxes_at((100, 30), ids=[2]), W, H) == []  # state gone, side re-learnt


def test_zone_configs_validate_and_build():
    union = TypeAdapter(Annotated[PolygonZoneConfig | LineZoneConfig, Field(discriminator="type")])
    poly = union.validate_python({"type": "polygon", "points": U_SHAPE, "id": "shed-07", "row": "r3"})
    assert isinstance(poly, PolygonZoneConfig) and poly.kind == "shed" and poly.anchor == "center"
    assert isinstance(poly.build(), PolygonZone)
    line = union.validate_python({"type": "line", "start": [0, 0.5], "end": [1, 0.5], "id": "line-2"})
    assert isinstance(line, LineZoneConfig) and line.kind == "line"
    assert isinstance(line.build(), LineCounter)

    with pytest.raises(ValidationError, match="zero area"):
        union.validate_python({"type": "polygon", "points": [[0, 0], [0.5, 0.5], [1, 1]], "id": "z"})
    with pytest.raises(ValidationError, match="extra"):
        union.validate_python({"type": "polygon", "points": U_SHAPE, "id": "z", "colour": "red"})
    with pytest.raises(ValidationError, match="same point"):
        union.validate_python({"type": "line", "start": [0.5, 0.5], "end": [0.5, 0.5], "id": "z"})
    with pytest.raises(ValidationError, match="outside the normalised frame"):
        union.validate_python({"type": "line", "start": [0, 0.5], "end": [1.5, 0.5], "id": "z"})
    for model in (PolygonZoneConfig, LineZoneConfig):
        props = model.model_json_schema()["properties"]
        assert all("description" in p for p in props.values()), model
