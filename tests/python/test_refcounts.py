"""No reference is leaked or dropped (invariant 7): the objects a specialization passes through
have the same reference counts before and after, and calls do not move them.

Counts are taken into variables before asserting: pytest's assertion rewriting keeps the
sub-expressions of an assert alive, which would add references of its own. And they are taken
without a Python-level call between the counted objects and sys.getrefcount: a call through the
PEP 523 hook holds its arguments once more than CPython's inlined call does."""

import builtins
import gc
import sys

import pytest

import fatjit
from support import new_module

CALLS = 1000

SOURCE = """
    X = object()
    CONFIG = {"mode": object()}
    class C:
        pass
    def f(s, t=None):
        return ("orig", len(s), X, t)
    def f_swap(s, t=None):
        return ("spec", s.__len__(), X, t)
    def f_call(s, t=None):
        n = s.__len__()
        return ("spec", n, X, t)
"""


def refcounts(objects):
    # map() calls getrefcount from C: no Python frame holds the objects while they are counted
    # (with the dispatch hook installed, Python-to-Python calls hold their arguments once more).
    gc.collect()
    return list(map(sys.getrefcount, objects))


def make_guards(mod):
    return [fatjit.GuardGlobals("X"), fatjit.GuardBuiltins("len"), fatjit.GuardFunc(mod.f),
            fatjit.GuardArgType(0, str), fatjit.GuardType(mod.C),
            fatjit.GuardDict(mod.CONFIG, "mode")]


@pytest.mark.parametrize("path", ["swap", "call"])
def test_specialize_unspecialize_restores_refcounts(path):
    """specialize + unspecialize + dropping the guards leaves every object as it was."""
    mod = new_module(SOURCE)
    code = getattr(mod, f"f_{path}").__code__
    watched = [mod.f, mod.f.__code__, code, mod.__dict__, mod.CONFIG, mod.X, mod.CONFIG["mode"],
               mod.C, vars(builtins), builtins.len, str]
    make_guards(mod)  # its first call, which automatic mode (JIT stress) specializes, not counted
    before = refcounts(watched)
    guards = make_guards(mod)
    fatjit.specialize(mod.f, code, guards)
    fatjit.unspecialize(mod.f)
    del guards
    after = refcounts(watched)
    assert after == before


@pytest.mark.parametrize("path", ["swap", "call"])
def test_respecializing_with_bound_guards_restores_refcounts(path):
    """With the same (already bound) guards, each specialize/unspecialize round is neutral."""
    mod = new_module(SOURCE)
    code = getattr(mod, f"f_{path}").__code__
    guards = make_guards(mod)
    fatjit.specialize(mod.f, code, guards)
    fatjit.unspecialize(mod.f)
    watched = [mod.f, mod.f.__code__, code, mod.__dict__, mod.CONFIG, mod.X, mod.C, *guards]
    before = refcounts(watched)
    for _ in range(10):
        fatjit.specialize(mod.f, code, guards)
        fatjit.unspecialize(mod.f)
    after = refcounts(watched)
    assert after == before


@pytest.mark.parametrize("path", ["swap", "call"])
def test_specialization_holds_code_and_guards_but_not_the_function(path):
    """While specialized, the code and guards are held; the function is not (held weakly)."""
    mod = new_module(SOURCE)
    code = getattr(mod, f"f_{path}").__code__
    guard = fatjit.GuardGlobals("X")
    func = mod.f
    before = refcounts([func, code, guard])
    fatjit.specialize(func, code, [guard])
    try:
        during = refcounts([func, code, guard])
    finally:
        fatjit.unspecialize(func)
    after = refcounts([func, code, guard])
    assert during[0] == before[0]
    assert during[1] > before[1] and during[2] == before[2] + 1
    assert after == before


@pytest.mark.parametrize("path", ["swap", "call"])
def test_many_calls_do_not_move_refcounts(path):
    """1000 specialized calls leave every object's refcount where it was."""
    mod = new_module(SOURCE)
    code = getattr(mod, f"f_{path}").__code__
    guards = make_guards(mod)
    arg, kwarg = "abc", object()
    fatjit.specialize(mod.f, code, guards)
    try:
        watched = [mod.f, mod.f.__code__, code, mod.__dict__, mod.CONFIG, mod.X, arg, kwarg,
                   mod.C, builtins.len, str, *guards]
        mod.f(arg, kwarg)
        before = refcounts(watched)
        for _ in range(CALLS):
            result = mod.f(arg, t=kwarg)
        del result
        after = refcounts(watched)
        assert after == before
    finally:
        fatjit.unspecialize(mod.f)


