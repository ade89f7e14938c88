"""A local RTSP camera for the bench: GStreamer's RTSP server replaying an H.264 MP4 file in real time.

    /usr/bin/python3 bench/rtsp_server.py FILE.mp4 --port 8554   # rtsp://127.0.0.1:8554/cam

Run with the system Python: it needs Debian's GObject bindings (python3-gi, gir1.2-gst-rtsp-server-1.0 and
the GStreamer plugins; ``scripts/bench-setup.sh`` installs them), not the project's venv. The file's H.264
stream is sent as it is (demux, parse, RTP payload; nothing re-encoded, so the server costs little CPU),
paced by the file's timestamps like a camera. Prints ``ready rtsp://...`` once it listens.
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def launch_line(path: str) -> str:
    return (f"( filesrc location=\"{path}\" ! qtdemux ! h264parse config-interval=-1 "
            "! rtph264pay name=pay0 pt=96 )")


def serve(path: str, port: int, mount: str = "/cam") -> None:
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch_line(path))
    factory.set_shared(True)
    server.get_mount_points().add_factory(mount, factory)
    if server.attach(None) == 0:
        raise SystemExit(f"cannot listen on 127.0.0.1:{port}")
    loop = GLib.MainLoop()
    signal.signal(signal.SIGTERM, lambda *_: loop.quit())
    print(f"ready rtsp://127.0.0.1:{port}{mount}", flush=True)
    loop.run()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("file")
    ap.add_argument("--port", type=int, default=8554)
    args = ap.parse_args()
    serve(args.file, args.port)
    sys.exit(0)


if __name__ == "__main__":
    main()
