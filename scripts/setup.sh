#!/usr/bin/env bash
# Installs everything fatjit needs, idempotently: the Debian packages that are missing (apt-get)
# and the pinned Python tools of requirements.txt for the default python3 (pip, from PyPI).
# Safe to run again: it installs nothing that is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake ninja-build git
  llvm-19-dev          # the JIT tier's backend (LLVM 19 ORC LLJIT; see README "Dependencies")
  libabsl-dev          # Status/StatusOr, flat_hash_map, str_format
  libgtest-dev         # C++ tests
  libbenchmark-dev     # C++ micro-benchmarks
  python3-dev          # headers of Debian's python3 (3.11.2), the second target interpreter
  python3-pytest python3-hypothesis   # test tools for Debian's python3 (PEP 668: no pip there)
  pypy3                # the pypy mode of benchmarks/run.py (Debian's PyPy 7.3, Python 3.9)
  valgrind             # scripts/leak_check.sh: the compiled workload under memcheck (ctest)
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

PYTHON=${PYTHON:-$(command -v python3)}
"$PYTHON" -m pip install -q --disable-pip-version-check -r requirements.txt
