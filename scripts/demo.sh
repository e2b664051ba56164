#!/usr/bin/env bash
# Sets everything up, builds fatjit for the python3 on PATH and runs the demo: a guarded
# specialization measured side by side with plain CPython in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh python3 build
PYTHONPATH=build/python exec python3 benchmarks/demo.py "$@"
