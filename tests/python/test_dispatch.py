"""Which frames run a specialization: only fresh, untraced frames of the very function it was
made for. Everything else runs the original code and is counted by reason."""

import gc
import sys
import types
import weakref

import pytest

import fatjit
from support import StatsWatch, new_module

SOURCE = """
    X = 1
    def f(s):
        return ("orig", len(s) + X)
    def f_spec(s):
        return ("spec", s.__len__() + 1)
"""


@pytest.mark.no_jit_stress(
    "exact specialized_runs delta: stress mode also runs the other function's len lambda and "
    "StatsWatch specialized")
def test_other_function_on_the_same_code_never_runs_it(spec):
    """FunctionType(f.__code__, other_globals) runs its own code with its own globals."""
    mod = new_module(SOURCE)
    spec(mod.f, mod.f_spec.__code__, [fatjit.GuardGlobals("X"), fatjit.GuardBuiltins("len")])
    other = types.FunctionType(mod.f.__code__, {"X": 100, "len": lambda s: 0})
    watch = StatsWatch()
    assert other("ab") == ("orig", 100)
    assert mod.f("ab") == ("spec", 3)
    delta = watch.delta()
    assert delta["specialized_runs"] == 1
    assert delta["fallbacks"]["other_function"] == 1


def test_other_function_with_the_same_globals_never_runs_it(spec):
    """Even with the same globals, a second function object is not the specialized one."""
    mod = new_module(SOURCE)
    spec(mod.f, mod.f_spec.__code__, [fatjit.GuardGlobals("X")])
    twin = types.FunctionType(mod.f.__code__, mod.__dict__, "twin")
    assert twin("ab") == ("orig", 3)
    assert mod.f("ab") == ("spec", 3)


def test_exec_of_the_code_object_runs_the_original(spec):
    """exec(f.__code__) builds a throwaway function: the original code runs."""
    mod = new_module("""
        RESULT = []
        def f():
            RESULT.append("orig")
        def f_spec():
            RESULT.append("spec")
    """)
    spec(mod.f, mod.f_spec.__code__, [fatjit.GuardGlobals("RESULT")])
    exec(mod.f.__code__, mod.__dict__)
    mod.f()
    assert mod.RESULT == ["orig", "spec"]


@pytest.mark.no_jit_stress(
    "exact specialized_runs delta: the tracer function itself runs specialized under stress "
    "(tracing pauses inside it)")
def test_tracing_runs_the_original_code(spec):
    """With sys.settrace active, the original code runs (and is traced), counted as 'tracing'."""
    mod = new_module(SOURCE)
    spec(mod.f, mod.f_spec.__code__, [fatjit.GuardGlobals("X")])
    traced = []

    def tracer(frame, event, arg):
        if event == "call":
            traced.append(frame.f_code)
        return None

    watch = StatsWatch()
    old = sys.gettrace()
    sys.settrace(tracer)
    try:
        result = mod.f("ab")
    finally:
        sys.settrace(old)
    assert result == ("orig", 3)
    assert mod.f.__code__ in traced
    assert mod.f_spec.__code__ not in traced
    delta = watch.delta()
    assert delta["fallbacks"]["tracing"] == 1
    assert delta["specialized_runs"] == 0
    assert mod.f("ab") == ("spec", 3)


def test_profiling_runs_the_original_code(spec):
    """With sys.setprofile active, the original code runs too."""
    mod = new_module(SOURCE)
    spec(mod.f, mod.f_spec.__code__, [fatjit.GuardGlobals("X")])
    watch = StatsWatch()
    old = sys.getprofile()
    sys.setprofile(lambda frame, event, arg: None)
    try:
        result = mod.f("ab")
    finally:
        sys.setprofile(old)
    assert result == ("orig", 3)
    assert watch.delta()["fallbacks"]["tracing"] == 1


def test_tracing_switched_on_by_a_callee(spec):
    """Tracing turned on inside a callee is seen by the next call in the caller."""
    mod = new_module(SOURCE + """
    import sys
    def caller(tracer):
        first = f("a")
        sys.settrace(tracer)
        second = f("a")
        sys.settrace(None)
        return first, second
    """)
    spec(mod.f, mod.f_spec.__code__, [fatjit.GuardGlobals("X")])
    old = sys.gettrace()
    try:
        assert mod.caller(lambda *a: None) == (("spec", 2), ("orig", 2))
    finally:
        sys.settrace(old)


