"""The automatic specializer as users see it: fatjit.specialize(func) / @fatjit.specialize.

Every function is built in a fresh module (support.new_module) and compared with a twin built
from the same source that is never specialized: the twin is what CPython computes.
"""

import builtins
import sys
import traceback
import types

import pytest

import fatjit
from support import StatsWatch, new_module

report = fatjit._fatjit._specialize_report


@pytest.fixture
def auto(no_leaked_specializations):
    """auto(func, **kw): fatjit.specialize(func, **kw), undone at teardown. auto.track(func)
    only remembers a function marked some other way (a decorator) for the teardown."""
    marked = []

    def specialize(func, **kwargs):
        marked.append(func)
        return fatjit.specialize(func, **kwargs)

    specialize.track = marked.append
    yield specialize
    for func in marked:
        fatjit.unspecialize(func)


def twins(source, **names):
    """(module to specialize, reference module never specialized), from the same source."""
    return new_module(source, **names), new_module(source, **names)


def active_lines(func):
    """The rewrite lines of explain(func), stripped."""
    return [line.strip() for line in fatjit.explain(func).splitlines() if "->" in line]


def tb_positions(exc):
    """(function, line, end line, column, end column) of each frame of the test modules."""
    out = []
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename.startswith("<fatjit_test_mod"):
            out.append((frame.name, frame.lineno, frame.end_lineno, frame.colno,
                        frame.end_colno))
    return out


def outcome(func, *args, **kwargs):
    """('ok', result) or ('raised', type, message, traceback positions)."""
    try:
        return ("ok", func(*args, **kwargs))
    except Exception as exc:  # noqa: BLE001
        return ("raised", type(exc), str(exc), tb_positions(exc))


SIMPLE = """
    X = 3
    def f(a):
        return X + a
"""

# ------------------------------------------------------------------------------------------------
# Decorator forms and when specialization happens


def test_specialize_returns_the_function_itself(auto):
    mod = new_module(SIMPLE)
    assert auto(mod.f) is mod.f
    assert auto(mod.f, assume="entry") is mod.f


def test_decorator_forms(auto):
    """@fatjit.specialize, @fatjit.specialize(), @fatjit.specialize(assume=...) all mark the
    function and return it unchanged; the assume shows in explain() after the first call."""
    mod = new_module("""
        X = 3
        @fatjit.specialize
        def plain(a):
            return X + a
        @fatjit.specialize()
        def called(a):
            return X + a
        @fatjit.specialize(assume="stable")
        def stable(a):
            return X + a
        @fatjit.specialize(assume="entry")
        def entry(a):
            return X + a
    """, fatjit=fatjit)
    funcs = [mod.plain, mod.called, mod.stable, mod.entry]
    for func in funcs:
        auto.track(func)
        assert isinstance(func, types.FunctionType)
        assert "made at the next call" in fatjit.explain(func)
        assert func(1) == 4
        assert len(fatjit.get_specialized(func)) == 1
    assert "(assume=stable)" in fatjit.explain(mod.plain)
    assert "(assume=stable)" in fatjit.explain(mod.called)
    assert "(assume=stable)" in fatjit.explain(mod.stable)
    assert "(assume=entry)" in fatjit.explain(mod.entry)


@pytest.mark.no_jit_stress(
    "exact auto_specialized delta: stress mode specializes the test's helpers (StatsWatch, "
    "fixtures) at their first calls too")
def test_specialized_at_first_call(auto):
    """Marking makes nothing: get_specialized is empty until the first call, which specializes
    and runs the specialized code; then there is exactly one specialization."""
    mod = new_module(SIMPLE)
    watch = StatsWatch()
    auto(mod.f)
    assert fatjit.get_specialized(mod.f) == []
    assert watch.delta()["auto_specialized"] == 0
    assert mod.f(1) == 4
    [(code, guards)] = fatjit.get_specialized(mod.f)
    assert isinstance(code, types.CodeType) and code is not mod.f.__code__
    assert code.co_name == "f"
    assert [repr(g) for g in guards] == ["<fatjit.GuardGlobals(X)>"]
    delta = watch.delta()
    assert delta["auto_specialized"] == 1
    assert delta["specialized_runs"] == 1
    assert mod.f(2) == 5
    assert len(fatjit.get_specialized(mod.f)) == 1
    assert watch.delta()["auto_specialized"] == 1


def test_specialized_against_the_state_at_first_call(auto):
    """The state seen is the one at the first call, not at marking (decorators run before the
    rest of the module is defined)."""
    mod = new_module(SIMPLE)
    auto(mod.f)
    mod.X = 10
    assert mod.f(1) == 11
    assert "LOAD_GLOBAL X -> LOAD_CONST 10" in fatjit.explain(mod.f)
    assert mod.f(2) == 12


