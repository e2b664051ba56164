"""Automatic mode compiles caller-supplied code: fatjit.specialize(func, code, guards) (PEP 510)
and the AST import hook's registrations run native code once hot, exactly as interpreted.

The given code object has offsets of its own, so its native code swaps the frame's code for it
(as the dispatcher does to run it interpreted) and deopts and raises into it: the tests give it
behaviour that differs from the original's on purpose (`scale`), so that every result shows which
code ran. Each test is a child process (automatic mode and the compiler thread are per process).
"""

import os
import subprocess
import sys
import textwrap

BUILD_PYTHON = os.path.dirname(os.path.dirname(os.path.abspath(__import__("fatjit").__file__)))


def run(source, **environment):
    child = {k: v for k, v in os.environ.items() if not k.startswith("FATJIT")}
    child["PYTHONPATH"] = BUILD_PYTHON
    child.update(environment)
    done = subprocess.run([sys.executable, "-c", PROGRAM + textwrap.dedent(source)],
                          capture_output=True, text=True, env=child, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


# `total` runs `given`'s code once specialized: each step scaled by `scale` (the original adds
# the plain step). Same locals and stack depth, so the frame's code is swapped, not called.
PROGRAM = textwrap.dedent("""
    import sys, traceback
    import fatjit

    def total(n, scale):
        t = 0
        for i in range(n):
            t += i * 1
        return t

    def given(n, scale):
        t = 0
        for i in range(n):
            t += i * scale
        return t

    def expected(n, scale):
        t = 0
        for i in range(n):
            t += i * scale
        return t

    def native_code(func):
        return "JIT: native code" in fatjit.explain(func)

    fatjit.specialize(total, given.__code__, [fatjit.GuardFunc(total)])
""")


def test_given_code_is_compiled_once_hot_and_runs_what_it_says():
    out = run("""
        # No loop in `pair`: its runs are counted, not timed (loop time would count as runs).
        def pair(a, b):
            return (a + b) * 1

        def given_pair(a, b):
            return (a * b) + 0

        fatjit.specialize(pair, given_pair.__code__, [fatjit.GuardFunc(pair)])
        fatjit.enable(jit_threshold=3, jit_background=False)
        results = [pair(5, 2), pair(5, 2)]
        assert not native_code(pair), fatjit.explain(pair)
        results.append(pair(5, 2))                      # the third run compiles, then runs it
        assert native_code(pair), fatjit.explain(pair)
        calls = fatjit.stats()["jit"]["native_calls"]
        results.append(pair(2**70, 3))
        assert fatjit.stats()["jit"]["native_calls"] == calls + 1
        assert results == [10, 10, 10, 3 * 2**70], results
        assert total(1000, 3) == expected(1000, 3)       # compiled at its third run too
        print("ok")
    """)
    assert out.split() == ["ok"]


def test_without_automatic_compiles_given_code_stays_interpreted():
    out = run("""
        fatjit.enable(jit_threshold="off")
        assert [total(10, 2) for _ in range(50)] == [90] * 50
        assert not native_code(total)
        fatjit.disable()
        assert total(10, 2) == 90 and not native_code(total)   # PEP 510 alone never compiles
        print("ok")
    """)
    assert out.split() == ["ok"]


def test_deopts_mid_loop_resume_the_given_code():
    # Compiled with ints, the unboxed loop meets a float and a big int (it falls back to its
    # generic path); then a handled exception and a tracer switched on by a callee hand the frame
    # to the interpreter mid-loop, which goes on in `given_steps` (the original would differ).
    out = run("""
        fatjit.enable(jit_threshold=0, jit_background=False)
        assert total(100, 2) == expected(100, 2) and native_code(total)
        assert total(100, 0.5) == expected(100, 0.5)
        assert total(100, 2**70) == expected(100, 2**70)

        def steps(n, hook):
            t = 0
            for i in range(n):
                try:
                    t += hook(i) * 1
                except TypeError:
                    t += 1000
            return t

        def given_steps(n, hook):
            t = 0
            for i in range(n):
                try:
                    t += hook(i) * 2
                except TypeError:
                    t -= 1
            return t

        def raising(i):
            return None if i == 3 else i

        def tracing(i):
            if i == 3:
                sys.settrace(lambda *args: None)
            return i

        fatjit.specialize(steps, given_steps.__code__, [fatjit.GuardFunc(steps)])
        assert steps(10, int) == 90 and native_code(steps)
        jit = fatjit.stats()["jit"]
        print(steps(10, raising), fatjit.stats()["jit"]["raises"] > jit["raises"])
        print(steps(10, tracing), "(tracing): 1 times" in fatjit.explain(steps))
        sys.settrace(None)
        print(steps(10, int))
    """)
    assert out.splitlines() == [f"{90 - 6 - 1} True", "90 True", "90"]


def test_errors_raised_in_native_code_carry_the_given_codes_lines_and_frame():
    out = run("""
        fatjit.enable(jit_threshold=0, jit_background=False)
        assert total(5, 1) == 10 and native_code(total)
        try:
            total(5, None)
        except TypeError as error:
            last = traceback.extract_tb(error.__traceback__)[-1]
            print(last.name, last.lineno - given.__code__.co_firstlineno)

        def peek(n, scale):
            return sys._getframe(0).f_code.co_name

        def other(n, scale):
            return sys._getframe(0).f_code.co_name

        fatjit.specialize(peek, other.__code__, [fatjit.GuardFunc(peek)])
        print(peek(1, 1), peek(1, 1))
    """)
    assert out.splitlines() == ["given 3", "other other"]


def test_compiled_callers_call_the_given_codes_native_code_directly():
    out = run("""
        fatjit.enable(jit_threshold=0, jit_background=False)

        def caller(k):
            s = 0
            for j in range(k):
                s += total(j % 7, 3)
            return s

        assert caller(1000) == sum(expected(j % 7, 3) for j in range(1000))
        assert native_code(total) and native_code(caller)
        before = fatjit.stats()["jit"]["direct_calls"]
        assert caller(1000) == sum(expected(j % 7, 3) for j in range(1000))
        print("ok", fatjit.stats()["jit"]["direct_calls"] - before >= 1000)
    """)
    assert out.split() == ["ok", "True"]


def test_a_failed_guard_runs_the_original_again_also_from_compiled_callers():
    out = run("""
        fatjit.enable(jit_threshold=0, jit_background=False)
        MODE = 1

        def scaled(n, scale):
            t = 0
            for i in range(n):
                t += i * 1
            return t

        fatjit.specialize(scaled, given.__code__, [fatjit.GuardGlobals("MODE")])

        def caller(k):
            s = 0
            for j in range(k):
                s += scaled(10, 2)
            return s

        print(caller(100), native_code(scaled) and native_code(caller))
        MODE = 2                           # the guard fails: the original runs, adding 45
        print(caller(100), scaled(10, 2))
        MODE = 1
        print(caller(100))
    """)
    assert out.splitlines() == ["9000 True", "4500 45", "9000"]


def test_big_given_code_waits_a_threshold_more_per_500_code_units():
    # As automatic mode's attempts do (test_auto_mode.py): compiling costs more for more code.
    out = run("""
        lines = "".join(f"    y = y * 3 + {i} if y < 1000 else y - {i}\\n" for i in range(55))
        source = f"def big(x):\\n    y = x\\n{lines}    return y\\n"
        big, big_given = {}, {}
        exec(source, big)
        exec(source.replace("y * 3", "y * 2"), big_given)
        big, given_code = big["big"], big_given["big"].__code__
        assert 1000 <= len(given_code.co_code) // 2 < 1500
        fatjit.specialize(big, given_code, [fatjit.GuardFunc(big)])
        fatjit.enable(jit_threshold=2, jit_background=False)
        for _ in range(5):
            big(1)
        print(native_code(big), big(1) == big_given["big"](1))
        big(1)                                   # the sixth run: three thresholds of 2
        print(native_code(big), big(1) == big_given["big"](1))
    """)
    assert out.split() == ["False", "True", "True", "True"]


def test_a_function_called_twice_with_a_long_loop_is_compiled_for_its_next_call():
    # The default threshold (1,000 runs) is reached through loop time, as for code objects.
    out = run("""
        fatjit.enable(jit_background=False)
        total(3_000_000, 1)
        total(3_000_000, 1)
        print(native_code(total))
    """)
    assert out.split() == ["True"]


def test_a_global_rebound_by_a_callee_mid_run_is_seen_by_the_given_codes_native_code():
    out = run("""
        fatjit.enable(jit_threshold=0, jit_background=False)
        STEP = 1

        def rebind(i):
            global STEP
            if i == 5:
                STEP = 100
            return i

        def walk(n):
            t = 0
            for i in range(n):
                t += rebind(i) * 0 + STEP
            return t

        def given_walk(n):
            t = 0
            for i in range(n):
                t += rebind(i) * 1 + STEP
            return t

        fatjit.specialize(walk, given_walk.__code__, [fatjit.GuardFunc(walk)])
        STEP = 1
        print(walk(3), native_code(walk))
        STEP = 1
        print(walk(10))                 # 0..9 plus STEP: 1 for i <= 4, 100 from i = 5 on
    """)
    assert out.splitlines() == [f"{sum(range(3)) + 3} True", str(sum(range(10)) + 5 * 1 + 5 * 100)]
