"""Wrong use of every API function raises TypeError/ValueError naming what was wrong, and a
rejected call changes nothing."""

import builtins
import collections
import functools

import pytest

import fatjit
from support import compile_source, function_code, new_module

SOURCE = """
    X = 1
    def f(a, b=2):
        return ("orig", a, b)
    def f_spec(a, b=2):
        return ("spec", a, b)
    def other_defaults(a, b=3):
        return ("spec", a, b)
    def three(a, b=2, c=3):
        return a
    def kwonly(a, *, b=2):
        return a
    def varargs(a, b=2, *rest):
        return a
    def gen(a, b=2):
        yield a
    def renamed(a, c=2):
        return a
    def posonly(a, /, b=2):
        return a
    class C:
        def method(self, a, b=2):
            return a
"""


def guards():
    return [fatjit.GuardGlobals("X")]


@pytest.fixture
def mod():
    module = new_module(SOURCE)
    yield module
    # Nothing a rejected call did may have left a specialization behind.
    assert fatjit.get_specialized(module.f) == []


# --- specialize: func -----------------------------------------------------------------------

@pytest.mark.parametrize("func, fragment", [
    (len, r"expected a Python function, got builtin_function_or_method \(builtins cannot"),
    (dict, r"expected a Python function, got type \(a class: pass one of its functions\)"),
    (42, r"expected a Python function, got int"),
    ("f", r"expected a Python function, got str"),
    (functools.partial(print), r"expected a Python function, got functools.partial"),
])
def test_specialize_rejects_non_functions(mod, func, fragment):
    """specialize(func, ...) needs a plain Python function."""
    with pytest.raises(TypeError, match=r"fatjit.specialize: " + fragment):
        fatjit.specialize(func, mod.f_spec.__code__, guards())


def test_specialize_rejects_a_bound_method(mod):
    """A bound method is refused with a hint to pass its __func__."""
    with pytest.raises(TypeError, match=r"got method \(a bound method: pass its __func__\)"):
        fatjit.specialize(mod.C().method, mod.f_spec.__code__, guards())


def test_specialize_rejects_a_user_class(mod):
    """A class is refused with a hint to pass one of its functions."""
    with pytest.raises(TypeError, match=r"got type \(a class: pass one of its functions\)"):
        fatjit.specialize(mod.C, mod.f_spec.__code__, guards())


# --- specialize: code -----------------------------------------------------------------------

@pytest.mark.parametrize("name, fragment", [
    ("three", r"different number of positional parameters \(co_argcount\)"),
    ("kwonly", r"different number of positional parameters"),
    ("varargs", r"different flags \(\*args, \*\*kwargs, generator"),
    ("gen", r"different flags"),
    ("renamed", r"different parameter names"),
    ("posonly", r"different number of positional-only parameters \(co_posonlyargcount\)"),
])
def test_specialize_rejects_incompatible_code(mod, name, fragment):
    """Code with another calling convention than func is refused, naming the difference."""
    code = getattr(mod, name).__code__
    with pytest.raises(ValueError, match=r"is not compatible with f\(\): " + fragment):
        fatjit.specialize(mod.f, code, guards())


def test_specialize_rejects_different_kwonly_count():
    """A different number of keyword-only parameters is refused."""
    m = new_module("""
        def f(a, *, b):
            return a
        def g(a, *, b, c):
            return a
    """)
    with pytest.raises(ValueError, match=r"keyword-only parameters \(co_kwonlyargcount\)"):
        fatjit.specialize(m.f, m.g.__code__, [fatjit.GuardGlobals("f")])


def test_specialize_rejects_different_free_variables():
    """Code with other free or cell variables than func is refused."""
    m = new_module("""
        def make():
            k = 1
            j = 2
            def f(a):
                return a + k
            def no_free(a):
                return a
            def other_free(a):
                return a + j
            return f, no_free, other_free
    """)
    f, no_free, other_free = m.make()
    with pytest.raises(ValueError, match="different cell or free variables"):
        fatjit.specialize(f, no_free.__code__, [fatjit.GuardGlobals("make")])
    with pytest.raises(ValueError, match="different free variable names"):
        fatjit.specialize(f, other_free.__code__, [fatjit.GuardGlobals("make")])
    assert fatjit.get_specialized(f) == []


