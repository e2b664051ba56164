"""Code-level native code (ext/code_state.h): automatic mode compiles a code object whose bytecode
the specializer leaves unchanged, and every function built on that code object runs it (closures
of one `def`, FunctionType(code, other_globals)) when no specialization of its own applies.

What must hold: each function gets its own answers (cells, globals, builtins are read from the
frame, never from the function that was compiled first), rebinding a global or shadowing a
builtin is seen at once, the code object dies with nothing left behind, and compiling adds no
object the garbage collector sees (CPython's test_descr.test_slots counts gc.get_objects()
across `g == g`: a weakref per function once made it fail under the JIT).

Each test runs a child process with automatic mode at the stress setting (every function compiled
at its first call): the mode and its counters are process-wide.
"""

import os
import subprocess
import sys
import textwrap

BUILD_PYTHON = os.path.dirname(os.path.dirname(os.path.abspath(__import__("fatjit").__file__)))

# Automatic mode as scripts/cpython_regrtest.sh --jit sets it.
STRESS = {"FATJIT": "auto", "FATJIT_SPECIALIZE_THRESHOLD": "0", "FATJIT_JIT_THRESHOLD": "0",
          "FATJIT_JIT_BACKGROUND": "0", "FATJIT_JIT_TIER_UP": "0"}


def run(source, timeout=120, **environment):
    child = {k: v for k, v in os.environ.items() if not k.startswith("FATJIT")}
    child["PYTHONPATH"] = BUILD_PYTHON
    child.update(STRESS)
    child.update(environment)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(source)], capture_output=True,
                          text=True, env=child, timeout=timeout)


def check(done):
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("ok"), done.stdout + done.stderr
    return done.stdout


PRELUDE = r"""
import builtins, gc, re, sys, types, weakref
import fatjit
from fatjit import _fatjit

assert fatjit.is_enabled()

def code_level():
    j = fatjit.stats()["jit"]
    return j["code_level_live"], j["code_level_runs"]

def native_calls(func):
    # The calls of func's code object that ran its code-level native code, from explain().
    m = re.search(r"(\d+) native calls of this code object", fatjit.explain(func))
    assert m, fatjit.explain(func)
    return int(m.group(1))

def unchanged(func):
    report = _fatjit._specialize_report(func)
    assert report["refused"], report
    return report["reason"]
"""


def test_closures_of_one_def_share_the_code_and_keep_their_own_cells():
    check(run(PRELUDE + """
def make(v):
    def get(x):
        return x + v
    return get

first = make(1)
assert unchanged(first) == "nothing_to_specialize"
assert first(10) == 11                    # compiled at its first call, at code level
closures = [make(k) for k in range(100, 110)]
results = []
for f in closures:
    results.append(f(1))
    results.append(f(2))
assert results == [k + i for k in range(101, 111) for i in (0, 1)], results
# One code object, one native code: every closure's calls ran it, none made a specialization.
assert native_calls(first) == native_calls(closures[5]) == 1 + 2 * len(closures)
assert fatjit.get_specialized(closures[3]) == []
text = fatjit.explain(closures[3])
assert "no specializations" in text and "plain CPython" not in text, text
assert "runs native code shared by its code object" in text, text
assert "the specializer left it unchanged" in text, text
assert "no more attempts" in text, text
print("ok")
"""))


SOURCE_READING_GLOBALS = """
def g(x):
    x.append(1)          # a call first: K and len are not entry-stable, nothing is specialized
    return K + len(x)
"""


def test_functions_on_one_code_object_with_other_globals_and_builtins():
    check(run(PRELUDE + f"""
SOURCE = {SOURCE_READING_GLOBALS!r}
ns1 = {{"K": 100}}
exec(SOURCE, ns1)
g1 = ns1["g"]
assert unchanged(g1) == "nothing_entry_stable"
assert g1([]) == 101
g2 = types.FunctionType(g1.__code__, {{"K": 200, "__builtins__": builtins}})
g3 = types.FunctionType(g1.__code__, {{"K": 300, "len": lambda s: -1}})
g4 = types.FunctionType(g1.__code__, {{"K": 400, "__builtins__": {{"len": lambda s: 1000}}}})
for _ in range(3):  # the per-site caches see each globals dict in turn
    assert (g1([]), g2([]), g3([]), g4([])) == (101, 201, 299, 1400)
    assert g1([0]) == 102
assert native_calls(g4) == 1 + 3 * 5, fatjit.explain(g4)

ns1["K"] = 7                                   # a global rebound
assert g1([]) == 8 and g2([]) == 201
ns1["len"] = lambda s: 50                      # a builtin shadowed by a global
assert g1([]) == 57 and g2([]) == 201
del ns1["len"]
assert g1([]) == 8
saved = builtins.len
builtins.len = lambda s: 5                     # the builtin itself rebound
try:
    assert (g1([]), g2([]), g3([]), g4([])) == (12, 205, 299, 1400)
finally:
    builtins.len = saved
assert (g1([]), g2([])) == (8, 201)
del ns1["K"]
try:
    g1([])
except NameError as e:
    assert "'K' is not defined" in str(e), e
else:
    raise AssertionError("no NameError")
assert native_calls(g1) > 16
print("ok")
"""))


