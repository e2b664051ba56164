"""Specialized functions keep Python's calling conventions on both dispatch paths.

"swap": the specialization has the same locals layout, and the frame's code object is swapped.
"call": it does not (an extra local, a deeper stack, a builtin or any callable stand-in), and it
is called with the frame's bound arguments.
"""

import functools
import sys

import pytest

import fatjit
from support import StatsWatch, new_module, run_paths

G = fatjit.GuardGlobals


def check_path(func, path):
    assert run_paths(func) == [path], fatjit.explain(func)


# --- parameters -----------------------------------------------------------------------------

PARAMS_SOURCE = """
    def f(a, b=2, *args, c, d=4, **kw):
        return ("orig", a, b, args, c, d, kw)
    def ref(a, b=2, *args, c, d=4, **kw):
        return ("orig", a, b, args, c, d, kw)
    def f_swap(a, b=2, *args, c, d=4, **kw):
        return ("spec", a, b, args, c, d, kw)
    def f_call(a, b=2, *args, c, d=4, **kw):
        tag = "spec"
        return (tag, a, b, args, c, d, kw)
"""

CALLS = [
    ((1,), {"c": 3}),
    ((1, 5), {"c": 3}),
    ((1, 5, 6, 7), {"c": 3, "d": 8}),
    ((), {"a": 1, "c": 3}),
    ((), {"c": 3, "b": 9, "a": 1}),
    ((1,), {"c": 3, "x": 10, "y": 11}),
    ((1, 2, 3), {"c": 3, "d": 4, "z": None, "a_": 0}),
    (tuple(range(20)), {"c": 0, **{f"k{i}": i for i in range(10)}}),
]


@pytest.mark.parametrize("path", ["swap", "call"])
def test_keywords_defaults_varargs_and_kwonly(spec, path):
    """Positional, keyword, default, *args, keyword-only and **kwargs arguments arrive intact."""
    mod = new_module(PARAMS_SOURCE)
    spec(mod.f, getattr(mod, f"f_{path}").__code__, [G("ref")])
    check_path(mod.f, path)
    for args, kwargs in CALLS:
        expected = ("spec",) + mod.ref(*args, **kwargs)[1:]
        got = mod.f(*args, **kwargs)
        assert got == expected
        assert list(got[-1]) == list(expected[-1])  # **kwargs keep the caller's order


@pytest.mark.parametrize("path", ["swap", "call"])
def test_binding_errors_are_raised_before_dispatch(spec, path):
    """A call that cannot bind raises CPython's usual TypeError."""
    mod = new_module(PARAMS_SOURCE)
    spec(mod.f, getattr(mod, f"f_{path}").__code__, [G("ref")])
    with pytest.raises(TypeError, match="missing 1 required keyword-only argument: 'c'"):
        mod.f(1)
    with pytest.raises(TypeError, match="multiple values for argument 'a'"):
        mod.f(1, a=2, c=3)


@pytest.mark.parametrize("path", ["swap", "call"])
def test_default_objects_are_passed_by_identity(spec, path):
    """A defaulted parameter receives the very default object, as in plain CPython."""
    mod = new_module("""
        def f(a, b=[], *, c={}):
            return ("orig", b, c)
        def f_swap(a, b=[], *, c={}):
            return ("spec", b, c)
        def f_call(a, b=[], *, c={}):
            x = "spec"
            return (x, b, c)
    """)
    spec(mod.f, getattr(mod, f"f_{path}").__code__, [G("f")])
    check_path(mod.f, path)
    tag, b, c = mod.f(0)
    assert tag == "spec"
    assert b is mod.f.__defaults__[0]
    assert c is mod.f.__kwdefaults__["c"]


