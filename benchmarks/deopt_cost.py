"""What it costs native code to hand its frame to the interpreter mid-function (issue 3).

A handover is what native code does where it cannot go on: it writes the frame's locals, value
stack and instruction pointer back into the frame and calls _PyEval_EvalFrameDefault, which runs
the rest of the call. Two kinds, each timed on a function compiled with fatjit.jit that hands
over exactly once per call, at a known point, with almost nothing left to run after it:

  error   an exception raised in native code (`raise error` inside try/except): native code
          hands the frame over with throwflag=1, the interpreter adds the traceback entry and
          runs the frame's own handler. Counted in fatjit.stats()["jit"]["raises"].

              def raising(error):
                  try:
                      if error is not None:
                          raise error       # Signal, an Exception subclass, or None
                  except:                   # no global to load: see below
                      return 1
                  return 0

  deopt   tracing switched on by a callee: native code checks `use_tracing` after each call and
          deoptimizes to the next instruction, where the interpreter resumes (throwflag=0).
          Counted in fatjit.stats()["jit"]["deopts"]["tracing"].

              def toggling(on, off):
                  on()          # sys.settrace(tracer), or a no-op
                  off()         # sys.settrace(None), or a no-op
                  return 0

Method: a difference of differences. Each kind has four variants, called with the same driver
loop: the function compiled (J) or a plain copy of it (I: same bytecode in a distinct code
object, never specialized, so it runs in the interpreter through the same PEP 523 hook), each
with the handover's trigger (raising: error=Signal; toggling: on/off really switch tracing) or
without it (error=None; on/off are no-ops). Then

    handover = (J_with - J_without) - (I_with - I_without)

J_with - J_without is what the trigger costs compiled code: the exception (creating it,
the traceback entry, matching the handler) or the tracing (two settrace calls, the tracer's
'call' event for off(), line events) plus the handover. I_with - I_without is what the same
trigger costs the interpreter, which needs no handover: the same exception or tracing work.
What is left is the handover itself, plus the difference between running the few instructions
after it interpreted rather than natively (`return 1`; `off(); return 0`): the tail of a call
after a handover always runs interpreted, so that is part of what a handover costs, kept small
here. The call overhead (the hook, entering native code) and the driver loop are in all four
variants and cancel. The two functions load no global on the path that differs between the
variants (the exception class is an argument, the handler a bare except): native code loads a
global with a dict lookup where the interpreter uses its inline cache, which would be counted
as handover. And the instructions after a handover run on bytecode the interpreter never
quickened (it quickens a code object at RESUME, which a resumed frame skips), so the tails are
instructions it would not specialize anyway.

Discipline: one process (the variants must share the hook state and warm caches). Each
repetition times every variant over CALLS calls with time.perf_counter, in an order that rotates
between repetitions, with the cyclic garbage collector off during the timed loops (as timeit
does: exceptions make no cycles here, and a collection in one variant's loop and not another's
would be noise). Each variant is called once untimed first (compiles). The handover is computed
per repetition from the four samples of that repetition (taken back to back, under the same
machine load, within a few milliseconds: short samples, many repetitions), and the table gives
its median over the repetitions with a 95% confidence interval of that median (distribution-free,
from order statistics): the precision of the figure, which the machine's load sets.
pyperf is not used: its Runner times one function per worker process, which cannot interleave
variants in one process.

Self-checks (exit status 1 on failure): every variant returns what the plain function returns;
the counters prove each variant does what it claims: J_with hands over once per call (raises or
tracing deopts == calls), J_without never does, every J call enters native code, no I call
does, no guard fails; the tracer sees the same events per call in J and I (so the tracing work
subtracted is the same).

Run (from the repository root, after `ninja -C build`):

    PYTHONPATH=build/python python3 benchmarks/deopt_cost.py            # ~10 s
    PYTHONPATH=build/python python3 benchmarks/deopt_cost.py --quick    # correctness, < 1 s
"""

import argparse
import gc
import statistics
import sys
import time
import types

import fatjit


class Signal(Exception):
    pass


def raising(error):
    try:
        if error is not None:
            raise error
    except:  # noqa: E722  (a bare except loads no global: see the module docstring)
        return 1
    return 0


def toggling(on, off):
    on()
    off()
    return 0


TRACER_EVENTS = []


def tracer(frame, event, arg):
    TRACER_EVENTS.append(event)
    return None  # no per-frame (line) tracing: only the 'call' events reach Python


def trace_on():
    sys.settrace(tracer)


def trace_off():
    sys.settrace(None)


def noop_on():
    pass


def noop_off():
    pass


def drive(func, a, b, calls):
    """calls calls of func(a, b) (or func(a) when b is None); the sum of the results."""
    total = 0
    if b is None:
        for _ in range(calls):
            total += func(a)
    else:
        for _ in range(calls):
            total += func(a, b)
    return total


def plain_copy(func):
    """func's bytecode in a distinct code object: never specialized, runs interpreted."""
    code = func.__code__.replace()
    assert code is not func.__code__ and code == func.__code__
    return types.FunctionType(code, func.__globals__, func.__name__ + "_plain")


class Failure(Exception):
    pass


def check(condition, what):
    if not condition:
        raise Failure(what)


