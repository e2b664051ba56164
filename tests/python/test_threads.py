"""Specialized functions called from several threads at once give the right results, and the
dispatcher survives specializations being added and dropped while other threads call."""

import sys
import threading

import pytest

import fatjit
from support import StatsWatch, new_module

THREADS = 6
CALLS = 2000

SOURCE = """
    X = 1
    def f(n):
        return ("orig", n * 2 + X)
    def f_spec(n):
        return ("spec", n * 2 + 1)
"""


@pytest.fixture
def fast_switching():
    """Switch threads as often as possible so calls really interleave."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(old)


def run_threads(target, count=THREADS):
    errors = []
    start = threading.Barrier(count)

    def wrapper(index):
        try:
            start.wait()
            target(index)
        except BaseException as e:  # reported in the main thread
            errors.append(e)

    threads = [threading.Thread(target=wrapper, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


@pytest.mark.no_jit_stress(
    "exact specialized_runs delta: stress mode runs the worker function and its comprehension "
    "specialized too")
def test_concurrent_calls_of_one_specialized_function(spec, fast_switching):
    """Several threads calling the same specialized function all get the specialized results."""
    mod = new_module(SOURCE)
    spec(mod.f, mod.f_spec.__code__, [fatjit.GuardGlobals("X"), fatjit.GuardBuiltins("len")])
    results = [None] * THREADS
    watch = StatsWatch()

    def work(index):
        results[index] = [mod.f(index * CALLS + i) for i in range(CALLS)]

    run_threads(work)
    for index, got in enumerate(results):
        assert got == [("spec", (index * CALLS + i) * 2 + 1) for i in range(CALLS)]
    assert watch.delta()["specialized_runs"] == THREADS * CALLS


def test_concurrent_calls_with_per_call_guards(spec, fast_switching):
    """GuardArgType is decided per call: int-passing threads run spec, float-passing ones do not."""
    mod = new_module(SOURCE)
    spec(mod.f, mod.f_spec.__code__, [fatjit.GuardArgType(0, int)])
    results = [None] * THREADS

    def work(index):
        if index % 2:
            results[index] = [mod.f(i) for i in range(CALLS)]
        else:
            results[index] = [mod.f(float(i)) for i in range(CALLS)]

    run_threads(work)
    for index, got in enumerate(results):
        if index % 2:
            assert got == [("spec", i * 2 + 1) for i in range(CALLS)]
        else:
            assert got == [("orig", i * 2.0 + 1) for i in range(CALLS)]


def test_each_thread_invalidating_its_own_function(spec, fast_switching):
    """Threads each flip their own module's global between calls: every call sees its own state."""
    mods = [new_module(SOURCE) for _ in range(THREADS)]
    for mod in mods:
        spec(mod.f, mod.f_spec.__code__, [fatjit.GuardGlobals("X")])

    def work(index):
        mod = mods[index]
        one = mod.X
        for i in range(CALLS // 4):
            if i % 2:
                mod.X = 100
                assert mod.f(i) == ("orig", i * 2 + 100)
            else:
                mod.X = one
                assert mod.f(i) == ("spec", i * 2 + 1)

    run_threads(work)


def test_specialize_and_unspecialize_while_other_threads_call(fast_switching):
    """Adding and dropping specializations concurrently with calls never breaks a call."""
    mod = new_module(SOURCE)
    stop = threading.Event()
    errors = []

    def caller():
        try:
            while not stop.is_set():
                for i in range(50):
                    tag, value = mod.f(i)
                    assert tag in ("spec", "orig") and value == i * 2 + 1
        except BaseException as e:
            errors.append(e)

    callers = [threading.Thread(target=caller) for _ in range(THREADS - 1)]
    for t in callers:
        t.start()
    try:
        for _ in range(300):
            fatjit.specialize(mod.f, mod.f_spec.__code__, [fatjit.GuardGlobals("X")])
            fatjit.specialize(mod.f, mod.f_spec.__code__, [fatjit.GuardArgType(0, int)])
            fatjit.unspecialize(mod.f)
    finally:
        stop.set()
        for t in callers:
            t.join()
        fatjit.unspecialize(mod.f)
    assert not errors, errors[0]


def test_thread_started_while_specialized_runs_the_specialization(spec):
    """The hook is per interpreter: threads started after specialize() run the specialization."""
    mod = new_module(SOURCE)
    spec(mod.f, mod.f_spec.__code__, [fatjit.GuardGlobals("X")])
    result = []
    t = threading.Thread(target=lambda: result.append(mod.f(3)))
    t.start()
    t.join()
    assert result == [("spec", 7)]
