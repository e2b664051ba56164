"""The AST specializer's passes, one at a time: Python in, source out (ast.unparse).

Each case is a function's source, the passes it runs (the others disabled), and the source
expected after them; refusals are first-class cases: code that looks foldable but is not
(side effects, huge results, exceptions, names rebound) must come out unchanged. Guarded passes
run against a hand-made environment (a dict of module globals and the real builtins), so the
cases state exactly what the function may assume. The end of the file checks
fatjit.specialize(func, source=True) itself: registration, guards, errors.
"""

import ast
import builtins
import dis
import re
import linecache
import textwrap
import types

import pytest

import fatjit
from fatjit._ast import driver, specialize_source
from fatjit._ast.environment import Binding, genuine_builtin
from fatjit._ast.constant_values import is_literal

ALL_PASSES = set(driver.PASS_NAMES)


class FakeEnvironment:
    """Module globals from a dict (literals and functions defined in the same source), and the
    interpreter's builtins."""

    def __init__(self, tree, globals_):
        self.globals = globals_
        self.functions = {s.name: s for s in tree.body if isinstance(s, ast.FunctionDef)}

    def lookup(self, name):
        if name in self.functions:
            return Binding("global", name, function_def=self.functions[name])
        if name in self.globals:
            value = self.globals[name]
            return Binding("global", name, value, literal=is_literal(value), known=True)
        if hasattr(builtins, name):
            value = getattr(builtins, name)
            return Binding("builtin", name, value, known=True,
                           genuine=genuine_builtin(name, value))
        return None


def transform(source, passes, globals_=None, **options):
    """(source of the first function after `passes`, its FunctionContext)."""
    tree = ast.parse(textwrap.dedent(source))
    func = next(s for s in tree.body if isinstance(s, ast.FunctionDef))
    env = FakeEnvironment(tree, globals_ or {}) if globals_ is not None else None
    options["disable"] = sorted(ALL_PASSES - set(passes))
    context = driver.optimize_function(func, env, options)
    return ast.unparse(func), context


def expect(source):
    return ast.unparse(ast.parse(textwrap.dedent(source)))


# -- fold_constants -------------------------------------------------------------------------

FOLD = ["fold_constants"]


@pytest.mark.parametrize("before, after", [
    ("def f(): return 2 * 3 + 1", "def f(): return 7"),
    ("def f(): return (1, 2) + (3,)", "def f(): return (1, 2, 3)"),
    ("def f(): return 'ab' * 3", "def f(): return 'ababab'"),
    ("def f(): return (1 < 2 < 3, 3 in (1, 2), 'a' not in 'bc')",
     "def f(): return (True, False, True)"),
    ("def f(): return 'hello'[1:3], (5, 6, 7)[-1]", "def f(): return ('el', 7)"),
    ("def f(x): return x if 0 else 1 + 1", "def f(x): return 2"),
    ("def f(x): return 0 and x", "def f(x): return 0"),
    ("def f(x): return 1 and x", "def f(x): return x"),
    ("def f(x): return None is None", "def f(x): return True"),
    ("def f(): return f'{3}-{\"a\"}'", "def f(): return '3-a'"),
    ("def f(): return -(2 ** 10), ~5, not 0", "def f(): return (-1024, -6, True)"),
], ids=["arith", "tuple-concat", "str-repeat", "compare", "subscript", "ifexp", "and-falsy",
        "and-truthy", "is-singletons", "fstring", "unary"])
def test_fold_constants(before, after):
    assert transform(before, FOLD)[0] == expect(after)


@pytest.mark.parametrize("source", [
    "def f(): return 1 / 0",                     # raises: the traceback must be the original's
    "def f(): return (1, 2)[5]",                 # raises IndexError
    "def f(): return 2 ** 200",                  # over 128 bits
    "def f(): return 1 << 129",
    "def f(): return 'x' * 5000",                # over 4096 characters
    "def f(): return (1,) * 300",                # over 256 items
    "def f(): return (1, 2) is (1, 2)",          # identity of equal constants
    "def f(): return b'a' == 'a'",               # BytesWarning under -b
    "def f(x): return x + 1 * x",                # x is not a constant (1 * x stays too)
    "def f(): return '%s' % 5",                  # %-formatting
    "def f(x): assert 1 == 2, x",                # an assert keeps its test
    "def f(): return 2.0 ** 5000",               # OverflowError
], ids=["div-zero", "index-error", "pow-huge", "shift-huge", "str-huge", "tuple-huge",
        "is-tuples", "bytes-str", "not-constant", "percent-format", "assert", "overflow"])
