"""The automatic specializer against plain CPython, side by side in one run.

What it measures: interpreted speed of functions marked with fatjit.specialize, in four modes
run in one process, interleaved:

  plain     nothing specialized anywhere, so the PEP 523 hook is not installed: plain CPython.
  dispatch  the targets are specialized with a copy of their own code (`code.replace()`) under
            one guard: every call of a target pays the dispatcher (code state, guard check, code
            swap) and runs the very same bytecode. The cost the specializer must win back.
  stable    @fatjit.specialize (assume="stable", the default): only entry-stable rewrites.
  entry     @fatjit.specialize(assume="entry"): every rewrite (FAT Python's semantics).

Programs (a driver loop, never specialized, calls the targets; in a real program too, only
the marked functions are specialized):

  constants     straight-line helpers reading module constants and math.* (math.pi, math.sqrt,
                math.floor, module floats): the specializer's best case on paper.
  config_flags  a function full of `if DEBUG:` / `if cfg.TRACE:` branches on config globals,
                doing a little arithmetic: dead branches, once that pass exists.
  builtins      len/abs/min/max over small tuples.
  loop          general code: one call running a long arithmetic loop (one global: range).
  calls         general code: recursive fib, call-heavy (the hook's worst case).

Discipline (as benchmarks/dispatch_overhead.py): for each repetition and each program, every mode
in turn (the order rotates between repetitions) is set up (unspecialize everything, then mark
the targets), warmed up with one untimed run (the first call specializes; CPython's inline caches
settle), then timed with time.perf_counter: a sample is the fastest of a few runs (the machine
is shared; interference only ever adds time). The table shows the median sample, the ratio to
plain's median (< 1 is faster), the range of the per-repetition ratios (each against the plain
sample of the same repetition) and what the specializer did with each target (active rewrites /
all rewrites, or the refusal). Results are checked against plain's in every mode and
repetition; exit status 1 on any mismatch.

Then the specialized bytecode's own speed without any hook (the code objects run as plain
functions against the originals), which separates what the rewrites are worth from what
dispatch costs. Last, the specializer's own speed: functions specialized per second over the
standard library (fatjit._fatjit._specialize_report over every function that
tests/python/test_stdlib_sweep.py reaches, under both assumes).

Run (from the repository root, after `ninja -C build`):

    PYTHONPATH=build/python python3 benchmarks/specializer_bench.py            # ~90 s
    PYTHONPATH=build/python python3 benchmarks/specializer_bench.py --quick    # CI, a few s
"""

import argparse
import math
import os
import statistics
import sys
import time
import types

import fatjit

# ------------------------------------------------------------------------------------------------
# The programs

G = 9.81
RHO = 1.225
DRAG = 0.47
SCALE = 2.0
OFFSET = 0.25
cfg = types.ModuleType("cfg")
cfg.TRACE = False
cfg.LIMIT = 1000
cfg.FACTOR = 3
DEBUG = False
VERBOSE = False
CHECKS = False
LOG = []


def circle(r):
    return math.pi * r * r + 2.0 * math.pi * r + math.sqrt(r) * SCALE + math.floor(r) * OFFSET


def ballistics(v, angle):
    return v * v * math.sin(2.0 * angle) / G + 0.5 * RHO * v * v * DRAG * math.cos(angle)


def constants_run(n):
    total = 0.0
    for i in range(n):
        r = 1.0 + (i & 15)
        total += circle(r) + ballistics(r, 0.25)
    return total


def configured(x):
    if DEBUG:
        LOG.append(("configured", x))
    if cfg.TRACE:
        LOG.append(("trace", x))
    if VERBOSE:
        print(x)
    y = x * cfg.FACTOR
    if CHECKS:
        assert y >= 0, "negative"
    if y > cfg.LIMIT:
        y = cfg.LIMIT
    return y


def config_run(n):
    total = 0
    for i in range(n):
        total += configured(i & 511)
    return total


def summary(t):
    return len(t) + abs(min(t)) + abs(max(t))


def builtins_run(n):
    items = ((3, -1, 2), (5, 5), (-7, 1, 2, 3), (0,))
    total = 0
    for i in range(n):
        total += summary(items[i & 3])
    return total