@pytest.mark.parametrize("path", ["swap", "call"])
def test_positional_only_name_also_in_kwargs(spec, path):
    """def f(a, /, **kw) called as f(1, a=2): `a` is bound to 1 and kw == {'a': 2}."""
    mod = new_module("""
        def f(a, /, **kw):
            return ("orig", a, kw)
        def f_swap(a, /, **kw):
            return ("spec", a, kw)
        def f_call(a, /, **kw):
            t = "spec"
            return (t, a, kw)
    """)
    spec(mod.f, getattr(mod, f"f_{path}").__code__, [G("f")])
    assert mod.f(1, a=2) == ("spec", 1, {"a": 2})
    assert mod.f(1) == ("spec", 1, {})


def test_deeper_stack_runs_by_call(spec):
    """Same locals but a deeper value stack cannot fit the frame: it runs as a call, correctly."""
    mod = new_module("""
        def f(x):
            return x
        def f_deep(x):
            return ("spec", (x, (x, (x, (x, (x, (x, x)))))))
    """)
    spec(mod.f, mod.f_deep.__code__, [G("f")])
    check_path(mod.f, "call")
    assert mod.f(1) == ("spec", (1, (1, (1, (1, (1, (1, 1)))))))


def test_method_of_a_class(spec):
    """A function used as a method is specialized for calls through instances too."""
    mod = new_module("""
        class C:
            def m(self, x, y=1):
                return ("orig", x + y)
        def m_spec(self, x, y=1):
            return ("spec", x + y)
    """)
    spec(mod.C.m, mod.m_spec.__code__, [G("C")])
    obj = mod.C()
    assert obj.m(1) == ("spec", 2)
    assert obj.m(1, y=5) == ("spec", 6)
    assert mod.C.m(obj, 2) == ("spec", 3)
    assert functools.partial(obj.m, 3)() == ("spec", 4)
    assert sorted([3, 1, 2], key=functools.partial(obj.m, y=0)) == [1, 2, 3]


# --- closures -------------------------------------------------------------------------------

CLOSURE_SOURCE = """
    def make(k):
        def f(x):
            return ("orig", x + k)
        def f_swap(x):
            return ("spec", x + k)
        def f_call(x):
            y = x + k
            return ("spec", y)
        def set_k(value):
            nonlocal k
            k = value
        return f, f_swap, f_call, set_k
"""


@pytest.mark.parametrize("path", ["swap", "call"])
def test_free_variables(spec, path):
    """The specialization reads the function's own closure cells, including later updates."""
    mod = new_module(CLOSURE_SOURCE)
    f, f_swap, f_call, set_k = mod.make(10)
    spec(f, (f_swap if path == "swap" else f_call).__code__, [G("make")])
    check_path(f, path)
    assert f(1) == ("spec", 11)
    set_k(100)
    assert f(1) == ("spec", 101)


@pytest.mark.parametrize("path", ["swap", "call"])
def test_two_closures_on_one_code_object(spec, path):
    """Two closures of the same code: only the specialized one runs the specialization."""
    mod = new_module(CLOSURE_SOURCE)
    f1, f_swap, f_call, _ = mod.make(1)
    f2, _, _, _ = mod.make(2)
    assert f1.__code__ is f2.__code__
    spec(f1, (f_swap if path == "swap" else f_call).__code__, [G("make")])
    assert f1(0) == ("spec", 1)
    assert f2(0) == ("orig", 2)


@pytest.mark.parametrize("path", ["swap", "call"])
def test_cell_variables(spec, path):
    """A parameter captured by an inner function (a cell variable) is seen by the closure."""
    mod = new_module("""
        def f(x, n=3):
            def inner():
                return x * n
            return ("orig", inner())
        def f_swap(x, n=3):
            def inner():
                return x * n
            return ("spec", inner())
        def f_call(x, n=3):
            def inner():
                return x * n
            r = inner()
            return ("spec", r)
    """)
    spec(mod.f, getattr(mod, f"f_{path}").__code__, [G("f")])
    check_path(mod.f, path)
    assert mod.f(2) == ("spec", 6)
    assert mod.f("ab", n=2) == ("spec", "abab")