def test_fold_constants_refuses(source):
    out, _ = transform(source, FOLD)
    assert out == expect(source)  # (a tuple display may have become a constant: same source)


# -- propagate_constants --------------------------------------------------------------------

PROPAGATE = ["propagate_constants", "fold_constants"]


def test_propagate_constants_reads_after_the_assignment():
    out, _ = transform("""
        def f(a):
            k = 3
            b = a * k
            return b + k * 2
        """, PROPAGATE)
    assert out == expect("""
        def f(a):
            k = 3
            b = a * 3
            return b + 6
        """)


@pytest.mark.parametrize("source", [
    "def f(a):\n    print(k)\n    k = 3\n    return a",          # read before: UnboundLocalError
    "def f(a):\n    k = 3\n    k += 1\n    return k",             # augmented assignment
    "def f(a):\n    k = 3\n    del k\n    return a",              # del
    "def f(a):\n    k = 3\n    for k in a: pass\n    return k",   # loop target
    "def f(a):\n    k = 3\n    with a as k: pass\n    return k",  # with-as
    "def f(a):\n    k = 3\n    try: pass\n    except E as k: pass\n    return k",  # except-as
    "def f(a):\n    k = 3\n    (k := a)\n    return k",           # walrus
    "def f(a):\n    k = 3\n    [(k := x) for x in a]\n    return k",  # walrus in a comprehension
    "def f(a):\n    k = 3\n    match a:\n        case [k]: pass\n    return k",  # match capture
    "def f(a):\n    global k\n    k = 3\n    return k",           # global
    "def f(a):\n    k = 3\n    def g(): nonlocal k; k = 4\n    g()\n    return k",  # nonlocal
    "def f(k):\n    return k",                                    # a parameter
    "def f(a):\n    if a:\n        k = 3\n    return k",         # not at the top level
    "def f(a):\n    k = 3\n    import k\n    return k",           # import
], ids=["read-before", "augassign", "del", "for", "with", "except", "walrus", "walrus-comp",
        "match", "global", "nonlocal", "param", "conditional", "import"])
def test_propagate_constants_refuses_rebound_names(source):
    out, context = transform(source, PROPAGATE)
    assert out == expect(source)
    assert "propagate_constants" not in context.changes


# -- unroll_loops ---------------------------------------------------------------------------

UNROLL = ["unroll_loops", "simplify_iterables", "fold_constants"]


def test_unroll_tuple_loop_substitutes_the_target():
    out, _ = transform("""
        def f(a):
            t = 0
            for i in [1, 2, 3]:
                t += a * i
            else:
                t -= 1
            return t, i
        """, UNROLL)
    assert out == expect("""
        def f(a):
            t = 0
            i = 1
            t += a * 1
            i = 2
            t += a * 2
            i = 3
            t += a * 3
            t -= 1
            return (t, i)
        """)


def test_unroll_unpacking_target():
    out, _ = transform("""
        def f():
            for x, y in ((1, 2), (3, 4)):
                print(x + y)
        """, UNROLL)
    assert out == expect("""
        def f():
            x, y = (1, 2)
            print(3)
            x, y = (3, 4)
            print(7)
        """)


def test_unroll_range_checks_range_where_it_is_read():
    out, context = transform("""
        def f(a):
            for i in range(2):
                a.append(i)
        """, UNROLL)
    assert out == expect("""
        def f(a):
            if range is '\\x00fatjit:type:range':
                i = 0
                a.append(0)
                i = 1
                a.append(1)
            else:
                for i in range(2):
                    a.append(i)
        """)