def test_gc_object_count_stays_flat_as_in_test_descr_test_slots():
    # test_descr.test_slots, "Test lookup leaks [SF bug 572567]".
    program = PRELUDE + """
class G(object):
    def __eq__(self, other):
        return False
g = G()
fatjit.wait_for_compiles()  # the tier-ups of the functions called so far have landed
orig_objects = len(gc.get_objects())
for i in range(10):
    g == g
# With the tier-up on, its compile was queued at the first call: counted once it has landed
# (landing in the middle of the loop or after it made the count depend on timing).
fatjit.wait_for_compiles()
new_objects = len(gc.get_objects())
assert orig_objects == new_objects, (orig_objects, new_objects)
assert code_level()[0] > 0
assert "native code shared by its code object" in fatjit.explain(G.__eq__)
print("ok")
"""
    check(run(program))
    check(run(program, FATJIT_JIT_TIER_UP="1"))  # the optimizing recompile holds no weakref


def test_the_code_object_dies_with_nothing_left():
    check(run(PRELUDE + """
def cycle(tier_up):
    ns = {"K": 1}
    exec("def f(x):\\n    x.append(1)\\n    return K + len(x)\\n", ns)
    f = ns["f"]
    assert f([]) == 2 and f([]) == 2
    code = weakref.ref(f.__code__)
    if tier_up:
        fatjit.wait_for_compiles()
    return code

cycle(tier_up=False)  # cycle() itself and what it calls are compiled once
gc.collect()
live, _ = code_level()
for _ in range(20):
    code = cycle(tier_up=False)
    gc.collect()
    assert code() is None, "the code object was kept alive"
assert code_level()[0] == live, (code_level(), live)
print("ok")
"""))


def test_the_code_object_dies_after_its_optimizing_recompile():
    check(run(PRELUDE + """
fatjit.wait_for_compiles()
gc.collect()
live, _ = code_level()
for _ in range(3):
    ns = {"K": 1}
    exec("def f(x):\\n    x.append(1)\\n    return K + len(x)\\n", ns)
    f = ns["f"]
    assert f([]) == 2
    fatjit.wait_for_compiles()
    assert "native code shared by its code object" in fatjit.explain(f)
    assert "optimized" in fatjit.explain(f), fatjit.explain(f)
    assert f([]) == 2
    code = weakref.ref(f.__code__)
    del f, ns
    gc.collect()
    assert code() is None, "the code object was kept alive"
assert code_level()[0] == live, (code_level(), live)
assert fatjit.stats()["jit"]["tier_ups"] >= 3
print("ok")
""", FATJIT_JIT_TIER_UP="1"))


def test_background_compile_then_native_and_tracing_runs_the_interpreter():
    check(run(PRELUDE + """
def make(v):
    def get(x):
        return x + v
    return get

f = make(3)
assert f(1) == 4                       # compiling on the background thread meanwhile
fatjit.wait_for_compiles()
_, runs = code_level()
assert f(2) == 5 and make(4)(2) == 6
assert code_level()[1] >= runs + 2
lines = []
def tracer(frame, event, arg):
    if frame.f_code is f.__code__:
        lines.append(event)
    return tracer
_, runs = code_level()
sys.settrace(tracer)
try:
    assert f(5) == 8
finally:
    sys.settrace(None)
assert code_level()[1] == runs, "native code ran under tracing"
assert lines[0] == "call" and "return" in lines, lines
print("ok")
""", FATJIT_JIT_BACKGROUND="1"))


def test_a_specialization_of_one_function_takes_precedence_over_the_code_level_code():
    check(run(PRELUDE + """
def make(v):
    def get(x):
        return x + v
    return get

def make_other(v):
    def get(x):
        return ("special", v)
    return get

f, h = make(1), make(2)
assert f(1) == 2
calls = native_calls(f)
fatjit.specialize(h, make_other(0).__code__, [fatjit.GuardGlobals("make")])
assert h(1) == ("special", 2) and f(1) == 2
assert native_calls(f) == calls + 1
fatjit.unspecialize(h)
assert h(1) == 3
print("ok")
"""))


