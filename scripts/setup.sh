#!/usr/bin/env bash
# Create .venv (Python 3.11+) and install FieldLine with the given extras, e.g. `scripts/setup.sh dev`.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-}"
PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "error: FieldLine needs Python >= 3.11; '$PY' is $("$PY" --version 2>&1)" >&2
  exit 2
fi
if [ ! -x .venv/bin/python ]; then
  if ! "$PY" -m venv .venv 2>/dev/null; then
    echo "python venv module missing; installing python3-venv" >&2
    if [ "$(id -u)" = 0 ]; then apt-get install -y -q python3-venv >/dev/null; else sudo apt-get install -y -q python3-venv >/dev/null; fi
    rm -rf .venv && "$PY" -m venv .venv
  fi
fi
.venv/bin/python -m pip install -q --upgrade pip
if [ -n "$extras" ]; then
  .venv/bin/python -m pip install -q -e ".[$extras]"
else
  .venv/bin/python -m pip install -q -e .
fi
