"""The optimizing tier: baseline native code replaced by optimized code compiled on the
background thread, for @fatjit.jit and for automatic mode. Child processes: conftest.py turns
tier-up off in the test process itself (FATJIT_JIT_TIER_UP=0)."""

import os
import subprocess
import sys
import textwrap

BUILD_PYTHON = os.path.dirname(os.path.dirname(os.path.abspath(__import__("fatjit").__file__)))


def run(source, args=(), **environment):
    child = {k: v for k, v in os.environ.items() if not k.startswith("FATJIT")}
    child["PYTHONPATH"] = BUILD_PYTHON
    child.update(environment)
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(source), *args], capture_output=True,
                          text=True, env=child, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


KERNELS = """
import signal, sys, threading
import fatjit

def loop(n, step):
    total = 0
    i = 0
    while i < n:
        total += i % 7 * step
        i += 1
    return total

def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)

class P:
    __slots__ = ("x", "v")
    def __init__(self):
        self.x = 0.0
        self.v = 1.5
    def advance(self, dt):
        self.x += self.v * dt
        if self.x > 10.0:
            self.x = 20.0 - self.x
            self.v = -self.v
"""


def test_decorated_functions_get_optimized_code_with_the_same_results():
    out = run(KERNELS + """
loop_j = fatjit.jit(loop)
fib = fatjit.jit(fib)
fatjit.jit(P.advance)
assert "JIT: native code" not in fatjit.explain(loop_j)   # not compiled before a call
assert loop_j(1000, 3) == sum(i % 7 * 3 for i in range(1000))
assert "JIT: native code (" in fatjit.explain(loop_j), fatjit.explain(loop_j)  # either tier
assert fib(15) == 610
p = P()
for _ in range(100):
    p.advance(0.5)
fatjit.wait_for_compiles()
j = fatjit.stats()["jit"]
assert j["tier_ups"] >= 3, j
for f in (loop_j, fib, P.advance):
    assert "native code (optimized)" in fatjit.explain(f), fatjit.explain(f)
# the optimized code gives what the interpreter gives, types changing included
assert loop_j(1000, 3) == sum(i % 7 * 3 for i in range(1000))
assert loop_j(100, 2.5) == sum(i % 7 * 2.5 for i in range(100))
assert loop_j(50, 10**30) == sum(i % 7 * 10**30 for i in range(50))
assert fib(20) == 6765
q = P()
for _ in range(100):
    q.advance(0.5)
r = P.__new__(P); r.x = 0.0; r.v = 1.5
for _ in range(100):       # the same steps in plain Python
    r.x += r.v * 0.5
    if r.x > 10.0:
        r.x = 20.0 - r.x
        r.v = -r.v
assert (q.x, q.v) == (r.x, r.v)
print("ok")
""")
    assert out.strip() == "ok"


def test_optimized_loop_still_sees_signals_and_other_threads():
    # The eval breaker and the tracing flag are volatile loads: the optimizing codegen must not
    # read them once per loop.
    out = run(KERNELS + """
import time
def spin(flag):
    n = 0
    while flag[0]:
        n += 1
    return n
spin = fatjit.jit(spin)
spin([False])
fatjit.wait_for_compiles()
assert "native code (optimized)" in fatjit.explain(spin), fatjit.explain(spin)
flag = [True]
def stop():
    time.sleep(0.2)
    flag[0] = False
t = threading.Thread(target=stop)
t.start()
assert spin(flag) > 0           # another thread gets the GIL and ends the loop
t.join()
signal.signal(signal.SIGALRM, lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
signal.setitimer(signal.ITIMER_REAL, 0.2)
try:
    spin([True])
except KeyboardInterrupt:
    print("interrupted")
""")
    assert out.strip() == "interrupted"


def test_automatic_mode_compiles_at_the_optimizing_tier_and_the_switches_change_it():
    # On the compiler thread (automatic mode's default) the first compile is already the
    # optimizing one: no tier-up. Compiled in the calling thread (jit_background=False) it is
    # the baseline, then the optimizing recompile replaces it. FATJIT_JIT_TIER_UP=0 and
    # FATJIT_JIT_OPT=0 keep the baseline everywhere.
    program = KERNELS + """
import sys
fatjit.enable(specialize_threshold=0, jit_threshold=0, jit_background=sys.argv[1] == "bg")
for _ in range(3):
    assert loop(500, 2) == sum(i % 7 * 2 for i in range(500))
fatjit.wait_for_compiles()
assert loop(500, 2) == sum(i % 7 * 2 for i in range(500))
fatjit.wait_for_compiles()
report = fatjit.explain(loop)  # its own native code, or its code object's (code level)
assert "native code" in report, report
optimized = "native code (optimized)" in report or "), optimized, " in report
assert optimized or "baseline" in report, report
print(fatjit.stats()["jit"]["tier_ups"] > 0, optimized)
"""
    assert run(program, args=["bg"]).strip() == "False True"
    assert run(program, args=["caller"]).strip() == "True True"
    for switch in ({"FATJIT_JIT_TIER_UP": "0"}, {"FATJIT_JIT_OPT": "0"}):
        for where in ("bg", "caller"):
            assert run(program, args=[where], **switch).strip() == "False False", (switch, where)
