"""Automatic mode: fatjit.enable()/disable(), hotness, FATJIT=auto, python -m fatjit, reporting.

In-process tests turn automatic mode on only around calls of their own functions (nothing else
runs in between, so nothing else gets hot) and undo what it made. Everything that depends on
the environment or on how a process starts and ends runs in a subprocess whose sys.path has the
build tree (build/python, with its sitecustomize.py), as an installed fatjit would be found.
"""

import json
import pathlib
import re
import subprocess
import sys
import textwrap

import pytest

import fatjit
from support import StatsWatch, child_env as env, new_module

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture
def auto_mode(no_leaked_specializations):
    """auto_mode(threshold): fatjit.enable(specialize_threshold=threshold, jit_threshold="off")
    (these tests are about the specializer's side of automatic mode: hotness, refusals, retries;
    the JIT's side is test_jit_background.py's); at teardown automatic mode goes back to how it
    was and auto_mode.made(func) functions are unspecialized."""
    was_on = fatjit.is_enabled()
    made = []

    def enable(threshold):
        fatjit.enable(specialize_threshold=threshold, jit_threshold="off")

    enable.made = made.append
    yield enable
    fatjit.disable()
    for func in made:
        fatjit.unspecialize(func)
    if was_on:
        fatjit.enable()


HOT = """
K = 3
def f(s):
    return len(s) + K
"""


def specialized(func):
    return "automatic, <code object" in fatjit.explain(func)


# ------------------------------------------------------------------------------------------------
# fatjit.enable() / disable() / is_enabled()


def test_enable_disable_is_enabled(auto_mode):
    fatjit.disable()
    assert not fatjit.is_enabled()
    assert not fatjit.stats()["auto_mode"]
    auto_mode(123)
    assert fatjit.is_enabled()
    stats = fatjit.stats()
    assert stats["auto_mode"] and stats["hook_installed"]
    assert stats["specialize_threshold"] == 123
    fatjit.disable()
    assert not fatjit.is_enabled()
    # No specialization left: the hook goes with automatic mode (checked by the conftest too).
    if fatjit.stats()["specializations"] == 0:
        assert not fatjit.stats()["hook_installed"]


@pytest.mark.parametrize("bad, error", [(-1, ValueError), (2**31, ValueError), ("7", TypeError),
                                        (1.5, TypeError)])
def test_enable_rejects_a_bad_threshold(bad, error):
    before = fatjit.stats()
    with pytest.raises(error, match="specialize_threshold"):
        fatjit.enable(specialize_threshold=bad)
    after = fatjit.stats()  # nothing changed (automatic mode is on in the JIT stress setting)
    assert after["auto_mode"] == before["auto_mode"] == fatjit.is_enabled()
    assert after["specialize_threshold"] == before["specialize_threshold"]


# ------------------------------------------------------------------------------------------------
# Hotness: the call that reaches the threshold specializes


@pytest.mark.no_jit_stress(
    "exact auto_specialized/calls_counted deltas: stress mode also specializes the reference "
    "twin and the helpers called meanwhile")
def test_a_function_called_past_the_threshold_gets_specialized(auto_mode):
    mod, ref = new_module(HOT), new_module(HOT)
    auto_mode.made(mod.f)
    watch = StatsWatch()
    expected = [ref.f("ab")] * 50
    results = []
    auto_mode(20)
    for _ in range(19):  # a loop, not a comprehension: a comprehension is a function call too
        results.append(mod.f("ab"))
    text = fatjit.explain(mod.f)  # (a call of a Python helper here would be counted too)
    assert "automatic mode: specialized 1 calls from now" in text and "automatic, <code" not in text
    for _ in range(31):
        results.append(mod.f("ab"))
    fatjit.disable()
    assert specialized(mod.f)
    assert "GuardBuiltins(len)" in fatjit.explain(mod.f)
    assert results == expected
    delta = watch.delta()
    assert delta["auto_specialized"] == 1
    assert delta["calls_counted"] == 20  # counting stops once the code has a specialization
    assert delta["specialized_runs"] == 31  # the 20th call and the 30 after it
    assert delta["specialize_time_s"] > 0
    # The specialization stays right when what it assumed changes (the guard fails).
    mod.len = lambda s: 100
    ref.len = lambda s: 100
    assert mod.f("ab") == ref.f("ab") == 103


