#!/usr/bin/env bash
# Build the reference environments used by the compatibility tests and the bench:
# - .venv-compat: the real seldon-core 1.18.2 (SeldonClient, its protobuf stubs and
#   seldon-core-microservice), with tensorflow-cpu so its `tftensor` payloads work;
# - .venv-compat-oauth: seldon-core 1.4.0, the last SeldonClient that speaks the OAuth
#   API front end (gateway="seldon" with oauth_key/oauth_secret).
# Idempotent: a finished venv is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
PIP_FLAGS=(-q --disable-pip-version-check)

VENV="${SELDON_COMPAT_VENV:-.venv-compat}"
if [ ! -f "$VENV/.seldon-core-1.18.2-ready" ]; then
  echo "compat: creating $VENV with seldon-core 1.18.2 (one-time, ~1 minute)"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install "${PIP_FLAGS[@]}" "setuptools<70" wheel
  "$VENV/bin/pip" install "${PIP_FLAGS[@]}" "seldon-core==1.18.2"
  "$VENV/bin/pip" install "${PIP_FLAGS[@]}" "tensorflow-cpu==2.15.1" "protobuf==3.20.3"
  # seldon-core pulls a newer setuptools, but gunicorn 20 needs pkg_resources (gone in setuptools 70+).
  "$VENV/bin/pip" install "${PIP_FLAGS[@]}" "setuptools<70"
  "$VENV/bin/python" -c "import seldon_core.seldon_client, tensorflow, pkg_resources" 2>/dev/null
  touch "$VENV/.seldon-core-1.18.2-ready"
fi

OAUTH_VENV="${SELDON_COMPAT_OAUTH_VENV:-.venv-compat-oauth}"
if [ ! -f "$OAUTH_VENV/.seldon-core-1.4.0-ready" ]; then
  echo "compat: creating $OAUTH_VENV with seldon-core 1.4.0 (one-time, ~30 s)"
  rm -rf "$OAUTH_VENV"
  python3 -m venv "$OAUTH_VENV"
  "$OAUTH_VENV/bin/pip" install "${PIP_FLAGS[@]}" "setuptools<70" wheel "markupsafe<2.1"
  "$OAUTH_VENV/bin/pip" install "${PIP_FLAGS[@]}" "seldon-core==1.4.0" "setuptools<70" "markupsafe<2.1"
  "$OAUTH_VENV/bin/python" -c "import seldon_core.seldon_client" 2>/dev/null
  touch "$OAUTH_VENV/.seldon-core-1.4.0-ready"
fi
