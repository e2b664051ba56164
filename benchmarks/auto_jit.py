"""Automatic mode with and without its JIT, next to plain CPython, in one run.

    python3 benchmarks/auto_jit.py                          # the 19 suite programs, 3 processes
    python3 benchmarks/auto_jit.py --only fib,stack_vm --processes 5

What automatic mode's default JIT threshold (ext/tuning.h, kDefaultJitThreshold) is decided on:
each suite program run by benchmarks/worker.py (`N --mode cpython --warmups W --runs R`: the
program as it is, nothing decorated) under three settings, interleaved process by process so
that drift hits all three alike:
  cpython   plain python3
  jit-off   python3 -m fatjit with FATJIT_JIT_THRESHOLD=off: automatic mode's specializer only
  default   python3 -m fatjit with fatjit's defaults: specialized and compiled at 1,000 calls,
            codegen on the background thread, straight at the optimizing tier
and with --ast a fourth:
  ast       the default setting plus FATJIT_AST=1: the suite module imported through the AST
            specializer's import hook (its cache in a private PYTHONPYCACHEPREFIX, filled by the
            first process), its specialized code compiled once hot like any function's
Per program: the median over processes of each process's median timed call, and the speed
relative to cpython; then the geometric mean of the speeds. The timed calls are not held back
for compiles still under way (worker.py does not wait in the cpython mode): what a program sees.
"""

import argparse
import importlib
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PROGRAMS = ["int_loop", "float_loop", "fib", "globals_builtins", "json_encode", "method_chain",
            "scheduler", "nbody", "generators", "word_count", "stack_vm", "csv_roundtrip",
            "mandelbrot", "matmul", "particles", "shortest_paths", "sieve", "spectral_norm",
            "tokenizer"]
SETTINGS = {"cpython": None, "jit-off": {"FATJIT_JIT_THRESHOLD": "off"}, "default": {}}


def run_once(program, n, setting, package, warmups, runs):
    """(median timed call in s, the calls' result) of one worker process, or None if it failed
    (the worker checks that every call returned the same value)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FATJIT")}
    env.pop("PYTHONPATH", None)
    if setting == "ast":
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # the hook's cache is written like a .pyc
    command = [sys.executable]
    if SETTINGS[setting] is not None:
        env.update(PYTHONPATH=package, FATJIT="auto", **SETTINGS[setting])
        command += ["-m", "fatjit"]
    command += [os.path.join(HERE, "worker.py"), program, str(n), "--mode", "cpython",
                "--warmups", str(warmups), "--runs", str(runs)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=HERE)
    lines = [line for line in done.stdout.splitlines() if line.startswith("FATJIT-BENCH ")]
    if done.returncode != 0 or not lines:
        print(f"  {program} {setting}: failed: {done.stderr.strip()[-300:]}", file=sys.stderr)
        return None
    report = json.loads(lines[-1][len("FATJIT-BENCH "):])
    return statistics.median(report["times"]), report["result"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated programs (default: all 19)")
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--warmups", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--size", choices=["quick", "full"], default="full")
    parser.add_argument("--package", default=os.path.join(ROOT, "build", "python"),
                        help="the directory holding the fatjit package (default: build/python)")
    parser.add_argument("--ast", action="store_true",
                        help="also run the default setting with FATJIT_AST=1 (setting 'ast')")
    args = parser.parse_args()
    if args.ast:
        SETTINGS["ast"] = {"FATJIT_AST": "1",
                           "PYTHONPYCACHEPREFIX": tempfile.mkdtemp(prefix="fatjit-ast-cache-")}
    programs = args.only.split(",") if args.only else PROGRAMS
    sys.path.insert(0, HERE)
    speeds = {setting: [] for setting in SETTINGS if setting != "cpython"}
    print(f"{'program':17}" + "".join(f"{s:>20}" for s in SETTINGS))
    failed = False
    for program in programs:
        module = importlib.import_module("suite." + program)
        n = module.SIZES[args.size]
        times = {setting: [] for setting in SETTINGS}
        for _ in range(args.processes):
            for setting in SETTINGS:
                got = run_once(program, n, setting, args.package, args.warmups, args.runs)
                if got is not None:
                    module.check(n, got[1])  # a wrong result raises: never a speed-up
                    times[setting].append(got[0])
        if not all(times.values()):
            failed = True
            continue
        base = statistics.median(times["cpython"])
        cells = []
        for setting, ts in times.items():
            median = statistics.median(ts)
            cells.append(f"{median * 1e3:9.1f} ms {base / median:5.2f}x")
            if setting in speeds:
                speeds[setting].append(base / median)
        print(f"{program:17}" + "".join(f"{c:>20}" for c in cells), flush=True)
    for setting, values in speeds.items():
        if values:
            mean = math.exp(sum(math.log(v) for v in values) / len(values))
            print(f"geometric mean of speed vs cpython, {setting}: {mean:.2f}x "
                  f"({len(values)} programs)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
