"""Instructions per unit of work, plain CPython next to fatjit, counted by valgrind's callgrind.

Wall time on a shared 2-core host moves by 20-70% between runs; instruction counts do not. For
each program of benchmarks/suite/ and each mode (cpython, fatjit-jit), a child process warms the
program up (run(W) twice, then waits for background compiles), then calls run(N) once; another
does the same and calls run(N) three times. Half the difference of the two totals is what one
run(N) costs, start-up, warm-up and compiles cancelled out. The JIT modes compile at the
optimizing tier directly (FATJIT_JIT_OPT=1), so no tier-up lands inside the counted calls.

    python3 benchmarks/instruction_counts.py --only float_loop,globals_builtins,generators
    python3 benchmarks/instruction_counts.py --only fib --n 20

Needs valgrind (apt-get install valgrind). Instructions are not time (a cache miss costs more
than an add), but a mode that runs fewer of them for the same result does less work. Pick N so
that one run(N) is well over 10 million instructions: below that, one-off work in one of the two
processes (a garbage collection, a dict resize, a cache refilled) is a visible share of the
difference, and the row is marked "small N" (fib at its quick size 12 moved by 2x between runs;
at 20 it repeats to 0.2%).
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

CHILD = """
import sys
sys.path.insert(0, {here!r})
import importlib, worker
module = importlib.import_module("suite." + {name!r})
mode, warm, n, reps = {mode!r}, {warm}, {n}, {reps}
worker.apply_mode(module, mode)
module.run(warm)
module.run(warm)
if mode.startswith("fatjit"):
    import fatjit
    fatjit.wait_for_compiles()
for _ in range(reps):
    module.run(n)
"""

TOTAL = re.compile(r"^([\d,]+) \(100\.0%\) +PROGRAM TOTALS|^([\d,]+) +PROGRAM TOTALS", re.M)


def count(python, env, name, mode, warm, n, reps):
    """Instructions of one child process (callgrind's program total)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        script = CHILD.format(here=HERE, name=name, mode=mode, warm=warm, n=n, reps=reps)
        subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out, python,
                        "-c", script], env=env, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        report = subprocess.run(["callgrind_annotate", out], capture_output=True, text=True,
                                check=True).stdout
    match = TOTAL.search(report)
    if match is None:
        raise RuntimeError("callgrind_annotate printed no program total")
    return int((match.group(1) or match.group(2)).replace(",", ""))


# N per program for one run(N) of well over 10 million instructions in both modes (measured
# 2026-11-27: fib(20) 10-12 M, the others 45-430 M), so that --only over the whole suite needs no
# --n; a program not listed gets its quick size.
COUNT_SIZES = {"fib": 20, "int_loop": 100_000, "float_loop": 100_000, "sieve": 100_000,
               "nbody": 2_000, "particles": 2_000, "matmul": 40, "mandelbrot": 60,
               "spectral_norm": 60, "shortest_paths": 40, "stack_vm": 3_000, "scheduler": 5_000,
               "method_chain": 20_000, "globals_builtins": 20_000, "tokenizer": 400,
               "word_count": 20_000, "json_encode": 300, "csv_roundtrip": 5_000,
               "generators": 50_000}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="float_loop,globals_builtins,generators",
                        help="comma-separated programs of benchmarks/suite/")
    parser.add_argument("--modes", default="cpython,fatjit-jit")
    parser.add_argument("--n", type=int, default=0,
                        help="the size of the counted calls, for every program (default: its "
                             "COUNT_SIZES entry, else its quick size)")
    parser.add_argument("--warm", type=int, default=0,
                        help="the warm-up size (default: the program's quick size)")
    parser.add_argument("--fatjit-path", default=os.path.join(ROOT, "build", "python"))
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("instruction_counts.py needs valgrind: apt-get install valgrind")
    python = os.path.realpath(sys.executable)
    env = dict(os.environ, PYTHONPATH=args.fatjit_path, FATJIT_JIT_OPT="1")
    env.pop("FATJIT", None)
    sys.path.insert(0, HERE)
    import importlib
    modes = args.modes.split(",")
    print("thousands of instructions per run(N) (callgrind: 3 calls minus 1, halved); last "
          "column: the first mode's count over the second's")
    print("%-18s %8s" % ("benchmark", "N") + "".join("%14s" % m for m in modes) + "%10s" % "ratio")
    for name in args.only.split(","):
        quick = importlib.import_module("suite." + name).SIZES["quick"]
        n = args.n or COUNT_SIZES.get(name, quick)
        warm = args.warm or quick
        row = "%-18s %8d" % (name, n)
        per_run = []
        for mode in modes:
            once = count(python, env, name, mode, warm, n, 1)
            thrice = count(python, env, name, mode, warm, n, 3)
            per_run.append((thrice - once) / 2)
            row += "%14.1f" % (per_run[-1] / 1000)
        if len(per_run) >= 2 and per_run[1] > 0:
            row += "%9.2fx" % (per_run[0] / per_run[1])
        if min(per_run) < 10_000_000:
            row += "  small N: raise --n"
        print(row, flush=True)


if __name__ == "__main__":
    main()
