#!/usr/bin/env bash
# CPython's own regression suite under fatjit's automatic mode, next to the same run without it.
#
# Runs `python -m test` twice with the build tree on PYTHONPATH (so both runs start through the
# build tree's sitecustomize.py): once plainly, once with FATJIT=auto and, by default,
# FATJIT_SPECIALIZE_THRESHOLD=0 (every function specialized at its first call: the stress
# setting). Before that, a probe test checks that automatic mode is really on inside regrtest's
# worker processes. Prints the test modules that fail only under fatjit.
# Not part of the default test run: the default subset takes minutes. The ctest
# cpython_regrtest_jit (tests/CMakeLists.txt) runs `--jit` when the configured Python has the
# `test` package, with REGRTEST_ARGS excluding the three cases that fail in this container
# without fatjit (named and explained there).
#
# Usage: scripts/cpython_regrtest.sh [--jit] [TEST...]
#          (default: the modules of scripts/regrtest_modules.txt; `all` for the whole suite)
#   --jit  also compile: FATJIT_JIT_THRESHOLD=$JIT_THRESHOLD (0: every function specialized and
#          compiled to native code at its first call, the JIT's stress setting), in the calling
#          thread unless JIT_BACKGROUND=1 (then on automatic mode's background compiler thread)
# Environment: PYTHON (python3), BUILD (build), JOBS (2), THRESHOLD (0), JIT_THRESHOLD (0),
#              JIT_BACKGROUND (0), OUT (/tmp/fatjit-regrtest: logs), REGRTEST_ARGS (extra
#              arguments, e.g. -u all)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
BUILD=${BUILD:-build}
JOBS=${JOBS:-2}
THRESHOLD=${THRESHOLD:-0}
JIT_THRESHOLD=${JIT_THRESHOLD:-0}
JIT_ENV=()
if [[ ${1:-} == --jit ]]; then
  shift
  JIT_ENV=(FATJIT_JIT_THRESHOLD="$JIT_THRESHOLD" FATJIT_JIT_BACKGROUND="${JIT_BACKGROUND:-0}")
fi
OUT=${OUT:-/tmp/fatjit-regrtest}
PYPATH=$(cd "$BUILD/python" && pwd)
TESTS=("$@")
if [[ ${#TESTS[@]} -eq 0 ]]; then
  mapfile -t TESTS < <(grep -v '^#' scripts/regrtest_modules.txt | grep -v '^$')
elif [[ ${TESTS[*]} == all ]]; then
  TESTS=()  # python -m test with no names runs every module
fi
mkdir -p "$OUT"
# Each run gets the environment of a plain shell minus anything of fatjit's.
unset FATJIT FATJIT_SPECIALIZE_THRESHOLD FATJIT_JIT_THRESHOLD FATJIT_JIT_BACKGROUND FATJIT_STATS \
  FATJIT_LOG

# 1. The probe: automatic mode is on in a worker process, at the threshold asked for.
probe=$(mktemp -d)
trap 'rm -rf "$probe"' EXIT
cat >"$probe/test_fatjit_probe.py" <<'EOF'
import os
import sys
import unittest


class AutoModeInWorker(unittest.TestCase):
    def test_automatic_mode_is_on(self):
        fatjit = sys.modules.get("fatjit")
        self.assertIsNotNone(fatjit, "fatjit was not imported at start-up")
        self.assertTrue(fatjit.is_enabled())
        stats = fatjit.stats()
        self.assertEqual(stats["specialize_threshold"], int(os.environ["FATJIT_SPECIALIZE_THRESHOLD"]))
        self.assertGreater(stats["auto_specialized"], 0)
        if "FATJIT_JIT_THRESHOLD" in os.environ:
            self.assertEqual(stats["jit"]["threshold"], int(os.environ["FATJIT_JIT_THRESHOLD"]))
            self.assertGreater(stats["jit"]["native_calls"], 0)
EOF
env ${JIT_ENV[@]+"${JIT_ENV[@]}"} FATJIT=auto FATJIT_SPECIALIZE_THRESHOLD="$THRESHOLD" \
  PYTHONPATH="$PYPATH" "$PYTHON" -m test --testdir "$probe" -j2 test_fatjit_probe \
  >"$OUT/probe.log" 2>&1 || {
  cat "$OUT/probe.log"; echo "cpython_regrtest: automatic mode is not on in regrtest workers" >&2
  exit 1; }
echo "probe: automatic mode on in regrtest workers (threshold $THRESHOLD${JIT_ENV[@]+, JIT threshold $JIT_THRESHOLD})"

# 2. The two runs. --rerun re-runs a failed module once, so one flaky failure does not count.
run() {  # run NAME ENV... : python -m test with the given environment, log in $OUT/NAME.log
  local name=$1; shift
  local start=$SECONDS status=0
  env "$@" PYTHONPATH="$PYPATH" "$PYTHON" -m test -j"$JOBS" --rerun ${REGRTEST_ARGS:-} \
    "${TESTS[@]}" >"$OUT/$name.log" 2>&1 || status=$?
  echo "$name: exit status $status, $((SECONDS - start)) s, log $OUT/$name.log"
}
run baseline
run fatjit ${JIT_ENV[@]+"${JIT_ENV[@]}"} FATJIT=auto FATJIT_SPECIALIZE_THRESHOLD="$THRESHOLD"

# 3. The comparison: modules that did not pass, per run, from regrtest's summary.
"$PYTHON" - "$OUT/baseline.log" "$OUT/fatjit.log" <<'EOF'
import re
import sys

HEADINGS = ("failed", "failed again", "crashed", "altered the execution environment",
            "altered the execution environment (env changed)", "skipped", "run no tests")


def summary(path):
    """{heading: set of test modules} from the end-of-run summary of python -m test."""
    groups, current = {}, None
    for line in open(path, errors="replace"):
        m = re.match(r"^(?:\d+|All \d+) tests? (.*?):$", line.strip())
        if m and m.group(1) in HEADINGS:
            current = groups.setdefault(m.group(1), set())
        elif current is not None and line.startswith("    "):
            current.update(line.split())
        else:
            current = None
    ok = re.search(r"^(?:All )?(\d+) tests? OK\.", open(path, errors="replace").read(), re.M)
    return groups, int(ok.group(1)) if ok else 0


base, base_ok = summary(sys.argv[1])
fj, fj_ok = summary(sys.argv[2])
bad = lambda g: g.get("failed again", g.get("failed", set())) | g.get("crashed", set())
print(f"baseline: {base_ok} modules OK, not passing: {sorted(bad(base)) or '-'}")
print(f"fatjit:   {fj_ok} modules OK, not passing: {sorted(bad(fj)) or '-'}")
only = sorted(bad(fj) - bad(base))
print(f"failing only under fatjit: {only or 'none'}")
env = sorted(fj.get("altered the execution environment", set()) -
             base.get("altered the execution environment", set()))
if env:
    print(f"environment altered only under fatjit: {env}")
if only:
    # What failed, from the fatjit log: each unittest FAIL/ERROR block (to the end of its
    # traceback) and each fatal error, so a CI log that keeps only the tail still says why.
    lines = open(sys.argv[2], errors="replace").read().splitlines()
    shown = 0
    for i, line in enumerate(lines):
        if re.match(r"^(FAIL|ERROR): |^Fatal Python error", line) and shown < 400:
            block = [line]
            for nxt in lines[i + 1:i + 80]:
                if nxt.startswith(("FAIL: ", "ERROR: ", "Ran ", "=" * 20)):
                    break
                block.append(nxt)
            print("\n".join(block))
            shown += len(block)
sys.exit(1 if only else 0)
EOF