@pytest.mark.parametrize("source, why", [
    ("def f(a):\n    for i in (1, 2):\n        if a: break\n", "break or continue"),
    ("def f(a):\n    for i in (1, 2):\n        a.append(lambda: i)\n", "nested scope in the body"),
    ("def f(a):\n    for i in tuple(range(40)):\n        a.append(i)\n",
     "not a constant iterable"),
    ("def f(a):\n    for i in (1, 2, 3):\n        a.append(i)\n", "more iterations"),
    ("def f(a):\n    for x, y in ((1, 2), 3):\n        a.append(x)\n", "do not unpack"),
], ids=["break", "lambda", "call", "limit", "unpack"])
def test_unroll_loops_refuses(source, why):
    out, context = transform(source, UNROLL, unroll_iterations=2)
    assert out == expect(source)
    assert any(why in remark[2] for remark in context.remarks), context.remarks


# -- remove_dead_code -----------------------------------------------------------------------

DEAD = ["remove_dead_code", "fold_constants"]


def test_dead_branches_keep_a_husk_for_names():
    out, _ = transform("""
        def f(a):
            if 1 > 2:
                y = 1
            else:
                a = 2
            return a
            print(a)
        """, DEAD)
    assert out == expect("""
        def f(a):
            if False:
                y = 1
            a = 2
            return a
            if False:
                print(a)
        """)


def test_dead_code_keeps_the_function_a_generator():
    source = "def f():\n    return 1\n    yield 2\n"
    out, _ = transform(source, DEAD)
    assert "yield 2" in out  # in the husk: still a generator


def test_dead_while_false():
    out, _ = transform("def f():\n    while 0:\n        x = 1\n    else:\n        return 2\n", DEAD)
    assert out == expect("def f():\n    if False:\n        x = 1\n    return 2\n")


# -- simplify_iterables ---------------------------------------------------------------------

def test_simplify_iterables_list_to_tuple():
    out, _ = transform("def f(a, b):\n    for x in [a, b]: pass\n    return a in [b, 1]\n",
                       ["simplify_iterables"])
    assert out == expect("def f(a, b):\n    for x in (a, b): pass\n    return a in (b, 1)\n")


def test_simplify_iterables_leaves_starred_and_stored_lists():
    source = "def f(a, b):\n    for x in [*a, b]: pass\n    [c, d] = a\n    return c"
    assert transform(source, ["simplify_iterables"])[0] == expect(source)


# -- guarded: globals_to_constants, pure_builtin_calls, inline_functions -------------------

GUARDED = ["globals_to_constants", "pure_builtin_calls", "inline_functions", "fold_constants",
           "remove_dead_code", "propagate_constants"]


def test_globals_and_builtin_calls_in_the_entry_stable_prefix():
    out, context = transform("""
        def f(a):
            n = N * 2 + len("abc")
            if DEBUG:
                print("debug")
            a.append(n)
            return N
        """, GUARDED, {"N": 5, "DEBUG": False})
    # after a.append(...) (a call: any code may run), N is read again from the globals
    assert out == expect("""
        def f(a):
            n = 13
            if False:
                print('debug')
            a.append(13)
            return N
        """)
    assert context.global_names == {"N": 5, "DEBUG": False}
    assert context.builtin_names == {"len"}


def test_entry_assumption_rewrites_the_whole_body():
    out, _ = transform("""
        def f(a):
            a.append(1)
            return N
        """, GUARDED, {"N": 5}, assume="entry")
    assert out == expect("def f(a):\n    a.append(1)\n    return 5\n")


@pytest.mark.parametrize("source, globals_", [
    ("def f(a):\n    a.append(1)\n    return N\n", {"N": 5}),             # after a call
    ("def f(a):\n    if a:\n        return N\n", {"N": 5}),               # after a truth test
    ("def f(a):\n    global N\n    N = 1\n    return N\n", {"N": 5}),     # rebinds it
    ("def f(a):\n    return [N for _ in a]\n", {"N": 5}),                 # a nested scope
    ("def f(a):\n    yield N\n", {"N": 5}),                               # a generator
    ("def f(a):\n    x = a.b\n    return len('abc')\n", {}),              # after an attribute
    ("def f(a):\n    return super\n", {}),                                # makes __class__
], ids=["after-call", "after-truth-test", "global-stmt", "comprehension", "generator",
        "after-attribute", "super"])
