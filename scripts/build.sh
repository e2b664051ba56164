#!/usr/bin/env bash
# Configures and builds fatjit for one interpreter: scripts/build.sh [PYTHON [BUILD_DIR]].
# Defaults: the python3 on PATH into build/. The build tree holds an importable package at
# BUILD_DIR/python (PYTHONPATH=build/python python3 -c "import fatjit").
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${1:-python3}
BUILD_DIR=${2:-build}
# Resolve pyenv shims to the real interpreter, so CMake finds its headers and libpython.
PYTHON_EXE=$("$PYTHON" -c 'import sys; print(sys.executable)')
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DPython_EXECUTABLE="$PYTHON_EXE" >/dev/null
cmake --build "$BUILD_DIR" -j 2
