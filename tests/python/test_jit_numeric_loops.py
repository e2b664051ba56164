"""Numeric loops in native code (jit/lower_numeric_loops.cc).

A loop whose body is only int and float arithmetic on locals (range iteration at its head,
comparisons, branches, break and continue) keeps those locals unboxed across iterations: they are
type-tested and unboxed when the loop is entered, and boxed back into the frame when it is left,
when the eval breaker is set, or when an operation cannot be done inline (then the loop leaves
for that operation's per-instruction code, with the values of the moment). These tests run
loop-shaped functions compiled and interpreted and require the same results, exceptions,
traceback lines and frame locals, the same objects left to aliases and to the range iterator,
small ints that are the cached ones, and unchanged reference counts.
"""

import math
import signal
import sys
import threading
import time
import traceback

import pytest
from hypothesis import given, settings, strategies as st

import fatjit
from support import new_module, outcome_with_locals as outcome


LOOPS = """
def int_sum(a, n):
    total = 0
    for i in range(n):
        total = total + a * i
    return total

def float_sum(a, n):
    total = 0.0
    x = 0.0
    for i in range(1, n):
        x = i * a
        total += x * x / (1.0 + x)
    return total, x

def branches(a, n):
    odd = 0
    even = 0
    for i in range(n):
        if i % 2 == 1:
            odd += a
            continue
        even = even - a
    return odd, even

def breaks(a, n):
    found = -1
    total = 0
    for i in range(n):
        total += i * a
        if total > 1000:
            found = i
            break
    return found, total

def while_loop(a, b):
    k = 0
    x = a
    while k < 50:
        x = x * 3 + b
        if x > 100000:
            break
        k += 1
    return k, x

def grows(a, n):
    x = a
    for i in range(n):
        x = x * 7 + i
    return x

def divides(a, b, n):
    q = 0
    for i in range(n):
        q = q + a // (b - i)
    return q

def kinds(a, n):
    total = 0
    for i in range(n):
        total = total + a
    return total

def collatz(n):
    steps = 0
    while n != 1:
        if n % 2 == 0:
            n = n // 2
        else:
            n = 3 * n + 1
        steps += 1
    return steps

def untouched(a, n):
    x = a
    y = a
    for i in range(n):
        if i > 1000000:
            x = x + 1
    return x is y, x

def small_results(a, n):
    x = a
    for i in range(n):
        x = x - x + 7
    return x
"""

NAMES = [line[4:line.index("(")] for line in LOOPS.splitlines() if line.startswith("def ")]
_PLAIN = new_module(LOOPS)
_NATIVE = new_module(LOOPS)


@pytest.fixture(autouse=True, scope="module")
def _compiled():
    for name in NAMES:
        fatjit.jit(getattr(_NATIVE, name))
    yield
    for name in NAMES:
        fatjit.unspecialize(getattr(_NATIVE, name))




def same(name, *args):
    got = outcome(lambda: getattr(_NATIVE, name)(*args))
    want = outcome(lambda: getattr(_PLAIN, name)(*args))
    assert got == want, (name, args)


ARGS = {"int_sum": (3, 100), "float_sum": (0.5, 100), "branches": (3, 100), "breaks": (3, 100),
        "while_loop": (1, 2), "grows": (3, 10), "divides": (100, 50, 10), "kinds": (2, 10),
        "collatz": (27,), "untouched": (5, 10), "small_results": (2**40, 5)}


def test_every_loop_is_native_and_unboxed():
    for name in NAMES:
        same(name, *ARGS[name])
        native = getattr(_NATIVE, name)
        assert "JIT: native code" in fatjit.explain(native), name
        assert "loop_generic" in fatjit.explain(native, ir=True), name


numbers = st.one_of(st.integers(-2**70, 2**70), st.integers(-1000, 1000),
                    st.sampled_from([0, 1, -1, 2**62, -(2**63), 2**63 - 1, 2**53 + 1]),
                    st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([True, False, None, "s", 0.0, -0.0, 1.5]))
counts = st.integers(0, 60)


@settings(max_examples=300, deadline=None)
@given(a=numbers, n=counts)
def test_loops_match_the_interpreter(a, n):
    for name in ("int_sum", "float_sum", "branches", "breaks", "grows", "kinds", "untouched",
                 "small_results"):
        same(name, a, n)


@settings(max_examples=200, deadline=None)
@given(a=numbers, b=numbers)
def test_while_loops_match_the_interpreter(a, b):
    same("while_loop", a, b)


def test_collatz():
    for n in (1, 2, 3, 27, 97, 871, 2**40 + 1, 2**61 + 1):
        same("collatz", n)


def test_overflow_mid_loop_finishes_generically():
    # x grows past int64 after a few rounds: that iteration runs again in the generic code, and
    # the entry then refuses the big int at every back edge.
    for a in (1, 3, -5, 2**40):
        same("grows", a, 40)
        assert _NATIVE.grows(a, 40) == _PLAIN.grows(a, 40)


def test_an_error_inside_the_loop_has_the_interpreters_locals():
    # a // (b - i) divides by zero at i == b: the frame holds q and i as the interpreter's.
    for b in (0, 3, 7):
        same("divides", 100, b, 10)
    try:
        _NATIVE.divides(100, 4, 10)
    except ZeroDivisionError as e:
        frame = list(traceback.walk_tb(e.__traceback__))[-1][0]
        assert frame.f_locals["i"] == 4
        assert frame.f_locals["q"] == 100 // 4 + 100 // 3 + 100 // 2 + 100 // 1
    else:
        raise AssertionError("no ZeroDivisionError")


