"""Numeric regions in native code (jit/lower_numeric_regions.cc).

A stretch of int and float arithmetic on locals (`x = (x * a + b) & m`, `total += w * 4.0 /
(1.0 + x * x)`, ending perhaps in a comparison and its jump) runs unboxed: each local it reads is
type-tested and unboxed once, the operations are done on machine values, and each local it stores
is written once at the end. Anything unusual (a local of another type, an int beyond int64, an
overflow, a zero divisor, an unbound local, an old value that is not a number) leaves for the
per-instruction code at the region's start, before anything was written. These tests run region-
shaped functions compiled and interpreted on the same values and require the same results, the
same exceptions with the same traceback lines and frame locals, the same objects left to aliases,
and unchanged reference counts.
"""

import math
import sys
import traceback

import pytest
from hypothesis import given, settings, strategies as st

import fatjit
from support import new_module, outcome_with_locals as outcome


REGIONS = """
def lcg(x, n):
    total = 0
    for i in range(n):
        x = (x * 1103515245 + 12345) & 2147483647
        if x & 1:
            total += x % 1000
        else:
            total -= i % 13
    return total, x

def simpson(n):
    h = 1.0 / n
    total = 4.0 + 2.0
    for i in range(1, n):
        x = i * h
        weight = 4.0 if i % 2 == 1 else 2.0
        total += weight * 4.0 / (1.0 + x * x)
    return total * h / 3.0

def mixed(a, b):
    t = a * b + a
    u = t - b * 2
    v = u // 3 + t % 7
    return t, u, v

def floats(a, b):
    s = a * a + b * b
    d = (a - b) / 2.0
    return s, d, s - d

def compare_jump(a, b):
    if a * 2 + 1 < b - 3:
        return "lt"
    return "ge"

def truth_jump(a, b):
    if (a + b) * 0.5:
        return "nonzero"
    return "zero"

def int_truth(a, b):
    if (a ^ b) & 3:
        return "some"
    return "none"

def aliases(a, n):
    x = a
    seen = []
    for _ in range(n):
        y = x
        x = x * 3 + 1
        seen.append(y)
    return x, seen

def overwrite(a, b):
    c = a
    c = c * b + 1
    c = c * b - 1
    return c

def division(a, b, c):
    d = (a - b) // c
    m = (a + b) % c
    return d, m

def shifts(a, b):
    s = (a << 3) + (b >> 2)
    t = (a >> 1) ^ (b << 1)
    return s, t

def two_stores_one_error(a, b):
    x = a + 1
    y = x * 2
    z = b // (x - x)
    return z

def maybe_unbound(a, flag):
    if flag:
        x = a
    y = x * 2 + a
    return y

def accumulate(a, n):
    total = a * 0
    for i in range(n):
        total = total + a * i
        total = total - i
    return total
"""

ODD = [True, False, None, "s", 3 + 4j, 2**70, -(2**64), 10**30]
INT_EDGES = [0, 1, -1, 2, 3, 7, -7, 255, 256, 257, -5, -6, 2**30 - 1, 2**30, 2**31, -(2**31),
             2**53, 2**53 + 1, 2**60, -(2**60), 2**61, 2**62 - 1, 2**62, -(2**62), 2**63 - 1,
             -(2**63), 2**63, -(2**63) - 1, 3 * 2**61]
FLOAT_EDGES = [0.0, -0.0, 1.0, -1.5, 0.1, 1e308, -1e308, 5e-324, math.inf, -math.inf, math.nan,
               2.0**53, 2.0**63]

ints = st.one_of(st.sampled_from(INT_EDGES), st.integers(-2**31, 2**31),
                 st.integers(-2**63 - 2, 2**63 + 2), st.integers(-300, 300))
floats = st.one_of(st.sampled_from(FLOAT_EDGES), st.floats(allow_nan=True, allow_infinity=True))
values = st.one_of(ints, floats, st.sampled_from(ODD))

NAMES = [line[4:line.index("(")] for line in REGIONS.splitlines() if line.startswith("def ")]
_PLAIN = new_module(REGIONS)
_NATIVE = new_module(REGIONS)


@pytest.fixture(autouse=True, scope="module")
def _compiled():
    """The functions of _NATIVE under @fatjit.jit while this module's tests run (a specialization
    left alive would keep the PEP 523 hook installed for the tests that follow)."""
    for name in NAMES:
        fatjit.jit(getattr(_NATIVE, name))
    yield
    for name in NAMES:
        fatjit.unspecialize(getattr(_NATIVE, name))




def same(name, *args):
    got = outcome(lambda: getattr(_NATIVE, name)(*args))
    want = outcome(lambda: getattr(_PLAIN, name)(*args))
    assert got == want, (name, args)


def test_every_region_function_is_native_and_has_a_region():
    # Warm each up, then each must run as native code with a region's fast path in its IR
    # (without regions this fails: the block names come from lower_numeric_regions.cc).
    for name in NAMES:
        same(name, *{"lcg": (7, 50), "simpson": (20,), "division": (7, 2, 3),
                     "aliases": (3, 4), "accumulate": (2, 5), "maybe_unbound": (1, True)}
             .get(name, (3, 5)))
        native = getattr(_NATIVE, name)
        assert "JIT: native code" in fatjit.explain(native), name
        assert "region_generic" in fatjit.explain(native, ir=True), name


