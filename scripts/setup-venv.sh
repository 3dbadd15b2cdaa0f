#!/usr/bin/env bash
# Create .venv and install the pinned dependencies, idempotently: the install is redone only
# when pyproject.toml changed since the last successful one.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
STAMP=$VENV/.schedcp-pyproject.sha256
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  echo "setup-venv: $VENV up to date, nothing to do"
  exit 0
fi
PY=${PYTHON:-python3}
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
log=$VENV/pip-install.log
# torch is pinned to 2.13.0 in pyproject.toml: the CPU build on this machine's disk.
if ! { "$VENV/bin/pip" install -q --upgrade pip && "$VENV/bin/pip" install -q -e '.[dev,desktop]'; } \
    >"$log" 2>&1; then
  tail -n 30 "$log" >&2
  echo "setup-venv: pip install failed (full log: $log)" >&2
  exit 1
fi
echo "$want" > "$STAMP"
echo "setup-venv: installed"