def loop(n):
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def loop_run(n):
    return loop(n)


def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


def calls_run(n):
    return fib(n)


class Program:
    def __init__(self, name, run, quick_n, full_n, targets, calls):
        self.name = name
        self.run = run
        self.quick_n = quick_n
        self.full_n = full_n
        self.targets = targets
        self.calls = calls  # timed runs per sample


PROGRAMS = [
    Program("constants", constants_run, 200, 100_000, [circle, ballistics], 3),
    Program("config_flags", config_run, 200, 200_000, [configured], 3),
    Program("builtins", builtins_run, 200, 200_000, [summary], 3),
    Program("loop", loop_run, 2_000, 1_000_000, [loop], 3),
    Program("calls", calls_run, 12, 24, [fib], 3),
]
MODES = ["plain", "dispatch", "stable", "entry"]


class Failure(Exception):
    pass


def check(condition, what):
    if not condition:
        raise Failure(what)


def _dummy():
    return None


def unspecialize_all():
    for program in PROGRAMS:
        for target in program.targets:
            fatjit.unspecialize(target)


def set_mode(mode, program):
    unspecialize_all()
    if mode == "dispatch":
        for target in program.targets:
            copy = target.__code__.replace()
            fatjit.specialize(target, copy, [fatjit.GuardGlobals(target.__name__)])
    elif mode in ("stable", "entry"):
        for target in program.targets:
            fatjit.specialize(target, assume=mode)
    check(fatjit.stats()["hook_installed"] == (mode != "plain"),
          f"{mode}: hook_installed is {fatjit.stats()['hook_installed']}")


def what_happened(program, mode):
    """For the table: per target, active/all rewrites or the refusal, from explain()."""
    out = []
    for target in program.targets:
        text = fatjit.explain(target)
        if "refused" in text:
            reason = fatjit._fatjit._specialize_report(target, assume=mode)["reason"]
            out.append(f"{target.__name__}: refused ({reason})")
            continue
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("rewrites:"):
                # "rewrites: N, M active in this code object (assume=...)"
                total = line.split()[1].rstrip(",")
                active = line.split()[2]
                out.append(f"{target.__name__}: {active}/{total} active")
    return ", ".join(out)


def time_one(program, mode, n, expected):
    program.run(n)  # warm-up after the mode switch; the first call of each target specializes
    run = program.run
    best = None
    for _ in range(program.calls):
        start = time.perf_counter()
        result = run(n)
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
        check(result == expected, f"{program.name} [{mode}]: result {result!r}, plain gave "
                                  f"{expected!r}")
    return best


BYTECODE_TARGETS = [(circle, (3.0,)), (ballistics, (3.0, 0.25)), (configured, (7,)),
                    (configured, (700,)), (summary, ((3, -1, 2),)), (loop, (300,))]


def bytecode_speed(quick):
    """The specialized code objects' own speed, without the hook: each run as a plain function
    (types.FunctionType over the code _specialize_report built) against the original function,
    interleaved, best of several timeit repeats. Isolates what the rewrites are worth in the
    interpreter from what dispatch costs."""
    import timeit
    number, repeat = (200, 1) if quick else (100_000, 7)
    rows = []
    for func, args in BYTECODE_TARGETS:
        variants = [("original", func)]
        for assume in ("stable", "entry"):
            result = fatjit._fatjit._specialize_report(func, assume=assume)
            if result["code"] is None:
                variants.append((assume, None))
                continue
            variants.append((assume, types.FunctionType(result["code"], func.__globals__,
                                                        func.__name__, func.__defaults__)))
        want = func(*args)
        best = {label: float("inf") for label, f in variants if f is not None}
        for _ in range(repeat):
            for label, f in variants:
                if f is None:
                    continue
                check(f(*args) == want, f"{func.__name__}{args} [{label} code]: {f(*args)!r}, "
                                        f"original gave {want!r}")
                t = timeit.timeit(lambda: f(*args), number=number) / number
                best[label] = min(best[label], t)
        rows.append((f"{func.__name__}{args}", best))
    return rows


