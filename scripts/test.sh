#!/usr/bin/env bash
# Install everything the tests need and run them all (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e ".[test]"
bash scripts/compat-venv.sh
.venv/bin/ruff check src tests bench scripts
.venv/bin/python -m pytest "$@"
