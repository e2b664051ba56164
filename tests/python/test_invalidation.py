"""Every invalidation path: once a guard fails, the next call runs the original code, never the
stale specialization; temporary failures (1) pass again once the state is restored, permanent
ones (2) drop the specialization."""

import builtins
import gc

import pytest

import fatjit
from support import StatsWatch, new_module

# f reads a global and a builtin; f_spec is what f computes while X is 1 and len is the builtin.
SOURCE = """
    X = 1
    def f(s):
        return ("orig", len(s) + X)
    def f_spec(s):
        return ("spec", s.__len__() + 1)
"""


# --- GuardGlobals ---------------------------------------------------------------------------

def test_rebinding_a_guarded_global_runs_the_original(spec):
    """After X is rebound, the next call computes with the new X (original code)."""
    mod = new_module(SOURCE)
    guard = fatjit.GuardGlobals("X")
    spec(mod.f, mod.f_spec.__code__, [guard])
    assert mod.f("ab") == ("spec", 3)
    mod.X = 10
    assert guard() == 1
    assert mod.f("ab") == ("orig", 12)
    assert mod.f("ab") == ("orig", 12)


def test_restoring_a_guarded_global_runs_the_specialization_again(spec):
    """GuardGlobals fails only temporarily: binding X back to the same object passes again."""
    mod = new_module(SOURCE)
    guard = fatjit.GuardGlobals("X")
    spec(mod.f, mod.f_spec.__code__, [guard])
    one = mod.X
    mod.X = 2
    assert mod.f("a") == ("orig", 3)
    mod.X = one
    assert guard() == 0
    assert mod.f("a") == ("spec", 2)
    assert len(fatjit.get_specialized(mod.f)) == 1


def test_equal_but_distinct_global_value_fails_the_guard(spec):
    """GuardGlobals compares identity: an equal but different object is a change."""
    mod = new_module("""
        X = 10 ** 30
        def f():
            return ("orig", X)
        def f_spec():
            return ("spec", 10 ** 30)
    """)
    spec(mod.f, mod.f_spec.__code__, [fatjit.GuardGlobals("X")])
    assert mod.f() == ("spec", 10 ** 30)
    mod.X = int(str(10 ** 30))
    assert mod.f() == ("orig", 10 ** 30)


def test_deleting_a_guarded_global_runs_the_original(spec):
    """After `del X`, the original runs and raises NameError as plain CPython would."""
    mod = new_module(SOURCE)
    spec(mod.f, mod.f_spec.__code__, [fatjit.GuardGlobals("X")])
    del mod.X
    with pytest.raises(NameError, match="'X'"):
        mod.f("a")


def test_defining_a_global_guarded_as_absent_runs_the_original(spec):
    """A guarded name absent at specialization time must stay absent."""
    mod = new_module("""
        def f():
            return ("orig", globals().get("Y"))
        def f_spec():
            return ("spec", None)
    """)
    guard = fatjit.GuardGlobals("Y")
    spec(mod.f, mod.f_spec.__code__, [guard])
    assert mod.f() == ("spec", None)
    mod.Y = 3
    assert guard() == 1
    assert mod.f() == ("orig", 3)
    del mod.Y
    assert mod.f() == ("spec", None)


def test_unrelated_global_changes_keep_the_specialization(spec):
    """Rebinding other globals does not fail GuardGlobals (no deopt storm)."""
    mod = new_module(SOURCE + "\n    Z = 0\n")
    spec(mod.f, mod.f_spec.__code__, [fatjit.GuardGlobals("X")])
    watch = StatsWatch()
    for i in range(5):
        mod.Z = object()
        mod.W = i
        assert mod.f("a") == ("spec", 2)
    assert watch.delta()["guard_failures"]["globals"] == 0


def test_global_changed_between_calls_inside_a_loop(spec):
    """Each call re-checks: alternating X between values alternates the code that runs."""
    mod = new_module(SOURCE)
    spec(mod.f, mod.f_spec.__code__, [fatjit.GuardGlobals("X")])
    one = mod.X
    for i in range(20):
        mod.X = one if i % 2 == 0 else 100 + i
        expected = ("spec", 2) if i % 2 == 0 else ("orig", 101 + i)
        assert mod.f("a") == expected


