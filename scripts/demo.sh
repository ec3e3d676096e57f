#!/usr/bin/env bash
# Set up (if needed) and run the demo; extra arguments go to the demo (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m qvl_integrations.demo "$@"
