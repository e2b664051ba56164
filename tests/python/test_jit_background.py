"""Automatic mode's background compiler thread, the code limit, exit and fork while compiling.

Each test runs a child process: the background thread, the code limit and the environment
switches are process-wide, and the point of several tests is how a process ends.
"""

import os
import platform
import subprocess
import sys
import textwrap

import pytest

BUILD_PYTHON = os.path.dirname(os.path.dirname(os.path.abspath(__import__("fatjit").__file__)))


def run(source, timeout=120, **environment):
    child = {k: v for k, v in os.environ.items() if not k.startswith("FATJIT")}
    child["PYTHONPATH"] = BUILD_PYTHON
    child.update(environment)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(source)], capture_output=True,
                          text=True, env=child, timeout=timeout)


def check(done):
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


# Functions distinct enough to be separate compiles; `work` is the hot one.
PROGRAM = """
import fatjit

def work(n):
    total = 0
    for i in range(n):
        total += i * i % 7
    return total

SOURCES = [f"def g{k}(x):\\n    return x * {k} + sum(range({k}))\\n" for k in range(40)]
namespace = {}
for source in SOURCES:
    exec(source, namespace)
others = [namespace[f"g{k}"] for k in range(40)]
"""


def test_compiles_off_the_calling_thread_and_the_next_call_runs_native():
    out = check(run(PROGRAM + """
fatjit.enable(specialize_threshold=0, jit_threshold=0)
assert fatjit.stats()["jit"]["background"] is True
first = work(1000)                 # runs the specialized bytecode; codegen is queued
fatjit.wait_for_compiles()
j = fatjit.stats()["jit"]
assert j["in_flight"] == 0, j
assert j["background_compiles"] >= 1, j
calls_before = j["native_calls"]
assert work(1000) == first == sum(i * i % 7 for i in range(1000))
assert fatjit.stats()["jit"]["native_calls"] == calls_before + 1
assert "JIT: native code" in fatjit.explain(work), fatjit.explain(work)
print("ok")
"""))
    assert out.strip() == "ok"


def test_background_off_compiles_at_the_first_call():
    out = check(run(PROGRAM + """
fatjit.enable(specialize_threshold=0, jit_threshold=0, jit_background=False)
assert work(100) == sum(i * i % 7 for i in range(100))
j = fatjit.stats()["jit"]
assert j["background_compiles"] == 0 and j["native_calls"] >= 1, j
print("ok")
"""))
    assert out.strip() == "ok"


def test_environment_switch_and_its_errors():
    out = check(run(PROGRAM + """
fatjit.enable(specialize_threshold=0, jit_threshold=0)
print(fatjit.stats()["jit"]["background"])
""", FATJIT_JIT_BACKGROUND="0"))
    assert out.strip() == "False"
    bad = run("import fatjit; fatjit.enable(jit_threshold=0)", FATJIT_JIT_BACKGROUND="yes")
    assert bad.returncode != 0
    assert "FATJIT_JIT_BACKGROUND must be 0 or 1, not 'yes'" in bad.stderr
    wrong_type = run("import fatjit; fatjit.enable(jit_threshold=0, jit_background=1)")
    assert "jit_background must be a bool or None, not int" in wrong_type.stderr


# What `FATJIT=auto` alone does (tuning::kDefaultJitThreshold): a function called 1,000 times is
# specialized and compiled on the compiler thread, at the optimizing tier; FATJIT_JIT_THRESHOLD=off
# (or enable(jit_threshold="off")) leaves automatic mode to the specializer.
DEFAULT_PROGRAM = """
import sys, fatjit
stats = fatjit.stats()
print(stats["auto_mode"], stats["specialize_threshold"], stats["jit"]["threshold"],
      stats["jit"]["background"])
def warm(x):
    return x + 1
for i in range(998):
    warm(i)
fatjit.wait_for_compiles()
print(fatjit.stats()["jit"]["compiles"] - stats["jit"]["compiles"])
for i in range(2):
    warm(i)                         # the 1,000th call: specialized, its compile queued
fatjit.wait_for_compiles()
assert warm(41) == 42
report = fatjit.explain(warm)
print("native code" in report, "optimized" in report, fatjit.stats()["jit"]["tier_ups"])
"""