def test_unchanged_locals_keep_their_objects():
    big = 2**50 + 3
    same_object, value = _NATIVE.untouched(big, 20)
    assert same_object and value == big


def test_small_results_are_the_cached_ints():
    seven = int("7")
    for a in (2**40, 10**6, 3):
        assert _NATIVE.small_results(a, 5) is seven


def test_a_range_iterator_continues_where_the_loop_left_it():
    module = new_module("def f(it, limit):\n    total = 0\n    for i in it:\n"
                        "        total = total + i\n        if total > limit:\n"
                        "            break\n    return total\n")
    fatjit.jit(module.f)
    try:
        for _ in range(3):
            it = iter(range(100))
            assert module.f(it, 50) == sum(range(11))
            assert next(it) == 11      # the index went back into the iterator
            assert module.f(it, 10**9) == sum(range(12, 100))
            assert list(it) == []
        assert "loop_generic" in fatjit.explain(module.f, ir=True)
    finally:
        fatjit.unspecialize(module.f)


def test_kinds_changing_between_calls():
    for a in (1, 2.5, 2**62, True, 3, -0.0, 2**64, 7):
        same("kinds", a, 30)
        same("int_sum", a, 30)
        same("float_sum", a, 30)


def test_refcounts_are_unchanged():
    big = int("98765432109876")
    f = 3.25e10
    counts = sys.getrefcount(big), sys.getrefcount(f)
    for _ in range(100):
        _NATIVE.int_sum(big, 20)
        _NATIVE.float_sum(f, 20)
        _NATIVE.kinds(big, 5)
        _NATIVE.untouched(big, 3)
        _NATIVE.breaks(big, 5)
    assert (sys.getrefcount(big), sys.getrefcount(f)) == counts


SPIN = """
def spin(n):
    total = 0
    for i in range(n):
        total = (total + i * 7) % 1000003
    return total
"""


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs signal.setitimer")
def test_a_signal_interrupts_a_numeric_loop():
    module = new_module(SPIN)
    fatjit.jit(module.spin)
    try:
        module.spin(100)
        assert "loop_generic" in fatjit.explain(module.spin, ir=True)
        signal.signal(signal.SIGALRM, signal.default_int_handler)  # before the timer starts
        start = time.perf_counter()
        with pytest.raises(KeyboardInterrupt) as raised:
            signal.setitimer(signal.ITIMER_REAL, 0.05)
            module.spin(10**12)
        assert time.perf_counter() - start < 10
        frame = list(traceback.walk_tb(raised.value.__traceback__))[-1][0]
        assert frame.f_code is module.spin.__code__ or frame.f_code.co_name == "spin"
        assert isinstance(frame.f_locals["total"], int) and frame.f_locals["i"] > 0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        fatjit.unspecialize(module.spin)


def test_another_thread_runs_while_a_numeric_loop_spins():
    module = new_module(SPIN)
    fatjit.jit(module.spin)
    ticks = []
    stop = threading.Event()

    def other():
        while not stop.is_set():
            ticks.append(1)
            time.sleep(0.001)

    try:
        module.spin(100)
        # A loop of about half a second, whatever the speed of the code (the optimizing tier
        # runs 3 million iterations in a few milliseconds, less than the GIL's switch interval).
        start = time.perf_counter()
        module.spin(100_000)
        n = int(100_000 * 0.5 / max(time.perf_counter() - start, 1e-6))
        thread = threading.Thread(target=other)
        thread.start()
        try:
            module.spin(n)
        finally:
            stop.set()
            thread.join()
        assert len(ticks) > 5
    finally:
        fatjit.unspecialize(module.spin)


def test_simpson_matches_pi():
    source = ("def kernel(n):\n    h = 1.0 / n\n    total = 4.0 + 2.0\n    for i in range(1, n):\n"
              "        x = i * h\n        weight = 4.0 if i % 2 == 1 else 2.0\n"
              "        total += weight * 4.0 / (1.0 + x * x)\n    return total * h / 3.0\n")
    plain, native = new_module(source), new_module(source)
    fatjit.jit(native.kernel)
    try:
        for n in (2, 10, 1000, 100000):
            assert native.kernel(n) == plain.kernel(n)
        assert math.isclose(native.kernel(100000), math.pi, rel_tol=1e-12)
        assert "loop_generic" in fatjit.explain(native.kernel, ir=True)
    finally:
        fatjit.unspecialize(native.kernel)


def test_explain_and_stats_count_numeric_loops():
    before = fatjit.stats()["jit"]
    module = new_module(SPIN + "\ndef plain(n):\n    return [n]\n")
    fatjit.jit(module.spin)
    fatjit.jit(module.plain)
    try:
        module.spin(10)
        module.plain(1)
        after = fatjit.stats()["jit"]
        assert after["numeric_loops"] >= before["numeric_loops"] + 1
        assert "unboxed ints and floats in 1 numeric loop" in fatjit.explain(module.spin)
        assert "numeric loop" not in fatjit.explain(module.plain)
    finally:
        fatjit.unspecialize(module.spin)
        fatjit.unspecialize(module.plain)


GLOBALS = """
LIMIT = 50

def escape(a, b):
    k = 0
    x = a
    while k < LIMIT:
        x = x * 3 + b
        if x > 100000:
            break
        k += 1
    return k, x
"""