def test_guarded_rewrites_refuse(source, globals_):
    out, context = transform(source, GUARDED, globals_)
    assert out == expect(source)
    assert not context.guarded


def without_placeholder_names(source):
    return re.sub(r"__fatjit_const_(global|builtin)_", "", source)


@pytest.mark.parametrize("source, globals_, builtins_", [
    ("def f(a):\n    return L\n", {"L": [1]}, set()),                    # not a literal
    ("def f(a):\n    return len(a)\n", {}, {"len"}),                     # not a constant arg
    ("def f(a):\n    return int('x')\n", {}, {"int"}),                   # raises ValueError
    ("def f(a):\n    return str(10 ** 700)\n", {}, {"str"}),             # digit limit
    ("def f(a):\n    return hash('abc')\n", {}, {"hash"}),               # process-dependent
], ids=["list", "len-local", "raises", "digits", "hash"])
def test_objects_become_placeholder_names_but_nothing_folds(source, globals_, builtins_):
    """Not foldable, but the read itself is entry-stable: it becomes a placeholder name (a
    LOAD_CONST of the object once compiled), and nothing is folded through it."""
    out, context = transform(source, GUARDED, globals_)
    assert out != expect(source)
    assert without_placeholder_names(out) == expect(source)
    assert context.builtin_names == builtins_
    assert context.global_names == {name: None for name in globals_}


def test_placeholder_name_is_not_folded_by_the_compiler():
    """`not X`, `if X:` and `X[0]` on an object: the compiler must not fold a stand-in."""
    out, context = transform("""
        def f(a):
            if not TABLE:
                return TABLE[0], len
            return a
        """, GUARDED, {"TABLE": [7]})
    assert out == expect("""
        def f(a):
            if not __fatjit_const_global_TABLE:
                return TABLE[0], len
            return a
        """)  # the truth test is an effect: the later reads stay LOAD_GLOBALs
    assert context.global_names == {"TABLE": None}


def test_call_of_a_global_rewrites_its_name_then_its_arguments():
    out, context = transform("""
        def f(a):
            return print(N, len)
        """, GUARDED, {"N": 5})
    assert out == expect("def f(a):\n    return __fatjit_const_builtin_print(5, "
                         "__fatjit_const_builtin_len)\n")
    assert context.builtin_names == {"print", "len"}
    assert context.global_names == {"N": 5}


def test_inline_a_one_expression_function():
    out, context = transform("""
        def f(a, b):
            return pair(a, 7), ident(3), same(a, b)
        def pair(x, y):
            return (x, y)
        def ident(x):
            "docstring"
            return x
        def same(x, y):
            return x is y
        """, GUARDED, {}, assume="entry")
    assert out == expect("def f(a, b):\n    return ((a, 7), 3, a is b)\n")
    assert context.inlined == {"pair": ("pair", 4), "ident": ("ident", 6),
                               "same": ("same", 9)}


@pytest.mark.parametrize("callee", [
    "def g(x):\n    return x * x\n",          # may raise for a non-number: frame would show
    "def g(x):\n    return X\n",              # reads a global
    "def g(x=1):\n    return x\n",            # defaults
    "def g(x):\n    y = x\n    return y\n",   # two statements
    "@dec\ndef g(x):\n    return x\n",        # decorated
])
def test_inline_refuses(callee):
    source = "def f(a):\n    return g(a)\n" + callee
    out, context = transform(source, GUARDED, {}, assume="entry")
    assert "g(a)" in out
    assert not context.inlined


def test_inline_folds_with_constant_arguments():
    out, _ = transform("def f():\n    return g(5)\ndef g(x):\n    return x * x\n",
                       GUARDED, {}, assume="entry")
    assert out == expect("def f():\n    return 25\n")


