#!/usr/bin/env bash
# Create .venv and install the pinned dependencies, idempotently: the install is redone only
# when pyproject.toml or the llama.cpp build flags changed since the last successful one.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv
STAMP=$VENV/.schedcp-pyproject.sha256
# llama-cpp-python compiles llama.cpp at install. Built for this CPU (-march=native) it
# runs AMX instructions wherever cpuid lists AMX, and some VMs list it without enabling it:
# the server dies of a general protection fault at its first matrix product. A portable
# build (AVX2, no AVX-512, no AMX) runs on every x86-64 machine of this kind.
export CMAKE_ARGS=${CMAKE_ARGS:--DGGML_NATIVE=OFF}
want=$({ sha256sum pyproject.toml; echo "CMAKE_ARGS=$CMAKE_ARGS"; } | sha256sum | cut -d' ' -f1)
if [ -x "$VENV/bin/python" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  echo "setup-venv: $VENV up to date, nothing to do"
  exit 0
fi
PY=${PYTHON:-python3}
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
log=$VENV/pip-install.log
# The build flags changed (or are unknown: a venv from before they were recorded): drop the
# old build so that the install below compiles it again.
FLAGS=$VENV/.schedcp-cmake-args
if [ "$(cat "$FLAGS" 2>/dev/null)" != "$CMAKE_ARGS" ]; then
  "$VENV/bin/pip" uninstall -y -q llama-cpp-python >/dev/null 2>&1 || true
fi
# torch is pinned to 2.13.0 in pyproject.toml: the CPU build on this machine's disk. No
# wheel cache: pip keys a built wheel by its source archive alone, so a llama.cpp built with
# other flags would come back from it.
if ! { "$VENV/bin/pip" install -q --upgrade pip && "$VENV/bin/pip" install -q --no-cache-dir -e '.[dev,desktop]'; } \
    >"$log" 2>&1; then
  tail -n 30 "$log" >&2
  echo "setup-venv: pip install failed (full log: $log)" >&2
  exit 1
fi
echo "$CMAKE_ARGS" > "$FLAGS"
echo "$want" > "$STAMP"
echo "setup-venv: installed"
