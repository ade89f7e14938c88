"""bench/edge_pipeline.py: its PyAV H.264 writer makes a file the agent's video source reads, and the bench
runs end to end on a tiny setting and ends with the JSON line it documents (not a timing test)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import pytest

from bench.edge_pipeline import HEADLINE_KEYS
from bench.pan_video import probe, write_video
from edge_agent.config import VideoSource
from edge_agent.detectors.onnx_detector import OnnxDetector
from edge_agent.sources.pyav_video import PyAvVideoFile
from edge_agent.sources.video import open_video
from models.zoo_index import default_file

REPO = Path(__file__).resolve().parents[2]


def test_writer_makes_h264_the_agent_source_reads(tmp_path: Path) -> None:
    video = tmp_path / "pan.mp4"
    write_video(video, 8, height=720, codec="h264", fps=15)
    assert probe(video) == {"codec": "h264", "width": 1280, "height": 720, "fps": 15.0, "frames": 8}
    with av.open(str(video)) as container:  # camera-like: no B-frames, the first frame a key frame
        stream = container.streams.video[0]
        assert stream.codec_context.profile in ("High", "Main", "Constrained Baseline", "Baseline")
        packets = [p for p in container.demux(stream) if p.size]
        assert packets[0].is_keyframe

    source = open_video(VideoSource(type="video", path=str(video)))
    assert isinstance(source, PyAvVideoFile)
    frames = []
    while (frame := source.read()) is not None:
        frames.append(frame)
    source.close()
    assert [f.index for f in frames] == list(range(8))
    assert all(f.size == (1280, 720) for f in frames)
    red, green, blue = frames[3].scaled_planes(576, 324)
    assert red.shape == green.shape == blue.shape == (324, 576)
    # the pan is a greenhouse row: leaves and fruit, not a flat or black picture
    assert 40 < float(green.mean()) < 220 and float(green.std()) > 10
    assert frames[0].image.shape == (720, 1280, 3)


def test_bench_runs_end_to_end_and_ends_with_its_json(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "bench" / "edge_pipeline.py"), "--frames", "16", "--rounds", "1", "--no-anchors",
         "--rtsp-seconds", "0", "--record", str(tmp_path)],
        capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(HEADLINE_KEYS) <= set(result)
    assert result["fps"] > 0 and result["fps_wall"] > 0 and result["overhead_ratio"] > 0
    assert len(result["overhead_ratio_rounds"]) == 1
    assert result["file_path"]["group_frames"] >= 1 and result["file_path"]["overhead_ratio"] > 0
    assert result["video"]["codec"] == "h264" and result["video"]["frames"] == 16
    model = default_file("tomato-ripeness")  # the shipped default, at its own input size
    assert result["model"]["file"] == model.name and result["model"]["input_size"] == OnnxDetector(model).input_size
    assert {"av", "onnxruntime", "opencv"} <= set(result["versions"])
    assert result["frames"] == 16 and result["published"] >= result["events"] >= 1  # the broker acknowledged them
    assert result["rtsp"] == {"skipped": "--rtsp-seconds 0"}
    assert "HEADLINE live path" in done.stdout
    recorded = list(tmp_path.glob("*-h264-720p.json"))
    assert len(recorded) == 1 and json.loads(recorded[0].read_text())["fps"] == result["fps"]


def test_a_missing_encoder_is_named_with_the_fix(monkeypatch) -> None:
    import bench.pan_video as pan_video

    assert pan_video.check_encoder("h264") == "libx264" and pan_video.check_encoder("hevc") == "libx265"
    monkeypatch.setattr(pan_video.av, "codecs_available", {"h264", "hevc"})  # decoders only, no encoders
    with pytest.raises(pan_video.EncoderMissing, match="no libx264 encoder for h264.*bundles libx264"):
        pan_video.check_encoder("h264")


def test_the_ab_bench_refuses_a_base_that_is_not_a_source_tree(tmp_path: Path, capsys) -> None:
    from bench.edge_ab import main as ab_main

    assert ab_main(["--base", str(tmp_path)]) == 2
    assert f"--base {tmp_path}: not a FieldLine source tree" in capsys.readouterr().err