# --- recursion ------------------------------------------------------------------------------

@pytest.mark.no_jit_stress(
    "exact specialized_runs delta: stress mode runs the test's helpers (StatsWatch) specialized"
    " too")
@pytest.mark.parametrize("path", ["swap", "call"])
def test_recursive_specialized_function(spec, path):
    """Each recursive call dispatches again and runs the specialization."""
    mod = new_module("""
        def fact(n):
            return ("orig", 1 if n <= 1 else n * fact(n - 1)[1])
        def fact_swap(n):
            return ("spec", 1 if n <= 1 else n * fact(n - 1)[1])
        def fact_call(n):
            r = 1 if n <= 1 else n * fact(n - 1)[1]
            return ("spec", r)
    """)
    spec(mod.fact, getattr(mod, f"fact_{path}").__code__, [G("fact")])
    watch = StatsWatch()
    assert mod.fact(10) == ("spec", 3628800)
    assert watch.delta()["specialized_runs"] == 10


def test_guard_invalidated_during_recursion(spec):
    """A specialization that fails its own guard mid-call: the nested calls run the original."""
    mod = new_module("""
        X = 0
        def f(n):
            return ["orig"] + (f(n - 1) if n else [])
        def f_spec(n):
            global X
            X = X + 1
            return ["spec"] + (f(n - 1) if n else [])
    """)
    spec(mod.f, mod.f_spec.__code__, [G("X")])
    assert mod.f(2) == ["spec", "orig", "orig"]


@pytest.mark.no_jit_stress(
    "asserts f has no specialization after it dropped its own: stress mode specializes f again "
    "at its next call")
def test_specialization_unspecializes_itself_while_running(spec):
    """Dropping the running specialization from inside it is safe; later calls run the original."""
    mod = new_module("""
        import fatjit
        def f(n):
            return ("orig", n)
        def f_spec(n):
            fatjit.unspecialize(f)
            return ("spec", n, f(n + 1))
    """)
    spec(mod.f, mod.f_spec.__code__, [G("f")])
    assert mod.f(1) == ("spec", 1, ("orig", 2))
    assert fatjit.get_specialized(mod.f) == []


# --- generators -----------------------------------------------------------------------------

GEN_SOURCE = """
    def gen(n):
        for i in range(n):
            got = yield ("orig", i)
            if got is not None:
                yield ("orig got", got)
    def gen_swap(n):
        for i in range(n):
            got = yield ("spec", i)
            if got is not None:
                yield ("spec got", got)
    def gen_call(n):
        tag = "spec"
        for i in range(n):
            got = yield (tag, i)
            if got is not None:
                yield (tag + " got", got)
"""


@pytest.mark.parametrize("path", ["swap", "call"])
def test_specialized_generator_function(spec, path):
    """A specialized generator function yields the specialization's values, send() included."""
    mod = new_module(GEN_SOURCE)
    spec(mod.gen, getattr(mod, f"gen_{path}").__code__, [G("gen")])
    check_path(mod.gen, path)
    assert list(mod.gen(3)) == [("spec", 0), ("spec", 1), ("spec", 2)]
    g = mod.gen(2)
    assert next(g) == ("spec", 0)
    assert g.send("x") == ("spec got", "x")
    assert next(g) == ("spec", 1)
    with pytest.raises(StopIteration):
        next(g)


def test_specialized_generator_reports_the_code_it_runs(spec):
    """A swapped-in generator's gi_code is the code its frame runs, as in plain CPython."""
    mod = new_module(GEN_SOURCE)
    spec(mod.gen, mod.gen_swap.__code__, [G("gen")])
    g = mod.gen(2)
    assert g.gi_frame.f_code is mod.gen_swap.__code__
    assert g.gi_code is g.gi_frame.f_code


@pytest.mark.no_jit_stress(
    "exact specialized_runs delta: stress mode runs pytest.raises and the test's helpers "
    "specialized too")