def test_specialize_rejects_code_that_is_not_function_code(mod):
    """Module or eval code (no fast locals: LOAD_NAME/STORE_NAME) cannot stand in for a function."""
    m = new_module("""
        def f():
            return 1
    """)
    for code in (compile("y = 2", "<s>", "exec"), compile("y", "<s>", "eval")):
        with pytest.raises(ValueError, match="different flags"):
            fatjit.specialize(m.f, code, [fatjit.GuardGlobals("f")])
    assert fatjit.get_specialized(m.f) == []
    assert m.f() == 1


def test_specialize_rejects_funcs_own_code(mod):
    """The function's own code object is not a specialization."""
    with pytest.raises(ValueError, match="it is the function's own code object"):
        fatjit.specialize(mod.f, mod.f.__code__, guards())


def test_specialize_rejects_func_itself(mod):
    """A function cannot be its own specialization."""
    with pytest.raises(ValueError, match="a function cannot be its own specialization"):
        fatjit.specialize(mod.f, mod.f, guards())


def test_specialize_rejects_function_with_other_defaults(mod):
    """A Python function given as code must have the same defaults."""
    with pytest.raises(ValueError, match=r"other_defaults\(\) has other default values than f\(\)"):
        fatjit.specialize(mod.f, mod.other_defaults, guards())


def test_specialize_rejects_function_with_other_kwdefaults():
    """... and the same keyword-only defaults."""
    m = new_module("""
        def f(a, *, b=1):
            return a
        def g(a, *, b=2):
            return a
    """)
    with pytest.raises(ValueError, match="other default values"):
        fatjit.specialize(m.f, m.g, [fatjit.GuardGlobals("f")])


@pytest.mark.parametrize("code", [42, "code", None, b"\x00"])
def test_specialize_rejects_non_callable_code(mod, code):
    """code must be a code object or a callable."""
    with pytest.raises(TypeError, match="code must be a code object or a callable, not"):
        fatjit.specialize(mod.f, code, guards())


def test_specialize_rejects_an_unknown_assume(mod):
    """assume= names one of the two semantics; anything else is a ValueError naming both."""
    with pytest.raises(ValueError, match="assume must be 'stable' or 'entry', not 'always'"):
        fatjit.specialize(mod.f, assume="always")
    with pytest.raises(ValueError, match="assume must be 'stable' or 'entry'"):
        fatjit.specialize(assume="fast")


def test_specialize_assume_is_for_automatic_specialization_only(mod):
    """assume= with caller-supplied code and guards is a TypeError: PEP 510 is entry-checked."""
    with pytest.raises(TypeError, match="assume= applies to automatic specialization only"):
        fatjit.specialize(mod.f, mod.f_spec.__code__, guards(), assume="entry")


def test_specialize_code_and_guards_go_together(mod):
    """Passing code without guards (or guards without code) is a TypeError."""
    with pytest.raises(TypeError, match="code and guards go together"):
        fatjit.specialize(mod.f, mod.f_spec.__code__)
    with pytest.raises(TypeError, match="code and guards go together"):
        fatjit.specialize(mod.f, guards=guards())


def test_specialize_argument_count(mod):
    """Too many arguments or unknown keywords are TypeErrors."""
    with pytest.raises(TypeError):
        fatjit.specialize(mod.f, mod.f_spec.__code__, guards(), 1)
    with pytest.raises(TypeError):
        fatjit.specialize(mod.f, mod.f_spec.__code__, guards=guards(), extra=1)
    with pytest.raises(TypeError, match="code and guards need func"):
        fatjit.specialize(code=mod.f_spec.__code__)


# --- specialize: guards ---------------------------------------------------------------------

@pytest.mark.parametrize("bad", [None, 42, fatjit.GuardBuiltins("len"), {"g": 1}, iter([])])
def test_specialize_guards_must_be_a_list_or_tuple(mod, bad):
    """guards must be a list or tuple (a single guard is not accepted)."""
    with pytest.raises(TypeError, match="guards must be a list or tuple of fatjit guards, not"):
        fatjit.specialize(mod.f, mod.f_spec.__code__, bad)


@pytest.mark.parametrize("empty", [[], ()])
def test_specialize_guards_must_not_be_empty(mod, empty):
    """An empty guard list is a ValueError."""
    with pytest.raises(ValueError, match="guards is empty"):
        fatjit.specialize(mod.f, mod.f_spec.__code__, empty)