def test_unspecialize_retires_the_code_level_code():
    check(run(PRELUDE + """
def make(v):
    def get(x):
        return x + v
    return get

f, h = make(1), make(2)
assert f(1) == 2 and h(1) == 3
assert "native code shared by its code object" in fatjit.explain(h)
live, runs = code_level()
fatjit.unspecialize(f)                 # the code object's native code, for h too
assert code_level() == (live - 1, runs)
assert h(1) == 3 and f(1) == 2         # interpreted: automatic mode waits before trying again
assert code_level()[1] == runs
assert "native code shared" not in fatjit.explain(h), fatjit.explain(h)
for _ in range(50):                    # attempted again later: native again
    assert h(1) == 3
assert "native code shared by its code object" in fatjit.explain(h), fatjit.explain(h)
print("ok")
"""))


def test_code_level_compiles_and_their_tier_up_are_logged():
    # FATJIT_LOG=compile names the code object of a code-level compile (it belongs to no
    # function) and its optimizing recompile, as it does for a function's own native code.
    program = PRELUDE + """
def hot(x):
    return x + 1

assert unchanged(hot) == "nothing_to_specialize"
for i in range(50):
    hot(i)
fatjit.wait_for_compiles()
print(fatjit.stats()["jit"]["tier_ups"])
print("ok")
"""
    # On the compiler thread: the code-level compile, at the optimizing tier already.
    done = run(program, FATJIT_LOG="compile", FATJIT_JIT_TIER_UP="1", FATJIT_JIT_BACKGROUND="1")
    check(done)
    lines = [line for line in done.stderr.splitlines() if " hot (<string>:" in line]
    assert any("[code level]: compiled:" in line for line in lines), done.stderr
    # In the calling thread: the baseline first, then the optimizing recompile. Which tier-ups
    # land depends on the bounded queue (a full queue skips one; every function is compiled
    # here): at least one code-level recompile is logged as such.
    done = run(program, FATJIT_LOG="compile", FATJIT_JIT_TIER_UP="1", FATJIT_JIT_BACKGROUND="0")
    check(done)
    assert int(done.stdout.split()[-2]) >= 1, done.stdout
    assert any("[code level]: optimized:" in line for line in done.stderr.splitlines()), \
        done.stderr


def test_code_level_code_is_recompiled_for_the_kinds_its_loops_meet():
    # Compiled at its first call (an int), then called with floats: the numeric loop's entry
    # keeps failing until the code object's code is compiled again with the kinds seen
    # (jit/kind_feedback.h), which the log names and explain() reports.
    program = PRELUDE + """
import re
def poly(x, n):
    acc = x
    i = 0
    while i < n:
        acc = acc * 0.5 + x
        i += 1
    return acc

def reference(x, n):  # no numeric loop (a list): never recompiled for kinds
    acc = x
    for _ in range(n):
        [acc] = [acc * 0.5 + x]
    return acc

assert unchanged(poly) == "nothing_to_specialize"
assert poly(3, 10) == reference(3, 10)
before = fatjit.stats()["jit"]["kind_recompiles"]
for _ in range(3):
    assert poly(1.5, 300) == reference(1.5, 300)
fatjit.wait_for_compiles()
assert fatjit.stats()["jit"]["kind_recompiles"] == before + 1
text = fatjit.explain(poly)
assert "recompiled 1 time for the kinds its loops met, now (x: float, n: int)" in text, text
assert "failed loop entries" not in text, text    # the new code's entry holds
for x, n in ((1.5, 1000), (2.0, 3), (-0.5, 0)):
    assert poly(x, n) == reference(x, n)
assert "failed loop entries" not in fatjit.explain(poly)
print("ok")
"""
    done = run(program, FATJIT_LOG="compile")
    check(done)
    assert any("[code level]: recompiled for the kinds its loops met:" in line
               for line in done.stderr.splitlines()), done.stderr


def test_code_level_tier_up_keeps_the_inlined_callee():
    # Compiled at the baseline in the calling thread, then tiered up: the optimizing compile has
    # the function's globals too (its numeric loop inlines `a`, lower_numeric_loops.cc), so the
    # optimized code keeps the unboxed loop.
    program = PRELUDE + """
def a(i, j):
    return 1.0 / ((i + j) * (i + j + 1) // 2 + i + 1)

def times(v, n):
    out = [0.0] * n
    for i in range(n):
        s = 0.0
        for j in range(n):
            s += a(i, j) * v[j]
        out[i] = s
    return out

assert unchanged(times) == "nothing_entry_stable"
first = times([1.0] * 10, 10)
fatjit.wait_for_compiles()
text = fatjit.explain(times)
assert "optimized" in text and "in 2 numeric loops" in text, text  # the inner one, and both
assert times([1.0] * 10, 10) == first
print("ok")
"""
    check(run(program, FATJIT_JIT_TIER_UP="1"))