def test_decorator_before_the_globals_exist(auto):
    """@fatjit.specialize on a function whose globals are defined later in the module."""
    mod = new_module("""
        @fatjit.specialize
        def area(r):
            return PI * r * r
        PI = 3.0
    """, fatjit=fatjit)
    auto.track(mod.area)
    assert mod.area(2) == 12.0
    assert "LOAD_GLOBAL PI -> LOAD_CONST 3.0" in fatjit.explain(mod.area)


def test_original_code_object_never_mutated(auto):
    mod = new_module(SIMPLE)
    code = mod.f.__code__
    raw = code.co_code
    auto(mod.f)
    mod.f(1)
    assert mod.f.__code__ is code
    assert code.co_code == raw


def test_specialize_again_replaces_the_automatic_specialization(auto):
    """Marking again drops the old automatic specialization; the next call makes a new one
    against the current state."""
    mod = new_module(SIMPLE)
    auto(mod.f)
    assert mod.f(1) == 4
    mod.X = 100
    auto(mod.f)
    assert fatjit.get_specialized(mod.f) == []
    assert mod.f(1) == 101
    assert len(fatjit.get_specialized(mod.f)) == 1
    assert "LOAD_CONST 100" in fatjit.explain(mod.f)


@pytest.mark.no_jit_stress(
    "asserts f stays unspecialized after unspecialize(): stress mode's automatic mode "
    "specializes it at its next call")
def test_unspecialize_before_first_call(auto):
    mod = new_module(SIMPLE)
    watch = StatsWatch()
    auto(mod.f)
    fatjit.unspecialize(mod.f)
    assert mod.f(1) == 4
    assert fatjit.get_specialized(mod.f) == []
    assert watch.delta()["auto_specialized"] == 0


# ------------------------------------------------------------------------------------------------
# Results equal to the original's


EQUALITY = """
    import math
    import types
    cfg = types.ModuleType("cfg")
    cfg.SCALE = 3
    cfg.NAME = "cfg"
    X = 3
    NAMES = ("a", "bb", "ccc")
    DEBUG = False
    def builtins_(s, t=(3, 1, 2)):
        return len(s), abs(-len(s)), min(t), max(t, key=abs), sorted(t), str(len(t))
    def module_attrs(r):
        return math.pi * r * r + math.sqrt(r) + cfg.SCALE, cfg.NAME.upper()
    def branches(a):
        if DEBUG:
            return "debug"
        if X > 2:
            return X * a
        return -a
    def loop(n):
        total = 0
        for i in range(n):
            total += X * i + len(NAMES)
        return total
    def keywords(a, *args, k=X, **kw):
        return X, a, args, k, sorted(kw.items()), round(a / 3, ndigits=2)
    def comprehension(n):
        return [x * X for x in range(n)], {name: len(name) for name in NAMES}
"""

EQUALITY_CALLS = [
    ("builtins_", ("abc",), {}), ("builtins_", ("",), {"t": (-5, 4)}),
    ("module_attrs", (4.0,), {}), ("module_attrs", (-1,), {}),
    ("branches", (5,), {}), ("loop", (10,), {}), ("loop", (0,), {}),
    ("keywords", (1, 2, 3), {"k": 4, "z": 5}), ("keywords", (7,), {}),
    ("comprehension", (4,), {}),
]


@pytest.mark.parametrize("assume", ["stable", "entry"])
def test_results_equal_the_original(auto, assume):
    mod, ref = twins(EQUALITY)
    for name in {name for name, _, _ in EQUALITY_CALLS}:
        auto(getattr(mod, name), assume=assume)
    for _ in range(2):  # the first call specializes; the second runs the specialization made
        for name, args, kwargs in EQUALITY_CALLS:
            assert (outcome(getattr(mod, name), *args, **kwargs)
                    == outcome(getattr(ref, name), *args, **kwargs)), name
    specialized = [name for name in {n for n, _, _ in EQUALITY_CALLS}
                   if fatjit.get_specialized(getattr(mod, name))]
    assert "builtins_" in specialized and "module_attrs" in specialized


# ------------------------------------------------------------------------------------------------
# Invalidation: a failed guard sends the next call to the original code


@pytest.mark.no_jit_stress(
    "exact specialized_runs delta: stress mode runs the test's helpers (StatsWatch, explain's "
    "Python part) specialized too")
def test_rebinding_a_folded_global(auto):
    mod = new_module(SIMPLE)
    auto(mod.f)
    assert mod.f(1) == 4
    watch = StatsWatch()
    mod.X = 10
    assert mod.f(1) == 11
    assert "GuardGlobals(X): FAILS now" in fatjit.explain(mod.f)
    delta = watch.delta()
    assert delta["specialized_runs"] == 0
    assert delta["guard_failures"]["globals"] == 1
    assert delta["fallbacks"]["no_guard_passed"] == 1
    mod.X = 3  # the very object it was specialized on: the guard passes again
    assert mod.f(1) == 4
    assert watch.delta()["specialized_runs"] == 1


