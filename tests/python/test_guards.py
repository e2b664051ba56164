"""Guard objects as users see them: attributes, repr, calling guard(...) -> 0/1/2, binding,
weak references and garbage collection."""

import gc
import re
import types
import weakref

import pytest

import fatjit
from support import new_module

SOURCE = """
    X = 1
    Y = 2
    def f(a, b=2, *args, c=3, **kw):
        return ("orig", a)
    def f_spec(a, b=2, *args, c=3, **kw):
        return ("spec", a)
    class C:
        attr = 1
"""


def test_every_guard_is_a_fatjit_guard():
    """All guard kinds derive from fatjit.Guard and report their kind as stats() names it."""
    mod = new_module(SOURCE)
    kinds = {
        "dict": fatjit.GuardDict({}, "k"),
        "globals": fatjit.GuardGlobals("X"),
        "builtins": fatjit.GuardBuiltins("len"),
        "func": fatjit.GuardFunc(mod.f),
        "arg_type": fatjit.GuardArgType(0, int),
        "type": fatjit.GuardType(mod.C),
    }
    for kind, guard in kinds.items():
        assert isinstance(guard, fatjit.Guard)
        assert guard.kind == kind
    assert set(kinds) == set(fatjit.stats()["guard_failures"])


def test_guard_dict_attributes_and_repr():
    """GuardDict exposes the watched dict itself and the keys, in order."""
    d = {"a": 1, "b": 2}
    guard = fatjit.GuardDict(d, "b", "a", "missing")
    assert guard.dict is d
    assert guard.keys == ("b", "a", "missing")
    assert re.fullmatch(r"<fatjit\.GuardDict\(<dict at 0x[0-9a-f]+>, b, a, missing\)>",
                        repr(guard))
    assert guard() == 0


def test_guard_dict_call_protocol():
    """guard() is 0 while the keys keep their objects, 1 while one differs, 0 once restored."""
    value = object()
    d = {"k": value}
    guard = fatjit.GuardDict(d, "k")
    assert guard() == 0
    d["other"] = 1
    assert guard() == 0
    d["k"] = object()
    assert guard() == 1
    d["k"] = value
    assert guard() == 0
    del d["k"]
    assert guard() == 1


def test_guard_globals_attributes_before_and_after_binding(spec):
    """GuardGlobals has names; its globals are None until specialize binds it to func's."""
    mod = new_module(SOURCE)
    guard = fatjit.GuardGlobals("X", "Y")
    assert guard.names == ("X", "Y")
    assert guard.globals is None
    assert repr(guard) == "<fatjit.GuardGlobals(X, Y) [unbound]>"
    spec(mod.f, mod.f_spec.__code__, [guard])
    assert guard.globals is mod.__dict__
    assert repr(guard) == "<fatjit.GuardGlobals(X, Y)>"
    assert guard() == 0
    mod.Y = 20
    assert guard() == 1


def test_guard_builtins_attributes_and_repr(spec):
    """GuardBuiltins has names; repr shows whether it is bound."""
    mod = new_module(SOURCE)
    guard = fatjit.GuardBuiltins("len", "chr")
    assert guard.names == ("len", "chr")
    assert repr(guard) == "<fatjit.GuardBuiltins(len, chr) [unbound]>"
    spec(mod.f, mod.f_spec.__code__, [guard])
    assert repr(guard) == "<fatjit.GuardBuiltins(len, chr)>"
    assert guard() == 0


def test_guard_func_attributes_and_repr():
    """GuardFunc has the function (weakly held) and shows its qualified name."""
    mod = new_module(SOURCE)
    guard = fatjit.GuardFunc(mod.f)
    assert guard.func is mod.f
    assert repr(guard) == "<fatjit.GuardFunc(f)>"
    assert guard() == 0


def test_guard_func_of_a_dead_function_fails_forever():
    """GuardFunc does not keep its function alive; once it died the guard returns 2."""
    mod = new_module(SOURCE)
    guard = fatjit.GuardFunc(mod.f)
    del mod.f
    gc.collect()
    assert guard.func is None
    assert guard() == 2
    assert repr(guard) == "<fatjit.GuardFunc(<dead function>)>"


def test_guard_func_replaced_code_fails_forever():
    """Assigning func.__code__ makes GuardFunc return 2."""
    mod = new_module(SOURCE)
    guard = fatjit.GuardFunc(mod.f)
    mod.f.__code__ = mod.f_spec.__code__
    assert guard() == 2


def test_guard_arg_type_attributes_and_repr():
    """GuardArgType has arg_index and arg_types (a tuple, even for a single type)."""
    one = fatjit.GuardArgType(0, int)
    assert one.arg_index == 0
    assert one.arg_types == (int,)
    many = fatjit.GuardArgType(arg_index=2, arg_types=[int, str, type(None)])
    assert many.arg_index == 2
    assert many.arg_types == (int, str, type(None))
    assert repr(many) == "<fatjit.GuardArgType(2, [int, str, NoneType])>"
    assert fatjit.GuardArgType(1, (bytes,)).arg_types == (bytes,)