def test_big_functions_wait_a_threshold_more_per_500_code_units(auto_mode):
    # What an attempt costs grows with the code (tuning.h, kCodeUnitsPerThreshold): 1,000-1,499
    # code units of bytecode wait three thresholds; a threshold of 0 stays the first call.
    lines = "".join(f"    y = y * 3 + {i} if y < 1000 else y - {i}\n" for i in range(55))
    mod = new_module(f"K = 1\ndef big(x):\n    y = x + K\n{lines}    return y\n")
    assert 1000 <= len(mod.big.__code__.co_code) // 2 < 1500
    auto_mode.made(mod.big)
    auto_mode(10)
    mod.big(1)
    assert "automatic mode: specialized 29 calls from now" in fatjit.explain(mod.big)
    fatjit.disable()
    other = new_module(f"K = 1\ndef big(x):\n    y = x + K\n{lines}    return y\n")
    auto_mode.made(other.big)
    auto_mode(0)
    other.big(1)
    fatjit.disable()
    assert specialized(other.big)


def test_threshold_zero_specializes_at_the_first_call(auto_mode):
    mod = new_module(HOT)
    auto_mode.made(mod.f)
    auto_mode(0)
    assert mod.f("abc") == 6
    fatjit.disable()
    assert specialized(mod.f)
    assert fatjit.get_specialized(mod.f)


def test_a_refusal_is_remembered_and_not_retried_at_every_call(auto_mode):
    mod = new_module("def g(x):\n    return x + 1\n")  # nothing to specialize
    watch = StatsWatch()
    auto_mode(1)
    for i in range(10):
        assert mod.g(i) == i + 1
    fatjit.disable()
    assert watch.delta()["auto_refused"]["nothing_to_specialize"] == 1
    text = fatjit.explain(mod.g)
    assert "automatic specialization refused: no instruction could be specialized" in text
    assert "attempt 1 of 4 made; the next 7 calls from now" in text  # 16 calls after the first


@pytest.mark.no_jit_stress(
    "exact calls_counted/auto_refused deltas: stress mode counts and specializes the test's "
    "helper calls too")
def test_a_generator_is_counted_at_its_call_and_not_at_its_resumes(auto_mode):
    source = """
    def gen(n):
        for i in range(n):
            yield len("ab") * i
    """
    mod = new_module(source)
    auto_mode.made(mod.gen)
    watch = StatsWatch()
    auto_mode(0)
    g = mod.gen(4)
    values = [next(g) for _ in range(4)]  # the comprehension's own call is counted too
    fatjit.disable()
    assert values == [0, 2, 4, 6]
    delta = watch.delta()
    assert delta["calls_counted"] == 2
    # Its body runs at next(), after the call that checked the guards: nothing in it is
    # entry-stable, so assume="stable" refuses it (and the comprehension, which calls next).
    assert delta["auto_refused"]["nothing_entry_stable"] == 2
    assert "automatic specialization refused" in fatjit.explain(mod.gen)


@pytest.mark.no_jit_stress(
    "asserts zero calls counted while automatic mode is on: stress mode counts the test's own "
    "helper calls")
def test_module_and_class_bodies_are_not_counted(auto_mode):
    code = compile("for i in range(5):\n    class C:\n        x = len('ab')\n", "<bodies>",
                   "exec")
    watch = StatsWatch()
    auto_mode(0)
    for _ in range(3):
        exec(code, {})
    fatjit.disable()
    delta = watch.delta()
    assert delta["calls_counted"] == 0
    assert delta["auto_specialized"] == 0
    assert sum(delta["auto_refused"].values()) == 0


def test_fatjit_own_functions_are_never_specialized(auto_mode):
    # stats() and reset_stats() are Python wrappers: specialized, they would count their own
    # runs, so reset_stats() followed by stats() would not read zeros.
    auto_mode(0)
    fatjit.reset_stats()
    stats = fatjit.stats()
    fatjit.disable()
    assert stats["specialized_runs"] == 0 and stats["calls_counted"] == 0
    assert fatjit.get_specialized(fatjit.stats) == []
    assert "never specialized" in fatjit.explain(fatjit.stats)