def test_original_generator_resumes_and_throw_are_counted(spec):
    """A generator of the original code (guard failed) is resumed as is, counted as a fallback."""
    mod = new_module(GEN_SOURCE + "\n    X = 1\n")
    spec(mod.gen, mod.gen_swap.__code__, [G("X")])
    mod.X = 2
    watch = StatsWatch()
    g = mod.gen(5)
    assert next(g) == ("orig", 0)
    mod.X = 1  # guards pass again, but the started frame must go on with the original code
    assert next(g) == ("orig", 1)
    assert g.send("s") == ("orig got", "s")
    with pytest.raises(KeyError):
        g.throw(KeyError("k"))
    delta = watch.delta()
    assert delta["specialized_runs"] == 0
    assert delta["fallbacks"]["no_guard_passed"] == 1
    assert delta["fallbacks"]["resumed"] == 3  # both next() calls and the send()
    assert delta["fallbacks"]["throw"] == 1


@pytest.mark.no_jit_stress(
    "exact specialized_runs/guard_checks deltas: stress mode runs pytest.raises and the test's "
    "helpers specialized too")
def test_specialized_generator_resumes_without_dispatch(spec):
    """Resuming a specialized generator continues its own frame: one dispatch, at creation."""
    mod = new_module(GEN_SOURCE)
    spec(mod.gen, mod.gen_swap.__code__, [G("gen")])
    watch = StatsWatch()
    g = mod.gen(5)
    assert next(g) == ("spec", 0)
    assert next(g) == ("spec", 1)
    with pytest.raises(KeyError):
        g.throw(KeyError("k"))
    delta = watch.delta()
    assert delta["specialized_runs"] == 1
    assert delta["guard_checks"] == 1


def test_generator_created_before_invalidation_keeps_running(spec):
    """A generator started under the specialization finishes it; new ones run the original."""
    mod = new_module(GEN_SOURCE + "\n    X = 1\n")
    spec(mod.gen, mod.gen_swap.__code__, [G("X")])
    g = mod.gen(3)
    assert next(g) == ("spec", 0)
    mod.X = 2
    assert list(mod.gen(2)) == [("orig", 0), ("orig", 1)]
    assert list(g) == [("spec", 1), ("spec", 2)]


# --- exceptions and frames ------------------------------------------------------------------

EXC_SOURCE = """
    def helper(x):
        raise ValueError(x)
    def f(x):
        return ("orig", 1 // x)
    def f_swap(x):
        if x:
            return ("spec", 1 // x)
        raise ZeroDivisionError("from spec")
    def f_call(x):
        y = x
        if y:
            return ("spec", 1 // y)
        raise ZeroDivisionError("from spec")
    def g(x):
        return helper(x)
    def g_swap(x):
        return ("spec", helper(x))
    def g_call(x):
        y = helper(x)
        return ("spec", y)
"""


def tb_entries(tb):
    entries = []
    while tb is not None:
        entries.append((tb.tb_frame.f_code, tb.tb_lineno))
        tb = tb.tb_next
    return entries


@pytest.mark.parametrize("path", ["swap", "call"])
def test_traceback_points_into_the_specialized_code(spec, path):
    """An exception raised by specialized code has a traceback entry for it at the right line."""
    mod = new_module(EXC_SOURCE)
    code = getattr(mod, f"f_{path}").__code__
    spec(mod.f, code, [G("f")])
    with pytest.raises(ZeroDivisionError, match="from spec") as info:
        mod.f(0)
    entries = tb_entries(info.value.__traceback__)
    assert entries[0][0] is sys._getframe().f_code
    raise_line = code.co_firstlineno + (3 if path == "swap" else 4)
    assert entries[1:] == [(code, raise_line)]
    assert mod.f(2) == ("spec", 0)