def test_globals_read_in_a_loop_are_read_at_its_entry():
    plain, native = new_module(GLOBALS), new_module(GLOBALS)
    fatjit.jit(native.escape)
    try:
        for a, b in ((1, 2), (0, 0), (-3, 1), (2**40, 1), (1.5, 0.5)):
            assert native.escape(a, b) == plain.escape(a, b)
        assert "loop_generic" in fatjit.explain(native.escape, ir=True)
        for limit in (3, 0, 2.5, 10**30, -1):   # rebound between calls, to other kinds too
            native.LIMIT = plain.LIMIT = limit
            assert native.escape(1, 1) == plain.escape(1, 1), limit
        del native.LIMIT, plain.LIMIT
        same_error = [outcome(lambda m=m: m.escape(0, 0)) for m in (native, plain)]
        assert same_error[0] == same_error[1] and same_error[0][0] is NameError
    finally:
        fatjit.unspecialize(native.escape)


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs signal.setitimer")
def test_a_signal_handler_that_rebinds_a_global_ends_the_loop():
    # The loop reads LIMIT once at its entry; a handler runs only after the loop committed and
    # left, and the next entry reads LIMIT again, as the interpreter's next LOAD_GLOBAL would.
    module = new_module("LIMIT = 10**15\ndef count():\n    k = 0\n    while k < LIMIT:\n"
                        "        k = k + 1\n    return k\n")
    fatjit.jit(module.count)

    def handler(signum, frame):
        module.LIMIT = 0

    try:
        module.LIMIT = 10
        assert module.count() == 10
        assert "loop_generic" in fatjit.explain(module.count, ir=True)
        module.LIMIT = 10**15
        signal.signal(signal.SIGALRM, handler)
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        start = time.perf_counter()
        k = module.count()
        assert time.perf_counter() - start < 10
        assert 0 < k < 10**15 and module.LIMIT == 0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        fatjit.unspecialize(module.count)


FEEDBACK = """
def poly(x, n):
    acc = x
    for i in range(n):
        acc = acc * 0.5 + x
    return acc
"""


def failed_entries(func):
    import re
    m = re.search(r"(\d+) failed loop entries", fatjit.explain(func))
    return int(m.group(1)) if m else 0


def test_a_loop_whose_parameters_change_kind_is_recompiled_for_the_kinds_seen():
    # Compiled at a call with an int, then called with floats: the loop's entry, which unboxes x
    # as an int, fails at every iteration until the function is compiled again with the kinds seen
    # (jit/kind_feedback.h). Results match the interpreter throughout.
    plain, native = new_module(FEEDBACK), new_module(FEEDBACK)
    fatjit.jit(native.poly)
    try:
        before = fatjit.stats()["jit"]["kind_recompiles"]
        assert native.poly(3, 10) == plain.poly(3, 10)
        first = failed_entries(native.poly)  # acc is still an int at the first entry: 1
        assert first <= 1
        # The entry fails 256 times; the 256th failure reports the kinds seen, and the loop
        # gives its entry up (the generic code runs without its cost until the recompile).
        assert native.poly(1.5, 300) == plain.poly(1.5, 300)
        assert failed_entries(native.poly) == 256
        assert native.poly(1.5, 20) == plain.poly(1.5, 20)    # this call asks for the compile
        fatjit.wait_for_compiles()
        # (>=: under FATJIT_JIT_STRESS automatic mode compiles `plain` too, and recompiles it)
        assert fatjit.stats()["jit"]["kind_recompiles"] >= before + 1
        text = fatjit.explain(native.poly)
        assert ("recompiled 1 time for the kinds its loops met, now (x: float, n: int, i: int)"
                in text)
        for x, n in ((1.5, 1000), (-2.25, 7), (0.0, 0), (1e300, 50)):
            assert native.poly(x, n) == plain.poly(x, n)
        assert failed_entries(native.poly) == 0  # the new code's loop runs unboxed
        # Ints again: still right, run generically by the float code (one more recompile allowed).
        assert native.poly(7, 40) == plain.poly(7, 40)
    finally:
        fatjit.unspecialize(native.poly)


def test_kind_recompiles_stop_at_their_limit():
    # Ints and floats in turn: each switch could ask for another compile; after two (ext:
    # kMaxKindRecompiles) the code stays as it is, and the results stay right.
    plain, native = new_module(FEEDBACK), new_module(FEEDBACK)
    fatjit.jit(native.poly)
    try:
        before = fatjit.stats()["jit"]["kind_recompiles"]
        for round in range(6):
            x = 3 if round % 2 == 0 else 1.5
            for _ in range(3):
                assert native.poly(x, 300) == plain.poly(x, 300)
            fatjit.wait_for_compiles()
        assert fatjit.stats()["jit"]["kind_recompiles"] >= before + 2
        assert "recompiled 2 times" in fatjit.explain(native.poly)
    finally:
        fatjit.unspecialize(native.poly)


def test_a_loop_whose_locals_change_kind_on_its_first_iteration_is_not_recompiled():
    # total starts as an int and becomes a float: the entry fails once per call, and the
    # parameters' kinds are those of the compile, so no compile would do better.
    module = new_module("""
def mean(x, n):
    total = 0
    for i in range(n):
        total = total + x
    return total / n
""")
    fatjit.jit(module.mean)
    try:
        before = fatjit.stats()["jit"]["kind_recompiles"]
        for _ in range(600):
            assert module.mean(0.5, 10) == 0.5
        fatjit.wait_for_compiles()
        assert failed_entries(module.mean) >= 512   # two looks at the frame, neither worth it
        assert fatjit.stats()["jit"]["kind_recompiles"] == before
    finally:
        fatjit.unspecialize(module.mean)