# --- GuardBuiltins --------------------------------------------------------------------------

def test_shadowing_a_builtin_with_a_module_global_runs_the_original(spec):
    """A module global named `len` shadows the builtin: the original code uses it."""
    mod = new_module(SOURCE)
    guard = fatjit.GuardBuiltins("len")
    spec(mod.f, mod.f_spec.__code__, [guard])
    assert mod.f("ab") == ("spec", 3)
    mod.len = lambda s: 100
    assert guard() == 1
    assert mod.f("ab") == ("orig", 101)
    del mod.len
    assert guard() == 0
    assert mod.f("ab") == ("spec", 3)


def test_shadowing_in_another_module_does_not_matter(spec):
    """A `len` global in another module does not fail the guard of this module's function."""
    mod = new_module(SOURCE)
    other = new_module("len = lambda s: 100")
    spec(mod.f, mod.f_spec.__code__, [fatjit.GuardBuiltins("len")])
    assert other.len("ab") == 100
    assert mod.f("ab") == ("spec", 3)


def test_replacing_a_builtin_fails_temporarily(spec):
    """builtins.len replaced: guard() is 1 (not 2) and the original runs; restored: 0, spec runs."""
    mod = new_module(SOURCE)
    guard = fatjit.GuardBuiltins("len")
    spec(mod.f, mod.f_spec.__code__, [guard])
    real_len = builtins.len
    builtins.len = lambda s: 50
    try:
        assert guard() == 1
        assert mod.f("ab") == ("orig", 51)
    finally:
        builtins.len = real_len
    assert guard() == 0
    assert mod.f("ab") == ("spec", 3)
    assert len(fatjit.get_specialized(mod.f)) == 1


def test_deleting_a_builtin_runs_the_original(spec):
    """With builtins.len deleted, the original runs and raises NameError."""
    mod = new_module(SOURCE)
    spec(mod.f, mod.f_spec.__code__, [fatjit.GuardBuiltins("len")])
    real_len = builtins.len
    error = None
    del builtins.len
    try:
        mod.f("ab")
    except NameError as e:  # pytest.raises itself needs len: catch by hand, check after restore
        error = e
    finally:
        builtins.len = real_len
    assert isinstance(error, NameError) and "'len'" in str(error)
    assert mod.f("ab") == ("spec", 3)


def test_other_builtin_changes_keep_the_specialization(spec):
    """Changing a builtin that is not guarded does not fail GuardBuiltins."""
    mod = new_module(SOURCE)
    spec(mod.f, mod.f_spec.__code__, [fatjit.GuardBuiltins("len")])
    builtins.fatjit_test_unrelated = 1
    builtins.abs = lambda x: x
    watch = StatsWatch()
    assert mod.f("ab") == ("spec", 3)
    assert watch.delta()["guard_failures"]["builtins"] == 0


def test_builtin_failures_are_counted_by_kind(spec):
    """A GuardBuiltins failure counts in guard_failures['builtins'], not 'forever'."""
    mod = new_module(SOURCE)
    spec(mod.f, mod.f_spec.__code__, [fatjit.GuardBuiltins("len")])
    watch = StatsWatch()
    real_len = builtins.len
    builtins.len = lambda s: 0
    try:
        mod.f("a")
    finally:
        builtins.len = real_len  # before any bookkeeping (and pytest's reporting) runs again
    delta = watch.delta()
    assert delta["guard_failures"]["builtins"] == 1
    assert delta["guard_failures_forever"]["builtins"] == 0
    assert delta["specializations_dropped"] == 0


# --- GuardFunc ------------------------------------------------------------------------------

@pytest.mark.no_jit_stress(
    "asserts f has no specialization after its code was replaced: stress mode specializes the "
    "new code at the next call")