def test_deleting_a_folded_global_raises_name_error(auto):
    mod, ref = twins(SIMPLE)
    auto(mod.f)
    mod.f(1)
    del mod.X, ref.X
    got, want = outcome(mod.f, 1), outcome(ref.f, 1)
    assert got == want
    assert got[1] is NameError and got[2] == "name 'X' is not defined"


def test_shadowing_a_builtin_with_a_global(auto):
    mod = new_module("""
        def f(s):
            return len(s)
    """)
    auto(mod.f)
    assert mod.f("abc") == 3
    assert "GuardBuiltins(len)" in fatjit.explain(mod.f)
    mod.len = lambda s: "shadow"
    assert mod.f("abc") == "shadow"
    del mod.len
    assert mod.f("abc") == 3
    assert "GuardBuiltins(len): passes now" in fatjit.explain(mod.f)


def test_replacing_a_builtin(auto):
    mod = new_module("""
        def f(s):
            return len(s)
    """)
    auto(mod.f)
    assert mod.f("abc") == 3
    real = builtins.len
    builtins.len = lambda s: "replaced"
    try:
        assert mod.f("abc") == "replaced"
        assert "GuardBuiltins(len): FAILS now" in fatjit.explain(mod.f)
    finally:
        builtins.len = real
    assert mod.f("abc") == 3


def test_changing_a_module_attribute(auto):
    """A fake config module's constant: changing, deleting (falls to the module's __getattr__)
    or restoring it is seen by the next call."""
    mod = new_module("""
        import types
        cfg = types.ModuleType("cfg")
        cfg.SCALE = 3
        def f(a):
            return cfg.SCALE * a
    """)
    auto(mod.f)
    assert mod.f(2) == 6
    assert "[module_attributes] <module cfg>.SCALE (LOAD_ATTR) -> LOAD_CONST 3" in fatjit.explain(
        mod.f)
    mod.cfg.SCALE = 5
    assert mod.f(2) == 10
    del mod.cfg.SCALE
    with pytest.raises(AttributeError, match="has no attribute 'SCALE'"):
        mod.f(2)
    mod.cfg.__getattr__ = lambda name: 7
    assert mod.f(2) == 14
    mod.cfg.SCALE = 3
    assert mod.f(2) == 6


def test_rebinding_the_module_global(auto):
    """`cfg.SCALE` is pinned through both the global `cfg` and the module's dict."""
    mod = new_module("""
        import types
        cfg = types.ModuleType("cfg")
        cfg.SCALE = 3
        def f(a):
            return cfg.SCALE * a
    """)
    auto(mod.f)
    assert mod.f(2) == 6
    other = types.ModuleType("other")
    other.SCALE = 100
    mod.cfg = other
    assert mod.f(2) == 200


def test_real_module_attribute_monkeypatched(auto, monkeypatch):
    mod = new_module("""
        import math
        def f(r):
            return math.pi * r
    """)
    auto(mod.f)
    assert mod.f(1) == pytest.approx(3.14159, rel=1e-5)
    import math
    monkeypatch.setattr(math, "pi", 3)
    assert mod.f(1) == 3
    monkeypatch.undo()
    assert mod.f(1) == pytest.approx(3.14159, rel=1e-5)


# ------------------------------------------------------------------------------------------------
# Semantics: what the function computes never changes under the default assume="stable"

REBIND_DURING_CALL = """
    X = "before"
    def rebind():
        global X
        X = "after"
    def f():
        rebind()
        return X
"""


def test_call_that_rebinds_a_global_read_afterwards_stable(auto):
    """The issue's semantics test: f calls something that rebinds a global it reads afterwards.
    Under the default semantics the specialized f returns exactly what CPython returns."""
    mod, ref = twins(REBIND_DURING_CALL)
    auto(mod.f)
    assert ref.f() == "after"
    assert mod.f() == "after"
    assert len(fatjit.get_specialized(mod.f)) == 1  # specialized (rebind is folded) ...
    lines = active_lines(mod.f)
    assert any("LOAD_GLOBAL rebind" in l and "; active)" in l for l in lines)
    # ... but not the read of X after the call
    assert any("LOAD_GLOBAL X" in l and "inactive: runs after code that may change it" in l
               for l in lines)
    mod.X = ref.X = "before"
    assert mod.f() == ref.f() == "after"


def test_call_that_rebinds_a_global_read_afterwards_entry(auto):
    """assume="entry" is FAT Python's semantics, as documented: the guards are trusted for the
    whole call, so the read of X after the rebinding call still sees the value X had at entry.
    Once X is rebound, the guard fails at the next entry and the original code runs."""
    mod, ref = twins(REBIND_DURING_CALL)
    auto(mod.f, assume="entry")
    assert ref.f() == "after"
    assert mod.f() == "before"  # differs from CPython: the documented cost of the opt-in
    assert mod.f() == "after"   # X is "after" now: guard fails at entry, the original runs
    mod.X = "before"            # the very object: the guard passes again
    assert mod.f() == "before"
    assert all("; active)" in l for l in active_lines(mod.f))