INLINED = """
def a(i, j):
    return 1.0 / ((i + j) * (i + j + 1) // 2 + i + 1)

def mix(x, k):
    y = x * k
    return y - k // 3

def times(v, n, m):
    s = 0.0
    for j in range(n):
        s += a(m, j) * v[j]
    return s

def times_while(v, n, m):  # no call before the loop (range() counts a recursion level too)
    s = 0.0
    j = 0
    while j < n:
        s += a(m, j) * v[j]
        j += 1
    return s

def mixed(x, n):
    total = 0
    for i in range(n):
        total = total + mix(x, i)
    return total

def dot(u, v, n):
    s = 0.0
    for i in range(n):
        s += u[i] * v[-1 - i]
    return s

def counts(c, n):
    t = 0
    for i in range(n):
        t += c[i % 4] * i
    return t

def not_a_leaf(i):
    return len([i])

def calls_other(n):
    t = 0
    for i in range(n):
        t += not_a_leaf(i)
    return t
"""


def inlined_pair():
    plain, native = new_module(INLINED), new_module(INLINED)
    for name in ("times", "times_while", "mixed", "dot", "counts", "calls_other"):
        fatjit.jit(getattr(native, name))
    return plain, native


def release(native):
    for name in ("times", "times_while", "mixed", "dot", "counts", "calls_other"):
        fatjit.unspecialize(getattr(native, name))


def agree(plain, native, name, *args):
    got = outcome(lambda: getattr(native, name)(*args))
    want = outcome(lambda: getattr(plain, name)(*args))
    assert got == want, (name, args, got, want)


def test_small_callees_and_list_items_run_unboxed_in_the_loop():
    # The calls of a and mix are inlined into the loops (their code is straight-line arithmetic),
    # and the list parameters' items read unboxed: each loop is a numeric loop.
    plain, native = inlined_pair()
    try:
        v = [0.5 * k for k in range(50)]
        agree(plain, native, "times", v, 50, 3)       # compiled here: v a list of floats
        agree(plain, native, "mixed", 2, 30)
        agree(plain, native, "dot", v, v[::-1], 50)
        agree(plain, native, "counts", [1, 2, 3, 4], 40)
        agree(plain, native, "calls_other", 5)
        for name in ("times", "mixed", "dot", "counts"):
            assert "in 1 numeric loop" in fatjit.explain(getattr(native, name)), name
        assert "numeric loop" not in fatjit.explain(native.calls_other)  # len() is a call
        # The loops' entries held: the items and arguments were of the kinds compiled for.
        for name in ("times", "dot", "counts"):
            assert failed_entries(getattr(native, name)) <= 1, name
    finally:
        release(native)


items = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-2**70, 2**70),
                  st.sampled_from([True, 0, -0.0, 2**53 + 1, None, "x"]))


@pytest.fixture(scope="module")
def compiled_pair():
    plain, native = inlined_pair()
    native.times([0.5, 1.5], 2, 1)  # compiled for a list of floats
    native.dot([0.5, 1.5], [1.0, 2.0], 2)
    native.counts([1, 2], 2)        # for a list of ints
    yield plain, native
    release(native)


@settings(max_examples=200, deadline=None)
@given(v=st.lists(items, max_size=12), n=st.integers(-2, 14), m=st.one_of(
    st.integers(-5, 5), st.sampled_from([2**62, -(2**63), 0.5, 1e308, None])))
def test_inlined_calls_and_items_match_the_interpreter(compiled_pair, v, n, m):
    # Any items (wrong kinds, past the end), any n and m: a zero divisor inside a (m = -1, j = 0
    # makes the divisor 0), overflow, IndexError, TypeError: the loop leaves for the generic code,
    # which calls a for real (its frame in the traceback) and raises where the interpreter does.
    plain, native = compiled_pair
    agree(plain, native, "times", v, n, m)
    agree(plain, native, "dot", v, v[::-1], n)
    agree(plain, native, "counts", v, n)
    agree(plain, native, "mixed", m, n)


def test_a_zero_divisor_inside_the_inlined_callee_raises_from_its_frame():
    plain, native = inlined_pair()
    try:
        v = [1.0] * 10
        agree(plain, native, "times", v, 10, 3)
        try:
            native.times(v, 10, -1)  # a(-1, 0): 1.0 / 0
        except ZeroDivisionError as error:
            names = [f.f_code.co_name for f, _ in traceback.walk_tb(error.__traceback__)]
            assert names[-2:] == ["times", "a"], names
        else:
            raise AssertionError("no ZeroDivisionError")
        agree(plain, native, "times", v, 10, -1)
    finally:
        release(native)


def test_rebinding_the_callee_or_its_code_is_seen_at_the_next_entry():
    plain, native = inlined_pair()
    try:
        v = [1.0] * 8
        agree(plain, native, "times", v, 8, 2)
        for module in (plain, native):
            module.a = lambda i, j: float(i - j)       # another function: not inlined
        agree(plain, native, "times", v, 8, 2)
        for module in (plain, native):
            def a(i, j):
                return i * 2.0 + j
            module.a = a                                # another leaf
        agree(plain, native, "times", v, 8, 2)
        for module in (plain, native):
            module.a.__code__ = (lambda i, j: i - j * 0.25).__code__  # same function, new code
        agree(plain, native, "times", v, 8, 2)
        for module in (plain, native):
            del module.a                                # NameError, as the interpreter raises
        agree(plain, native, "times", v, 8, 2)
    finally:
        release(native)