@pytest.mark.parametrize("path", ["swap", "call"])
def test_traceback_through_a_callee(spec, path):
    """An exception from a callee shows the specialized frame at the call line, then the callee."""
    mod = new_module(EXC_SOURCE)
    code = getattr(mod, f"g_{path}").__code__
    spec(mod.g, code, [G("g")])
    with pytest.raises(ValueError) as info:
        mod.g(5)
    entries = tb_entries(info.value.__traceback__)[1:]
    assert entries == [(code, code.co_firstlineno + 1),
                       (mod.helper.__code__, mod.helper.__code__.co_firstlineno + 1)]


def test_exception_handled_inside_specialized_code(spec):
    """try/except in swapped-in code uses that code's own exception table."""
    mod = new_module("""
        def f(x):
            try:
                return ("orig", 1 // x)
            except ZeroDivisionError:
                return ("orig caught", x)
        def f_spec(x):
            try:
                return ("spec", 1 // x)
            except ZeroDivisionError:
                return ("spec caught", x)
    """)
    spec(mod.f, mod.f_spec.__code__, [G("f")])
    check_path(mod.f, "swap")
    assert mod.f(0) == ("spec caught", 0)
    assert mod.f(1) == ("spec", 1)


def test_swapped_frame_reports_the_specialized_code(spec):
    """Inside swapped code, f_code, f_lineno and locals() are those of the specialization."""
    mod = new_module("""
        import sys
        def f(a, b):
            return ("orig", a, b, a, b, a, b, a, b, a, b)
        def f_spec(a, b):
            return (sys._getframe().f_code, sys._getframe().f_lineno, locals(),
                    sys._getframe().f_back.f_code)
    """)
    spec(mod.f, mod.f_spec.__code__, [G("f")])
    check_path(mod.f, "swap")
    code, lineno, local_vars, caller = mod.f(1, b=2)
    assert code is mod.f_spec.__code__
    assert lineno == mod.f_spec.__code__.co_firstlineno + 1
    assert local_vars == {"a": 1, "b": 2}
    assert caller is sys._getframe().f_code


def test_called_specialization_sees_the_real_caller(spec):
    """A specialization run as a call has the caller as its f_back (no phantom frame)."""
    mod = new_module("""
        import sys
        def f(a):
            return ("orig", a)
        def f_spec(a):
            me = sys._getframe()
            return (me.f_code, me.f_back.f_code)
    """)
    spec(mod.f, mod.f_spec.__code__, [G("f")])
    check_path(mod.f, "call")
    code, caller = mod.f(1)
    assert code is mod.f_spec.__code__
    assert caller is sys._getframe().f_code


# --- callable stand-ins ---------------------------------------------------------------------

@pytest.mark.no_jit_stress(
    "exact specialized_runs delta: stress mode runs the test's helpers (StatsWatch) specialized"
    " too")
def test_builtin_stand_in(spec):
    """fat's example: def f(x): return chr(x), specialized by the builtin chr itself."""
    mod = new_module("""
        def f(x):
            return chr(x)
    """)
    spec(mod.f, chr, [fatjit.GuardBuiltins("chr")])
    check_path(mod.f, "call")
    watch = StatsWatch()
    assert mod.f(65) == "A"
    assert mod.f(x=66) == "B"
    assert watch.delta()["specialized_runs"] == 2
    with pytest.raises(ValueError, match="chr"):
        mod.f(-1)
    import builtins
    builtins.chr = lambda x: "patched"
    assert mod.f(65) == "patched"