SEMANTICS_CASES = {
    "loop back-edge": ("""
        STEP = 1
        def change():
            global STEP
            STEP = 10
        def f(n):
            total = 0
            for i in range(n):
                total += STEP
                if i == 0:
                    change()
            return total
    """, (3,)),
    "operator on an unknown type": ("""
        X = 1
        class Sneaky:
            def __add__(self, other):
                global X
                X = 2
                return 0
        def f(obj):
            obj + 1
            return X
    """, ("Sneaky()",)),
    "attribute access (property)": ("""
        X = 1
        class Prop:
            @property
            def p(self):
                global X
                X = 2
                return 0
        def f(obj):
            obj.p
            return X
    """, ("Prop()",)),
    "comparison": ("""
        X = 1
        class Cmp:
            def __eq__(self, other):
                global X
                X = 2
                return True
        def f(obj):
            if obj == 0:
                return X
            return None
    """, ("Cmp()",)),
    "exception handler": ("""
        X = 1
        class Boom:
            def __index__(self):
                global X
                X = 2
                raise ValueError
        def f(obj):
            try:
                [1, 2][obj]
            except ValueError:
                return X
    """, ("Boom()",)),
    "handler after a rebinding call": ("""
        X = 1
        def rebind():
            global X
            X = 2
        def f():
            try:
                rebind()
                1 // 0
            except ZeroDivisionError:
                return X
    """, ()),
    "finally after a rebinding call": ("""
        X = 1
        def rebind():
            global X
            X = 2
            raise KeyError
        def f():
            try:
                try:
                    rebind()
                finally:
                    y = X
            except KeyError:
                return y
    """, ()),
    "iteration": ("""
        X = 1
        def gen():
            global X
            X = 2
            yield 1
        def f(it):
            for _ in it:
                pass
            return X
    """, ("gen()",)),
}


@pytest.mark.parametrize("name", sorted(SEMANTICS_CASES))
def test_effects_before_a_read_keep_cpython_semantics(auto, name):
    """Whatever may run code before a global read (back-edge, operator, property, comparison,
    exception, iteration) leaves that read unspecialized under assume="stable".

    (A __del__ run by dropping a parameter is also counted as an effect, but cannot be shown
    from Python: while the dispatcher's hook is set, CPython calls functions by vectorcall and
    the caller keeps its own reference to every argument until the call returns.)"""
    source, args = SEMANTICS_CASES[name]
    mod, ref = twins(source)
    auto(mod.f)
    for _ in range(2):
        got = mod.f(*[eval(a, vars(mod)) if isinstance(a, str) else a for a in args])
        want = ref.f(*[eval(a, vars(ref)) if isinstance(a, str) else a for a in args])
        assert got == want
        for module in (mod, ref):
            module.X = module.STEP = 1
    assert len(fatjit.get_specialized(mod.f)) in (0, 1)
    # The probe is real: FAT Python's semantics (assume="entry") read the stale value here.
    entry = new_module(source)
    auto(entry.f, assume="entry")
    stale = entry.f(*[eval(a, vars(entry)) if isinstance(a, str) else a for a in args])
    assert stale != want


def test_load_global_of_a_declared_global_control(auto):
    """Control for the colliding-key test below: without the colliding key, f is specialized
    (W and Z folded under one GuardGlobals) and right."""
    mod = new_module("""
        Z = "old"
        W = 1
        def f():
            global W
            w = W
            return Z
    """)
    auto(mod.f)
    assert mod.f() == "old"
    assert len(fatjit.get_specialized(mod.f)) == 1


def test_load_global_with_a_colliding_non_str_key_keeps_cpython_semantics(auto):
    source = """
        Z = "old"
        class Key:
            def __hash__(self):
                return hash("W")
            def __eq__(self, other):
                global Z
                Z = "new"
                return False
        globals()[Key()] = "key"
        W = 1
        def f():
            global W
            w = W      # LOAD_GLOBAL W (W is written, so not folded) calls Key.__eq__
            return Z
    """
    mod, ref = twins(source)
    mod.Z = ref.Z = "old"  # defining W above already ran Key.__eq__ once
    auto(mod.f)
    assert ref.f() == "new"
    assert mod.f() == "new"