def test_an_inlined_call_at_the_recursion_limit_raises_recursion_error():
    # The interpreter's call of `a` counts a recursion level: at the limit it raises
    # RecursionError. The loop's entry requires room for that level, so the generic code makes
    # the call and raises the same, at the same depth.
    plain, native = inlined_pair()
    helper = new_module("""
def descend(f, depth, v):
    if depth == 0:
        return f(v, 4, 1)
    return descend(f, depth - 1, v)
""")
    v = [1.0, 2.0, 3.0, 4.0]
    try:
        agree(plain, native, "times_while", v, 4, 1)
        assert "in 1 numeric loop" in fatjit.explain(native.times_while)
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(len(traceback.extract_stack()) + 40)
        try:
            kinds = []
            for depth in range(20, 45):
                got = outcome(lambda: helper.descend(native.times_while, depth, v))
                want = outcome(lambda: helper.descend(plain.times_while, depth, v))
                assert got[:3] == want[:3], (depth, got, want)  # (locals show `f` itself)
                kinds.append(got[0])
        finally:
            sys.setrecursionlimit(limit)
        assert float in kinds and RecursionError in kinds, kinds
    finally:
        release(native)


REBOUND = """
def step(k):
    return k + 1

def jump(k):
    return k + 10**12

def count(limit):
    k = 0
    while k < limit:
        k = step(k)
    return k
"""


def rebound_count(rebind):
    # `step` is inlined into count's loop. Something outside the loop rebinds it to `jump` after
    # ~50 ms (count's loop would need seconds to reach its limit): that can happen only at the
    # loop's eval-breaker check, which commits and leaves; the next entry finds `step` bound to
    # other code and runs the generic translation, which calls `jump` as the interpreter would.
    # With the old callee still inlined, k would end at the limit exactly, seconds later.
    module = new_module(REBOUND)
    fatjit.jit(module.count)
    try:
        assert module.count(10) == 10
        assert "in 1 numeric loop" in fatjit.explain(module.count)
        with rebind(module):
            start = time.perf_counter()
            k = module.count(3 * 10**9)
        assert time.perf_counter() - start < 10
        assert k > 10**12 and module.step is module.jump, k
    finally:
        fatjit.unspecialize(module.count)


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs signal.setitimer")
def test_a_signal_handler_that_rebinds_an_inlined_callee_is_seen():
    import contextlib

    @contextlib.contextmanager
    def by_signal(module):
        def handler(signum, frame):
            module.step = module.jump
        signal.signal(signal.SIGALRM, handler)
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, signal.SIG_DFL)

    rebound_count(by_signal)


def test_another_thread_that_rebinds_an_inlined_callee_is_seen():
    import contextlib

    @contextlib.contextmanager
    def by_thread(module):
        def rebind():
            time.sleep(0.05)
            module.step = module.jump
        thread = threading.Thread(target=rebind)
        thread.start()
        try:
            yield
        finally:
            thread.join()

    rebound_count(by_thread)


# Stores into list items. An iteration that stored an item and then meets an operation it cannot
# do inline (a zero divisor, an item of another kind, an index past the end) leaves for that
# operation's own translation with the values of the moment: nothing it did is done twice.
STORES = """
def axpy(y, x, a, n):
    for i in range(n):
        y[i] += a * x[i]
    return y

def shift(y, n):
    for i in range(n):
        y[-1 - i] = y[i] * 0.5 + 1.0
    return y

def counts_into(c, n):
    for i in range(n):
        c[i % 4] += i
    return c

def store_then_divide(y, x, n):
    q = 0.0
    for i in range(n):
        y[i] += 1.0
        q = q + 1.0 / x[i]
    return y, q

def store_then_overflow(c, n):
    t = 3
    for i in range(n):
        c[i] = c[i] + 1
        t = t * t
    return c, t
"""

STORE_NAMES = ("axpy", "shift", "counts_into", "store_then_divide", "store_then_overflow")


@pytest.fixture(scope="module")
def stores_pair():
    plain, native = new_module(STORES), new_module(STORES)
    for name in STORE_NAMES:
        fatjit.jit(getattr(native, name))
    native.axpy([0.5, 1.5], [1.0, 2.0], 2.0, 2)  # compiled here: lists of floats
    native.shift([0.5, 1.5], 2)
    native.counts_into([1, 2, 3, 4], 4)           # a list of ints
    native.store_then_divide([0.5], [2.0], 1)
    native.store_then_overflow([1, 2], 2)
    yield plain, native
    for name in STORE_NAMES:
        fatjit.unspecialize(getattr(native, name))


def agree_on_copies(plain, native, name, *args):
    # Each side gets its own copies of the lists, which the comparison then includes.
    def copied():
        return [list(a) if isinstance(a, list) else a for a in args]
    mine, theirs = copied(), copied()
    got = outcome(lambda: getattr(native, name)(*mine))
    want = outcome(lambda: getattr(plain, name)(*theirs))
    assert (got, repr(mine)) == (want, repr(theirs)), (name, args)


def test_stores_into_list_items_run_in_the_numeric_loop(stores_pair):
    plain, native = stores_pair
    x = [0.25 * k for k in range(64)]
    agree_on_copies(plain, native, "axpy", [1.0] * 64, x, 1.5, 64)
    agree_on_copies(plain, native, "shift", x, 64)
    agree_on_copies(plain, native, "counts_into", [0, 0, 0, 0], 100)
    agree_on_copies(plain, native, "store_then_divide", [0.0] * 8, [1.0, 2.0, 0.0, 4.0], 8)
    agree_on_copies(plain, native, "store_then_overflow", list(range(10)), 10)
    for name in STORE_NAMES:
        assert "in 1 numeric loop" in fatjit.explain(getattr(native, name)), name
    y = [1.0] * 64
    native.axpy(y, x, 2.0, 64)
    assert y == [1.0 + 2.0 * v for v in x]
    assert failed_entries(native.axpy) <= 1