def stdlib_speed():
    """(functions, {assume: functions/s, counts}) over the stdlib, via the sweep's collector."""
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, os.path.join(here, "..", "tests", "python"))
    try:
        import test_stdlib_sweep as sweep_module
    finally:
        sys.path.pop(0)
    modules, _ = sweep_module.import_modules()
    functions, nested = sweep_module.collect_functions(modules)
    everything = functions + nested
    out = {}
    for assume in ("stable", "entry"):
        best = None
        for _ in range(3):
            counts, problems, _, _, _, elapsed = sweep_module.sweep(everything, assume)
            best = elapsed if best is None else min(best, elapsed)
        check(not problems, f"stdlib sweep ({assume}): {problems[:3]}")
        out[assume] = (len(everything) / best, counts)
    return len(modules), len(everything), out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="one repetition, tiny sizes: checks correctness, not speed")
    parser.add_argument("--repetitions", type=int, default=7)
    parser.add_argument("--no-stdlib", action="store_true",
                        help="skip the specializer-speed measurement over the stdlib")
    args = parser.parse_args()
    repetitions = 1 if args.quick else args.repetitions

    samples = {(p.name, m): [] for p in PROGRAMS for m in MODES}
    notes = {}
    try:
        unspecialize_all()
        sizes = {p.name: p.quick_n if args.quick else p.full_n for p in PROGRAMS}
        expected = {p.name: p.run(sizes[p.name]) for p in PROGRAMS}
        for rep in range(repetitions):
            order = MODES[rep % len(MODES):] + MODES[:rep % len(MODES)]
            for program in PROGRAMS:
                for mode in order:
                    set_mode(mode, program)
                    samples[program.name, mode].append(
                        time_one(program, mode, sizes[program.name], expected[program.name]))
                    if mode in ("stable", "entry"):
                        notes[program.name, mode] = what_happened(program, mode)
        unspecialize_all()
        bytecode_rows = bytecode_speed(args.quick)
        speed = None if args.no_stdlib else stdlib_speed()
    except Failure as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        return 1
    finally:
        unspecialize_all()

    print(f"Automatic specializer vs plain CPython {sys.version.split()[0]}: {repetitions} "
          f"interleaved repetitions after warm-up; a sample is the best of {PROGRAMS[0].calls} "
          f"runs; median sample;")
    print("ratio = median / plain median (< 1 is faster), [range of the per-repetition ratios]")
    print()
    print(f"  {'program':<13} {'mode':<9} {'median':>10} {'ratio':>7}   {'per-rep ratios':<16}  "
          f"specializer")
    for program in PROGRAMS:
        plain = samples[program.name, "plain"]
        plain_median = statistics.median(plain)
        for mode in MODES:
            times = samples[program.name, mode]
            median = statistics.median(times)
            paired = [t / p for t, p in zip(times, plain)]
            label = f"{program.name}({sizes[program.name]})" if mode == "plain" else ""
            print(f"  {label:<13} {mode:<9} {median * 1e3:>7.2f} ms {median / plain_median:>7.3f}"
                  f"   [{min(paired):.3f} .. {max(paired):.3f}]  "
                  f"{notes.get((program.name, mode), '')}")
    print()
    print("  results: equal to plain CPython's in every mode and repetition")
    if args.quick:
        print("  (--quick: one repetition on tiny sizes; the timings mean nothing)")
    print()
    print("Specialized bytecode alone, no hook (each code object run as a plain function; best "
          "time per call, ratio to the original):")
    for label, best in bytecode_rows:
        cells = [f"original {best['original'] * 1e9:7.1f} ns"]
        for assume in ("stable", "entry"):
            if assume in best:
                cells.append(f"{assume} {best[assume] * 1e9:7.1f} ns "
                             f"({best[assume] / best['original']:.3f})")
            else:
                cells.append(f"{assume} refused")
        print(f"  {label:<24} " + "   ".join(cells))
    if speed is not None:
        modules, total, by_assume = speed
        print()
        print(f"Specializer speed over the stdlib ({modules} modules, {total} functions and "
              f"nested code objects, best of 3):")
        for assume, (rate, counts) in by_assume.items():
            print(f"  assume={assume:<7} {rate:>9,.0f} functions/s   "
                  f"{dict(sorted(counts.items()))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