def test_entry_generator_resumed_after_a_rebinding(auto):
    """Documented: a resumed generator runs the code it started with. Under assume="stable"
    a generator has nothing entry-stable (creating it allocates), so it is refused and always
    right; under assume="entry" a rebinding between two resumptions is not seen."""
    source = """
        X = "before"
        def gen():
            yield X
            yield X
    """
    mod, ref = twins(source)
    auto(mod.gen)
    assert list(mod.gen()) == ["before", "before"]
    assert fatjit.get_specialized(mod.gen) == []
    assert "every rewrite would run after code that may invalidate" in fatjit.explain(mod.gen)

    mod, ref = twins(source)
    auto(mod.gen, assume="entry")
    it, ref_it = mod.gen(), ref.gen()
    assert next(it) == next(ref_it) == "before"
    mod.X = ref.X = "after"
    assert next(ref_it) == "after"
    assert next(it) == "before"  # FAT Python semantics: guards checked at entry only
    assert list(mod.gen()) == ["after", "after"]  # a new call: guard fails, original runs


# ------------------------------------------------------------------------------------------------
# explain() and stats()


def test_explain_shows_rewrites_with_active_status(auto):
    mod = new_module("""
        K = 2
        def f(s):
            return len(s) + K
    """)
    auto(mod.f)
    assert mod.f("ab") == 4
    text = fatjit.explain(mod.f)
    assert "automatic" in text
    assert "runs as: the frame's code swapped in place" in text
    assert "calls run: 1" in text
    assert "GuardBuiltins(len): passes now" in text
    lines = active_lines(mod.f)
    [len_line] = [l for l in lines if "LOAD_GLOBAL len" in l]
    [k_line] = [l for l in lines if "LOAD_GLOBAL K" in l]
    assert "line 4" in len_line and "[globals_to_constants]" in len_line
    assert "LOAD_CONST <built-in len>" in len_line
    assert "assumes builtin len; active" in len_line
    assert "LOAD_CONST 2" in k_line
    assert "assumes global K; inactive: runs after code that may change it" in k_line
    # the inactive K rewrite needs no guard: rebinding K does not touch the specialization
    mod.K = 5
    assert mod.f("ab") == 7
    assert "calls run: 2" in fatjit.explain(mod.f)


def test_explain_entry_marks_every_rewrite_active(auto):
    mod = new_module("""
        K = 2
        def f(s):
            return len(s) + K
    """)
    auto(mod.f, assume="entry")
    mod.f("ab")
    text = fatjit.explain(mod.f)
    assert "(assume=entry)" in text
    assert "GuardGlobals(K): passes now" in text
    assert all(l.endswith("active)") and "inactive" not in l for l in active_lines(mod.f))


@pytest.mark.no_jit_stress(
    "exact auto_specialized delta: stress mode may specialize the test's helpers (a fixture's "
    "new closure) meanwhile")
def test_stats_count_specializations_and_rewrites_by_pass(auto):
    mod = new_module("""
        import math
        K = 2
        def f(r):
            return math.pi + K + r
    """)
    watch = StatsWatch()
    auto(mod.f)
    mod.f(1)
    delta = watch.delta()
    assert delta["auto_specialized"] == 1
    assert delta["rewrites_by_pass"]["globals_to_constants"] >= 2
    assert delta["rewrites_by_pass"]["module_attributes"] >= 1
    assert sum(delta["auto_refused"].values()) == 0
    mod.f(2)
    assert watch.delta()["auto_specialized"] == 1  # once per marking, not per call


REFUSALS = {
    "nothing_to_specialize": ("""
        def f(a):
            return a + 1
    """, "no instruction could be specialized"),
    "nothing_entry_stable": ("""
        X = 1
        def f(a):
            a.append(1)
            return X
    """, "every rewrite would run after code that may invalidate its guard"),
}


@pytest.mark.no_jit_stress(
    "asserts the hook is gone once nothing is specialized: stress mode keeps automatic mode, "
    "hence the hook, on")
@pytest.mark.parametrize("reason", sorted(REFUSALS))
def test_refusals_counted_by_reason(auto, reason):
    source, message = REFUSALS[reason]
    mod, ref = twins(source)
    watch = StatsWatch()
    auto(mod.f)
    arg = [] if reason == "nothing_entry_stable" else 1
    assert mod.f(arg) == ref.f([] if reason == "nothing_entry_stable" else 1)
    assert fatjit.get_specialized(mod.f) == []
    delta = watch.delta()
    assert delta["auto_refused"][reason] == 1
    assert delta["auto_specialized"] == 0
    text = fatjit.explain(mod.f)
    assert "automatic specialization refused" in text and message in text
    assert report(mod.f)["reason"] == reason
    assert fatjit.stats()["hook_installed"] is False  # nothing left to dispatch


def test_nothing_entry_stable_is_specialized_under_entry(auto):
    mod = new_module(REFUSALS["nothing_entry_stable"][0])
    auto(mod.f, assume="entry")
    assert mod.f([]) == 1
    assert len(fatjit.get_specialized(mod.f)) == 1


def test_refused_globals_not_dict(auto):
    """Globals of a dict subclass can compute lookups: refused, counted, still right."""
    class Globals(dict):
        pass
    code = new_module(SIMPLE).f.__code__
    namespace = Globals(X=3, __builtins__=builtins)
    func = types.FunctionType(code, namespace)
    watch = StatsWatch()
    auto(func)
    assert func(1) == 4
    assert watch.delta()["auto_refused"]["globals_not_dict"] == 1
    assert report(func)["reason"] == "globals_not_dict"


