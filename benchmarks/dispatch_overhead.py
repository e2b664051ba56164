"""The cost of fatjit's PEP 523 dispatch itself, against plain CPython.

What it measures: three microbenchmarks, each in three modes run side by side in one process:

  plain          no specialization exists anywhere, so the hook is not installed: plain CPython.
  hook-no-spec   the hook is installed (an unrelated dummy function is specialized), but the
                 benchmark's functions have no specialization: every Python call pays the hook's
                 "no CodeState" fast path, and CPython 3.11 stops specializing Python-to-Python
                 calls (CALL_PY_EXACT_ARGS) while any hook is set.
  identical-spec the benchmark's hot function is specialized with a copy of its own code
                 (`code.replace()`: distinct, identical code object) under one guard: every call
                 pays the full dispatch (CodeState lookup, guard check, code swap) and runs the
                 very same bytecode.

  fib            recursive fib(25): ~243k Python calls, each through the hook.
                 identical-spec: fib under GuardGlobals("fib").
  method_calls   a loop calling two small methods: call-heavy, but with some work per call.
                 identical-spec: Counter.incr under GuardType(Counter).
  loop           one call running a 300k-iteration arithmetic loop: the hook is hit once.
                 identical-spec: loop under GuardBuiltins("range").

Discipline: the hook state is per process, so the modes are interleaved in one process: for each
repetition and each benchmark, every mode in turn (the order rotates between repetitions) is
switched on, warmed up with one untimed run (so CPython's inline caches settle after the
switch), then timed with time.perf_counter over 4 calls. The table shows the median time per
call in each mode, the ratio of medians to plain, the range of the per-repetition ratios (each
against the plain sample of the same repetition), and the extra time per Python call. pyperf is not used: its Runner times each benchmark in separate
worker processes one after another, which cannot interleave in-process modes.

Every result is checked against plain mode's, and the fatjit counters are checked to prove each
mode is what it claims (hook set or not, number of specialized runs). Exit status 1 on any
mismatch.

Run (from the repository root, after `ninja -C build`):

    PYTHONPATH=build/python python3 benchmarks/dispatch_overhead.py            # ~10 s
    PYTHONPATH=build/python python3 benchmarks/dispatch_overhead.py --quick    # correctness, < 1 s
"""

import argparse
import statistics
import sys
import time

import fatjit


def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


def fib_calls(n):
    """Number of calls fib(n) makes, itself included."""
    a, b = 1, 1  # calls of fib(0), fib(1)
    for _ in range(n - 1):
        a, b = b, a + b + 1
    return b if n > 0 else 1


class Counter:
    def __init__(self):
        self.total = 0

    def incr(self, k):
        self.total += k
        return self

    def value(self):
        return self.total


def method_calls(n):
    counter = Counter()
    for i in range(n):
        counter.incr(i)
        counter.incr(1)
    return counter.value()


def loop(n):
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def _dummy():
    return None


class Benchmark:
    def __init__(self, name, run, arg, calls, py_calls, target, guards, spec_runs):
        self.name = name
        self.py_calls = py_calls  # Python function calls (frames) per run(), run() itself included
        self.calls = calls      # run() calls per timed sample
        self.run = run          # run(arg) -> result
        self.arg = arg
        self.target = target    # the function identical-spec specializes
        self.guards = guards    # () -> fresh guards for target
        self.spec_runs = spec_runs  # specialized runs per run() in identical-spec mode


def benchmarks(quick):
    fib_n, method_n, loop_n = (10, 200, 2000) if quick else (25, 200_000, 300_000)
    calls = 1 if quick else 4
    return [
        Benchmark(f"fib({fib_n})", fib, fib_n, calls, fib_calls(fib_n), fib,
                  lambda: [fatjit.GuardGlobals("fib")], fib_calls(fib_n)),
        Benchmark(f"method_calls({method_n})", method_calls, method_n, calls,
                  2 * method_n + 3, Counter.incr,
                  lambda: [fatjit.GuardType(Counter)], 2 * method_n),
        Benchmark(f"loop({loop_n})", loop, loop_n, calls, 1, loop,
                  lambda: [fatjit.GuardBuiltins("range")], 1),
    ]


