#!/usr/bin/env bash
# Set up the venv and run `fieldline demo` (embedded broker + API + 24 simulated sheds). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/fieldline demo "$@"