def test_specialize_names_the_index_of_a_non_guard(mod):
    """A non-guard in guards is a TypeError naming its index and type."""
    with pytest.raises(TypeError, match=r"guards\[1\] is int, not a fatjit guard"):
        fatjit.specialize(mod.f, mod.f_spec.__code__, [fatjit.GuardGlobals("X"), 5])
    with pytest.raises(TypeError, match=r"guards\[0\] is function, not a fatjit guard"):
        fatjit.specialize(mod.f, mod.f_spec.__code__, [lambda: 0])


def test_guard_builtins_of_an_unknown_builtin(mod):
    """GuardBuiltins of a name that is not a builtin is a ValueError at specialize time."""
    with pytest.raises(ValueError, match="GuardBuiltins: no_such_builtin is not a builtin"):
        fatjit.specialize(mod.f, mod.f_spec.__code__, [fatjit.GuardBuiltins("no_such_builtin")])


def test_guard_arg_type_index_out_of_range(mod):
    """GuardArgType for a parameter the function does not have is a ValueError."""
    with pytest.raises(ValueError, match=r"arg_index 2 is out of range: f\(\) has 2 parameters"):
        fatjit.specialize(mod.f, mod.f_spec.__code__, [fatjit.GuardArgType(2, int)])


class ComputedGlobals(dict):
    """A globals dict whose lookups are computed: no dict version can watch them."""

    def __getitem__(self, key):
        if key == "X":
            return "computed X"
        if key == "len":
            return lambda s: "computed len"
        return dict.__getitem__(self, key)


def function_in(namespace):
    exec(compile_source("""
        def f(s):
            return ("orig", len(s), X)
        def f_spec(s):
            return ("spec", s.__len__(), 1)
    """), namespace)
    return namespace["f"], namespace["f_spec"]


def test_guard_globals_refuses_dict_subclass_globals():
    """GuardGlobals cannot watch globals whose __getitem__ computes values (stale code)."""
    f, f_spec = function_in(ComputedGlobals(X=1))
    assert f("ab") == ("orig", "computed len", "computed X")
    before = fatjit.get_specialized(f)  # [] unless automatic mode is on (the JIT stress setting)
    with pytest.raises(ValueError, match=r"GuardGlobals: f\(\) has ComputedGlobals globals; "
                                         r"only a plain dict can be watched"):
        fatjit.specialize(f, f_spec.__code__, [fatjit.GuardGlobals("X")])
    assert fatjit.get_specialized(f) == before


def test_guard_builtins_refuses_dict_subclass_globals():
    """GuardBuiltins cannot watch shadowing in globals whose lookups are computed."""
    f, f_spec = function_in(ComputedGlobals(X=1))
    with pytest.raises(ValueError, match=r"GuardBuiltins: f\(\) has ComputedGlobals globals "
                                         r"and dict builtins; only plain dicts"):
        fatjit.specialize(f, f_spec.__code__, [fatjit.GuardBuiltins("len")])


def test_guard_builtins_refuses_dict_subclass_builtins():
    """GuardBuiltins cannot watch a __builtins__ dict subclass whose lookups are computed."""
    f, f_spec = function_in({"X": 1, "__builtins__": ComputedGlobals(vars(builtins))})
    assert f("ab") == ("orig", "computed len", 1)
    with pytest.raises(ValueError, match=r"has dict globals and ComputedGlobals builtins"):
        fatjit.specialize(f, f_spec.__code__, [fatjit.GuardBuiltins("len")])


def test_guard_builtins_with_non_dict_builtins_does_not_crash():
    """Regression: __builtins__ a non-dict mapping (UserDict) segfaulted GuardBuiltins binding."""
    # Bind called PyDict_Contains on it; it is refused with a ValueError now.
    f, f_spec = function_in({"X": 1, "__builtins__": collections.UserDict(vars(builtins))})
    assert f("ab") == ("orig", 2, 1)
    before = fatjit.get_specialized(f)  # [] unless automatic mode is on (the JIT stress setting)
    with pytest.raises(ValueError, match=r"has dict globals and UserDict builtins; "
                                         r"only plain dicts can be watched"):
        fatjit.specialize(f, f_spec.__code__, [fatjit.GuardBuiltins("len")])
    assert fatjit.get_specialized(f) == before


