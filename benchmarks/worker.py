"""One benchmark process: imports one suite program, puts it in one mode, times run(n).

benchmarks/run.py starts this script once per (benchmark, mode, repetition), under the mode's
interpreter (python3, pypy3, or `python3 -m fatjit`), and reads the last line it prints:

    FATJIT-BENCH {"first": s, "times": [s, ...], "result": ..., "peak_rss_kb": k,
                  "compile": s, "stats": {...}, "hot": {...}}

`first` is the duration of the first call (PyPy's warm-up shows there; in fatjit-jit and
fatjit-auto it includes the compiles), `times` the timed calls after the warm-up calls, `result`
what run(n) returned (every call must return the same value; the runner then checks it with the
program's check()), `compile` numba's compile time, `peak_rss_kb` the process's peak RSS
(VmHWM), `stats` fatjit.stats() after the last call in the fatjit modes, `hot` (fatjit-jit and
fatjit-auto) what fatjit.explain says of each HOT function's native code: bytes, native calls,
deopts by reason, or why it was not compiled.

Modes (what this script does to the program before the first call):
  cpython, pypy                nothing
  fatjit-auto                  nothing: this script runs under `python -m fatjit` with
                               FATJIT_SPECIALIZE_THRESHOLD=0 FATJIT_JIT_THRESHOLD=0 (run.py sets
                               them), so every function the process calls is compiled at its
                               first call
  fatjit-ast                   nothing: `python -m fatjit` with FATJIT_AST=1 imports the
                               program through the AST specializer's import hook (run.py)
  fatjit-specialize            fatjit.specialize(f) for every f named in the program's HOT
  fatjit-jit                   fatjit.jit(f) for every f named in HOT
  numba                        numba.njit(f) for every f named in NUMBA, stored back in the module
                               before the first call (so jitted kernels call jitted helpers),
                               then NUMBA[0], the entry point, compiled for (int64,): its
                               duration (callees included) is reported apart as `compile`

Exit status: 0 with the line above; 1 if the program raised or returned different results on
different calls, or if a fatjit mode was not in effect (fatjit-jit / fatjit-auto compiled
nothing, or the JIT backend failed to load or compile: results checked in such a process would
be the interpreter's, so it must not pass as a JIT result); 3 if the mode is not available (the
reason is on stderr).
Keeps to Python 3.9 syntax: Debian's pypy3 runs it too.

    python3 benchmarks/worker.py BENCH N [--mode MODE] [--warmups W] [--runs R]
"""

import argparse
import importlib
import json
import os
import re
import sys
import time

MARKER = "FATJIT-BENCH "
UNAVAILABLE = 3