def test_specialize_report_runs_without_attaching():
    mod = new_module(SIMPLE)
    watch = StatsWatch()
    result = report(mod.f)
    assert result["refused"] is False and result["reason"] == ""
    assert result["rewrites"] == 1 and result["active"] == 1 and result["guards"] == 1
    assert result["by_pass"] == {"globals_to_constants": 1}
    assert isinstance(result["code"], types.CodeType)
    assert fatjit.get_specialized(mod.f) == []
    assert watch.delta()["auto_specialized"] == 0


# ------------------------------------------------------------------------------------------------
# Tracing, recursion, generators, closures, methods, exceptions


@pytest.mark.no_jit_stress(
    "exact tracing-fallback count: under stress the rebinding helper that f calls is "
    "specialized too and falls back as well")
def test_tracing_runs_the_original(auto):
    """With a tracer or a profiler on, the original code runs and the tracer sees its lines."""
    mod, ref = twins(REBIND_DURING_CALL)
    auto(mod.f, assume="entry")  # entry: the specialized code would return "before"
    events = []

    def tracer(frame, event, arg):
        if frame.f_code.co_name == "f":
            events.append((event, frame.f_lineno))
        return tracer

    watch = StatsWatch()
    sys.settrace(tracer)
    try:
        result = mod.f()
    finally:
        sys.settrace(None)
    assert result == "after" == ref.f()
    assert watch.delta()["fallbacks"]["tracing"] == 1
    assert ("line", 7) in events and ("line", 8) in events

    mod.X = "before"
    sys.setprofile(lambda frame, event, arg: None)
    try:
        result = mod.f()
    finally:
        sys.setprofile(None)
    assert result == "after"
    assert watch.delta()["fallbacks"]["tracing"] == 2
    mod.X = "before"
    assert mod.f() == "before"  # no tracer: the (entry) specialization runs again


@pytest.mark.parametrize("assume", ["stable", "entry"])
def test_recursion(auto, assume):
    mod, ref = twins("""
        ONE = 1
        def fact(n):
            one = ONE
            return one if n <= 1 else n * fact(n - 1)
        def fib(n):
            return n if n < 2 else fib(n - 1) + fib(n - 2)
    """)
    auto(mod.fact, assume=assume)
    auto(mod.fib, assume=assume)
    watch = StatsWatch()
    assert mod.fact(20) == ref.fact(20)
    assert mod.fib(15) == ref.fib(15)
    assert watch.delta()["specialized_runs"] >= 20
    mod.ONE = ref.ONE = 2
    assert mod.fact(5) == ref.fact(5) == 240


def test_generators(auto):
    mod, ref = twins("""
        import math
        X = 2
        def gen(n):
            for i in range(n):
                yield X * i + math.floor(math.pi)
    """)
    auto(mod.gen, assume="entry")
    assert list(mod.gen(4)) == list(ref.gen(4))
    assert len(fatjit.get_specialized(mod.gen)) == 1
    mod.X = ref.X = 5
    assert list(mod.gen(4)) == list(ref.gen(4))


def test_coroutines(auto):
    mod, ref = twins("""
        X = 2
        async def coro(n):
            return X * n
    """)
    auto(mod.coro, assume="entry")
    for module in (mod, ref):
        c = module.coro(3)
        with pytest.raises(StopIteration) as stop:
            c.send(None)
        assert stop.value.value == 6
    assert len(fatjit.get_specialized(mod.coro)) == 1


@pytest.mark.parametrize("assume", [
    pytest.param("stable", marks=pytest.mark.no_jit_stress(
        "asserts the refused with_cell stays unspecialized: stress mode then compiles its "
        "original code")),
    "entry"])
def test_closures(auto, assume):
    """A closure instance is specialized alone; other closures of the same code are not."""
    mod, ref = twins("""
        X = 10
        def make(k):
            def inner(a):
                return X + a + k
            return inner
        def with_cell(a):
            b = a * 2
            def get():
                return b + X
            return get() + X
    """)
    one, two = mod.make(1), mod.make(2)
    auto(one, assume=assume)
    assert one(5) == ref.make(1)(5) == 16
    assert two(5) == 17
    assert len(fatjit.get_specialized(one)) == 1
    assert fatjit.get_specialized(two) == []
    mod.X = 20
    assert one(5) == 26 and two(5) == 27
    auto(mod.with_cell, assume=assume)
    assert mod.with_cell(3) == 20 + 6 + 20
    mod.X = ref.X = 10
    assert mod.with_cell(3) == ref.with_cell(3)
    # a function with a cell starts with MAKE_CELL (allocates): nothing is entry-stable
    assert bool(fatjit.get_specialized(mod.with_cell)) == (assume == "entry")


