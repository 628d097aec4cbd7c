#!/usr/bin/env bash
# Install everything the tests need and run them all (what CI runs).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e ".[test]"
bash scripts/compat-venv.sh
bash scripts/v2-clients-venv.sh  # tritonclient and KServe's clients for the V2 tests
# Redis is the feature under test for the Redis state store: install the server when we can.
if ! command -v redis-server >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server) >/dev/null 2>&1 \
    || echo "note: could not install redis-server; Redis store tests will be skipped"
fi
# The dashboard's test drives a real headless browser: Debian's chromium and its driver.
if ! { [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; } && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >/dev/null 2>&1 \
    || echo "note: could not install chromium; the dashboard's browser test will be skipped (failed in CI)"
fi
.venv/bin/ruff check src tests bench scripts
.venv/bin/mypy  # strict on src/ (pyproject.toml [tool.mypy])
# Two pytest processes, one test module at a time each (module fixtures stay in one process):
# most tests wait on servers they started, so two share the two cores well. SELDON_TEST_PROCESSES=0
# runs everything in one process.
.venv/bin/python -m pytest -n "${SELDON_TEST_PROCESSES:-2}" --dist loadfile "$@"