def peak_rss_kb():
    """This process's peak resident set size in KiB, from VmHWM in /proc/self/status: the
    high-water mark of this program's own memory. (getrusage's ru_maxrss would not do: Linux
    carries the parent's RSS at fork over into it, so every child of a large runner would report
    at least the runner's size.) None where there is no /proc."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def resolve(module, dotted):
    """(owner, attribute name, function) for "func" or "Class.method" in module."""
    owner = module
    parts = dotted.split(".")
    for part in parts[:-1]:
        owner = getattr(owner, part)
    if isinstance(owner, type):
        func = owner.__dict__[parts[-1]]
    else:
        func = getattr(owner, parts[-1])
    if isinstance(func, property):
        func = func.fget
    return owner, parts[-1], func


def decorate(module, names, decorator):
    """Applies decorator to each named function and stores the result back where it was found,
    so that later calls through the module or the class reach the decorated function."""
    for dotted in names:
        owner, name, func = resolve(module, dotted)
        decorated = decorator(func)
        if isinstance(owner, type) and isinstance(owner.__dict__[name], property):
            continue  # a property's getter: specializing its code object is what matters
        setattr(owner, name, decorated)


def apply_mode(module, mode):
    """Puts module in mode; returns the compile time in seconds (numba) or None."""
    if mode in ("cpython", "pypy", "fatjit-auto", "fatjit-ast"):
        return None
    if mode in ("fatjit-specialize", "fatjit-jit"):
        import fatjit
        if mode == "fatjit-specialize":
            decorator = fatjit.specialize
        elif hasattr(fatjit, "jit"):
            decorator = fatjit.jit
        else:
            raise NotImplementedError("this fatjit has no fatjit.jit")
        decorate(module, module.HOT, decorator)
        return None
    if mode == "numba":
        names = getattr(module, "NUMBA", None)
        if not names:
            raise NotImplementedError("%s has no numba kernels" % module.__name__)
        import numba
        decorate(module, names, numba.njit)
        start = time.perf_counter()
        getattr(module, names[0]).compile("(int64,)")
        return time.perf_counter() - start
    raise ValueError("unknown mode %r" % mode)


NATIVE_LINE = re.compile(r"JIT: native code, (\d+) bytes, compiled in ([\d.]+) ms, (\d+) native "
                         r"calls, (\d+) deopt sites")
DEOPT_LINE = re.compile(r"deopt to offset \d+ \((\w+)\): (\d+) times")
NOT_COMPILED_LINE = re.compile(r"JIT: not compiled \((.*)\)$")


def hot_report(module):
    """{dotted name: what fatjit.explain(f) says of f's native code} for the HOT functions:
    code_bytes, compile_ms, native_calls, deopts {reason: count} (summed over its
    specializations), or not_compiled: the reason. (explain's text is the only per-function
    view fatjit offers; a line this does not recognize leaves the entry empty, never wrong.)"""
    import fatjit
    report = {}
    for dotted in module.HOT:
        func = resolve(module, dotted)[2]
        entry = {}
        for line in fatjit.explain(func).splitlines():
            line = line.strip()
            native = NATIVE_LINE.search(line)
            if native:
                entry["code_bytes"] = entry.get("code_bytes", 0) + int(native.group(1))
                entry["compile_ms"] = entry.get("compile_ms", 0.0) + float(native.group(2))
                entry["native_calls"] = entry.get("native_calls", 0) + int(native.group(3))
                entry.setdefault("deopts", {})
                continue
            deopt = DEOPT_LINE.search(line)
            if deopt:
                deopts = entry.setdefault("deopts", {})
                deopts[deopt.group(1)] = deopts.get(deopt.group(1), 0) + int(deopt.group(2))
                continue
            refused = NOT_COMPILED_LINE.search(line)
            if refused and "code_bytes" not in entry:
                entry["not_compiled"] = refused.group(1)
        report[dotted] = entry
    return report


def mode_not_in_effect(mode, stats):
    """Why a fatjit-jit / fatjit-auto process did not run what its mode claims, or None."""
    jit = stats.get("jit")
    if jit is None:
        return "fatjit.stats() has no 'jit' section"
    broken = {k: jit["refused"].get(k, 0) for k in ("backend_unavailable", "backend_error")}
    if any(broken.values()):
        return "the JIT backend failed: %s (see FATJIT_LOG=compile)" % broken
    if mode == "fatjit-auto":
        if not stats.get("auto_mode") or stats.get("specialize_threshold") != 0 \
                or jit.get("threshold") != 0:
            return ("automatic mode is not on with both thresholds 0: auto_mode=%s "
                    "specialize_threshold=%s jit threshold=%s" % (
                        stats.get("auto_mode"), stats.get("specialize_threshold"),
                        jit.get("threshold")))
    if jit["compiled"] == 0 or jit["native_calls"] == 0:
        return "nothing ran as native code (compiled %d, native calls %d)" % (
            jit["compiled"], jit["native_calls"])
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench")
    parser.add_argument("n", type=int)
    parser.add_argument("--mode", default="cpython")
    parser.add_argument("--warmups", type=int, default=1)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    module = importlib.import_module("suite." + args.bench)
    try:
        compile_time = apply_mode(module, args.mode)
    except NotImplementedError as error:
        print("%s: %s" % (args.mode, error), file=sys.stderr)
        return UNAVAILABLE

    run, n = module.run, args.n
    calls = max(args.warmups + args.runs, 1)
    times, results = [], []
    for call in range(calls):
        if call == args.warmups and args.mode.startswith("fatjit-"):
            # The JIT's optimizing tier compiles on a background thread during the warm-up
            # calls; the timed calls measure the code it made, not a race with it (compile time
            # is reported apart, as numba's is).
            import fatjit
            if hasattr(fatjit, "wait_for_compiles"):
                fatjit.wait_for_compiles()
        start = time.perf_counter()
        result = run(n)
        times.append(time.perf_counter() - start)
        results.append(json.loads(json.dumps(result)))
    if any(r != results[0] for r in results[1:]):
        print("%s [%s]: run(%d) returned different results: %r" % (
            args.bench, args.mode, n, results), file=sys.stderr)
        return 1
    report = {"first": times[0], "times": times[args.warmups:] or times[-1:],
              "result": results[0], "peak_rss_kb": peak_rss_kb()}
    if compile_time is not None:
        report["compile"] = compile_time
    if args.mode.startswith("fatjit-"):
        import fatjit
        report["stats"] = fatjit.stats()
        if args.mode == "fatjit-ast" and not report["stats"].get("ast", {}).get(
                "modules_seen"):
            print("%s [fatjit-ast]: mode not in effect: the import hook saw no module (%s)" % (
                args.bench, report["stats"].get("ast")), file=sys.stderr)
            return 1
        if args.mode in ("fatjit-jit", "fatjit-auto"):
            report["hot"] = hot_report(module)
            why = mode_not_in_effect(args.mode, report["stats"])
            if why:
                print("%s [%s]: mode not in effect: %s" % (args.bench, args.mode, why),
                      file=sys.stderr)
                return 1
    sys.stdout.flush()
    print(MARKER + json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