def test_replacing_func_code_fails_forever_and_drops_the_specialization(spec):
    """f.__code__ replaced: GuardFunc(f)() is 2, f runs its new code, nothing is listed."""
    mod = new_module(SOURCE + """
    def other(s):
        return ("new code", s)
    """)
    guard = fatjit.GuardFunc(mod.f)
    spec(mod.f, mod.f_spec.__code__, [guard])
    assert mod.f("a") == ("spec", 2)
    old_code = mod.f.__code__
    mod.f.__code__ = mod.other.__code__
    assert guard() == 2
    assert mod.f("a") == ("new code", "a")
    assert fatjit.get_specialized(mod.f) == []
    # The specialization lived on the old code object; it goes when that code object does.
    gc.collect()  # what earlier tests left to the collector goes now, not in the count below
    live = fatjit.stats()["specializations"]
    del old_code
    gc.collect()
    assert fatjit.stats()["specializations"] == live - 1


def test_replacing_an_inlined_function_fails_forever(spec):
    """GuardFunc(g) guards code that inlined g: replacing g.__code__ drops the specialization."""
    mod = new_module("""
        def g(x):
            return x + 1
        def g2(x):
            return x + 100
        def f(x):
            return ("orig", g(x))
        def f_spec(x):
            return ("spec", x + 1)
    """)
    guard = fatjit.GuardFunc(mod.g)
    spec(mod.f, mod.f_spec.__code__, [guard])
    assert mod.f(1) == ("spec", 2)
    watch = StatsWatch()
    g_code = mod.g.__code__
    mod.g.__code__ = mod.g2.__code__
    assert guard() == 2
    assert mod.f(1) == ("orig", 101)
    assert fatjit.get_specialized(mod.f) == []
    delta = watch.delta()
    assert delta["guard_failures_forever"]["func"] == 1
    assert delta["specializations_dropped"] == 1
    # Fail forever: putting the old code back does not resurrect the specialization.
    mod.g.__code__ = g_code
    assert mod.f(1) == ("orig", 2)


# --- GuardArgType ---------------------------------------------------------------------------

ARGTYPE_SOURCE = """
    def f(a, b=0):
        return ("orig", a, b)
    def f_spec(a, b=0):
        return ("spec", a, b)
"""


def test_arg_type_by_position(spec):
    """GuardArgType: another type at that position runs the original; the right type runs spec."""
    mod = new_module(ARGTYPE_SOURCE)
    spec(mod.f, mod.f_spec.__code__, [fatjit.GuardArgType(0, int)])
    assert mod.f(1) == ("spec", 1, 0)
    assert mod.f("x") == ("orig", "x", 0)
    assert mod.f(2.5) == ("orig", 2.5, 0)
    assert mod.f(3) == ("spec", 3, 0)


def test_arg_type_by_keyword(spec):
    """GuardArgType checks the bound parameter, so passing it by keyword is checked too."""
    mod = new_module(ARGTYPE_SOURCE)
    spec(mod.f, mod.f_spec.__code__, [fatjit.GuardArgType(1, [int, float])])
    assert mod.f(0, b=1) == ("spec", 0, 1)
    assert mod.f(0, b=1.5) == ("spec", 0, 1.5)
    assert mod.f(0, b="x") == ("orig", 0, "x")
    assert mod.f(b=None, a=0) == ("orig", 0, None)
    assert mod.f(b=2, a=0) == ("spec", 0, 2)


def test_arg_type_checks_the_default_when_omitted(spec):
    """An omitted argument is checked as its default value."""
    mod = new_module(ARGTYPE_SOURCE)
    spec(mod.f, mod.f_spec.__code__, [fatjit.GuardArgType(1, str)])
    assert mod.f(1) == ("orig", 1, 0)
    assert mod.f(1, "s") == ("spec", 1, "s")


def test_arg_type_is_exact_subclasses_fail(spec):
    """Subclasses do not pass GuardArgType (bool is not int)."""
    mod = new_module(ARGTYPE_SOURCE)
    spec(mod.f, mod.f_spec.__code__, [fatjit.GuardArgType(0, int)])
    assert mod.f(True) == ("orig", True, 0)


