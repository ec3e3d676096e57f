#!/usr/bin/env bash
# Create or update .venv with the package, its extras and the dev tools.
# Idempotent: re-running it after a change to pyproject.toml or constraints.txt updates the venv.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV=.venv
stamp="$VENV/.qvl-setup-stamp"
want="$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)"
if [ -x "$VENV/bin/python" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
pip=("$VENV/bin/python" -m pip install --disable-pip-version-check -q)
# torch first and pinned, so no resolver ever swaps in a multi-gigabyte CUDA build.
"${pip[@]}" "torch==2.13.0"
"${pip[@]}" -c constraints.txt -e ".[dev,video,langchain,llamaindex,bench]" "torch==2.13.0"
# PyPI's torchcodec is a CUDA build that breaks qwen-vl-utils' video reading on CPU machines.
"$VENV/bin/python" -m pip uninstall -y -q torchcodec 2>/dev/null || true
echo "$want" > "$stamp"