def test_many_fallback_calls_do_not_move_refcounts():
    """1000 calls whose guard fails (original code) leave refcounts where they were."""
    mod = new_module(SOURCE)
    guards = [fatjit.GuardArgType(0, bytes)]
    fatjit.specialize(mod.f, mod.f_swap.__code__, guards)
    try:
        arg = "abc"
        watched = [mod.f, mod.f.__code__, mod.f_swap.__code__, arg, *guards]
        mod.f(arg)
        before = refcounts(watched)
        for _ in range(CALLS):
            mod.f(arg)
        after = refcounts(watched)
        assert after == before
    finally:
        fatjit.unspecialize(mod.f)


def test_builtin_stand_in_calls_do_not_move_refcounts():
    """1000 calls through the builtin stand-in (chr) keep chr's and the argument's refcounts."""
    mod = new_module("""
        def f(x):
            return chr(x)
    """)
    func = mod.f
    arg = 10 ** 20 % 1000  # a fresh int object
    initial = refcounts([chr, func, arg])
    fatjit.specialize(func, chr, [fatjit.GuardBuiltins("chr")])
    try:
        func(arg)
        before = refcounts([chr, func, arg])
        for _ in range(CALLS):
            func(arg)
        after = refcounts([chr, func, arg])
    finally:
        fatjit.unspecialize(func)
    final = refcounts([chr, func, arg])
    assert after == before
    assert final == initial


def test_varargs_kwargs_calls_do_not_move_refcounts():
    """*args / **kwargs passed through the call path keep their values' refcounts."""
    mod = new_module("""
        def f(*args, k, **kw):
            return ("orig", args, k, kw)
        def f_call(*args, k, **kw):
            t = "spec"
            return (t, args, k, kw)
    """)
    func = mod.f
    fatjit.specialize(func, mod.f_call.__code__, [fatjit.GuardGlobals("f")])
    try:
        a, b, c = object(), object(), object()
        func(a, k=b, z=c)
        before = refcounts([a, b, c, func])
        for _ in range(CALLS):
            func(a, a, k=b, z=c, y=a)
        after = refcounts([a, b, c, func])
        assert after == before
    finally:
        fatjit.unspecialize(func)


def test_exceptions_in_specialized_code_do_not_leak():
    """1000 calls that raise from specialized code keep refcounts where they were."""
    mod = new_module("""
        def f(x):
            return ("orig", x)
        def f_spec(x):
            raise KeyError(x)
    """)
    fatjit.specialize(mod.f, mod.f_spec.__code__, [fatjit.GuardGlobals("f")])
    try:
        arg = object()
        watched = [arg, mod.f, mod.f_spec.__code__]
        before = refcounts(watched)
        for _ in range(CALLS):
            try:
                mod.f(arg)
            except KeyError:
                pass
        after = refcounts(watched)
        assert after == before
    finally:
        fatjit.unspecialize(mod.f)


def test_guard_objects_release_what_they_watch():
    """A guard that dies releases its dict, its values, its type and its types list."""
    mod = new_module(SOURCE)
    watched = [mod.CONFIG, mod.CONFIG["mode"], mod.C, str, int]
    before = refcounts(watched)
    guards = [fatjit.GuardDict(mod.CONFIG, "mode"), fatjit.GuardType(mod.C),
              fatjit.GuardArgType(0, [str, int]), fatjit.guard_type_dict(mod.C, ["x"])]
    holding = refcounts(watched)
    del guards
    after = refcounts(watched)
    assert all(h > b for h, b in zip(holding, before))
    assert after == before


def test_bound_guards_release_globals_and_builtins():
    """Bound GuardGlobals/GuardBuiltins release the globals, builtins and values when dropped."""
    mod = new_module(SOURCE)
    watched = [mod.__dict__, mod.X, vars(builtins), builtins.len]
    before = refcounts(watched)
    guards = [fatjit.GuardGlobals("X"), fatjit.GuardBuiltins("len")]
    fatjit.specialize(mod.f, mod.f_swap.__code__, guards)
    fatjit.unspecialize(mod.f)
    holding = refcounts(watched)  # still bound: the guards keep what they watch
    del guards
    after = refcounts(watched)
    assert all(h > b for h, b in zip(holding, before))
    assert after == before


def test_failed_specialize_does_not_leak():
    """A specialize() call rejected by validation leaves refcounts as they were."""
    mod = new_module(SOURCE)
    guard = fatjit.GuardGlobals("X")
    watched = [mod.f, mod.f_swap.__code__, guard]
    before = refcounts(watched)
    for bad_guards in ([guard, 42], [], "guards"):
        with pytest.raises((TypeError, ValueError)):
            fatjit.specialize(mod.f, mod.f_swap.__code__, bad_guards)
    after = refcounts(watched)
    assert after == before
    assert fatjit.get_specialized(mod.f) == []
