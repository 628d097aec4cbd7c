#!/usr/bin/env bash
# Benchmark entry point: bash bench/run.sh [--quick] [--repeat N] [--only ours seldon mlserver]
# Runs our microservice, seldon-core-microservice and MLServer on the same model and
# writes bench/RESULTS.md and bench/out/results.json (see bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."
for tool in wrk h2load; do
    command -v "$tool" >/dev/null || { echo "$tool is missing: apt-get install -y wrk nghttp2-client" >&2; exit 2; }
done
exec .venv/bin/python bench/run_bench.py "$@"
