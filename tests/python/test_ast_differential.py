"""Differential testing of the AST specializer: original vs specialized from source.

Reuses the corpus of test_differential.py (corpus.py: random functions over globals, builtins,
a fake module, branches, loops, try/except, closures, helpers that rebind globals mid-call) and
its driver's comparison (result, or exception type, message and traceback positions of every
frame in the generated code, and the module state after each call), with two variants:

  ast        fatjit.specialize(f, source=True)                   (assume="stable": must equal
             the original, always)
  ast_entry  fatjit.specialize(f, source=True, assume="entry")   (FAT Python's semantics: run
             only for cases that rebind nothing mid-call, as test_differential's entry variant)

The generated source reaches the specializer through linecache, as an interactive session's
would. Hand-written cases then cover what the corpus does not generate: unrolled loops (with
exceptions in the second iteration, else clauses, unpacking targets, shadowed range) and
inlined callees (rebound, redefined, given other code).
"""

import dis
import linecache
import textwrap

import pytest

import corpus
import fatjit
import support
import test_differential as base
from fatjit._ast import specialize_source

# Cases replace these in the builtins module for a while: keep the real ones.
from builtins import len  # noqa: A004,E402  pylint: disable=redefined-builtin

COVERAGE = {"ast": {"cases": 0, "specialized": 0, "runs": 0},
            "ast_entry": {"cases": 0, "specialized": 0, "runs": 0}}
ASSUME = {"ast": "stable", "ast_entry": "entry"}


def filename_of(case):
    return f"<corpus-{case.index}>"


def seed_linecache(case):
    lines = case.source.splitlines(keepends=True)
    linecache.cache[filename_of(case)] = (len(case.source), None, lines, filename_of(case))


class AstVariant(base.Variant):
    def mark(self):
        if self.label == "orig":
            return
        fatjit.unspecialize(self.func)
        report = specialize_source(self.func, assume=ASSUME[self.label])
        if report.refused is None:
            self.specialized_once = True

    def call(self, inputs, keyword, generator):
        before = fatjit.stats()["specialized_runs"]
        result = base.outcome(self.func, (inputs[0], inputs[1]),
                              {"k": inputs[2]} if keyword else {}, generator)
        if self.label != "orig":
            COVERAGE[self.label]["runs"] += fatjit.stats()["specialized_runs"] - before
        return result, base.state(self.namespace)


def run_case(case):
    seed_linecache(case)
    code = base.compile_case(case)
    labels = ["orig", "ast"] + ([] if case.rebinds_mid_call else ["ast_entry"])
    variants = [AstVariant(label, case, code) for label in labels]
    try:
        base.drive(case, variants)
    finally:
        linecache.cache.pop(filename_of(case), None)
    for variant in variants[1:]:
        COVERAGE[variant.label]["cases"] += 1
        COVERAGE[variant.label]["specialized"] += variant.specialized_once


@pytest.mark.parametrize("case", [pytest.param(c, id=f"f{c.index}") for c in base.CASES])
def test_ast_specialized_equals_original(case):
    """Every call of the AST-specialized variants returns or raises exactly what CPython does,
    with the same traceback positions, and leaves the same module state."""
    run_case(case)


def test_zz_ast_specialized_code_ran():
    """After the corpus ran (sorts last): the comparison was not vacuous."""
    if COVERAGE["ast"]["cases"] < len(base.CASES):
        pytest.skip("the corpus did not run in full in this session (-k or a failure)")
    print(f"\nAST-specialized code ran: {COVERAGE}")
    assert COVERAGE["ast"]["specialized"] >= 0.3 * COVERAGE["ast"]["cases"]
    assert COVERAGE["ast"]["runs"] >= COVERAGE["ast"]["cases"]
    assert COVERAGE["ast_entry"]["specialized"] >= 0.5 * COVERAGE["ast_entry"]["cases"]


# -- hand-written cases: unrolled loops and inlined callees ---------------------------------

