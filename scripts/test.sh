#!/usr/bin/env bash
# Sets everything up and runs every test: GoogleTest and pytest through ctest, against both
# target interpreters: the python3 on PATH (pyenv 3.11.7, build/) and Debian's /usr/bin/python3
# (3.11.2, libpython linked into the executable, build-debian/).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

status=0
run_suite() {  # run_suite PYTHON BUILD_DIR
  echo "=== fatjit tests with $1 ($("$1" -c 'import sys; print(sys.version.split()[0])')) in $2"
  scripts/build.sh "$1" "$2"
  (cd "$2" && ctest --output-on-failure -j 2) || status=1
}
run_suite python3 build
if [[ -x /usr/bin/python3 ]]; then
  run_suite /usr/bin/python3 build-debian
fi
exit $status