def test_methods(auto):
    mod, ref = twins("""
        SCALE = 3
        class C:
            def __init__(self, v):
                self.v = v
            def scaled(self, k=1):
                return SCALE * k, self.v
            @staticmethod
            def static(a):
                return SCALE + a
    """)
    auto(mod.C.scaled)
    auto(mod.C.static)
    assert mod.C(4).scaled(k=2) == ref.C(4).scaled(k=2) == (6, 4)
    assert mod.C.static(1) == 4 and mod.C(0).static(2) == 5
    assert len(fatjit.get_specialized(mod.C.scaled)) == 1
    mod.SCALE = 5
    assert mod.C(4).scaled() == (5, 4)


def test_keyword_and_default_arguments(auto):
    mod, ref = twins("""
        X = 1
        def f(a, b=2, *args, k=3, **kw):
            return X, a, b, args, k, sorted(kw.items())
    """)
    auto(mod.f)
    for args, kwargs in [((0,), {}), ((0, 1, 2, 3), {}), ((0,), {"k": 9, "z": 1}),
                         ((), {"a": 5, "b": 6})]:
        assert mod.f(*args, **kwargs) == ref.f(*args, **kwargs)
    with pytest.raises(TypeError, match="missing 1 required positional argument"):
        mod.f()


EXCEPTIONS = """
    import math
    X = 3
    LIMIT = 0
    def active(a):
        return X + a                      # line 6: the rewrite of X is active
    def inactive(a):
        y = len(a)
        return (y
                + X
                + math.floor(a))          # line 11: after calls, rewrites inactive
    def handled(a):
        try:
            return X // a
        except ZeroDivisionError:
            return math.sqrt(-LIMIT - a)  # line 16
    def nested(a):
        def helper(b):
            return b[X]                   # line 19
        return helper(a) + 1
    def raising(a):
        if a > X:
            raise ValueError(f"too big: {a}")
        return a
"""


@pytest.mark.parametrize("assume", ["stable", "entry"])
def test_exceptions_and_traceback_positions(auto, assume):
    """Exceptions have the same type, message and traceback positions (line and column range
    of every frame) as the original's: the specialized code keeps offsets and tables."""
    mod, ref = twins(EXCEPTIONS)
    for name in ("active", "inactive", "handled", "nested", "raising"):
        auto(getattr(mod, name), assume=assume)
    cases = [("active", "s"), ("inactive", "ab"), ("inactive", [1]), ("handled", 0),
             ("handled", 1), ("nested", (1, 2)), ("nested", "abcd"), ("raising", 10),
             ("raising", 1)]
    for _ in range(2):
        for name, arg in cases:
            got, want = outcome(getattr(mod, name), arg), outcome(getattr(ref, name), arg)
            assert got == want, (name, arg)
    assert outcome(mod.active, "s")[3] == [("active", 6, 6, 11, 16)]
    assert len(fatjit.get_specialized(mod.active)) == 1
    assert fatjit.get_specialized(mod.handled) != []


def test_traceback_from_the_specialized_frame(auto):
    """The frame in the traceback runs the specialized code object (swapped in place), yet
    reports the function's name, file and line; f_lineno is exact at every call site."""
    mod = new_module("""
        import sys
        X = 1
        def f():
            frame = sys._getframe()
            return frame.f_code.co_name, frame.f_lineno, frame.f_code is f.__code__
    """)
    auto(mod.f)
    name, lineno, is_original = mod.f()
    assert (name, lineno) == ("f", 6)
    assert len(fatjit.get_specialized(mod.f)) == 1
    assert is_original is False  # documented: the frame's code object is the specialized one


# ------------------------------------------------------------------------------------------------
# Folding edge cases (constant folding, pure builtin calls, dead branches): always CPython's value

