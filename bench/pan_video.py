"""A camera-like H.264/H.265 video of a greenhouse row, encoded in-process with PyAV (no ffmpeg program).

The PyAV wheel bundles FFmpeg with libx264 and libx265. A synthetic row (``models.data.synth.tomato``) wider than
the frame is rendered a few times (noise/exposure jitter) and a window pans across it, so a tracker sees
moving fruit. Encoded like an IP camera's main stream: yuv420p, no B-frames, a key frame every 2 s, CRF 23.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np

from models.data.synth.tomato import random_scene, render

ENCODERS = {"h264": "libx264", "hevc": "libx265"}
SIZES = {720: (1280, 720), 1080: (1920, 1080)}


class EncoderMissing(RuntimeError):
    """The PyAV build has no encoder for the requested codec."""


def frame_size(height: int) -> tuple[int, int]:
    """(width, height) of a 16:9 picture ``height`` lines high (720 or 1080)."""
    if height not in SIZES:
        raise ValueError(f"height {height}: expected one of {sorted(SIZES)}")
    return SIZES[height]


def pan_frames(frames: int, width: int, height: int, seed: int = 11) -> Iterator[np.ndarray]:
    """``frames`` BGR pictures of ``width`` x ``height``, panning right ``height / 180`` pixels a frame."""
    step = max(1, height // 180)
    scene = random_scene(np.random.default_rng(seed), width + step * frames, height)
    wides = [render(scene, np.random.default_rng(seed + k)).image for k in range(3)]
    for i in range(frames):
        x = i * step
        yield np.ascontiguousarray(wides[i % len(wides)][:, x:x + width])


def check_encoder(codec: str) -> str:
    """The FFmpeg encoder name for ``codec`` (h264 | hevc); ``EncoderMissing`` with the fix if absent."""
    if codec not in ENCODERS:
        raise ValueError(f"codec {codec!r}: expected one of {sorted(ENCODERS)}")
    encoder = ENCODERS[codec]
    if encoder not in av.codecs_available:
        raise EncoderMissing(f"this PyAV build (av {av.__version__}) has no {encoder} encoder for {codec}: "
                             "install the PyPI wheel (`pip install 'av>=18.1,<19'`), which bundles libx264 and "
                             "libx265, rather than a distribution build linked against a reduced FFmpeg")
    return encoder


def write_video(path: Path, frames: int, height: int = 720, codec: str = "h264", fps: int = 30) -> str:
    """Encode the pan to ``path`` (MP4, or Matroska for ``.mkv``); returns a description of the encoding."""
    encoder = check_encoder(codec)
    width, height = frame_size(height)
    gop = 2 * fps
    with av.open(str(path), "w") as container:
        stream = container.add_stream(encoder, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.gop_size = gop
        if encoder == "libx264":
            stream.options = {"preset": "veryfast", "crf": "23", "bf": "0"}
        else:
            stream.options = {"preset": "veryfast", "crf": "26",
                              "x265-params": f"log-level=error:bframes=0:keyint={gop}"}
        for image in pan_frames(frames, width, height):
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return f"{codec.upper() if codec == 'hevc' else 'H.264'} ({encoder} via PyAV, yuv420p, no B-frames, GOP {gop})"


def probe(path: Path) -> dict:
    """Codec, size, frame rate and frame count of the first video stream, as FFmpeg reads the file."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        count = sum(1 for _ in container.demux(stream) if _.size)
        return {"codec": stream.codec_context.name, "width": stream.codec_context.width,
                "height": stream.codec_context.height, "fps": float(stream.average_rate or 0), "frames": count}