def test_arg_type_failures_are_temporary_and_counted(spec):
    """Wrong types fail with 1 and are counted under 'arg_type'; the specialization stays."""
    mod = new_module(ARGTYPE_SOURCE)
    spec(mod.f, mod.f_spec.__code__, [fatjit.GuardArgType(0, int)])
    watch = StatsWatch()
    for value in ("a", b"b", 1.0, None):
        mod.f(value)
    delta = watch.delta()
    assert delta["guard_failures"]["arg_type"] == 4
    assert delta["specializations_dropped"] == 0
    assert mod.f(1) == ("spec", 1, 0)


# --- GuardType ------------------------------------------------------------------------------

TYPE_SOURCE = """
    class C:
        scale = 2
        def get(self):
            return self.scale
    class D(C):
        pass
    def f(obj):
        return ("orig", obj.get() * 10)
    def f_spec(obj):
        return ("spec", 20)
"""


def test_changing_a_class_attribute_fails_forever(spec):
    """GuardType(C): setting an attribute of C returns 2, runs the original, drops the spec."""
    mod = new_module(TYPE_SOURCE)
    guard = fatjit.GuardType(mod.C)
    spec(mod.f, mod.f_spec.__code__, [guard])
    obj = mod.C()
    assert mod.f(obj) == ("spec", 20)
    watch = StatsWatch()
    mod.C.scale = 3
    assert guard() == 2
    assert mod.f(obj) == ("orig", 30)
    assert fatjit.get_specialized(mod.f) == []
    delta = watch.delta()
    assert delta["guard_failures_forever"]["type"] == 1
    assert delta["specializations_dropped"] == 1
    mod.C.scale = 2  # restoring does not help: a type version never comes back
    assert guard() == 2
    assert mod.f(obj) == ("orig", 20)


def test_changing_a_base_class_fails_the_subclass_guard(spec):
    """GuardType(D) fails when an attribute of its base C changes."""
    mod = new_module(TYPE_SOURCE)
    guard = fatjit.GuardType(mod.D)
    spec(mod.f, mod.f_spec.__code__, [guard])
    obj = mod.D()
    assert mod.f(obj) == ("spec", 20)
    mod.C.get = lambda self: 7
    assert guard() == 2
    assert mod.f(obj) == ("orig", 70)


def test_changing_a_method_fails_the_guard(spec):
    """Adding or deleting an attribute on the guarded class also fails GuardType."""
    mod = new_module(TYPE_SOURCE)
    guard = fatjit.GuardType(mod.C)
    spec(mod.f, mod.f_spec.__code__, [guard])
    mod.C.extra = 1
    assert guard() == 2
    assert mod.f(mod.C()) == ("orig", 20)


def test_instance_attribute_changes_do_not_fail_the_type_guard(spec):
    """Setting attributes on instances leaves the type's version alone."""
    mod = new_module(TYPE_SOURCE)
    guard = fatjit.GuardType(mod.C)
    spec(mod.f, mod.f_spec.__code__, [guard])
    obj = mod.C()
    obj.other = 5
    assert guard() == 0
    assert mod.f(obj) == ("spec", 20)


# --- GuardDict and guard_type_dict ----------------------------------------------------------

DICT_SOURCE = """
    CONFIG = {"mode": "fast", "level": 1}
    def f():
        return ("orig", CONFIG.get("mode"))
    def f_spec():
        return ("spec", "fast")
"""


def test_guard_dict_on_an_arbitrary_dict(spec):
    """GuardDict(d, key): changing d[key] runs the original; restoring the object passes again."""
    mod = new_module(DICT_SOURCE)
    guard = fatjit.GuardDict(mod.CONFIG, "mode")
    spec(mod.f, mod.f_spec.__code__, [guard])
    assert mod.f() == ("spec", "fast")
    fast = mod.CONFIG["mode"]
    mod.CONFIG["level"] = 2  # an unwatched key
    assert mod.f() == ("spec", "fast")
    mod.CONFIG["mode"] = "slow"
    assert guard() == 1
    assert mod.f() == ("orig", "slow")
    mod.CONFIG["mode"] = fast
    assert guard() == 0
    assert mod.f() == ("spec", "fast")