FOLDING = """
    import math
    NEG0 = -0.0
    T = True
    ONE_F = 1.0
    NAN = float("nan")
    BIG = 10 ** 700
    DIGITS = "9" * 700
    SMALL_DIGITS = "9" * 600
    NESTED = (1, [2])
    B40 = 2 ** 40
    DEBUG = False
    class IntLike(int):
        def __add__(self, other):
            return "IntLike.__add__"
    class StrLike(str):
        def __len__(self):
            return 99
    ILIKE = IntLike(3)
    SLIKE = StrLike("abc")
    def zeros():
        return (0.0, NEG0, 1, T, ONE_F, 1.0, -0.0, 0, False)
    def digits():
        return str(BIG)[:3]
    def digits_from_str():
        return int(DIGITS) % 10
    def digits_below_every_limit():
        return int(SMALL_DIGITS) % 10, len(str(int(SMALL_DIGITS)))
    def identity():
        a = B40 + 1
        b = B40 + 1
        return a is b, a == b
    def mutable_inside_tuple():
        return NESTED == (1, [2]), len(NESTED[1])
    def nan():
        return NAN == NAN, NAN is NAN, (NAN,) == (NAN,)
    def formatted():
        return f"{T}{NEG0}{ONE_F!r}", "%s" % T
    def complex_():
        return (1j * 2) ** 2, abs(-3 + 4j)
    def signs():
        return math.copysign(1.0, NEG0 * 1), -0.0 + NEG0, NEG0 == 0.0
    def builtins_():
        return (min(ONE_F, 1), max(1, ONE_F), round(2.5), round(-0.5), divmod(-7, 2),
                pow(2, -1), chr(65), ord("A"), bool(""), tuple("ab"), frozenset((1, 1)))
    def raising():
        return 1 // (B40 - B40)
    def subclasses():
        return ILIKE + 1, len(SLIKE), str(ILIKE), SLIKE * 2
    def branches():
        if DEBUG:
            return "debug"
        elif B40 > 10:
            return "big"
        return "small"
    def huge():
        return len("ab" * 5000), (B40 ** 4) % 7, len((1, 2) * 1000)
"""
FOLDING_NAMES = ["zeros", "digits", "digits_from_str", "digits_below_every_limit", "identity",
                 "mutable_inside_tuple", "nan", "formatted", "complex_", "signs", "builtins_",
                 "raising", "subclasses", "branches", "huge"]


@pytest.mark.parametrize("assume", ["stable", "entry"])
def test_folding_edge_cases(auto, assume):
    """-0.0 vs 0.0, True vs 1, NaN, int<->str digit limits changed after specializing, tuples
    holding lists mutated in place, int/str subclasses, operations that raise, huge results,
    branches on config globals: each specialized function returns (or raises) what CPython does,
    before and after the state changes no guard sees (list contents, the digit limit)."""
    mod, ref = twins(FOLDING)
    for name in FOLDING_NAMES:
        auto(getattr(mod, name), assume=assume)

    def compare(when):
        for name in FOLDING_NAMES:
            got, want = outcome(getattr(mod, name)), outcome(getattr(ref, name))
            assert repr(got) == repr(want), (when, name)

    compare("first call")
    compare("specialized")
    mod.NESTED[1].append(3)
    ref.NESTED[1].append(3)
    limit = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(640)
    try:
        compare("digit limit 640")
    finally:
        sys.set_int_max_str_digits(limit)
    mod.DEBUG = ref.DEBUG = True
    compare("DEBUG on")
    assert sum(bool(fatjit.get_specialized(getattr(mod, n))) for n in FOLDING_NAMES) >= 10


# --- class_attributes ------------------------------------------------------------------------

CLASS_SOURCE = """
    class Config:
        SCALE = 3
        def helper(x):
            return x + 1
        @classmethod
        def make(cls):
            return cls
        @property
        def prop(self):
            return 1
    class Meta(type):
        SCALE = 5
    class WithMeta(metaclass=Meta):
        SCALE = 7
    def scaled(x):
        return Config.SCALE * 2 + x
    def call_helper(x):
        return Config.helper(x)
    def via_classmethod():
        return Config.make()
    def via_metaclass():
        return WithMeta.SCALE
"""


def _rewrite_passes(func):
    return [line for line in fatjit.explain(func).splitlines() if "[class_attributes]" in line]


def test_class_attribute_is_folded_under_a_type_guard(auto):
    """Config.SCALE becomes a constant guarded by GuardType(Config); changing the class attribute
    fails the guard for good and the original code computes the new value."""
    mod = new_module(CLASS_SOURCE)
    auto(mod.scaled)
    assert mod.scaled(1) == 7
    [(code, guards)] = fatjit.get_specialized(mod.scaled)
    assert any(isinstance(g, fatjit.GuardType) and g.type is mod.Config for g in guards)
    assert any("active" in line for line in _rewrite_passes(mod.scaled))
    mod.Config.SCALE = 10
    assert mod.scaled(1) == 21
    assert fatjit.get_specialized(mod.scaled) == []


def test_class_function_attribute_is_folded_and_called(auto):
    """Config.helper(x) loads the function itself as a constant (type.__getattribute__ returns
    a plain function unchanged)."""
    mod = new_module(CLASS_SOURCE)
    auto(mod.call_helper)
    assert mod.call_helper(1) == 2
    assert _rewrite_passes(mod.call_helper)
    mod.Config.helper = staticmethod(lambda x: x * 100)
    assert mod.call_helper(1) == 100


def test_descriptors_and_metaclasses_are_not_folded(auto):
    """A classmethod computes a new bound method per access, and a metaclass can change
    attribute access: neither is folded."""
    mod = new_module(CLASS_SOURCE)
    auto(mod.via_classmethod)
    auto(mod.via_metaclass)
    assert mod.via_classmethod() is mod.Config
    assert mod.via_metaclass() == 7
    assert not _rewrite_passes(mod.via_classmethod)
    assert not _rewrite_passes(mod.via_metaclass)