def test_the_loops_match_the_interpreter():
    for x in (0, 1, 12345, 2**31 - 1, 2**40, -7, 2.5, True):
        for n in (0, 1, 2, 100):
            same("lcg", x, n)
    for n in (1, 2, 3, 10, 1000):
        same("simpson", n)
    assert _NATIVE.simpson(10000) == _PLAIN.simpson(10000)
    assert math.isclose(_NATIVE.simpson(10000), math.pi, rel_tol=1e-12)


@settings(max_examples=300, deadline=None)
@given(a=values, b=values)
def test_two_operand_regions_match_the_interpreter(a, b):
    for name in ("mixed", "floats", "compare_jump", "truth_jump", "int_truth", "overwrite",
                 "shifts", "two_stores_one_error"):
        if name == "shifts" and isinstance(a, int) and isinstance(b, int) and (
                abs(b) > 2**16 or abs(a) > 2**16 and b < 0):
            continue  # a << huge: a memory error both ways, slowly
        same(name, a, b)


@settings(max_examples=200, deadline=None)
@given(a=values, b=values, c=st.one_of(values, st.sampled_from([-1, 1, 0, -1.0, 0.0])))
def test_division_regions_match_the_interpreter(a, b, c):
    same("division", a, b, c)


def test_int64_edges_leave_for_the_generic_code():
    # (a - b) // -1 where a - b is INT64_MIN: the quotient is 2**63, no int64 (and C would trap).
    same("division", -(2**62), 2**62, -1)
    same("division", -(2**63) + 1, 1, -1)
    same("division", 2**62, 2**62, 7)        # a + b = 2**63 overflows into the generic code
    same("mixed", 2**31, 2**31)             # a product past the inline range
    same("mixed", 3 * 2**61, 1)
    same("overwrite", 2**62, 2)


def test_an_error_in_a_region_keeps_the_stores_before_it():
    # `b // (x - x)` raises after x and y were stored: the traceback's frame holds them, as the
    # interpreter's does (the region leaves for the per-instruction code, which stores them).
    for a in (1, 2**40, 1.5):
        same("two_stores_one_error", a, 3)
    try:
        _NATIVE.two_stores_one_error(4, 3)
    except ZeroDivisionError as e:
        frame = list(traceback.walk_tb(e.__traceback__))[-1][0]
        assert frame.f_locals["x"] == 5 and frame.f_locals["y"] == 10
    else:
        raise AssertionError("no ZeroDivisionError")


def test_an_unbound_local_raises_as_in_the_interpreter():
    same("maybe_unbound", 5, False)
    same("maybe_unbound", 5, True)
    same("maybe_unbound", 2.5, True)


def test_aliases_keep_their_objects():
    # y = x, then x = x * 3 + 1: the object y holds must not be written into.
    for a in (5, 2**40, 2**61, 1.5, -2.0):
        assert _NATIVE.aliases(a, 30) == _PLAIN.aliases(a, 30), a


def test_an_old_value_that_is_not_a_number_is_released_by_the_generic_code():
    log = []

    class Noisy:
        def __del__(self):
            log.append("del")

        def __mul__(self, other):
            return 2

        __rmul__ = __mul__

    module = new_module("def f(a):\n    x = Noisy()\n    x = a * 3 + 1\n    log.append(x)\n"
                        "    return x\n", log=log, Noisy=Noisy)
    fatjit.jit(module.f)
    try:
        for _ in range(3):
            log.clear()
            assert module.f(4) == 13
            assert log == ["del", 13]   # the old object went at the store, before the append
        assert "JIT: native code" in fatjit.explain(module.f)
    finally:
        fatjit.unspecialize(module.f)


def test_refcounts_are_unchanged():
    big = int("98765432109876")
    f = 3.25e10
    counts = sys.getrefcount(big), sys.getrefcount(f)
    for _ in range(200):
        _NATIVE.mixed(big, 3)
        _NATIVE.floats(f, 2.0)
        _NATIVE.accumulate(big, 5)
        _NATIVE.overwrite(big, 3)
        _NATIVE.aliases(big, 3)
    assert (sys.getrefcount(big), sys.getrefcount(f)) == counts


def test_type_changes_mid_loop():
    module_source = ("def run(values):\n    total = 0\n    for v in values:\n"
                     "        total = total * 3 + v\n        total = total % 1000003\n"
                     "    return total\n")
    plain = new_module(module_source)
    native = new_module(module_source)
    fatjit.jit(native.run)
    try:
        seq = [1, 2, 3] * 20 + [2.5, 3, 2**70, True, -4] + [5] * 20
        for _ in range(3):
            assert native.run(seq) == plain.run(seq)
        assert "region_generic" in fatjit.explain(native.run, ir=True)
    finally:
        fatjit.unspecialize(native.run)


def test_small_results_are_the_cached_ints():
    # A result in -5..256 is CPython's cached object (identity is observable), never the
    # local's own object written in place.
    module = new_module("def f(a):\n    x = abs(a * 3)\n    x = x * 0 + 7\n    y = abs(a * 5)\n"
                        "    y = y - y - 5\n    return x, y\n")
    fatjit.jit(module.f)
    try:
        seven, minus_five = int("7"), int("-5")
        for a in (2**40, 10**6, 3):
            x, y = module.f(a)
            assert x is seven and y is minus_five, a
        assert "region_generic" in fatjit.explain(module.f, ir=True)
    finally:
        fatjit.unspecialize(module.f)