def test_automatic_mode_compiles_hot_functions_by_default():
    out = check(run(DEFAULT_PROGRAM, FATJIT="auto")).split("\n")
    assert out[0] == "True 10000 1000 True", out
    assert out[1] == "0", out             # 998 calls: not yet
    assert out[2] == "True True 0", out   # compiled straight at the optimizing tier


@pytest.mark.parametrize("switch", [{"FATJIT_JIT_THRESHOLD": "off"}])
def test_the_jit_threshold_off_leaves_automatic_mode_to_the_specializer(switch):
    out = check(run(DEFAULT_PROGRAM, FATJIT="auto", **switch)).split("\n")
    assert out[0] == "True 10000 -1 True", out
    assert out[1] == "0" and out[2] == "False False 0", out
    done = check(run("""
import fatjit
fatjit.enable(jit_threshold="off")
print(fatjit.stats()["jit"]["threshold"])
fatjit.enable()
print(fatjit.stats()["jit"]["threshold"])
"""))
    assert done.split() == ["-1", "1000"]


@pytest.mark.parametrize("bad, message", [
    ("True", "jit_threshold must be an int, 'off' or None, not bool"),
    ("'of'", "jit_threshold must be an int, 'off' or None, not str"),
    ("-1", "jit_threshold must be from 0 (the first call)"),
])
def test_a_bad_jit_threshold_is_refused(bad, message):
    done = run(f"import fatjit; fatjit.enable(jit_threshold={bad})")
    assert done.returncode != 0 and message in done.stderr, done.stderr
    done = run("import fatjit; fatjit.enable()", FATJIT_JIT_THRESHOLD="of")
    assert done.returncode != 0
    assert "FATJIT_JIT_THRESHOLD must be a number of calls from 0 (the first call) to " \
           "2147483647, or off, not 'of'" in done.stderr, done.stderr


def test_a_function_called_twice_with_a_long_loop_is_compiled_for_its_next_call():
    # Loop time counts as calls (ext/auto_mode.h, CreditLoopTime): 40+ ms in spin's loop is
    # more than the 1,000 calls' worth (10 us each) of the JIT threshold, so the second call
    # makes the attempt (300,000 iterations took 9.4 ms on Debian's python3: too close). A
    # `while` loop (its backward jump is the conditional one at the bottom) counts too. A
    # function without a backward jump is only counted by its calls.
    out = check(run("""
import fatjit
fatjit.is_enabled()  # the API loads: fatjit's own counter counts from here (not _fatjit_boot's)
def spin(n):
    t = 0
    for i in range(n):
        t += i * i % 7
    return t
def spin_while(n):
    i = 0
    while i < n:
        i += 1
    return i
def flat(x):
    return x + 1
spin(1500000)
spin_while(3000000)
flat(0)
s = fatjit.stats()
print(s["loop_time_credit"] >= 1990, s["jit"]["compiles"])
assert spin(1500000) == sum(i * i % 7 for i in range(1500000))   # the attempt: compile queued
assert spin_while(10) == 10
flat(1)
fatjit.wait_for_compiles()
assert spin(1000) == sum(i * i % 7 for i in range(1000))
print("native code" in fatjit.explain(spin), "native code" in fatjit.explain(spin_while),
      "native code" in fatjit.explain(flat))
print(fatjit.stats()["jit"]["native_calls"] >= 1)
""", FATJIT="auto"))
    assert out.split() == ["True", "0", "True", "True", "False", "True"], out


def test_exit_with_compiles_queued_and_under_way():
    # Forty functions queued at once, then the interpreter exits at once: no hang, no crash,
    # and what was still queued is counted as dropped.
    out = check(run(PROGRAM + """
import atexit
fatjit.enable(specialize_threshold=0, jit_threshold=0)
for g in others:
    g(2)
atexit.register(lambda: None)
print("queued", fatjit.stats()["jit"]["in_flight"] > 0)
""", timeout=60))
    assert out.startswith("queued")