def test_guard_arg_type_call_protocol(spec):
    """guard(*args, **kw) checks the argument at arg_index: 0 for an exact type match, else 1."""
    guard = fatjit.GuardArgType(1, [int, str])
    assert guard(None, 5) == 0
    assert guard(None, "s") == 0
    assert guard(None, 5.0) == 1
    assert guard(None, True) == 1
    assert guard(None) == 1
    mod = new_module(SOURCE)
    spec(mod.f, mod.f_spec.__code__, [guard])
    assert guard(0, b=5) == 0  # bound: the parameter name `b` is known
    assert guard(0, b=5.0) == 1


def test_guard_arg_type_on_varargs_and_kwargs_parameters(spec):
    """GuardArgType may guard the *args tuple or the **kwargs dict parameter."""
    mod = new_module(SOURCE)
    # f(a, b, *args, c, **kw): localsplus order is a, b, c, args, kw
    spec(mod.f, mod.f_spec.__code__, [fatjit.GuardArgType(4, dict), fatjit.GuardArgType(3, tuple)])
    assert mod.f(1) == ("spec", 1)
    assert mod.f(1, 2, 3, x=4) == ("spec", 1)


def test_guard_type_attributes_and_repr():
    """GuardType has the type and shows its name and version."""
    mod = new_module(SOURCE)
    guard = fatjit.GuardType(mod.C)
    assert guard.type is mod.C
    assert re.fullmatch(r"<fatjit\.GuardType\(C, version=\d+\)>", repr(guard))
    assert guard() == 0
    mod.C.attr = 2
    assert guard() == 2
    mod.C.attr = 1
    assert guard() == 2


def test_guard_type_on_a_builtin_type():
    """GuardType works on builtin types, whose attributes cannot change."""
    guard = fatjit.GuardType(int)
    assert guard.type is int
    assert guard() == 0


def test_guard_type_dict_returns_a_read_only_view():
    """guard_type_dict(tp, attrs) is [GuardDict] on tp's own dict, shown as a mappingproxy."""
    mod = new_module(SOURCE)
    guards = fatjit.guard_type_dict(mod.C, ["attr", "missing"])
    assert isinstance(guards, list) and len(guards) == 1
    [guard] = guards
    assert guard.kind == "dict"
    assert guard.keys == ("attr", "missing")
    assert isinstance(guard.dict, types.MappingProxyType)
    assert guard.dict["attr"] == 1
    with pytest.raises(TypeError):
        guard.dict["attr"] = 5
    assert guard() == 0
    mod.C.attr = 2
    assert guard() == 1
    mod.C.attr = 1
    assert guard() == 0
    mod.C.missing = None
    assert guard() == 1


def test_guard_attributes_are_read_only():
    """Guard attributes cannot be assigned."""
    guard = fatjit.GuardArgType(0, int)
    for name in ("kind", "arg_index", "arg_types"):
        with pytest.raises(AttributeError):
            setattr(guard, name, 1)


def test_guards_support_weak_references():
    """Guards can be weakly referenced and die with their last reference."""
    guard = fatjit.GuardDict({}, "k")
    ref = weakref.ref(guard)
    assert ref() is guard
    del guard
    assert ref() is None


def test_guard_in_a_reference_cycle_is_collected():
    """A guard watching a dict that holds the guard is freed by the cycle collector."""
    d = {}
    guard = fatjit.GuardDict(d, "k")
    d["guard"] = guard
    d["k"] = guard
    ref = weakref.ref(guard)
    del d, guard
    gc.collect()
    assert ref() is None


def test_guard_objects_are_hashable_by_identity():
    """Guards can be put in sets and dicts (identity)."""
    a, b = fatjit.GuardGlobals("X"), fatjit.GuardGlobals("X")
    assert len({a, b, a}) == 2


class CollidingKey:
    """A non-str key with the hash of "k": comparing it with "k" would run Python code."""

    eq_calls = 0

    def __hash__(self):
        return hash("k")

    def __eq__(self, other):
        CollidingKey.eq_calls += 1
        return False


def test_guard_check_never_runs_key_eq():
    """A colliding non-str key where "k" was absent fails GuardDict (1) without calling __eq__."""
    d = {"other": 1}
    guard = fatjit.GuardDict(d, "k")
    assert guard() == 0
    key = CollidingKey()
    d[key] = 1
    CollidingKey.eq_calls = 0
    assert guard() == 1  # could be equal to "k" as far as the guard may know
    assert CollidingKey.eq_calls == 0
    del d[key]
    assert guard() == 0
    assert CollidingKey.eq_calls == 0


def test_guard_dict_refuses_a_key_it_cannot_look_up_safely():
    """GuardDict on a dict holding a colliding non-str key and no "k" is refused at creation."""
    d = {CollidingKey(): 2}
    CollidingKey.eq_calls = 0
    with pytest.raises(TypeError, match="cannot watch key 'k': the dict has a non-str key"):
        fatjit.GuardDict(d, "k")
    assert CollidingKey.eq_calls == 0