# -- fatjit.specialize(func, source=True) ---------------------------------------------------

_counter = iter(range(10 ** 6))


def module_from_source(source, **names):
    """A module whose source linecache knows (as an interactive session's would)."""
    name = f"fatjit_ast_test_{next(_counter)}"
    filename = f"<{name}>"
    text = textwrap.dedent(source)
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    module = types.ModuleType(name)
    module.__dict__.update(names)
    exec(compile(text, filename, "exec"), module.__dict__)
    return module


def test_source_specialization_is_registered_with_its_guards():
    mod = module_from_source("""
        N = 4
        def f(a):
            return a + N * len("ab")
        """)
    try:
        assert fatjit.specialize(mod.f, source=True) is mod.f
        [(code, guards)] = fatjit.get_specialized(mod.f)
        assert 8 in code.co_consts
        assert sorted(type(g).__name__ for g in guards) == ["GuardBuiltins", "GuardFunc",
                                                           "GuardGlobals"]
        # Reading the stats may itself count runs (under FATJIT_JIT_STRESS the stats() wrapper
        # is specialized too): measure that first.
        first = fatjit.stats()["specialized_runs"]
        runs = fatjit.stats()["specialized_runs"]
        own = runs - first
        assert mod.f(1) == 9
        assert fatjit.stats()["specialized_runs"] == runs + own + 1
        mod.N = 10                       # the guard fails: the original code runs
        assert mod.f(1) == 21
        mod.N = 4
        assert mod.f(2) == 10
    finally:
        fatjit.unspecialize(mod.f)


def test_source_specialization_keeps_the_code_layout():
    mod = module_from_source("""
        K = 2
        def outer(a, *args, b=1, **kw):
            x = K
            def inner():
                return a + x
            for i in (1, 2):
                x += i
            return inner()
        """)
    try:
        fatjit.specialize(mod.outer, source=True)
        [(code, _)] = fatjit.get_specialized(mod.outer)
        orig = mod.outer.__code__
        for field in ("co_name", "co_qualname", "co_firstlineno", "co_varnames", "co_cellvars",
                      "co_freevars", "co_flags", "co_argcount", "co_kwonlyargcount"):
            assert getattr(code, field) == getattr(orig, field), field
        assert mod.outer(1) == 6
    finally:
        fatjit.unspecialize(mod.outer)


def test_source_specialization_errors():
    with pytest.raises(TypeError, match="expected a Python function, got builtin"):
        fatjit.specialize(len, source=True)
    with pytest.raises(TypeError, match="do not pass them"):
        fatjit.specialize(test_source_specialization_errors, None, [], source=True)
    namespace = {}
    exec(compile("def nosource(): return 1 + 1\n", "<nowhere-to-be-found>", "exec"), namespace)
    with pytest.raises(ValueError, match=r"source of nosource\(\) is unavailable"):
        fatjit.specialize(namespace["nosource"], source=True)
    mod = module_from_source("def f():\n    return 1\n")
    filename = mod.f.__code__.co_filename
    linecache.cache[filename] = (0, None, ["def f():\n", "    return 2\n"], filename)
    with pytest.raises(ValueError, match="does not match its code object"):
        fatjit.specialize(mod.f, source=True)
    lam = module_from_source("g = lambda: 1\n").g
    with pytest.raises(ValueError, match="is a lambda"):
        fatjit.specialize(lam, source=True)


def test_source_specialization_with_nothing_to_do_registers_nothing():
    mod = module_from_source("def f(a):\n    return a.x\n")
    report = specialize_source(mod.f)
    assert report.refused == "nothing_to_specialize"
    assert fatjit.get_specialized(mod.f) == []


# -- builtins and non-literal globals as constants: the post-compile patch -------------------

def instructions(code):
    return [(i.opname, i.argval) for i in dis.get_instructions(code)]