def test_functions_specialized_by_hand_are_left_alone(auto_mode):
    mod = new_module(HOT)
    fatjit.specialize(mod.f, assume="entry")
    auto_mode.made(mod.f)
    auto_mode(0)
    for _ in range(3):
        mod.f("a")
    fatjit.disable()
    assert "assume=entry" in fatjit.explain(mod.f)
    assert len(fatjit.get_specialized(mod.f)) == 1


# ------------------------------------------------------------------------------------------------
# Subprocesses: environment switches, start-up, exit


def run(args, cwd=None, **changes):
    return subprocess.run([sys.executable, *args], capture_output=True, text=True,
                          env=env(**changes), cwd=cwd, timeout=60)


REPORT = """
import json, sys
K = 3
def f(s):
    return len(s) + K
def calls(n):
    return [f("ab") for _ in range(n)]
"""


def report_script(tmp_path, body):
    script = tmp_path / "prog.py"
    script.write_text(REPORT + textwrap.dedent(body))
    return script


def test_FATJIT_auto_in_the_build_tree_through_sitecustomize():
    out = run(["-c", "import fatjit; print(fatjit.is_enabled())"], FATJIT="auto")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


def test_FATJIT_SPECIALIZE_THRESHOLD_is_respected(tmp_path):
    script = report_script(tmp_path, """
        import fatjit
        calls(49)
        before = "automatic, <code" in fatjit.explain(f)
        calls(1)
        after = "automatic, <code" in fatjit.explain(f)
        print(json.dumps([before, after, fatjit.stats()["specialize_threshold"]]))
    """)
    out = run([str(script)], FATJIT="auto", FATJIT_SPECIALIZE_THRESHOLD="50")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [False, True, 50]


def test_a_malformed_threshold_is_reported_and_the_program_runs(tmp_path):
    out = run(["-c", "import fatjit; print(fatjit.is_enabled())"], FATJIT="auto",
              FATJIT_SPECIALIZE_THRESHOLD="many")
    assert out.returncode == 0
    assert out.stdout.strip() == "False"
    assert "FATJIT=auto ignored: ValueError: fatjit: FATJIT_SPECIALIZE_THRESHOLD" in out.stderr


SUB_INTERPRETER = '''
import _testcapi, fatjit
fatjit.is_enabled()  # the API loads in the main interpreter first
sub = """
import sys, fatjit
try:
    fatjit.enable()
except RuntimeError as error:
    print(error, file=sys.stderr)
"""
assert _testcapi.run_in_subinterp(sub) == 0
print(fatjit.is_enabled(), fatjit.stats()["hook_installed"])
'''


SUB_INTERPRETER_FIRST = '''
import _testcapi, fatjit
sub = """
import fatjit
try:
    fatjit.is_enabled()
except ImportError as error:
    print(error)
"""
assert _testcapi.run_in_subinterp(sub) == 0
print(fatjit.is_enabled(), fatjit.stats()["hook_installed"])
'''


def test_a_sub_interpreter_using_fatjit_first_gets_an_import_error_and_main_is_unharmed():
    # The extension initializes once per process, in the main interpreter: before the main one
    # used fatjit, a sub-interpreter's use raises ImportError (initialized there, it crashed the
    # process later, when the main one used what the dead sub-interpreter had made).
    out = run(["-c", SUB_INTERPRETER_FIRST], FATJIT="auto")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("fatjit: the extension fatjit._fatjit initializes in the main "
                               "interpreter"), lines
    assert lines[1:] == ["True True"]


def test_sub_interpreters_run_without_it_and_leave_the_main_one_alone():
    out = run(["-c", SUB_INTERPRETER], FATJIT="auto")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True True"
    # FATJIT=auto in the sub-interpreter's start-up stays silent; an explicit enable() refuses.
    assert out.stderr == ("fatjit.enable: automatic mode belongs to the main interpreter; "
                          "sub-interpreters run without it\n")


def test_without_FATJIT_nothing_of_fatjit_is_imported(tmp_path):
    # Both start-up paths are available: the build tree's sitecustomize and the installed .pth.
    site_dir = tmp_path / "site"
    site_dir.mkdir()
    (site_dir / "fatjit_autoload.pth").write_text((REPO / "ext" / "fatjit_autoload.pth").read_text())
    check = ("import site, sys; site.addsitedir(sys.argv[1]); "
             "print(sorted(m for m in sys.modules if m.startswith('fatjit')))")
    out = run(["-c", check, str(site_dir)])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    out = run(["-c", check, str(site_dir)], FATJIT="off")
    assert out.stdout.strip() == "[]"


