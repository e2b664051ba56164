"""Property tests: after any sequence of changes to the state a specialization assumed, a call
returns what the original code computes in the current state, and runs the specialization
exactly when every assumption holds again."""

import builtins
import types

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fatjit
from support import new_module

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


class Sized:
    """The argument: real len() says 3, the patched builtin and the shadowing global say more."""

    def __len__(self):
        return 3


REAL_LEN = builtins.len


def patched_len(obj):
    return 100 if type(obj) is Sized else REAL_LEN(obj)


def shadowing_len(obj):
    return 1000


STATE_SOURCE = """
    X = 1
    B = "bee"
    Y = 0
    def f(o):
        return ("orig", len(o) + X, B)
    def f_spec(o):
        return ("spec", o.__len__() + 1, "bee")
"""

# Three guards read the module's globals (GuardGlobals, GuardDict on the same dict, and
# GuardBuiltins for shadowing) and one reads the builtins: dicts shared between guards.
STATE_OPS = ["X=1", "X=2", "X=big", "del X", "B=bee", "B=new", "del B", "Y=new", "shadow len",
             "unshadow len", "patch len", "restore len", "call"]


def apply(mod, op):
    if op == "X=1":
        mod.X = 1  # the very object X was bound to (small ints are cached)
    elif op == "X=2":
        mod.X = 2
    elif op == "X=big":
        mod.X = int("1" * 30)
    elif op == "del X":
        mod.__dict__.pop("X", None)
    elif op == "B=bee":
        mod.B = "bee"  # an interned constant: the very object B was bound to
    elif op == "B=new":
        mod.B = "".join(["be", "e"])  # equal, but another object
    elif op == "del B":
        mod.__dict__.pop("B", None)
    elif op == "Y=new":
        mod.Y = object()
    elif op == "shadow len":
        mod.len = shadowing_len
    elif op == "unshadow len":
        mod.__dict__.pop("len", None)
    elif op == "patch len":
        builtins.len = patched_len
    elif op == "restore len":
        builtins.len = REAL_LEN


def outcome(func, arg):
    try:
        return func(arg)
    except NameError as e:
        return ("NameError", str(e))


@SETTINGS
@given(ops=st.lists(st.sampled_from(STATE_OPS), max_size=40))
def test_globals_and_builtins_changes(ops):
    """Global/builtin changes: spec runs iff all assumptions hold; results match the original."""
    # Assumptions: X and B are bound to their old objects, len is the builtin and not shadowed.
    mod = new_module(STATE_SOURCE)
    one, b = mod.X, mod.B
    # Another function object on the same code never runs the specialization: the reference.
    reference = types.FunctionType(mod.f.__code__, mod.__dict__, "reference")
    fatjit.specialize(mod.f, mod.f_spec.__code__,
                      [fatjit.GuardGlobals("X"), fatjit.GuardBuiltins("len"),
                       fatjit.GuardDict(mod.__dict__, "B")])
    try:
        arg = Sized()
        for op in ops + ["call"]:
            apply(mod, op)
            if op != "call":
                continue
            got = outcome(mod.f, arg)
            want = outcome(reference, arg)
            assumptions_hold = (mod.__dict__.get("X") is one and mod.__dict__.get("B") is b
                                and "len" not in mod.__dict__ and builtins.len is REAL_LEN)
            if assumptions_hold:
                assert got == ("spec",) + want[1:]
            else:
                assert got == want
    finally:
        builtins.len = REAL_LEN
        fatjit.unspecialize(mod.f)


DICT_KEYS = ["a", "b", "c"]
WATCHED = ("a", "b")
POOL = [object() for _ in range(3)]

dict_ops = st.one_of(
    st.tuples(st.just("set"), st.sampled_from(DICT_KEYS), st.integers(0, len(POOL) - 1)),
    st.tuples(st.just("del"), st.sampled_from(DICT_KEYS)),
    st.tuples(st.just("clear")),
    st.tuples(st.just("call")),
)


@SETTINGS
@given(initial=st.dictionaries(st.sampled_from(DICT_KEYS), st.integers(0, len(POOL) - 1)),
       ops=st.lists(dict_ops, max_size=40))
def test_guard_dict_changes(initial, ops):
    """Mutations of a guarded dict: spec runs iff watched keys keep their objects (or absence)."""
    mod = new_module("""
        D = {}
        MISSING = object()
        def f():
            return ("orig", D.get("a", MISSING), D.get("b", MISSING))
        def f_spec():
            return ("spec", SNAP_A, SNAP_B)
    """)
    d = mod.D
    d.update({k: POOL[i] for k, i in initial.items()})
    snapshot = {k: d.get(k, mod.MISSING) for k in WATCHED}
    mod.SNAP_A, mod.SNAP_B = snapshot["a"], snapshot["b"]
    fatjit.specialize(mod.f, mod.f_spec.__code__, [fatjit.GuardDict(d, *WATCHED)])
    try:
        for op in ops + [("call",)]:
            if op[0] == "set":
                d[op[1]] = POOL[op[2]]
            elif op[0] == "del":
                d.pop(op[1], None)
            elif op[0] == "clear":
                d.clear()
            else:
                got = mod.f()
                current = {k: d.get(k, mod.MISSING) for k in WATCHED}
                holds = all(current[k] is snapshot[k] for k in WATCHED)
                assert got[0] == ("spec" if holds else "orig")
                assert got[1] is current["a"] and got[2] is current["b"]
    finally:
        fatjit.unspecialize(mod.f)


ARG_VALUES = st.one_of(st.integers(), st.text(max_size=3), st.floats(allow_nan=False),
                       st.booleans(), st.none(), st.binary(max_size=3))


@SETTINGS
@given(a=ARG_VALUES, b=ARG_VALUES, by_keyword=st.booleans(), omit_b=st.booleans())
def test_arg_type_guards(a, b, by_keyword, omit_b):
    """GuardArgType on two parameters: spec runs iff both exact types match, however passed."""
    mod = new_module("""
        def f(a, b=0):
            return ("orig", a, b)
        def f_spec(a, b=0):
            return ("spec", a, b)
    """)
    fatjit.specialize(mod.f, mod.f_spec.__code__,
                      [fatjit.GuardArgType(0, [int, str]), fatjit.GuardArgType(1, int)])
    try:
        if omit_b:
            b = 0
            got = mod.f(a=a) if by_keyword else mod.f(a)
        else:
            got = mod.f(b=b, a=a) if by_keyword else mod.f(a, b)
        holds = type(a) in (int, str) and type(b) is int
        assert got[0] == ("spec" if holds else "orig")
        assert got[1] is a and got[2] is b
    finally:
        fatjit.unspecialize(mod.f)
