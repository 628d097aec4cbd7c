#!/usr/bin/env bash
# Build .venv-v2clients: the Open Inference Protocol (V2) clients our V2 tests drive unchanged,
# Triton's `tritonclient[http,grpc]` and KServe's `InferenceRESTClient`/`InferenceGRPCClient`.
# A venv of their own: both pin protobuf below what we use, and KServe pulls a large tree.
# Idempotent: a finished venv is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP_FLAGS=(-q --disable-pip-version-check)
VENV="${SELDON_V2_CLIENTS_VENV:-.venv-v2clients}"
MARK="$VENV/.v2-clients-ready"
if [ ! -f "$MARK" ]; then
  echo "v2 clients: creating $VENV with tritonclient and kserve (one-time, ~1 minute)"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install "${PIP_FLAGS[@]}" "tritonclient[http,grpc]==2.73.0" "kserve==0.21.0"
  # Both register the `inference` protobuf package: never import them in one process.
  "$VENV/bin/python" -c "import tritonclient.http, tritonclient.grpc" 2>/dev/null
  "$VENV/bin/python" -c "import kserve" 2>/dev/null
  touch "$MARK"
fi