def test_python_callable_stand_ins(spec):
    """Non-function callables stand in: an object with __call__, a bound method, a partial."""
    # (A Python function given as `code` is PEP 510's "use its code object" form instead.)
    mod = new_module("""
        def f(x, y=1):
            return ("orig", x, y)
        def g(x, y=1):
            return ("orig", x, y)
        def h(x, y=1):
            return ("orig", x, y)
        class Impl:
            def run(self, x, y):
                return ("method", x, y)
            def __call__(self, x, y):
                return ("object", x, y)
    """)
    spec(mod.f, mod.Impl(), [G("f")])
    spec(mod.g, mod.Impl().run, [G("g")])
    spec(mod.h, functools.partial(lambda tag, x, y: (tag, x, y), "partial"), [G("h")])
    assert mod.f(1) == ("object", 1, 1)
    assert mod.g(2, y=3) == ("method", 2, 3)
    assert mod.h(y=4, x=5) == ("partial", 5, 4)


def test_stand_in_receives_kwonly_and_kwargs_by_keyword(spec):
    """The stand-in gets positional parameters by position, the rest by keyword."""
    mod = new_module("""
        def f(a, *args, k, **kw):
            return ("orig",)
    """)
    seen = []

    class Recorder:
        def __call__(self, *args, **kwargs):
            seen.append((args, kwargs))
            return "spec"

    spec(mod.f, Recorder(), [G("f")])
    assert mod.f(1, 2, 3, k=4, z=5) == "spec"
    assert seen == [((1, 2, 3), {"k": 4, "z": 5})]


def test_stand_in_exception_propagates(spec):
    """An exception raised by a stand-in reaches the caller unchanged."""
    mod = new_module("""
        def f(x):
            return x
    """)

    def boom(self, x):
        raise LookupError(f"boom {x}")

    spec(mod.f, type("Boom", (), {"__call__": boom})(), [G("f")])
    with pytest.raises(LookupError, match="boom 3"):
        mod.f(3)


# --- more function kinds ----------------------------------------------------------------------

def run_coroutine(coro):
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    raise AssertionError("the coroutine did not finish")


@pytest.mark.parametrize("path", ["swap", "call"])
def test_specialized_coroutine_function(spec, path):
    """An async function is specialized like a generator: awaiting it gives the spec's result."""
    mod = new_module("""
        async def f(x):
            return ("orig", x)
        async def f_swap(x):
            return ("spec", x)
        async def f_call(x):
            y = x
            return ("spec", y)
    """)
    spec(mod.f, getattr(mod, f"f_{path}").__code__, [G("f")])
    check_path(mod.f, path)
    assert run_coroutine(mod.f(4)) == ("spec", 4)


def test_zero_argument_super_in_specialized_method(spec):
    """A method using super() (a __class__ free variable) keeps working when specialized."""
    mod = new_module("""
        class Base:
            def m(self, x):
                return ("base", x)
        class C(Base):
            def m(self, x):
                return ("orig", super().m(x))
            def m_spec(self, x):
                return ("spec", super().m(x))
    """)
    spec(mod.C.m, mod.C.m_spec.__code__, [G("C")])
    check_path(mod.C.m, "swap")
    assert mod.C().m(1) == ("spec", ("base", 1))


def test_specialized_code_is_not_dispatched_again(spec):
    """Code swapped in for f runs as is, even if its own function is specialized too."""
    mod = new_module("""
        def f():
            return "f"
        def g():
            return "g"
        def h():
            return "h"
    """)
    spec(mod.f, mod.g.__code__, [G("f")])
    spec(mod.g, mod.h.__code__, [G("g")])
    assert mod.f() == "g"
    assert mod.g() == "h"


@pytest.mark.parametrize("path", ["swap", "call"])
def test_unbounded_recursion_raises_recursion_error(spec, path):
    """Runaway recursion in specialized code raises RecursionError, as in plain CPython."""
    mod = new_module("""
        def f(n):
            return ("orig", f(n + 1))
        def f_swap(n):
            return ("spec", f(n + 1))
        def f_call(n):
            m = n + 1
            return ("spec", f(m))
    """)
    spec(mod.f, getattr(mod, f"f_{path}").__code__, [G("f")])
    with pytest.raises(RecursionError):
        mod.f(0)
    assert mod.f.__code__.co_name == "f"
