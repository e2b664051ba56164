"""FATJIT=auto's start-up counter (_fatjit_boot, ext/boot.c): fatjit loads when a function gets hot.

Each test runs a child interpreter with the build tree on sys.path and FATJIT=auto. The programs
that check when fatjit loads run with -S and import _fatjit_boot as their first line (what
fatjit_autoload.pth does at start-up): site's own imports after the counter started (the
sitecustomize it shadows, usercustomize) would be counted too, and on a loaded machine their
wall-clock time (loop time counts as calls) can make importlib's functions hot, which loads fatjit
before the program's first line. The programs then import nothing before they have checked what
the counter did.
"""

import subprocess
import sys
import textwrap

from support import child_env as env

PRELUDE = """\
import _fatjit_boot
import sys

def loaded():
    return "fatjit._fatjit" in sys.modules

def f(x):
    return len(x)  # the builtin makes it specializable

"""


def run_program(tmp_path, body, **changes):
    script = tmp_path / "prog.py"
    script.write_text(PRELUDE + textwrap.dedent(body))
    out = subprocess.run([sys.executable, "-S", str(script)], capture_output=True, text=True,
                         env=env(FATJIT="auto", **changes), timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    return out.stdout.split()


def test_fatjit_loads_at_the_call_that_makes_a_function_hot(tmp_path):
    # A threshold of 1,000: at start-up, after the counter starts, site's lookups (usercustomize)
    # call importlib's helpers dozens of times, which a small threshold would count as hot.
    out = run_program(tmp_path, """
        for _ in range(999):
            f("ab")
        print(loaded())
        f("ab")
        print(loaded())
        import fatjit
        print(fatjit.is_enabled(), "automatic, <code" in fatjit.explain(f))
        counter = fatjit.stats()["start_up_counter"]
        print(counter["counting"], counter["threshold"], counter["calls_counted"] >= 1000)
    """, FATJIT_SPECIALIZE_THRESHOLD="1000", FATJIT_JIT_THRESHOLD="off")
    assert out == ["False", "True", "True", "True", "False", "1000", "True"]


def test_fatjit_counts_on_from_where_the_start_up_counter_stopped(tmp_path):
    # 600 calls counted by the start-up counter, then `import fatjit` hands over: the 1,000th
    # call in all, not the 1,000th after the import, makes f hot.
    out = run_program(tmp_path, """
        for _ in range(600):
            f("ab")
        import fatjit
        for _ in range(399):
            f("ab")
        print("automatic, <code" in fatjit.explain(f))
        f("ab")
        print("automatic, <code" in fatjit.explain(f))
    """, FATJIT_SPECIALIZE_THRESHOLD="1000", FATJIT_JIT_THRESHOLD="off")
    assert out == ["False", "True"]


def test_loop_time_counts_as_calls_before_fatjit_loads(tmp_path):
    # One call whose loop runs for far more than 1,000 calls' worth of time (10 us each,
    # tuning.h): the next call of that function loads fatjit, as automatic mode's own counter
    # would make its attempt then.
    out = run_program(tmp_path, """
        def spin(n):
            i = 0
            while i < n:
                i += 1
            return i

        spin(1_000_000)
        print(loaded())
        spin(1)
        print(loaded())
    """)
    assert out == ["False", "True"]


def test_settings_that_need_fatjit_from_the_start_load_it_at_start_up(tmp_path):
    for setting in [{"FATJIT_SPECIALIZE_THRESHOLD": "0"}, {"FATJIT_JIT_THRESHOLD": "0"},
                    {"FATJIT_STATS": "1"}, {"FATJIT_AST": "1"}]:
        script = tmp_path / "prog.py"  # with site: sitecustomize imports _fatjit_boot
        script.write_text("import sys\nprint('fatjit._fatjit' in sys.modules)\n")
        out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                             env=env(FATJIT="auto", **setting), timeout=120)
        assert out.returncode == 0, out.stderr
        assert out.stdout.split()[0] == "True", setting


def test_a_function_hot_near_the_recursion_limit_loads_fatjit_at_a_later_call(tmp_path):
    # The 985th call of r comes ~986 frames deep, 14 from the limit: too close for the import
    # (a few dozen frames), which would fail with RecursionError and leave automatic mode off.
    # The counter waits for a call with room to spare.
    out = run_program(tmp_path, """
        def r(n):
            return 0 if n == 0 else 1 + r(n - 1)

        print(r(995), loaded())
        print(r(0), loaded())
        import fatjit
        print(fatjit.is_enabled())
    """, FATJIT_SPECIALIZE_THRESHOLD="985", FATJIT_JIT_THRESHOLD="off")
    assert out == ["995", "False", "0", "True", "True"]


def broken_fatjit(tmp_path, raised):
    """A directory holding a `fatjit` package whose _autoload raises `raised`: put first on the
    path, the hand-over imports it instead of the real one (_fatjit_boot still comes from the
    build tree)."""
    package = tmp_path / "broken" / "fatjit"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "_autoload.py").write_text(f"raise {raised}\n")
    return tmp_path / "broken"


def run_with_broken_fatjit(tmp_path, raised, body):
    script = tmp_path / "prog.py"
    script.write_text(PRELUDE + textwrap.dedent(body))
    path = f"{broken_fatjit(tmp_path, raised)}:{env()['PYTHONPATH']}"
    return subprocess.run([sys.executable, "-S", str(script)], capture_output=True, text=True,
                          env=env(FATJIT="auto", PYTHONPATH=path, FATJIT_JIT_THRESHOLD="off",
                                  FATJIT_SPECIALIZE_THRESHOLD="1000"), timeout=120)


def test_a_hand_over_that_fails_is_reported_once_and_the_program_runs_on(tmp_path):
    out = run_with_broken_fatjit(tmp_path, 'ValueError("no JIT here")', """
        total = sum(f("ab") for _ in range(3000))
        print(total, _fatjit_boot.status()["counting"])
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["6000", "False"]
    assert out.stderr == "fatjit: FATJIT=auto ignored: ValueError: no JIT here\n"


def test_a_keyboard_interrupt_during_the_hand_over_is_raised_by_the_call_that_made_it(tmp_path):
    # The import runs Python code, where a signal's KeyboardInterrupt can arrive; the interpreter
    # would raise it at the start of the call: so does the counter, and nothing is swallowed.
    out = run_with_broken_fatjit(tmp_path, "KeyboardInterrupt", """
        calls = 0
        try:
            while True:
                f("ab")
                calls += 1
        except KeyboardInterrupt:
            print("interrupted after", calls)
        print(f("abc"), _fatjit_boot.status()["counting"])
    """)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["interrupted", "after", "999", "3", "False"]
    assert out.stderr == ""