HANDWRITTEN = {
    "unroll-raises-in-second-iteration": ("""
        def f(a):
            t = 0
            for d in (1, 0, 2):
                t += a // d
            return t
        """, [(5,), ("x",), (0,)], []),
    "unroll-else-and-target-after": ("""
        def f(a):
            out = []
            for i, c in ((1, 'x'), (2, 'y')):
                out.append(c * i)
            else:
                out.append(i)
            return out, i, c
        """, [(1,)], []),
    "unroll-range-shadowed": ("""
        def f(a):
            t = []
            for i in range(3):
                t.append(i + a)
            return t
        """, [(1,), ("s",)], [("set", "range", lambda n: [10, 20]), ("del", "range")]),
    "unroll-nested-loops": ("""
        def f(a):
            t = 0
            for i in (1, 2):
                for j in [10, 20]:
                    t += i * j + a
            return t
        """, [(1,), (None,)], []),
    "unroll-rebinds-target": ("""
        def f(a):
            r = []
            for i in (1, 2):
                i = i + a
                r.append(i)
            return r, i
        """, [(1,), ("x",)], []),
    "inline-rebound-and-redefined": ("""
        def f(a, b):
            return pair(a, b), ident(a), is_none(b), sq(3)
        def pair(x, y):
            return (x, y)
        def ident(x):
            return x
        def is_none(x):
            return x is None
        def sq(x):
            return x * x
        """, [(1, None), ("a", 2)],
        [("set", "pair", lambda x, y: [x]), ("del", "pair"), ("code", "ident"),
         ("set", "sq", lambda x: -x)]),
    "globals-folded-then-rebound": ("""
        N = 3
        FLAG = False
        def f(a):
            k = N * 2
            if FLAG:
                return -1
            return a + k + len("abc")
        """, [(1,), ("x",)], [("set", "N", 10), ("set", "FLAG", True), ("set", "N", 3),
                              ("set", "FLAG", False), ("set", "len", lambda s: 0)]),
    "objects-as-constants-rebound": ("""
        TABLE = [1, 2]
        def helper(x):
            return x + 1
        def f(a):
            t = TABLE
            h = helper
            return max(len(t), h(a)), t, h is helper
        """, [(1,), ("x",), (5,)],
        [("set", "TABLE", [5, 6, 7]), ("set", "helper", lambda x: x * 10),
         ("set", "max", min), ("del", "max"), ("del", "TABLE"), ("set", "TABLE", (9,)),
         ("set", "len", lambda s: 100), ("del", "len")]),
}


def _build_handwritten(name, source):
    filename = f"<corpus-ast-{name}>"
    text = textwrap.dedent(source)
    linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
    namespace = {"__name__": f"handwritten_{name}"}
    exec(compile(text, filename, "exec"), namespace)
    return namespace


def _apply(namespace, step):
    kind, name = step[0], step[1]
    if kind == "set":
        namespace[name] = step[2]
    elif kind == "del":
        namespace.pop(name, None)
    elif kind == "code":  # the callee gets other code: GuardFunc fails for good
        namespace[name].__code__ = (lambda x: ("other", x)).__code__


@pytest.mark.parametrize("name", sorted(HANDWRITTEN))
@pytest.mark.parametrize("assume", ["stable", "entry"])
def test_handwritten_cases(name, assume):
    """Unrolled loops and inlined callees: same results, exceptions and traceback positions as
    the original, before and after every rebinding the case makes."""
    source, inputs, steps = HANDWRITTEN[name]
    orig = _build_handwritten(name, source)
    spec = _build_handwritten(name, source)
    report = specialize_source(spec["f"], assume=assume)
    try:
        assert report.refused is None, report.refused
        for step in [None] + steps:
            if step is not None:
                _apply(orig, step)
                _apply(spec, step)
            for args in inputs:
                want = base.outcome(orig["f"], args, {}, False)
                got = base.outcome(spec["f"], args, {}, False)
                assert got == want, (step, args, report.after)
    finally:
        fatjit.unspecialize(spec["f"])


def test_handwritten_cases_are_unrolled_and_inlined():
    """The cases above exercise what they say: the loops are gone, the callees inlined."""
    source, _, _ = HANDWRITTEN["unroll-raises-in-second-iteration"]
    report = specialize_source(_build_handwritten("u", source)["f"], register=False)
    assert "for " not in report.after and "a // 0" in report.after
    source, _, _ = HANDWRITTEN["inline-rebound-and-redefined"]
    report = specialize_source(_build_handwritten("i", source)["f"], assume="entry",
                               register=False)
    assert "return ((a, b), a, b is None, 9)" in report.after
    # Objects (a list, a function, a builtin) read in the entry-stable prefix: LOAD_CONSTs.
    source, _, _ = HANDWRITTEN["objects-as-constants-rebound"]
    namespace = _build_handwritten("o", source)
    report = specialize_source(namespace["f"], register=False)
    consts = [i.argval for i in dis.get_instructions(report.code) if i.opname == "LOAD_CONST"]
    assert any(c is namespace["TABLE"] for c in consts)
    assert any(c is namespace["helper"] for c in consts)
    assert any(c is max for c in consts) and any(c is len for c in consts)
