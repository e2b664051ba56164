"""What fatjit keeps for a function is shown to the cycle collector (ext/function_traverse.h).

A namespace whose functions were specialized or compiled holds itself alive through fatjit's
state (globals made constants, guards on the globals dict, native code's embedded objects), a
cycle the collector cannot see into by itself: code objects are not tracked. What must hold:
- a dropped namespace (an exec'd module: templates, generated code, reloaded modules) is freed by
  one collection, in every mode, and its specializations and native code go with it;
- nothing is freed early: a specialized code object that something else still holds keeps its
  constants intact through a collection, and a namespace still in use keeps working.

Each test runs a child process: automatic mode and its counters are process-wide.
"""

import subprocess
import sys
import textwrap

import pytest

from support import child_env

MODES = {
    "specialized": {"FATJIT": "auto", "FATJIT_SPECIALIZE_THRESHOLD": "0",
                    "FATJIT_JIT_THRESHOLD": "off"},
    "compiled": {"FATJIT": "auto", "FATJIT_SPECIALIZE_THRESHOLD": "0", "FATJIT_JIT_THRESHOLD": "0",
                 "FATJIT_JIT_BACKGROUND": "0"},
    "default thresholds": {"FATJIT": "auto"},
}

# A module-like namespace: a class whose method calls a module function, a hot loop using both
# (globals and builtins become constants, attribute and call sites get cached).
NAMESPACE = r'''
SOURCE = """
class C:
    def m(self):
        return helper(self) + 1
def helper(x):
    return 1
def f(n):
    t = 0
    for i in range(n):
        t += C().m() + len("ab")
    return t
"""

def make(calls=300):
    ns = {}
    exec(SOURCE, ns)
    for _ in range(calls):
        assert ns["f"](20) == 80
    return ns
'''


def run(source, mode):
    environment = child_env(**MODES[mode]) if mode else child_env()
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(source)], capture_output=True,
                          text=True, env=environment, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("ok"), done.stdout + done.stderr
    return done.stdout


@pytest.mark.parametrize("mode", sorted(MODES))
def test_a_dropped_namespace_is_freed_by_one_collection(mode):
    run(NAMESPACE + r'''
import gc, weakref, fatjit
make()  # make() and what it calls are specialized once, outside the measurement
gc.collect()
live = fatjit.stats()["specializations"]
refs = []
specialized = False
for _ in range(10):
    ns = make()
    refs.append((weakref.ref(ns["f"]), weakref.ref(ns["C"]), weakref.ref(ns["helper"]),
                 weakref.ref(ns["f"].__code__), weakref.ref(ns["C"].m.__code__)))
    explained = fatjit.explain(ns["C"].m)  # called 20 times as often as f
    specialized |= "automatic, <code object" in explained or "native code shared" in explained
    del ns
# A compile in flight holds the code object it compiles (auto_specialize.cc): the namespace is
# freed by the first collection after the compile is done.
fatjit.wait_for_compiles()
assert specialized, "nothing was specialized: the test tests nothing"
gc.collect()
alive = [r for group in refs for r in group if r() is not None]
assert not alive, alive
assert gc.collect() == 0, "objects freed by a second collection"
# The code objects died with their specializations and native code.
assert fatjit.stats()["specializations"] <= live, (fatjit.stats()["specializations"], live)
print("ok")
''', mode)


def test_a_function_specialized_by_hand_with_a_globals_guard_is_freed_with_its_module():
    # fatjit.GuardGlobals holds the module's globals dict: a cycle through the guard object.
    run(r'''
import gc, types, weakref, fatjit
mod = types.ModuleType("m")
exec("X = 1\ndef f(x):\n    return x + X\ndef f_spec(x):\n    return x + 1\n", mod.__dict__)
gc.collect()
live = fatjit.stats()["specializations"]
fatjit.specialize(mod.f, mod.f_spec.__code__, [fatjit.GuardGlobals("X")])
assert mod.f(1) == 2 and fatjit.stats()["specializations"] == live + 1
ref = weakref.ref(mod.f)
del mod
gc.collect()
assert ref() is None
assert fatjit.stats()["specializations"] == live
print("ok")
''', "specialized")


def test_a_specialized_code_object_held_elsewhere_keeps_its_constants():
    # The specialized code object (the frame's code, with the class made a constant) is held by
    # the program after its namespace was dropped: a collection must keep the class, intact (a
    # class the collector had cleared would have lost its attributes), and what it reaches.
    # (Native code's frames show the original code object: this runs the specialization alone.)
    run(r'''
import gc, sys, weakref, fatjit
SOURCE = """
import sys
class C:
    def m(self):
        return 41
def f(keep):
    obj = C()
    keep.append(sys._getframe().f_code)
    return obj.m() + 1
"""
ns = {}
exec(SOURCE, ns)
kept = []
for _ in range(5):
    assert ns["f"](kept) == 42
code = kept[-1]
classes = [c for c in code.co_consts if isinstance(c, type)]
assert classes, ("the class was not made a constant", code.co_consts, fatjit.explain(ns["f"]))
f_ref = weakref.ref(ns["f"])
del ns, classes
kept[:-1] = []
gc.collect()
# The kept code object reaches the class, whose method reaches the namespace: all stay.
assert f_ref() is not None
[cls] = [c for c in code.co_consts if isinstance(c, type)]
assert cls.__name__ == "C" and cls().m() == 41 and cls.m.__name__ == "m"
assert cls.m.__globals__["f"] is f_ref()
print("ok")
''', "specialized")


def test_a_jit_function_the_specializer_leaves_unchanged_frees_its_code_object():
    # Its native code is compiled from a copy of the code object: holding the code object its
    # specialization lives on would keep both alive after the function died.
    run(r'''
import gc, weakref, fatjit
refs = []
for _ in range(5):
    ns = {}
    exec("def f(x):\n    return x.append(1)\n", ns)
    f = fatjit.jit(ns["f"])
    for _ in range(5):
        assert f([]) is None
    assert "rewrites: 0" in fatjit.explain(f) and "JIT: native code" in fatjit.explain(f)
    refs.append((weakref.ref(f), weakref.ref(f.__code__)))
    del f, ns
fatjit.wait_for_compiles()  # a tier-up in flight holds the code object until it is done
gc.collect()
assert all(func() is None and code() is None for func, code in refs), refs
assert fatjit.stats()["specializations"] == 0
print("ok")
''', None)


@pytest.mark.parametrize("mode", ["specialized", "compiled"])
def test_a_function_collecting_while_its_namespace_is_otherwise_dropped_keeps_working(mode):
    run(NAMESPACE + r'''
import gc
SOURCE2 = """
import gc
class D:
    k = 5
def g(n):
    t = 0
    for i in range(n):
        gc.collect()
        t += D.k + i
    return t
"""
ns = {}
exec(SOURCE2, ns)
g = ns["g"]
assert g(3) == 18
del ns
assert g(4) == 26
for _ in range(3):
    make()
    assert g(2) == 11
print("ok")
''', mode)