class Kind:
    """One kind of handover: the compiled function, its plain copy, and the arguments with and
    without the handover's trigger."""

    def __init__(self, name, func, with_args, without_args, counter, per_call_result):
        self.name = name
        self.jit = fatjit.jit(func)
        self.plain = plain_copy(func)
        self.args = {"with": with_args, "without": without_args}
        self.counter = counter  # stats()["jit"] -> the handover count of this kind
        self.result = per_call_result  # {"with": r, "without": r}: what one call returns

    def variants(self):
        return [(impl, trigger) for impl in ("J", "I") for trigger in ("with", "without")]

    def run(self, impl, trigger, calls, timed):
        func = self.jit if impl == "J" else self.plain
        a, b = self.args[trigger]
        before = fatjit.stats()
        TRACER_EVENTS.clear()
        if timed:
            gc.disable()
        try:
            start = time.perf_counter()
            total = drive(func, a, b, calls)
            elapsed = time.perf_counter() - start
        finally:
            gc.enable()
            sys.settrace(None)
        after = fatjit.stats()
        what = "%s [%s, %s trigger]" % (self.name, impl, trigger)
        check(total == self.result[trigger] * calls,
              "%s: the calls returned %r in all, expected %r" % (
                  what, total, self.result[trigger] * calls))
        handovers = self.counter(after["jit"]) - self.counter(before["jit"])
        native = after["jit"]["native_calls"] - before["jit"]["native_calls"]
        failures = (sum(after["guard_failures"].values())
                    - sum(before["guard_failures"].values()))
        check(failures == 0, "%s: %d guard failures" % (what, failures))
        if impl == "J":
            check(native == calls, "%s: %d of %d calls ran native code" % (what, native, calls))
            want = calls if trigger == "with" else 0
            check(handovers == want, "%s: %d handovers (%s) in %d calls, expected %d" % (
                what, handovers, self.name, calls, want))
        else:
            check(native == 0, "%s: %d calls of the plain copy ran native code" % (what, native))
        return elapsed / calls, list(TRACER_EVENTS)


def kinds():
    return [
        Kind("error", raising, (Signal, None), (None, None), lambda jit: jit["raises"],
             {"with": 1, "without": 0}),
        Kind("deopt", toggling, (trace_on, trace_off), (noop_on, noop_off),
             lambda jit: jit["deopts"]["tracing"], {"with": 0, "without": 0}),
    ]


def median_interval(values):
    """(low, high): a 95% confidence interval of the median of values, from order statistics
    (no assumption about the distribution); the whole range when there are too few values."""
    ordered = sorted(values)
    k = int((len(ordered) - 1.96 * len(ordered) ** 0.5) / 2)
    k = max(0, min(k, (len(ordered) - 1) // 2))
    return ordered[k], ordered[len(ordered) - 1 - k]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="one repetition of a few calls: checks the mechanism, not speed")
    parser.add_argument("--repetitions", type=int, default=200)
    parser.add_argument("--calls", type=int, default=2_000, help="calls per timed sample")
    args = parser.parse_args()
    repetitions, calls = (2, 50) if args.quick else (args.repetitions, args.calls)
    if not hasattr(fatjit, "jit"):
        print("FAILED: this fatjit has no fatjit.jit", file=sys.stderr)
        return 1

    all_kinds = kinds()
    samples = {(k.name, impl, trigger): [] for k in all_kinds for impl, trigger in k.variants()}
    try:
        for kind in all_kinds:
            events = {}
            for impl, trigger in kind.variants():  # compiles J; checks each variant once
                events[impl, trigger] = kind.run(impl, trigger, 3, timed=False)[1]
            check(events["J", "with"] == events["I", "with"],
                  "%s: the tracer saw %r compiled and %r plain" % (
                      kind.name, events["J", "with"], events["I", "with"]))
        for rep in range(repetitions):
            for kind in all_kinds:
                order = kind.variants()
                order = order[rep % len(order):] + order[:rep % len(order)]
                for impl, trigger in order:
                    samples[kind.name, impl, trigger].append(
                        kind.run(impl, trigger, calls, timed=True)[0])
    except Failure as failure:
        print("FAILED: %s" % failure, file=sys.stderr)
        return 1

    print("Cost of a handover from native code to the interpreter: %d interleaved repetitions "
          "x %d calls per variant" % (repetitions, calls))
    print("J = compiled with fatjit.jit, I = the same bytecode interpreted; with/without = the "
          "handover's trigger; ns per call, median over repetitions")
    print("handover = (J with - J without) - (I with - I without), per repetition: median "
          "over the repetitions [95% confidence interval of the median]")
    print()
    print("  %-6s %9s %9s %9s %9s   %-26s %s" % ("kind", "J with", "J w/o", "I with", "I w/o",
                                                "handover ns", "counted in stats()['jit']"))
    for kind in all_kinds:
        s = {v: samples[(kind.name,) + v] for v in kind.variants()}
        handover = [(jw - jo) - (iw - io) for jw, jo, iw, io in zip(
            s["J", "with"], s["J", "without"], s["I", "with"], s["I", "without"])]
        median = {v: statistics.median(t) * 1e9 for v, t in s.items()}
        low, high = median_interval(handover)
        print("  %-6s %9.0f %9.0f %9.0f %9.0f   %-26s %s" % (
            kind.name, median["J", "with"], median["J", "without"], median["I", "with"],
            median["I", "without"], "%.0f [%.0f .. %.0f]" % (
                statistics.median(handover) * 1e9, low * 1e9, high * 1e9),
            "raises" if kind.name == "error" else "deopts['tracing']"))
    print()
    print("  checked: results equal, one handover per J call with the trigger and none without, "
          "every J call native, no I call native, no guard failure, same tracer events")
    if args.quick:
        print("  (--quick: %d repetitions of %d calls; the timings mean nothing)" % (
            repetitions, calls))
    return 0


if __name__ == "__main__":
    sys.exit(main())
