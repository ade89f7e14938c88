#!/usr/bin/env bash
# Set up everything the tests need (system services from Debian, the venv) and run the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
APT_PACKAGES="mosquitto victoria-metrics python3-venv xvfb xauth fonts-wqy-microhei libgl1 libgl1-mesa-dri chromium chromium-driver openssl postgresql"
missing=""
for pkg in $APT_PACKAGES; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  echo "== apt-get install$missing"
  $SUDO apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing >/dev/null
fi
# the tests start their own Mosquitto on free ports (tests/support/mosquitto.py): a Mosquitto service the
# user runs (e.g. the one the Debian package enables on 1883) is left alone
echo "== python environment"
bash scripts/setup.sh dev,train  # train: the anomaly and training tests fit real (tiny) torch models
echo "== tests"
mkdir -p test-artifacts
exec .venv/bin/python -m pytest -q -p no:cacheprovider --timeout=600 "$@"