def test_code_from_compile_exec_regression():
    """Regression: module code was accepted as a specialization and ran without f_locals."""
    # compile("1", ..., "exec") made f() return None; "y = 2" raised SystemError.
    m = new_module("""
        def f():
            return 1
    """)
    with pytest.raises(ValueError, match="different flags"):
        fatjit.specialize(m.f, compile("1", "<s>", "exec"), [fatjit.GuardGlobals("f")])
    assert m.f() == 1


def test_guard_bound_to_another_module_is_refused(mod):
    """A GuardGlobals bound to one module's function cannot be reused in another module."""
    other = new_module(SOURCE)
    guard = fatjit.GuardGlobals("X")
    fatjit.specialize(mod.f, mod.f_spec.__code__, [guard])
    try:
        with pytest.raises(ValueError, match="already bound to the globals of another module"):
            fatjit.specialize(other.f, other.f_spec.__code__, [guard])
        assert fatjit.get_specialized(other.f) == []
    finally:
        fatjit.unspecialize(mod.f)


def test_guard_builtins_bound_to_another_module_is_refused(mod):
    """The same for GuardBuiltins: it watches one module's globals for shadowing."""
    other = new_module(SOURCE)
    guard = fatjit.GuardBuiltins("len")
    fatjit.specialize(mod.f, mod.f_spec.__code__, [guard])
    try:
        with pytest.raises(ValueError, match="already bound to another module"):
            fatjit.specialize(other.f, other.f_spec.__code__, [guard])
    finally:
        fatjit.unspecialize(mod.f)


def test_guard_arg_type_bound_to_another_parameter_name_is_refused(mod):
    """A GuardArgType bound to parameter `a` cannot be reused for a parameter of another name."""
    m = new_module("""
        def g(x):
            return x
        def g_spec(x):
            return x
    """)
    guard = fatjit.GuardArgType(0, int)
    fatjit.specialize(mod.f, mod.f_spec.__code__, [guard])
    try:
        with pytest.raises(ValueError, match="parameter has another name"):
            fatjit.specialize(m.g, m.g_spec.__code__, [guard])
    finally:
        fatjit.unspecialize(mod.f)


def test_shared_guards_within_one_module_are_fine(mod, spec):
    """The same bound guard may serve several functions of one module."""
    guard = fatjit.GuardGlobals("X")
    spec(mod.f, mod.f_spec.__code__, [guard])
    spec(mod.three, function_code("def three(a, b=2, c=3):\n    return 'spec'\n", "three"),
         [guard])
    assert mod.f(1) == ("spec", 1, 2)
    assert mod.three(1) == "spec"


# --- guard constructors ---------------------------------------------------------------------

def test_guard_base_is_abstract():
    """fatjit.Guard cannot be instantiated."""
    with pytest.raises(TypeError, match="fatjit.Guard is the base of the guard types"):
        fatjit.Guard()


def test_guard_types_cannot_be_subclassed():
    """Guard kinds are final: a Python subclass could not implement the C++ check."""
    with pytest.raises(TypeError):
        type("MyGuard", (fatjit.GuardGlobals,), {})