def test_the_results_are_the_interpreters_while_compiles_land_between_calls():
    out = check(run(PROGRAM + """
fatjit.enable(specialize_threshold=0, jit_threshold=0)
expected = [g(3) for g in others]   # under automatic mode already: compare with arithmetic
assert expected == [3 * k + sum(range(k)) for k in range(40)]
for round in range(50):
    assert [g(3) for g in others] == expected
    assert work(200) == sum(i * i % 7 for i in range(200))
fatjit.wait_for_compiles()
assert [g(3) for g in others] == expected
j = fatjit.stats()["jit"]
assert j["background_compiles"] >= 40, j
print("ok")
"""))
    assert out.strip() == "ok"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_while_compiling_child_starts_clean_and_compiles_again():
    out = check(run(PROGRAM + """
import os
fatjit.enable(specialize_threshold=0, jit_threshold=0)
for g in others:
    g(1)                              # forty compiles queued
pid = os.fork()
if pid == 0:
    try:
        assert work(300) == sum(i * i % 7 for i in range(300))
        fatjit.wait_for_compiles()    # a new compiler thread in the child
        assert [g(2) for g in others] == [2 * k + sum(range(k)) for k in range(40)]
        fatjit.wait_for_compiles()
        assert fatjit.stats()["jit"]["in_flight"] == 0
        os._exit(0)
    except BaseException as error:
        print("child failed:", repr(error), flush=True)
        os._exit(1)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0
fatjit.wait_for_compiles()
assert [g(2) for g in others] == [2 * k + sum(range(k)) for k in range(40)]
j = fatjit.stats()["jit"]
assert j["background_compiles"] >= 40, j
print("ok")
"""))
    assert out.strip().endswith("ok")


def test_many_threads_calling_while_compiles_land():
    out = check(run(PROGRAM + """
import threading
fatjit.enable(specialize_threshold=0, jit_threshold=0)
errors = []
def worker(seed):
    try:
        for r in range(30):
            for k, g in enumerate(others):
                if g(seed) != seed * k + sum(range(k)):
                    errors.append((seed, k))
            if work(100 + seed) != sum(i * i % 7 for i in range(100 + seed)):
                errors.append((seed, "work"))
    except BaseException as error:
        errors.append(repr(error))
threads = [threading.Thread(target=worker, args=(s,)) for s in range(8)]
for t in threads: t.start()
for t in threads: t.join()
assert not errors, errors[:5]
print("ok")
"""))
    assert out.strip() == "ok"


def test_the_newest_waiting_compile_goes_first_and_huge_code_stays_baseline():
    # The worker is held (as before a fork) while a huge function and then a small one are
    # queued: let go, it compiles the newest, the small one, first. Past kMaxOptimizedInstructions of IR
    # (compile_function.h) code is generated at the baseline and never tiered up.
    done = run("""
import fatjit, fatjit._fatjit as native

def make(name, lines):
    body = "".join(f"    y = y * 3 + {i} if y < 1000 else y - {i}\\n" for i in range(lines))
    namespace = {}
    exec(f"def {name}(x):\\n    y = x\\n{body}    return y\\n", namespace)
    return namespace[name]

huge, small = make("huge", 50), make("small", 1)
fatjit.enable(specialize_threshold=0, jit_threshold=0)
native._jit_before_fork()           # the worker idles until let go
huge(1); small(1)
native._jit_after_fork_in_parent()
fatjit.wait_for_compiles()
for f in (huge, small):
    line = [l for l in fatjit.explain(f).splitlines() if "native code" in l][0]
    print(f.__name__, "baseline" if "baseline" in line else "optimized")
print(huge(1) == make("again", 50)(1), small(5))
""", FATJIT_LOG="compile")
    out = check(done)
    compiled = [line.split()[2] for line in done.stderr.splitlines()
                if line.startswith("fatjit: compile")]
    assert compiled[:2] == ["small", "huge"], done.stderr
    assert out.splitlines() == ["huge baseline", "small optimized", "True 15"]


def test_a_full_queue_drops_the_oldest_tier_up_for_the_newest():
    # The worker is held while 70 functions get baseline code at their first call, each queueing
    # its tier-up: the queue holds 64, so the 6 that waited longest are dropped (their baseline
    # code goes on running) and the function made hot last is among those tiered up.
    done = run("""
import fatjit, fatjit._fatjit as native

functions = []
for k in range(70):
    namespace = {}
    exec(f"def f{k}(x):\\n    return x * {k} + 1\\n", namespace)
    functions.append(fatjit.jit(namespace[f"f{k}"]))
native._jit_before_fork()           # the worker idles until let go
for f in functions:
    f(1)
native._jit_after_fork_in_parent()
fatjit.wait_for_compiles()
def tier(f):
    line = [l for l in fatjit.explain(f).splitlines() if "native code" in l][0]
    return "baseline" if "baseline" in line else "optimized"
jit = fatjit.stats()["jit"]
print(tier(functions[0]), tier(functions[5]), tier(functions[6]), tier(functions[-1]))
print(jit["tier_ups"], jit["background_dropped"], [f(2) for f in functions[:3]])
""")
    out = check(done)
    assert out.splitlines() == ["baseline baseline optimized optimized", "64 6 [1, 3, 5]"]


