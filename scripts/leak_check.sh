#!/usr/bin/env bash
# Runs a compiled workload (tests/leaks/jit_workload.py) under valgrind's memcheck and fails if
# any block is definitely lost with fatjit's code on its allocation stack, or if memcheck reports
# an error (invalid read/write, use of uninitialised memory) with fatjit's code on its stack.
# Errors inside the interpreter or the loader (their known false positives) are not ours.
# Usage: scripts/leak_check.sh [PYTHON [BUILD_DIR]]   (defaults: python3, build)
# Python allocates through malloc here (PYTHONMALLOC=malloc) so that memcheck sees every object;
# the interpreter's own reachable-at-exit memory is not a leak and is not reported.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
python=${1:-python3}
build=${2:-$root/build}
command -v valgrind >/dev/null || { echo "leak_check: valgrind is not installed (scripts/setup.sh installs it)" >&2; exit 1; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
PYTHONMALLOC=malloc PYTHONPATH="$build/python" valgrind --tool=memcheck --leak-check=full \
  --show-leak-kinds=definite --errors-for-leak-kinds=definite --num-callers=40 \
  --log-file="$log" "$("$python" -c "import sys; print(sys.executable)")" \
  "$root/tests/leaks/jit_workload.py"
# A definite leak whose stack passes through fatjit (jit/, ext/, guards/, specializer/).
if grep -A40 "definitely lost in" "$log" | grep -qE "fatjit|/work/main|_fatjit|libfatjit_llvm"; then
  grep -B2 -A40 "definitely lost in" "$log" >&2
  echo "leak_check: definite leak from fatjit (log above)" >&2
  exit 1
fi
# An error is ours when fatjit's code is among the innermost three frames (deeper, it is only
# the caller of the library that erred, e.g. dlopen's known over-reads in ld.so).
ours=$(awk '/^==[0-9]+== [A-Z]/{if (top ~ /fatjit/) print block; block=$0; top=""; n=0; next}
             /(at|by) 0x/ {n++; if (n <= 3) top = top $0}
             {block = block "\n" $0}
             END {if (top ~ /fatjit/) print block}' "$log" | grep -v "definitely lost" || true)
if [[ -n $ours ]]; then
  echo "$ours" >&2
  echo "leak_check: memcheck errors in fatjit's code (above)" >&2
  exit 1
fi
grep -E "definitely lost:|ERROR SUMMARY" "$log" || true
echo "leak_check: no definite leak from fatjit"