def test_a_failed_operation_after_a_store_does_not_store_twice(stores_pair):
    plain, native = stores_pair
    # 1.0 / 0.0 at i == 2, after y[2] += 1.0: y[2] is 1.0 once, and y[3:] untouched.
    y = [0.0] * 6
    with pytest.raises(ZeroDivisionError):
        native.store_then_divide(y, [1.0, 2.0, 0.0, 4.0, 5.0, 6.0], 6)
    assert y == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]
    # t overflows int64 at i == 3: the rest runs generically, each c[i] incremented once.
    c = list(range(8))
    _, t = native.store_then_overflow(c, 8)
    assert c == list(range(1, 9)) and t == 3 ** (2 ** 8)
    # An item of another kind (an int in a list of floats) is read generically, once.
    y = [0.0, 1, 2.0, "s"]
    with pytest.raises(TypeError):
        native.store_then_divide(y, [1.0, 2.0, 4.0, 8.0], 4)
    assert y == [1.0, 2.0, 3.0, "s"]


def test_an_item_shared_with_another_reference_is_replaced_not_mutated(stores_pair):
    plain, native = stores_pair
    shared = float("1.5")
    y = [shared, shared, float("2.5")]
    native.axpy(y, [1.0, 1.0, 1.0], 2.0, 3)
    assert shared == 1.5 and y == [3.5, 3.5, 4.5]
    # Aliased lists: y is x; each read sees the stores before it, as in the interpreter.
    v = [1.0, 2.0, 3.0, 4.0]
    agree_on_copies(plain, native, "shift", v, 4)
    w = [1.0, 2.0, 3.0]
    native.axpy(w, w, 1.0, 3)
    assert w == [2.0, 4.0, 6.0]


def test_replacing_an_item_with_a_finalizer_runs_it_where_the_interpreter_does(stores_pair):
    plain, native = stores_pair
    log = []

    class Noisy:
        def __init__(self, name):
            self.name = name

        def __del__(self):
            log.append(self.name)

        def __float__(self):
            return 0.0

        def __add__(self, other):
            return 10.0 + other

    def run(module):
        log.clear()
        y = [1.0, Noisy("a"), 3.0]
        module.axpy(y, [1.0, 1.0, 1.0], 1.0, 3)
        return y, list(log)

    assert run(native) == run(plain) == ([2.0, 11.0, 4.0], ["a"])


@settings(max_examples=200, deadline=None)
@given(y=st.lists(items, max_size=10), x=st.lists(items, max_size=10), n=st.integers(-2, 12),
       a=st.one_of(st.floats(allow_nan=True), st.integers(-3, 3),
                   st.sampled_from([2**62, None, 0.0])))
def test_stores_match_the_interpreter(stores_pair, y, x, n, a):
    plain, native = stores_pair
    for name, args in (("axpy", (y, x, a, n)), ("shift", (y, n)), ("counts_into", (y, n)),
                       ("store_then_divide", (y, x, n)), ("store_then_overflow", (y, n))):
        agree_on_copies(plain, native, name, *args)


def test_stores_leave_reference_counts_unchanged(stores_pair):
    plain, native = stores_pair
    keep, read = float("7.25"), float("0.5")
    counts = sys.getrefcount(keep), sys.getrefcount(read)
    for _ in range(50):
        y = [keep] * 4 + [float(k) for k in range(4)]
        native.axpy(y, [read] * 8, 1.0, 8)   # replaces the shared items, mutates the others
        assert y[:4] == [7.75] * 4 and all(item is not keep for item in y)
        del y
        c = [1, 2, 3, keep]                  # keep is read generically: not an int
        assert native.counts_into(c, 4) == [1, 3, 5, 10.25]
    assert (sys.getrefcount(keep), sys.getrefcount(read)) == counts


# Lists that are not parameters, and locals no code decides the kind of: guessed (a local whose
# items are read or stored, a list of floats; any other, an int), tested at the loop's entry, and
# corrected by kind feedback when the guess keeps failing (jit/kind_feedback.h).
LOCAL_LISTS = """
def rows(a, b, n):
    c = [[0.0] * n for _ in range(n)]
    for i in range(n):
        ai = a[i]
        ci = c[i]
        for k in range(n):
            aik = ai[k]
            bk = b[k]
            for j in range(n):
                ci[j] += aik * bk[j]
    return c

def smooth(fill, n, rounds):
    v = [fill] * n
    w = [fill] * n
    for r in range(rounds):
        for i in range(1, n - 1):
            w[i] = v[i - 1] + v[i] + v[i + 1]
        v, w = w, v
    return v

def total(t, n):
    s = 0.0
    for i in range(n):
        s += t[i]
    return s
"""