def test_the_pth_line_enables_automatic_mode(tmp_path):
    site_dir = tmp_path / "site"
    site_dir.mkdir()
    (site_dir / "fatjit_autoload.pth").write_text((REPO / "ext" / "fatjit_autoload.pth").read_text())
    check = "import site, sys; site.addsitedir(sys.argv[1]); import fatjit; print(fatjit.is_enabled())"
    # -S: no site at start-up, so no sitecustomize: only the .pth line can turn it on.
    out = subprocess.run([sys.executable, "-S", "-c", check, str(site_dir)], capture_output=True,
                         text=True, env=env(FATJIT="auto"), timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"


def test_FATJIT_STATS_prints_the_table_at_exit(tmp_path):
    script = report_script(tmp_path, "calls(5)\n")
    out = run([str(script)], FATJIT="auto", FATJIT_STATS="1", FATJIT_SPECIALIZE_THRESHOLD="2")
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    assert re.fullmatch(rf"fatjit stats, pid \d+: {re.escape(str(script))}", lines[0])
    table = dict(re.split(r"\s{2,}", line.strip(), maxsplit=1) for line in lines[1:])
    assert table["automatic mode"] == "on, threshold 2 calls"
    assert int(table["functions specialized"]) >= 2  # f and calls' <listcomp> at least
    assert table["time specializing"].endswith(" ms")
    for row in ("calls counted", "refused", "guard checks", "guard failures", "fallbacks"):
        assert row in table


def test_FATJIT_LOG_lines(tmp_path):
    script = report_script(tmp_path, """
        def g(x):
            return x
        calls(3)
        g(1)
        K = 4      # f's guard on K fails at its next call
        f("ab")
    """)
    script.write_text(script.read_text().replace("len(s) + K", "K + len(s)"))
    out = run([str(script)], FATJIT="auto", FATJIT_SPECIALIZE_THRESHOLD="0",
              FATJIT_JIT_THRESHOLD="off", FATJIT_LOG="specialize, refuse,guard,bogus")
    assert out.returncode == 0, out.stderr
    err = out.stderr.splitlines()
    assert "fatjit: FATJIT_LOG: unknown event 'bogus' ignored (known: specialize, refuse, guard, compile, deopt, all)" in err
    assert any(l.startswith(f"fatjit: specialize f ({script}:4): ") and " guards, " in l for l in err)
    assert any(l.startswith(f"fatjit: refuse g ({script}:") and "nothing_to_specialize" in l
               for l in err)
    assert f"fatjit: guard f ({script}:4): GuardGlobals(K) failed" in err


# ------------------------------------------------------------------------------------------------
# python -m fatjit: what the program sees is what plain python shows it

PROGRAM = """
import os, sys
import helper
def show():
    g = {k: type(v).__name__ for k, v in globals().items()}
    spec = __spec__ and (__spec__.name, __spec__.origin)
    print(sys.argv, __name__, __file__, __package__, spec, sys.path[0], sorted(g.items()))
    print(sys.modules["__main__"] is sys.modules[__name__])
if "exit" in sys.argv:
    show()
    sys.exit(int(sys.argv[-1]))
if "raise" in sys.argv:
    helper.fail()
show()
"""

HELPER = """
def fail():
    return {}["missing"]
"""


@pytest.fixture
def program(tmp_path):
    (tmp_path / "prog.py").write_text(PROGRAM)
    (tmp_path / "helper.py").write_text(HELPER)
    return tmp_path


def both(args, cwd):
    """(plain python's result, python -m fatjit's), each (status, stdout, stderr)."""
    plain = run(args, cwd=cwd)
    under = run(["-m", "fatjit", *args], cwd=cwd)
    return ((plain.returncode, plain.stdout, plain.stderr),
            (under.returncode, under.stdout, under.stderr))


@pytest.mark.parametrize("args", [["prog.py", "a", "b"], ["prog.py", "exit", "3"],
                                  ["prog.py", "raise"]], ids=["argv", "exit", "raise"])
def test_script_behaves_as_with_plain_python(program, args):
    plain, under = both(args, program)
    assert under == plain
    status = {"argv": 0, "exit": 3, "raise": 1}[
        "exit" if "exit" in args else "raise" if "raise" in args else "argv"]
    assert plain[0] == status
    if "raise" in args:
        assert plain[2].startswith("Traceback (most recent call last):\n  File \"")
        assert plain[2].endswith("KeyError: 'missing'\n")


@pytest.mark.parametrize("args", [["-m", "prog", "a"], ["-m", "prog", "raise"]],
                         ids=["argv", "raise"])
def test_module_form_behaves_as_python_dash_m(program, args):
    plain, under = both(args, program)
    assert under == plain
    if "raise" in args:
        assert plain[0] == 1 and '"<frozen runpy>"' in plain[2]


def test_dash_m_fatjit_turns_automatic_mode_on(tmp_path):
    script = report_script(tmp_path, "import fatjit; print(fatjit.is_enabled())\n")
    out = run(["-m", "fatjit", str(script)])
    assert (out.returncode, out.stdout.strip()) == (0, "True")


def test_dash_m_fatjit_usage(tmp_path):
    assert run(["-m", "fatjit"]).returncode == 2
    helped = run(["-m", "fatjit", "--help"])
    assert helped.returncode == 0 and helped.stdout.startswith("usage: python -m fatjit")
    missing = run(["-m", "fatjit", str(tmp_path / "missing.py")])
    plain = run([str(tmp_path / "missing.py")])
    assert (missing.returncode, missing.stderr) == (plain.returncode, plain.stderr)


# ------------------------------------------------------------------------------------------------
# Regression: CPython's test_importlib (test_locks.test_deadlock, threads calling one closure)
# crashed at threshold 0. Allocating while the specializer works can run the garbage collector,
# so finalizers and other threads, which called the function whose specialization was being
# made and made it again, under the first maker's feet. Here a finalizer does it on every
# collection (gc threshold 1): the inner calls must run the original code.

REENTRANT = """
import gc, fatjit
calls = []
class Bomb:
    armed = True
    def __init__(self):
        self.me = self  # a cycle: only the collector frees it
    def __del__(self):
        if Bomb.armed:
            calls.append(target(1))
            Bomb()  # the next one, freed by the collection the next allocation starts
def target(x):
    return len("ab") + x
fatjit.enable(specialize_threshold=0)
gc.set_threshold(1)
Bomb()
result = target(1)
Bomb.armed = False
gc.set_threshold(700)
fatjit.disable()
print(result, sorted(set(calls)), fatjit.stats()["fallbacks"]["being_specialized"] > 0)
print(fatjit.explain(target))
"""


def test_a_call_while_its_specialization_is_being_made_runs_the_original():
    out = run(["-c", REENTRANT])
    assert out.returncode == 0, out.stderr
    first, *explain = out.stdout.splitlines()
    assert first == "3 [3] True"
    assert sum("guard GuardBuiltins(len)" in line for line in explain) == 1


AUDITED = """
import sys
import fatjit

seen = []
sys.addaudithook(lambda event, args: seen.append(event))
K = 3
def f(s):
    return len(s) + K            # specialized (globals and builtins as constants)
def g(x):
    y = x
    return y                     # nothing to specialize: compiled at code level (a copy)
for _ in range(3):
    assert f("ab") == 5 and g(1) == 1
fatjit.wait_for_compiles()
stats = fatjit.stats()
assert stats["auto_specialized"] >= 1, stats
assert "code.__new__" not in seen, [e for e in seen if e.startswith("code")]
print("ok")
"""


@pytest.mark.parametrize("jit", [False, True])
def test_audit_hooks_see_no_code_object_fatjit_makes(jit):
    # CPython's test_audit expects the first event after addaudithook to be the program's own:
    # the specializer's and the JIT's code objects are built without code.replace()'s
    # "code.__new__" event (compat::CodeWith).
    changes = {"FATJIT": "auto", "FATJIT_SPECIALIZE_THRESHOLD": "0"}
    if jit:
        changes.update(FATJIT_JIT_THRESHOLD="0", FATJIT_JIT_BACKGROUND="0")
    out = run(["-c", AUDITED], **changes)
    assert out.returncode == 0 and out.stdout == "ok\n", out.stdout + out.stderr
