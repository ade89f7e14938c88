#!/usr/bin/env bash
# What the benchmarks need from Debian, on top of the venv (scripts/setup.sh): Mosquitto (the broker the edge
# bench publishes to) and GStreamer's RTSP server with the system Python's bindings (the RTSP camera path of
# bench/edge_pipeline.py runs bench/rtsp_server.py with /usr/bin/python3). Video encoding needs nothing here:
# the PyAV wheel bundles libx264 and libx265. Not part of scripts/test.sh: the test suite does not need these.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
APT_PACKAGES="mosquitto python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad"
missing=""
for pkg in $APT_PACKAGES; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  echo "== apt-get install$missing"
  $SUDO apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing >/dev/null
fi
[ -x .venv/bin/python ] || bash scripts/setup.sh
echo "== checks"
/usr/bin/python3 -c "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0')
from gi.repository import Gst, GstRtspServer
Gst.init(None)
missing = [n for n in ('qtdemux', 'h264parse', 'rtph264pay') if Gst.ElementFactory.find(n) is None]
assert not missing, 'GStreamer elements missing: ' + ', '.join(missing)
print('GStreamer', Gst.version_string(), 'with the RTSP server: ok')"
.venv/bin/python -c "import av; missing = [c for c in ('libx264', 'libx265') if c not in av.codecs_available]
assert not missing, f'PyAV {av.__version__} lacks ' + ', '.join(missing) + ': reinstall the PyPI wheel'
print('PyAV', av.__version__, 'with libx264 and libx265: ok')"
