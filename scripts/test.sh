#!/usr/bin/env bash
# Set up (if needed), then lint, type-check and run the whole test suite (offline, CPU).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check qvl_integrations tests benchmarks
.venv/bin/ruff format --check qvl_integrations tests benchmarks
.venv/bin/mypy
HF_HUB_OFFLINE=1 exec .venv/bin/python -m pytest "$@"
