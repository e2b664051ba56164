"""fatjit demo: a guarded PEP 510 specialization against plain CPython, measured side by side.

What it measures: the run time of one function, an FNV-1a string hash whose hot loop loads three
module globals and a builtin and recomputes a pure expression of a guarded global
(`(1 << BITS) - 1`) on every character, in two modes:

  plain        CPython runs fnv1a's own code; no specialization exists, so fatjit's PEP 523 hook
               is not even installed.
  specialized  fnv1a carries a FAT-Python-style specialization: the same function with the
               guarded globals bound as constants (LOAD_CONST instead of LOAD_GLOBAL), the
               builtin `ord` bound as a constant with fatjit.replace_consts, and the mask
               `(1 << BITS) - 1` folded. It runs only while its guards pass:
               GuardGlobals("BITS", "PRIME", "OFFSET") and GuardBuiltins("ord").

The modes are interleaved in one process (their order alternates), each repetition switches the
mode, warms it up and times it; the table shows the median per mode and the ratio to plain.
Every result is checked against an independent reference implementation, and the script then
rebinds the guarded global (and the builtin) to show that the original code runs again and
computes the right value. Exit status 1 if any result is wrong.

Run (from the repository root, after `ninja -C build`):

    PYTHONPATH=build/python python3 benchmarks/demo.py            # 1-3 s
    PYTHONPATH=build/python python3 benchmarks/demo.py --quick    # correctness only, < 1 s
"""

import argparse
import builtins
import dis
import statistics
import sys
import textwrap
import time
import warnings

import fatjit

BITS = 32
PRIME = 16777619
OFFSET = 2166136261


def fnv1a(text):
    h = OFFSET
    for ch in text:
        h = ((h ^ ord(ch)) * PRIME) & ((1 << BITS) - 1)
    return h


def fnv1a_reference(text, bits, prime, offset):
    """Independent implementation (no globals, no fatjit) that every result is checked against."""
    mask = (1 << bits) - 1
    h = offset
    for byte in [ord(ch) for ch in text]:
        h = ((h ^ byte) * prime) & mask
    return h


# What a FAT Python optimizer would emit for fnv1a given the current values of its globals: the
# same function line for line (so line numbers and the locals layout match the original), with
# the guarded globals as constants, the mask folded and a marker constant standing for `ord`.
# Calling a string literal is what fat.replace_consts() is for: the marker is replaced by the
# builtin object itself, so the call does LOAD_CONST instead of LOAD_GLOBAL.
_SPECIALIZED_TEMPLATE = textwrap.dedent("""\
    def fnv1a(text):
        h = {offset!r}
        for ch in text:
            h = ((h ^ "__fatjit_builtin_ord__"(ch)) * {prime!r}) & {mask!r}
        return h
""")


def specialized_code():
    """The specialized code object for fnv1a under the current BITS, PRIME, OFFSET and `ord`."""
    source = _SPECIALIZED_TEMPLATE.format(offset=OFFSET, prime=PRIME, mask=(1 << BITS) - 1)
    namespace = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)  # "'str' object is not callable"
        exec(compile(source, "<fnv1a specialized>", "exec"), namespace)
    code = fatjit.replace_consts(namespace["fnv1a"].__code__, {"__fatjit_builtin_ord__": ord})
    original = fnv1a.__code__
    return code.replace(co_filename=original.co_filename, co_firstlineno=original.co_firstlineno,
                        co_name=original.co_name, co_qualname=original.co_qualname)


def specialize_fnv1a():
    fatjit.specialize(fnv1a, specialized_code(),
                      [fatjit.GuardGlobals("BITS", "PRIME", "OFFSET"), fatjit.GuardBuiltins("ord")])


class Failure(Exception):
    pass


def check(condition, what):
    if not condition:
        raise Failure(what)


def set_mode(mode):
    if mode == "plain":
        fatjit.unspecialize(fnv1a)
        check(not fatjit.stats()["hook_installed"], "plain mode: the PEP 523 hook is still set")
    else:
        if not fatjit.get_specialized(fnv1a):
            specialize_fnv1a()
        check(fatjit.stats()["hook_installed"], "specialized mode: the PEP 523 hook is not set")


def time_calls(text, calls):
    start = time.perf_counter()
    for _ in range(calls):
        result = fnv1a(text)
    return time.perf_counter() - start, result


def measure(text, calls, repetitions, expected):
    modes = ["plain", "specialized"]
    samples = {mode: [] for mode in modes}
    for rep in range(repetitions):
        for mode in (modes if rep % 2 == 0 else modes[::-1]):
            set_mode(mode)
            fnv1a(text)  # warm-up: quickening, and CPython's inline caches after the mode switch
            runs_before = fatjit.stats()["specialized_runs"]
            elapsed, result = time_calls(text, calls)
            runs = fatjit.stats()["specialized_runs"] - runs_before
            check(result == expected, f"{mode}: fnv1a returned {result}, expected {expected}")
            check(runs == (calls if mode == "specialized" else 0),
                  f"{mode}: {runs} specialized runs for {calls} calls")
            samples[mode].append(elapsed / calls)
    return samples