def test_lists_made_by_the_function_run_in_numeric_loops():
    plain, native = new_module(LOCAL_LISTS), new_module(LOCAL_LISTS)
    fatjit.jit(native.rows)
    fatjit.jit(native.smooth)
    try:
        a = [[float(i * 3 + j) for j in range(12)] for i in range(12)]
        b = [[float(i - 2 * j) for j in range(12)] for i in range(12)]
        # rows: aik (an item, of no kind the code decides) is guessed an int and is a float: the
        # inner loop's entry fails until kind feedback has it recompiled with the kinds seen.
        assert native.rows(a, b, 12) == plain.rows(a, b, 12)
        assert native.rows(a, b, 12) == plain.rows(a, b, 12)  # queues the recompile
        fatjit.wait_for_compiles()
        text = fatjit.explain(native.rows)
        assert "recompiled 1 time" in text and "aik: float" in text and "bk: list of float" in text
        misses = failed_entries(native.rows)
        assert native.rows(a, b, 12) == plain.rows(a, b, 12)
        assert failed_entries(native.rows) == misses     # the new code's entries hold
        # smooth: v and w are the function's own lists of floats (guessed right at once).
        assert native.smooth(0.5, 40, 30) == plain.smooth(0.5, 40, 30)
        assert "in 1 numeric loop" in fatjit.explain(native.smooth)
        assert failed_entries(native.smooth) <= 1   # v, w and their items as guessed
        # Ints where floats were guessed: the entry fails on the first item; feedback recompiles.
        for _ in range(10):
            assert native.smooth(1, 40, 30) == plain.smooth(1, 40, 30)
        fatjit.wait_for_compiles()
        assert native.smooth(1, 40, 30) == plain.smooth(1, 40, 30)
        text = fatjit.explain(native.smooth)
        assert "v: list of int" in text and "w: list of int" in text, text
    finally:
        fatjit.unspecialize(native.rows)
        fatjit.unspecialize(native.smooth)


def test_a_loop_on_items_of_something_else_than_a_list_gives_its_entry_up():
    plain, native = new_module(LOCAL_LISTS), new_module(LOCAL_LISTS)
    fatjit.jit(native.total)
    try:
        t = tuple(0.5 * k for k in range(1000))
        for _ in range(3):
            assert native.total(t, 1000) == plain.total(t, 1000)
        # The entry failed 256 times (a tuple is no list), then the loop gave it up: the
        # iterations since went straight to the generic code, uncounted, and nothing recompiled.
        assert failed_entries(native.total) == 256
        assert "recompiled" not in fatjit.explain(native.total)
        assert native.total([1.5] * 10, 10) == 15.0
    finally:
        fatjit.unspecialize(native.total)


# math.sqrt in numeric loops, called through the module or bound to a global, and float globals:
# computed inline while the entry finds the globals bound as when compiled.
MATH = """
import math
from math import sqrt
DT = 0.5

def lengths(x, n):
    s = 0.0
    for i in range(n):
        s += math.sqrt(x[i]) * DT
    return s

def lengths_bound(x, n):
    s = 0.0
    for i in range(n):
        s += sqrt(x[i] + 0.0)
    return s

def int_roots(n, k):
    s = 0.0
    for i in range(n):
        s += math.sqrt(i * k)
    return s
"""


@pytest.fixture(scope="module")
def math_pair():
    plain, native = new_module(MATH), new_module(MATH)
    for name in ("lengths", "lengths_bound", "int_roots"):
        fatjit.jit(getattr(native, name))
    native.lengths([1.0, 4.0], 2)          # compiled here: a list of floats
    native.lengths_bound([1.0, 4.0], 2)
    native.int_roots(3, 7)
    yield plain, native
    for name in ("lengths", "lengths_bound", "int_roots"):
        fatjit.unspecialize(getattr(native, name))


def test_math_sqrt_runs_inline_in_numeric_loops(math_pair):
    plain, native = math_pair
    x = [0.25 * k for k in range(100)]
    for name, args in (("lengths", (x, 100)), ("lengths_bound", (x, 100)),
                       ("int_roots", (100, 12345))):
        agree(plain, native, name, *args)
        text = fatjit.explain(getattr(native, name))
        assert "in 1 numeric loop" in text and "failed loop entries" not in text, (name, text)


@settings(max_examples=200, deadline=None)
@given(x=st.lists(items, max_size=10), n=st.integers(-1, 12),
       k=st.one_of(st.integers(-3, 3), st.sampled_from([2**40, 2**60, 0.5, -0.0])))
def test_math_sqrt_matches_the_interpreter(math_pair, x, n, k):
    # Negative numbers raise ValueError from math.sqrt's own call (the loop leaves at its
    # PRECALL); NaN, infinities, -0.0, ints past 2**53, None: as the interpreter.
    plain, native = math_pair
    agree(plain, native, "lengths", x, n)
    agree(plain, native, "lengths_bound", x, n)
    agree(plain, native, "int_roots", n, k)


def test_rebinding_math_sqrt_or_the_globals_is_seen_at_the_next_entry():
    plain, native = new_module(MATH), new_module(MATH)
    fatjit.jit(native.lengths)
    fatjit.jit(native.lengths_bound)
    try:
        x = [1.0, 4.0, 9.0]
        assert native.lengths(x, 3) == plain.lengths(x, 3) == 3.0
        assert native.lengths_bound(x, 3) == 6.0
        for module in (native, plain):
            module.DT = 2                                   # an int now
        assert native.lengths(x, 3) == plain.lengths(x, 3) == 12.0
        fake = type(math)("math")
        fake.sqrt = lambda v: -v
        for module in (native, plain):
            module.math = fake                              # another module
            module.sqrt = abs                               # another function
        assert native.lengths(x, 3) == plain.lengths(x, 3) == -28.0
        assert native.lengths_bound(x, 3) == plain.lengths_bound(x, 3) == 14.0
        for module in (native, plain):
            module.math = math
        saved = math.sqrt
        math.sqrt = lambda v: 1.0                           # the module's attribute
        try:
            assert native.lengths(x, 3) == plain.lengths(x, 3) == 6.0
        finally:
            math.sqrt = saved
        assert native.lengths(x, 3) == 12.0
    finally:
        fatjit.unspecialize(native.lengths)
        fatjit.unspecialize(native.lengths_bound)