@pytest.mark.parametrize("make, exc, fragment", [
    (lambda: fatjit.GuardDict([], "k"), TypeError, "expected a dict, got list"),
    (lambda: fatjit.GuardDict({}.keys(), "k"), TypeError, "expected a dict, got dict_keys"),
    (lambda: fatjit.GuardDict({"k": 1}, 1), TypeError, "GuardDict: keys must be str, got int"),
    (lambda: fatjit.GuardDict({"k": 1}, "k", b"k"), TypeError, "keys must be str, got bytes"),
    (lambda: fatjit.GuardDict({"k": 1}), TypeError, "needs a dict and at least one key"),
    (lambda: fatjit.GuardDict(), TypeError, "needs a dict and at least one key"),
    (lambda: fatjit.GuardDict(d={}, key="k"), TypeError, "takes no keyword arguments"),
    (lambda: fatjit.GuardGlobals(), TypeError, "needs at least one name"),
    (lambda: fatjit.GuardGlobals(1), TypeError, "GuardGlobals: keys must be str, got int"),
    (lambda: fatjit.GuardGlobals(name="x"), TypeError, "takes no keyword arguments"),
    (lambda: fatjit.GuardBuiltins(), TypeError, "needs at least one name"),
    (lambda: fatjit.GuardBuiltins(len), TypeError, "names must be str, got builtin_function"),
    (lambda: fatjit.GuardFunc(len), TypeError, "GuardFunc: expected a Python function, got"),
    (lambda: fatjit.GuardFunc(42), TypeError, "GuardFunc: expected a Python function, got int"),
    (lambda: fatjit.GuardFunc(), TypeError, "GuardFunc"),
    (lambda: fatjit.GuardArgType(-1, int), ValueError, "arg_index must be >= 0, got -1"),
    (lambda: fatjit.GuardArgType("0", int), TypeError, "integer"),
    (lambda: fatjit.GuardArgType(0, 5), TypeError,
     "arg_types must be a type or a sequence of types, not int"),
    (lambda: fatjit.GuardArgType(0, [int, 5]), TypeError,
     "GuardArgType: arg_types must be types, got int"),
    (lambda: fatjit.GuardArgType(0, []), ValueError, "arg_types must name at least one type"),
    (lambda: fatjit.GuardArgType(0), TypeError, "GuardArgType"),
    (lambda: fatjit.GuardType(5), TypeError, "GuardType: expected a type, got int"),
    (lambda: fatjit.GuardType(int()), TypeError, "GuardType: expected a type"),
    (lambda: fatjit.GuardType(), TypeError, "GuardType"),
])
def test_guard_constructor_errors(make, exc, fragment):
    """Each guard constructor refuses wrong arguments with a message naming the problem."""
    with pytest.raises(exc, match=fragment):
        make()


@pytest.mark.parametrize("guard", [fatjit.GuardGlobals("X"), fatjit.GuardBuiltins("len")])
def test_calling_an_unbound_guard(guard):
    """A guard that reads a function's namespace cannot be checked before specialize binds it."""
    with pytest.raises(ValueError, match=r"is not bound to a function yet"):
        guard()


# --- other functions ------------------------------------------------------------------------

@pytest.mark.parametrize("api", [fatjit.get_specialized, fatjit.unspecialize, fatjit.explain])
@pytest.mark.parametrize("bad, fragment", [
    (len, "got builtin_function_or_method"),
    (int, "got type"),
    (None, "got NoneType"),
    ((lambda: 0).__code__, "got code"),
])
def test_function_apis_reject_non_functions(api, bad, fragment):
    """get_specialized / unspecialize / explain take a Python function only."""
    with pytest.raises(TypeError, match=f"fatjit.{api.__name__}: expected a Python function, "
                                        f"{fragment}"):
        api(bad)


def test_function_apis_reject_bound_methods():
    """... with the __func__ hint for bound methods."""
    class C:
        def m(self):
            pass
    for api in (fatjit.get_specialized, fatjit.unspecialize, fatjit.explain):
        with pytest.raises(TypeError, match="pass its __func__"):
            api(C().m)


@pytest.mark.parametrize("args, exc, fragment", [
    ((5, ["a"]), TypeError, "guard_type_dict: tp must be a type, not int"),
    ((int, 5), TypeError, "guard_type_dict: attrs must be a sequence of str"),
    ((int, []), ValueError, "guard_type_dict: attrs must name at least one attribute"),
    ((int, [1]), TypeError, "keys must be str, got int"),
    ((int,), TypeError, "takes exactly 2 arguments"),
    ((int, ["a"], 1), TypeError, "takes exactly 2 arguments"),
])
def test_guard_type_dict_errors(args, exc, fragment):
    """guard_type_dict(tp, attrs) validates both arguments."""
    with pytest.raises(exc, match=fragment):
        fatjit.guard_type_dict(*args)


@pytest.mark.parametrize("args, exc, fragment", [
    ((len, {}), TypeError, "replace_consts: code must be a code object, not builtin"),
    (("code", {}), TypeError, "replace_consts: code must be a code object, not str"),
    (((lambda: 0).__code__, [("a", 1)]), TypeError, "replace_consts: mapping must be a dict"),
    (((lambda: 0).__code__, None), TypeError, "mapping must be a dict, not NoneType"),
    (((lambda: 0).__code__,), TypeError, r"takes 2 arguments \(code, mapping\), got 1"),
])
def test_replace_consts_errors(args, exc, fragment):
    """replace_consts(code, mapping) validates its arguments."""
    with pytest.raises(exc, match=fragment):
        fatjit.replace_consts(*args)

