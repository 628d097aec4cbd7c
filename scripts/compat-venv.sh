#!/usr/bin/env bash
# Build the reference environment used by the compatibility tests and the bench:
# the real seldon-core 1.18.2 (SeldonClient, its protobuf stubs and
# seldon-core-microservice) in its own virtualenv, with tensorflow-cpu so that
# its `tftensor` payloads work.  Idempotent: a finished venv is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${SELDON_COMPAT_VENV:-.venv-compat}"
MARK="$VENV/.seldon-core-1.18.2-ready"
if [ -f "$MARK" ]; then
  exit 0
fi
echo "compat: creating $VENV with seldon-core 1.18.2 (one-time, ~1 minute)"
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check "setuptools<70" wheel
"$VENV/bin/pip" install -q --disable-pip-version-check "seldon-core==1.18.2"
"$VENV/bin/pip" install -q --disable-pip-version-check "tensorflow-cpu==2.15.1" "protobuf==3.20.3"
# seldon-core pulls a newer setuptools, but gunicorn 20 needs pkg_resources (gone in setuptools 70+).
"$VENV/bin/pip" install -q --disable-pip-version-check "setuptools<70"
"$VENV/bin/python" -c "import seldon_core.seldon_client, tensorflow, pkg_resources" 2>/dev/null
touch "$MARK"
echo "compat: ready"