def check_guards(text):
    """Rebind what the specialization assumed; the original code must run and stay right."""
    global BITS
    set_mode("specialized")
    print("Guard checks (the specialization assumed BITS=32 and the builtin ord):")

    before = fatjit.stats()
    BITS = 16
    try:
        result = fnv1a(text)
    finally:
        BITS = 32
    after = fatjit.stats()
    expected = fnv1a_reference(text, 16, PRIME, OFFSET)
    fell_back = (after["specialized_runs"] == before["specialized_runs"]
                 and after["guard_failures"]["globals"] > before["guard_failures"]["globals"])
    print(f"  BITS = 16: fnv1a -> {result:#x}, reference {expected:#x}: "
          f"{'OK' if result == expected else 'WRONG'}, "
          f"{'original code ran (globals guard failed)' if fell_back else 'SPECIALIZED CODE RAN'}")
    check(result == expected and fell_back, "after rebinding BITS")

    before = fatjit.stats()
    result = fnv1a(text)
    after = fatjit.stats()
    expected = fnv1a_reference(text, 32, PRIME, OFFSET)
    back = after["specialized_runs"] == before["specialized_runs"] + 1
    print(f"  BITS = 32 again: fnv1a -> {result:#x}: {'OK' if result == expected else 'WRONG'}, "
          f"{'specialized code runs again' if back else 'specialized code did NOT run'}")
    check(result == expected and back, "after restoring BITS")

    real_ord = builtins.ord
    builtins.ord = lambda ch: real_ord(ch) + 1  # a different `ord`: the guard must notice
    try:
        before = fatjit.stats()
        result = fnv1a(text)
        after = fatjit.stats()
    finally:
        builtins.ord = real_ord
    shifted = "".join(chr(ord(ch) + 1) for ch in text)
    expected = fnv1a_reference(shifted, 32, PRIME, OFFSET)
    fell_back = (after["specialized_runs"] == before["specialized_runs"]
                 and after["guard_failures"]["builtins"] > before["guard_failures"]["builtins"])
    print(f"  builtins.ord replaced: fnv1a -> {result:#x}, reference {expected:#x}: "
          f"{'OK' if result == expected else 'WRONG'}, "
          f"{'original code ran (builtins guard failed)' if fell_back else 'SPECIALIZED CODE RAN'}")
    check(result == expected and fell_back, "after replacing builtins.ord")
    print()


def hot_line(code):
    """The instructions of the loop body's line (the 4th line of the function), compactly."""
    line, out = None, []
    for instr in dis.get_instructions(code):
        if instr.starts_line is not None:
            line = instr.starts_line
        if line == code.co_firstlineno + 3:
            out.append(f"{instr.opname} {instr.argrepr}".strip())
    return ", ".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="one repetition on a tiny input: checks correctness, not speed")
    parser.add_argument("--repetitions", type=int, default=15)
    args = parser.parse_args()
    if args.quick:
        text, calls, repetitions = "Hello, FAT Python! " * 20, 2, 1
    else:
        text, calls, repetitions = "The quick brown fox jumps over the lazy dog. " * 500, 10, \
            args.repetitions

    expected = fnv1a_reference(text, BITS, PRIME, OFFSET)
    try:
        samples = measure(text, calls, repetitions, expected)
        print(f"fnv1a over {len(text)} characters, {calls} calls per sample, "
              f"{repetitions} interleaved repetitions, median per call:")
        print()
        plain = statistics.median(samples["plain"])
        print(f"  {'mode':<13} {'median':>10} {'ratio':>7} {'speed-up':>9}   {'min .. max':>19}")
        for mode in ("plain", "specialized"):
            median = statistics.median(samples[mode])
            print(f"  {mode:<13} {median * 1e3:>7.3f} ms {median / plain:>7.3f} "
                  f"{plain / median:>8.2f}x   {min(samples[mode]) * 1e3:>7.3f} .. "
                  f"{max(samples[mode]) * 1e3:.3f} ms")
        print(f"  results: every call equal to the reference ({expected:#x})")
        if args.quick:
            print("  (--quick: one repetition on a tiny input; the timings mean nothing)")
        print()
        print(f"{'Hot loop line, original:':>28} {hot_line(fnv1a.__code__)}")
        print(f"{'specialized:':>28} {hot_line(specialized_code())}")
        print()
        check_guards(text)
        print(fatjit.explain(fnv1a))
    except Failure as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        return 1
    finally:
        fatjit.unspecialize(fnv1a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