# Inner range loops: a loop nested in a numeric loop, over range() made in the loop, runs inside
# it, its iterator held unboxed; leaving mid-iteration makes the iterator an object (at its
# position) for the generic code to go on with.
NESTED = """
def pairs(x, n, lo, step):
    s = 0.0
    for i in range(n):
        for j in range(lo, i, step):
            s += x[i] / x[j]
    return s

def first_over(x, n, limit):
    found = 0
    for i in range(n):
        for j in range(i):
            if x[i] + x[j] > limit:
                found += 1
                break
            if j % 3 == 1:
                continue
            found += 0
    return found

def grid(n, m, k):
    t = 0
    for a in range(n):
        for b in range(m, -1, -k):
            for c in range(a, b):
                t += a * b - c
    return t

def spin_nested(n):
    total = 0
    for i in range(n):
        for j in range(1000):
            total = (total + i * j) % 1000003
    return total
"""


@pytest.fixture(scope="module")
def nested_pair():
    plain, native = new_module(NESTED), new_module(NESTED)
    for name in ("pairs", "first_over", "grid", "spin_nested"):
        fatjit.jit(getattr(native, name))
    native.pairs([1.0, 2.0, 3.0], 3, 0, 1)  # compiled here: a list of floats
    native.first_over([1.0, 2.0], 2, 0.5)
    native.grid(3, 3, 1)
    native.spin_nested(2)
    yield plain, native
    for name in ("pairs", "first_over", "grid", "spin_nested"):
        fatjit.unspecialize(getattr(native, name))


def test_nested_range_loops_run_as_one_numeric_loop(nested_pair):
    plain, native = nested_pair
    x = [0.5 + k for k in range(40)]
    agree(plain, native, "pairs", x, 40, 0, 1)
    agree(plain, native, "pairs", x, 40, 39, -2)
    agree(plain, native, "first_over", x, 40, 30.0)
    agree(plain, native, "grid", 12, 20, 3)
    for name in ("pairs", "first_over", "grid"):
        ir = fatjit.explain(getattr(native, name), ir=True)
        assert "loop_inner_next" in ir, name      # an inner loop lowered inside the outer one
        # (one or two a call: the inner loops' targets are unbound before the first iteration)
        assert failed_entries(getattr(native, name)) <= 8, name


@settings(max_examples=200, deadline=None)
@given(x=st.lists(items, max_size=8), n=st.integers(-1, 9), lo=st.integers(-10, 10),
       step=st.one_of(st.integers(-3, 3), st.sampled_from([2**62, -(2**63), 2**70, 0.5])),
       limit=st.one_of(st.floats(allow_nan=True), st.integers(-5, 20)))
def test_nested_loops_match_the_interpreter(nested_pair, x, n, lo, step, limit):
    # A zero step (ValueError from range), bounds past 2**62, items of any kind and zero
    # divisors inside the inner loop: the loop leaves where the operation is, its inner iterator
    # an object at its position, and the generic code goes on (or raises) as the interpreter's.
    plain, native = nested_pair
    agree(plain, native, "pairs", x, n, lo, step)
    agree(plain, native, "first_over", x, n, limit)
    if isinstance(step, int) and abs(step) < 2**62:
        agree(plain, native, "grid", n, lo, step)


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs signal.setitimer")
def test_a_signal_interrupts_an_inner_loop(nested_pair):
    plain, native = nested_pair
    signal.signal(signal.SIGALRM, signal.default_int_handler)
    try:
        start = time.perf_counter()
        with pytest.raises(KeyboardInterrupt) as raised:
            signal.setitimer(signal.ITIMER_REAL, 0.05)
            native.spin_nested(10**12)
        assert time.perf_counter() - start < 10
        frame = list(traceback.walk_tb(raised.value.__traceback__))[-1][0]
        assert frame.f_code.co_name == "spin_nested"
        assert 0 <= frame.f_locals["j"] < 1000 and frame.f_locals["i"] > 0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs signal.setitimer")
def test_a_tracer_a_signal_handler_sets_inside_an_inner_loop_sees_the_committed_values(
        nested_pair):
    # The handler runs when the inner loop's back edge finds the eval breaker set: the loop has
    # left at that jump (its values committed, its iterator an object), and the interpreter goes
    # on under the tracer, whose first line event stops the call. The frame then holds exactly
    # the values of the iterations done.
    plain, native = nested_pair

    class Stop(Exception):
        pass

    def local_trace(frame, event, arg):
        if event == "line":
            raise Stop
        return local_trace

    def handler(signum, frame):
        frame.f_trace = local_trace
        sys.settrace(lambda *args: None)

    def expected(i, j):
        total = 0
        for a in range(i + 1):
            for b in range(1000 if a < i else j + 1):
                total = (total + a * b) % 1000003
        return total

    signal.signal(signal.SIGALRM, handler)
    try:
        with pytest.raises(Stop) as raised:
            signal.setitimer(signal.ITIMER_REAL, 0.05)
            native.spin_nested(10**12)
        sys.settrace(None)
        frames = [(f, line) for f, line in traceback.walk_tb(raised.value.__traceback__)
                  if f.f_code.co_name == "spin_nested"]
        # (Debian's 3.11.2 lists the frame twice: a trace function's exception adds an entry.)
        assert frames and all(f is frames[0][0] for f, _ in frames)
        frame, line = frames[-1]
        i, j = frame.f_locals["i"], frame.f_locals["j"]
        assert i > 0 and 0 <= j < 1000
        # Stopped at `total = ...` (j just stored, its iteration not done), or at a `for` line
        # (iteration j done).
        at_body = line == frame.f_code.co_firstlineno + 4
        assert frame.f_locals["total"] == expected(i, j - 1 if at_body else j), line
    finally:
        sys.settrace(None)
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