MODES = ["plain", "hook-no-spec", "identical-spec"]


class Failure(Exception):
    pass


def check(condition, what):
    if not condition:
        raise Failure(what)


def unspecialize_all(all_benchmarks):
    for bench in all_benchmarks:
        fatjit.unspecialize(bench.target)
    fatjit.unspecialize(_dummy)


def set_mode(mode, bench, all_benchmarks):
    unspecialize_all(all_benchmarks)
    if mode != "plain":
        fatjit.specialize(_dummy, _dummy.__code__.replace(), [fatjit.GuardFunc(_dummy)])
    if mode == "identical-spec":
        code = bench.target.__code__
        copy = code.replace()
        check(copy is not code and copy == code, "code.replace() did not give an equal copy")
        fatjit.specialize(bench.target, copy, bench.guards())
    check(fatjit.stats()["hook_installed"] == (mode != "plain"),
          f"{mode}: hook_installed is {fatjit.stats()['hook_installed']}")


def time_one(bench, mode, expected):
    bench.run(bench.arg)  # warm-up after the mode switch
    runs_before = fatjit.stats()["specialized_runs"]
    run, arg = bench.run, bench.arg
    start = time.perf_counter()
    for _ in range(bench.calls):
        result = run(arg)
    elapsed = (time.perf_counter() - start) / bench.calls
    runs = fatjit.stats()["specialized_runs"] - runs_before
    check(result == expected, f"{bench.name} [{mode}]: result {result!r}, plain gave {expected!r}")
    want = bench.spec_runs * bench.calls if mode == "identical-spec" else 0
    check(runs == want, f"{bench.name} [{mode}]: {runs} specialized runs, expected {want}")
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="one repetition, tiny sizes: checks correctness, not speed")
    parser.add_argument("--repetitions", type=int, default=7)
    args = parser.parse_args()
    repetitions = 1 if args.quick else args.repetitions
    all_benchmarks = benchmarks(args.quick)

    samples = {(b.name, m): [] for b in all_benchmarks for m in MODES}
    try:
        set_mode("plain", None, all_benchmarks)
        expected = {b.name: b.run(b.arg) for b in all_benchmarks}
        for rep in range(repetitions):
            order = MODES[rep % 3:] + MODES[:rep % 3]
            for bench in all_benchmarks:
                for mode in order:
                    set_mode(mode, bench, all_benchmarks)
                    samples[bench.name, mode].append(time_one(bench, mode, expected[bench.name]))
    except Failure as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        return 1
    finally:
        unspecialize_all(all_benchmarks)

    print(f"Dispatch overhead: {repetitions} interleaved repetitions after warm-up, median time "
          f"per call;")
    print("ratio = median / plain median, [range of the per-repetition ratios],")
    print("ns/call = (median - plain median) / Python calls per run: the cost of one dispatch")
    print()
    print(f"  {'benchmark':<22} {'mode':<15} {'median':>10} {'ratio':>7}   {'per-rep ratios':<16}"
          f" {'ns/call':>7}")
    for bench in all_benchmarks:
        plain = samples[bench.name, "plain"]
        plain_median = statistics.median(plain)
        for mode in MODES:
            times = samples[bench.name, mode]
            median = statistics.median(times)
            paired = [t / p for t, p in zip(times, plain)]
            per_call = "-"
            if mode != "plain" and bench.py_calls > 1:
                per_call = f"{(median - plain_median) / bench.py_calls * 1e9:.1f}"
            print(f"  {bench.name if mode == 'plain' else '':<22} {mode:<15} "
                  f"{median * 1e3:>7.2f} ms {median / plain_median:>7.3f}   "
                  f"[{min(paired):.3f} .. {max(paired):.3f}] {per_call:>7}")
    print()
    print("  results: equal to plain CPython's in every mode and repetition")
    if args.quick:
        print("  (--quick: one repetition on tiny sizes; the timings mean nothing)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