def test_builtins_and_objects_become_load_const_under_guards():
    mod = module_from_source("""
        TABLE = [1, 2, 3]
        def helper(x):
            return x * 2
        def f(a):
            t = TABLE
            h = helper
            return len(t) + h(a)
        """)
    try:
        fatjit.specialize(mod.f, source=True)
        [(code, guards)] = fatjit.get_specialized(mod.f)
        ops = instructions(code)
        # the entry-stable reads: TABLE and helper, then len (its call is the first effect)
        assert ("LOAD_GLOBAL", "TABLE") not in ops and ("LOAD_GLOBAL", "helper") not in ops
        assert ("LOAD_CONST", mod.TABLE) in ops and ("LOAD_CONST", mod.helper) in ops
        assert ("LOAD_CONST", len) in ops and ("PUSH_NULL", None) in ops
        assert not any(op == "LOAD_GLOBAL" for op, _ in ops)
        assert len(code.co_code) == len(mod.f.__code__.co_code)  # padded, never moved
        assert code.co_exceptiontable == mod.f.__code__.co_exceptiontable
        assert code.co_linetable == mod.f.__code__.co_linetable
        kinds = sorted(type(g).__name__ for g in guards)
        assert kinds == ["GuardBuiltins", "GuardFunc", "GuardGlobals"]
        runs = fatjit.stats()["specialized_runs"]
        assert mod.f(5) == 13
        assert fatjit.stats()["specialized_runs"] >= runs + 1  # (stress: other code runs too)
        mod.TABLE = [1]                      # rebound: the guard fails, the original runs
        assert mod.f(5) == 11
        mod.helper = lambda x: -x
        assert mod.f(5) == -4
        mod.TABLE.append(9)                  # mutated, not rebound: the constant is that list
        mod.TABLE, mod.helper = [1, 2, 3], mod.__dict__["helper"]
        genuine_len = builtins.len
        builtins.len = lambda s: 100         # the builtin replaced: the guard fails
        try:
            assert mod.f(5) == 100 + -5
        finally:
            builtins.len = genuine_len
        assert mod.f(5) == 3 + -5
    finally:
        fatjit.unspecialize(mod.f)


def test_patch_keeps_offsets_and_handles_the_null_bit_and_extended_args():
    from fatjit._ast.code_layout import load_placeholders_as_constants
    from fatjit._ast.constant_values import placeholder, placeholder_name
    import opcode
    name = placeholder_name("builtin", "len")
    consts = "".join(f"    x = 'c{i}'\n" for i in range(300))  # LOAD_CONST index > 255
    source = (f"def f(a):\n{consts}    try:\n        return {name}(a) + "
              f"len(x)\n    except TypeError:\n        return {name}\n")
    namespace = {}
    exec(compile(source, "<patch>", "exec"), namespace)
    code = namespace["f"].__code__
    patched = load_placeholders_as_constants(code, opcode._inline_cache_entries)
    assert len(patched.co_code) == len(code.co_code)
    assert patched.co_exceptiontable == code.co_exceptiontable
    assert patched.co_linetable == code.co_linetable
    assert patched.co_stacksize == code.co_stacksize
    ops = instructions(patched)
    assert ("LOAD_CONST", placeholder("builtin", "len")) in ops
    assert ("LOAD_GLOBAL", name) not in ops and ("LOAD_GLOBAL", "len") in ops
    assert patched.co_consts.index(placeholder("builtin", "len")) > 255
    swapped = fatjit.replace_consts(patched, {placeholder("builtin", "len"): len})
    g = types.FunctionType(swapped, {})
    assert g("abc") == 3 + 4
    assert g(5) is len                   # the except branch: the constant again


def test_ast_counters_are_in_fatjit_stats():
    mod = module_from_source("N = 2\ndef f(a):\n    return a * N\n")
    before = fatjit.stats()["ast"].get("functions_specialized", 0)
    try:
        fatjit.specialize(mod.f, source=True)
        after = fatjit.stats()["ast"]
        assert after["functions_specialized"] == before + 1
        assert after == fatjit._ast.stats()
        assert after["rewrites_by_pass"]["globals_to_constants"] >= 1
        fatjit.reset_stats()
        assert fatjit.stats()["ast"] == {}
    finally:
        fatjit.unspecialize(mod.f)
