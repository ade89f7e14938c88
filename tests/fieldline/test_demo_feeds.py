"""The demo's simulated cameras and agent configs: schedules, defect mixes, the folder hand-over to the real
folder source (atomic files, pruning, outages) and the real shipped models seeing the drift."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_agent.config import FolderSource
from edge_agent.detectors.factory import build_detector
from edge_agent.rules import build_rule
from edge_agent.sources.base import Frame
from edge_agent.sources.folder import ImageFolder
from fieldline.demo import BIG_SHED_SEEDS, FLAKY_OFFLINE_AFTER_S, demo_agent_configs, demo_feeds, flaky_folder
from fieldline.demo_feeds import DefectMix, FolderFeed, PartMaker, Periodic
from fieldline.demo_lines import LINES, line_agent_config, line_feed
from models.zoo_index import default_file


def test_periodic_windows() -> None:
    once = Periodic(first_s=10, length_s=5)
    assert [once.active(t) for t in (0, 9.9, 10, 14.9, 15, 1000)] == [False, False, True, True, False, False]
    every = Periodic(first_s=10, length_s=5, every_s=60)
    assert [every.active(t) for t in (12, 16, 69.9, 70, 74, 75, 130)] == [True, False, False, True, True, False, True]
    with pytest.raises(ValueError, match="every_s"):
        Periodic(first_s=0, length_s=60, every_s=30)
    with pytest.raises(ValueError, match="length_s"):
        Periodic(first_s=0, length_s=0)


def test_defect_mix_rejects_unknown_kinds_and_rates() -> None:
    with pytest.raises(ValueError, match="kinds"):
        DefectMix(0.1, {"dent": 1})
    with pytest.raises(ValueError, match="rate"):
        DefectMix(1.5, {"pit": 1})


def test_part_maker_follows_the_normal_and_drift_mix() -> None:
    maker = PartMaker("line-t", DefectMix(0.1, {"pit": 1}), DefectMix(0.6, {"scratch": 1}), Periodic(100, 50),
                      seed=3, size=64)
    image = maker(0.0)
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    assert np.array_equal(image[:, :, 0], image[:, :, 2])  # a greyscale part, as the line cameras see it
    for _ in range(299):
        maker(0.0)
    normal = maker.defective
    assert 15 <= normal <= 48, normal  # 10 % of 300 (binomial: 30 +- 5.2 sigma)
    for _ in range(300):
        maker(120.0)
    drift = maker.defective - normal
    assert 150 <= drift <= 210, drift  # 60 % of 300 (180 +- 8.5)
    assert maker.made == 600 and maker.drifting


def test_the_shipped_steel_model_rejects_far_more_parts_during_the_drift() -> None:
    """What the dashboard shows: the real detector and inspection rule, normal parts against drift parts."""
    spec = LINES[0]
    config = line_agent_config(Path("/nonexistent"), 1883, spec)
    detector = build_detector(config.model)
    rule = build_rule(config.cameras[0], detector.labels, detector.calibrated_reject_score)
    maker = PartMaker(spec.line, spec.normal, spec.drift, spec.drift_when, seed=7)
    drift_at = spec.drift_when.first_s + 1

    def reject_rate(elapsed_s: float, parts: int = 80) -> float:
        rejects = 0
        for _ in range(parts):
            outcomes = rule.process(detector.detect_frame(Frame(maker(elapsed_s), 0, 0)), None, (256, 256), 0.0)
            rejects += any(getattr(o, "verdict", None) == "reject" for o in outcomes)
        return rejects / parts

    normal, drift = reject_rate(0.0), reject_rate(drift_at)
    assert 0.0 < normal < 0.25, normal  # ~13 %: 6 % defects plus the file's calibrated false-reject budget
    assert drift > normal + 0.2 and drift > spec.defect_rate_alert, (normal, drift)


def test_folder_feed_hands_whole_pictures_to_the_folder_source_and_goes_offline(tmp_path: Path) -> None:
    folder = tmp_path / "cam"
    folder.mkdir()
    (folder / "stale-000.jpg").write_bytes(b"from an earlier run")
    made: list[float] = []

    def make(elapsed_s: float) -> np.ndarray:
        made.append(elapsed_s)
        return np.full((48, 64, 3), 40 + len(made), np.uint8)

    feed = FolderFeed("cam", folder, make, 1.0, outage=Periodic(first_s=3, length_s=2), keep=4)
    feed.prepare()
    assert list(folder.iterdir()) == []
    source = ImageFolder(FolderSource(type="folder", path=folder, watch=True, poll_s=0.05))
    read: list[int] = []
    for t in range(8):
        written = feed.step(float(t))
        assert (written is None) == (t in (3, 4))
        assert feed.offline == (t in (3, 4))
        frame = source.read()
        if written is None:
            assert frame is None  # nothing new: the agent's watchdog counts the silence
        else:
            assert frame is not None and frame.image.shape == (48, 64, 3)
            read.append(int(round(float(frame.image.mean()))))
    assert read == [41, 42, 43, 44, 45, 46]  # every picture, in order, none half-written
    assert (feed.written, feed.skipped) == (6, 2)
    assert sorted(p.suffix for p in folder.iterdir()) == [".jpg"] * 4  # pruned to `keep`, no .tmp left
    assert made == [0.0, 1.0, 2.0, 5.0, 6.0, 7.0]  # no picture is even made while offline


def test_demo_configs_vary_the_sheds_and_add_the_lines(tmp_path: Path) -> None:
    configs = demo_agent_configs(tmp_path, 8, 1883, default_file("tomato-ripeness"))
    cameras = {c.name: c for cfg in configs for c in cfg.cameras}
    big = [c for c in cameras.values() if c.zone.id == "shed-01"]
    assert [c.zone.row for c in big] == ["r1", "r2", "r3", "r4"]
    assert [c.source.seed for c in big] == list(BIG_SHED_SEEDS)  # type: ignore[union-attr]
    assert all(c.rule.overripe_label == "ripe" for c in big)  # type: ignore[union-attr]
    flaky = cameras["cam-02"]
    assert flaky.source.type == "folder" and flaky.source.watch  # type: ignore[union-attr]
    assert flaky.source.path == flaky_folder(tmp_path)  # type: ignore[union-attr]
    assert flaky.alerts.offline_after_s == FLAKY_OFFLINE_AFTER_S
    assert {c.zone.id for c in cameras.values()} == {f"shed-{n:02d}" for n in range(1, 9)}
    feeds = demo_feeds(tmp_path, 8)
    assert [f.name for f in feeds] == [spec.line for spec in LINES] + ["shed-02"]
    assert [f.name for f in demo_feeds(tmp_path, 1)] == [spec.line for spec in LINES]  # no shed-02, no feed
    for spec in LINES:
        config = line_agent_config(tmp_path, 1883, spec)
        camera = config.cameras[0]
        assert config.model.type == spec.model_type and Path(config.model.path).exists()
        assert camera.zone.kind == "line" and camera.rule.type == "inspection"
        assert camera.fps * spec.part_period_s > 1  # the camera keeps up with the parts
        assert line_feed(tmp_path, spec).folder == camera.source.path  # type: ignore[union-attr]


def test_anomaly_line_model_loads_and_flags_chipped_edges() -> None:
    spec = LINES[1]
    detector = build_detector(line_agent_config(Path("/nonexistent"), 1883, spec).model)
    maker = PartMaker(spec.line, spec.normal, DefectMix(1.0, {"fray": 1}), Periodic(0, 1000), seed=11)
    flagged = sum(len(detector.detect_frame(Frame(maker(1.0), 0, 0))) > 0 for _ in range(12))
    assert flagged >= 8, flagged  # fray: the anomaly model's best-recalled kind (~90 % on synthetic tiles)