def test_guard_dict_deleted_key_and_cleared_dict(spec):
    """Deleting the watched key or clearing the dict fails GuardDict."""
    mod = new_module(DICT_SOURCE)
    spec(mod.f, mod.f_spec.__code__, [fatjit.GuardDict(mod.CONFIG, "mode")])
    del mod.CONFIG["mode"]
    assert mod.f() == ("orig", None)
    mod.CONFIG["mode"] = "fast"
    assert mod.f() == ("spec", "fast")  # "fast" is interned: the same object again
    mod.CONFIG.clear()
    assert mod.f() == ("orig", None)


def test_guard_dict_watched_absent_key(spec):
    """A key absent at guard creation must stay absent."""
    mod = new_module("""
        OPTS = {}
        def f():
            return ("orig", OPTS.get("debug"))
        def f_spec():
            return ("spec", None)
    """)
    spec(mod.f, mod.f_spec.__code__, [fatjit.GuardDict(mod.OPTS, "debug")])
    assert mod.f() == ("spec", None)
    mod.OPTS["debug"] = True
    assert mod.f() == ("orig", True)


def test_guard_dict_failures_are_counted_by_kind(spec):
    """GuardDict failures count under guard_failures['dict']."""
    mod = new_module(DICT_SOURCE)
    spec(mod.f, mod.f_spec.__code__, [fatjit.GuardDict(mod.CONFIG, "mode")])
    watch = StatsWatch()
    mod.CONFIG["mode"] = "slow"
    mod.f()
    assert watch.delta()["guard_failures"]["dict"] == 1


def test_guard_type_dict_watches_class_attributes(spec):
    """guard_type_dict(C, ['scale']): rebinding C.scale runs the original."""
    mod = new_module(TYPE_SOURCE)
    guards = fatjit.guard_type_dict(mod.C, ["scale"])
    spec(mod.f, mod.f_spec.__code__, guards)
    obj = mod.C()
    assert mod.f(obj) == ("spec", 20)
    old = mod.C.scale
    mod.C.scale = 5
    assert mod.f(obj) == ("orig", 50)
    mod.C.scale = old
    assert mod.f(obj) == ("spec", 20)


# --- several guards -------------------------------------------------------------------------

def test_any_failing_guard_runs_the_original(spec):
    """With several guards, each one alone failing is enough to run the original."""
    mod = new_module(SOURCE)
    guards = [fatjit.GuardGlobals("X"), fatjit.GuardBuiltins("len"), fatjit.GuardArgType(0, str)]
    spec(mod.f, mod.f_spec.__code__, guards)
    assert mod.f("ab") == ("spec", 3)
    assert mod.f(["a", "b"]) == ("orig", 3)
    one = mod.X
    mod.X = 7
    assert mod.f("ab") == ("orig", 9)
    mod.X = one
    real_len = builtins.len
    builtins.len = lambda s: 0
    assert mod.f("ab") == ("orig", 1)
    builtins.len = real_len
    assert mod.f("ab") == ("spec", 3)


def test_guard_builtins_watches_the_functions_own_builtins(spec):
    """GuardBuiltins watches the function's own __builtins__ dict, not the builtins module."""
    custom = {"len": len}
    mod = new_module(SOURCE, __builtins__=custom)
    guard = fatjit.GuardBuiltins("len")
    spec(mod.f, mod.f_spec.__code__, [guard])
    assert mod.f("ab") == ("spec", 3)
    real_len = builtins.len
    builtins.len = lambda s: 0  # not this function's builtins
    try:
        assert mod.f("ab") == ("spec", 3)
    finally:
        builtins.len = real_len
    custom["len"] = lambda s: 50
    assert guard() == 1
    assert mod.f("ab") == ("orig", 51)


def test_guard_func_stays_failed_after_the_code_is_put_back():
    """GuardFunc's 2 means forever: restoring the old __code__ does not revive it."""
    mod = new_module("""
        def f():
            return 1
        def other():
            return 2
    """)
    guard = fatjit.GuardFunc(mod.f)
    original = mod.f.__code__
    assert guard() == 0
    mod.f.__code__ = mod.other.__code__
    assert guard() == 2
    mod.f.__code__ = original
    assert guard() == 2