def test_dead_function_drops_its_specialization(spec):
    """When the specialized function is freed, its specialization goes too (no leak)."""
    mod = new_module(SOURCE)
    gc.collect()  # what earlier tests left to the collector goes now, not in the count below
    live = fatjit.stats()["specializations"]
    fatjit.specialize(mod.f, mod.f_spec.__code__, [fatjit.GuardBuiltins("len")])
    assert fatjit.stats()["specializations"] == live + 1
    ref = weakref.ref(mod.f)
    del mod.f
    gc.collect()
    assert ref() is None
    assert fatjit.stats()["specializations"] == live


def test_dead_owner_with_shared_code_is_dropped_at_next_call(spec):
    """If the code object outlives the function (shared), the next call drops the orphan."""
    mod = new_module(SOURCE)
    twin = types.FunctionType(mod.f.__code__, mod.__dict__, "twin")
    gc.collect()  # what earlier tests left to the collector goes now, not in the count below
    live = fatjit.stats()["specializations"]
    fatjit.specialize(mod.f, mod.f_spec.__code__, [fatjit.GuardBuiltins("len")])
    del mod.f
    gc.collect()
    watch = StatsWatch()
    assert twin("ab") == ("orig", 3)
    delta = watch.delta()
    assert delta["fallbacks"]["owner_dead"] == 1
    assert delta["specializations_dropped"] == 1
    assert fatjit.stats()["specializations"] == live


def test_calls_from_c_code_are_dispatched(spec):
    """Calls made from C (map, sorted key=, functools.reduce) run the specialization too."""
    mod = new_module(SOURCE)
    spec(mod.f, mod.f_spec.__code__, [fatjit.GuardGlobals("X")])
    assert list(map(mod.f, ["a", "bb"])) == [("spec", 2), ("spec", 3)]
    assert sorted(["ccc", "a"], key=mod.f) == ["a", "ccc"]


def test_a_specialization_is_checked_at_every_call(spec):
    """Guards are checked at every call, including calls inside one loop of a caller."""
    mod = new_module(SOURCE + """
    def loop(n):
        out = []
        global X
        for i in range(n):
            X = 1 if i % 3 == 0 else 2
            out.append(f("a")[0])
        X = 1
        return out
    """)
    spec(mod.f, mod.f_spec.__code__, [fatjit.GuardGlobals("X")])
    assert mod.loop(6) == ["spec", "orig", "orig", "spec", "orig", "orig"]


def test_warm_call_sites_are_dispatched(spec):
    """A call site quickened before specialize() still reaches the dispatcher afterwards."""
    mod = new_module(SOURCE + """
    def caller(n):
        return [f("a") for _ in range(n)]
    """)
    for _ in range(5):
        assert mod.caller(100) == [("orig", 2)] * 100  # warm: CALL_PY_EXACT_ARGS and friends
    spec(mod.f, mod.f_spec.__code__, [fatjit.GuardGlobals("X")])
    assert mod.caller(50) == [("spec", 2)] * 50
    mod.X = 3
    assert mod.caller(50) == [("orig", 4)] * 50


def test_subscript_of_a_specialized_getitem(spec):
    """obj[k] with a specialized __getitem__ never runs stale code."""
    # The specialization runs where the interpreter dispatches the call: BINARY_SUBSCR_GETITEM
    # bypasses PEP 523 before 3.11.4 (GH-104405), which only means the original runs.
    mod = new_module("""
        X = 1
        class C:
            def __getitem__(self, k):
                return ("orig", k + X)
        def getitem_spec(self, k):
            return ("spec", k + 1)
    """)
    spec(mod.C.__getitem__, mod.getitem_spec.__code__, [fatjit.GuardGlobals("X")])
    obj = mod.C()
    results = {obj[i][0] for i in range(30)}
    if sys.version_info >= (3, 11, 4):
        assert results == {"spec"}
    else:
        assert results <= {"spec", "orig"}
    mod.X = 5
    assert [obj[i] for i in range(30)] == [("orig", i + 5) for i in range(30)]