@pytest.mark.skipif(not os.path.exists("/proc/self/status") or platform.libc_ver()[0] != "glibc",
                    reason="reads VmRSS from /proc; the memory is returned through glibc's malloc_trim")
def test_memory_freed_by_compiles_is_returned_once_the_queue_drains():
    # 40 six-line functions, each compiled at the baseline and tiered up on the worker: glibc
    # kept ~2.2 MB per function of what LLVM freed; the worker now trims the heaps when its queue
    # is empty (~50 KB per function left).
    done = run("""
import fatjit

def rss_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

def make(k):
    body = "".join(f"    y = y * 3 + {i} if y < {1000 + k} else y - {i}\\n" for i in range(6))
    namespace = {}
    exec(f"def f{k}(x):\\n    y = x\\n{body}    return y\\n", namespace)
    return fatjit.jit(namespace[f"f{k}"])

make(1000)(1)
fatjit.wait_for_compiles()
before = rss_kb()
for k in range(40):
    make(k)(1)
fatjit.wait_for_compiles()
print((rss_kb() - before) // 40, fatjit.stats()["jit"]["tier_ups"])
""")
    per_function_kb, tier_ups = map(int, check(done).split())
    assert tier_ups >= 20
    assert per_function_kb < 700, per_function_kb


def test_code_limit_refuses_new_compiles_once_reached():
    out = check(run(PROGRAM + """
fatjit.enable(specialize_threshold=0, jit_threshold=0, jit_background=False)
for g in others[:5]:
    g(1)
j = fatjit.stats()["jit"]
assert j["code_limit"] == 1, j
assert j["compiles"] == 1, j                  # the first fits: nothing was live before it
assert j["refused"]["code_limit"] >= 4, j
assert "code_limit" in fatjit.explain(others[3]), fatjit.explain(others[3])
assert [g(1) for g in others[:5]] == [k + sum(range(k)) for k in range(5)]
print("ok")
""", FATJIT_CODE_LIMIT="1"))
    assert out.strip() == "ok"


@pytest.mark.parametrize("text, limit", [("0", 0), ("4096", 4096), ("64K", 64 << 10),
                                         ("2M", 2 << 20), ("1g", 1 << 30)])
def test_code_limit_forms(text, limit):
    out = check(run("import fatjit; print(fatjit.stats()['jit']['code_limit'])",
                    FATJIT_CODE_LIMIT=text))
    assert int(out) == limit


def test_code_limit_default_and_bad_value():
    out = check(run("import fatjit; print(fatjit.stats()['jit']['code_limit'])"))
    assert int(out) == 256 << 20
    bad = run("import fatjit; fatjit.stats()", FATJIT_CODE_LIMIT="lots")  # at the API's loading
    assert bad.returncode != 0
    assert "FATJIT_CODE_LIMIT must be a number of bytes" in bad.stderr


def test_tracemalloc_started_and_stopped_while_compiles_finish_does_not_crash():
    # The worker keeps one thread state: CPython 3.11's tracemalloc crashes when stop() runs while
    # a thread without one is making one (gh-128679). With a thread state per job this crashed
    # in about half the runs.
    out = check(run("""
        import fatjit, tracemalloc
        fatjit.enable(specialize_threshold=0, jit_threshold=0)
        namespace = {}
        for k in range(3000):
            exec(f"def g{k}(x):\\n    return x * {k} + sum(range({k % 50}))\\n", namespace)
        for k in range(3000):
            if k % 2 == 0:
                tracemalloc.start()
            assert namespace[f"g{k}"](3) == 3 * k + sum(range(k % 50))
            if k % 2 == 1:
                tracemalloc.stop()
        fatjit.wait_for_compiles()
        print(fatjit.stats()["jit"]["background_compiles"] > 0)
    """))
    assert out.strip() == "True"
