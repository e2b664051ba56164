"""The JIT tier (issue 5): compiled functions behave exactly as the interpreter runs them.

Each test defines its functions in a fresh module twice: one copy runs plainly, the other is
compiled by fatjit.jit; results, exceptions, tracebacks and side effects must be the same, and
the compiled copy must really have run native code (stats and explain say so).
"""

import gc
import re
import signal
import subprocess
import sys
import threading
import textwrap
import time
import traceback
import warnings

import pytest

import fatjit
from support import child_env, new_module


def native_calls():
    return fatjit.stats()["jit"]["native_calls"]


def native_calls_of(*funcs):
    """The native calls of these functions' compiled code, from explain() (exact even when
    automatic mode compiles everything else too, as in the JIT stress setting)."""
    total = 0
    for func in funcs:
        total += sum(int(n) for n in re.findall(r"(\d+) native calls", fatjit.explain(func)))
    return total


def assert_compiled(func):
    text = fatjit.explain(func)
    assert "JIT: native code" in text, text


def outcome(call):
    """(result, None) or (None, (exception type, str, traceback line numbers in this module))."""
    try:
        return call(), None
    except BaseException as e:  # noqa: B902 - comparing every kind of exit
        lines = [f.lineno for f in traceback.extract_tb(e.__traceback__)
                 if f.filename.startswith("<fatjit_test_mod")]
        return None, (type(e), str(e), lines)


def test_arithmetic_branches_and_loops(jit):
    native, plain = jit("""
        def f(a, b):
            c = a + b
            if c > 10:
                return c * 2
            return c - 1

        def loop(n):
            t = 0
            for i in range(n):
                if i % 3 == 0:
                    continue
                t += i * i
            return t

        def while_loop(n):
            i = 0
            acc = []
            while i < n:
                acc.append(i)
                i += 1
            return acc
    """, "f", "loop", "while_loop")
    for args in [(1, 2), (5, 7), (1.5, 2), ("a", "b"), ([1], [2])]:
        assert outcome(lambda: native.f(*args)) == outcome(lambda: plain.f(*args))
    assert native.loop(1000) == plain.loop(1000)
    assert native.while_loop(50) == plain.while_loop(50)
    assert native_calls_of(native.f, native.loop, native.while_loop) == 7
    for name in ("f", "loop", "while_loop"):
        assert_compiled(getattr(native, name))


def test_type_changes_mid_loop_keep_meaning(jit):
    # Warm up on ints, then a float and a huge int arrive in the same compiled loop.
    native, plain = jit("""
        def total(values):
            t = 0
            for v in values:
                t = t + v * 2
            return t
    """, "total")
    for values in [list(range(100)), list(range(50)) + [0.5] + list(range(50)),
                   [1, 2, 10**30, 3], [1, 2, 2**62, 2**62]]:
        assert native.total(values) == plain.total(values)
    assert_compiled(native.total)


def test_every_kind_of_statement(jit):
    source = """
        import math
        from collections import OrderedDict

        G = 3

        class Point:
            def __init__(self, x, y):
                self.x, self.y = x, y
            def norm(self):
                return math.hypot(self.x, self.y)

        def kitchen(n, *args, scale=2, **kw):
            d = {i: i * scale for i in range(n)}
            s = {x % 3 for x in range(n)}
            l = [y for y in d.values() if y > 2]
            t = tuple(l) + args
            first, *rest = t or (0,)
            p = Point(first, len(rest))
            name = f"{p.norm():.3f}-{n!r}-{kw.get('tag', 'none')}"
            od = OrderedDict(a=1, **kw)
            del od["a"]
            sl = l[1:-1:2]
            g = G
            total = sum(x for x in l) + g
            a = b = 0
            a += 1; b -= 1
            flag = not (a and b) or (a is not b)
            match p:
                case Point(x=0):
                    m = "zero"
                case Point(x=x) if x > 1:
                    m = f"big {x}"
                case _:
                    m = "other"
            match kw:
                case {"tag": tag}:
                    m += tag
            with open(__file__ if False else "/dev/null") as fh:
                fh.read()
            assert n >= 0, "negative"
            def inner(z):
                return z + total
            lam = lambda q: q * g
            return (d, sorted(s), t, name, dict(od), sl, total, flag, m, inner(1), lam(2),
                    -n, ~n, +n, n ** 2, n // 3, n % 4, n << 2, n >> 1, n & 5, n | 8, n ^ 3,
                    3 in l, 4 not in s, [*l, *args], {**kw, "z": 1}, isinstance(p, Point))
    """
    native, plain = jit(source, "kitchen")
    for args, kwargs in [((0,), {}), ((5, 1, 2), {"tag": "t"}), ((9,), {"scale": 3})]:
        assert outcome(lambda: native.kitchen(*args, **kwargs)) == \
            outcome(lambda: plain.kitchen(*args, **kwargs))
    assert_compiled(native.kitchen)


def test_exception_raised_and_caught_inside(jit):
    native, plain = jit("""
        def f(items):
            out = []
            for x in items:
                try:
                    out.append(10 // x)
                except ZeroDivisionError as e:
                    out.append(str(e))
                else:
                    out.append("ok")
                finally:
                    out.append("fin")
            return out
    """, "f")
    assert native.f([1, 0, 2, 0]) == plain.f([1, 0, 2, 0])
    assert fatjit.stats()["jit"]["raises"] >= 2


def test_uncaught_exception_traceback_lines(jit):
    native, plain = jit("""
        def inner(x):
            return {"a": 1}[x]

        def outer(x):
            y = x * 2
            return inner(y)

        def bad_raise():
            raise ValueError("boom") from KeyError("cause")

        def unbound(flag):
            if flag:
                v = 1
            return v
    """, "inner", "outer", "bad_raise", "unbound")
    for name, args in [("outer", ("b",)), ("bad_raise", ()), ("unbound", (False,)),
                       ("unbound", (True,))]:
        got = outcome(lambda: getattr(native, name)(*args))
        want = outcome(lambda: getattr(plain, name)(*args))
        assert got == want, name
    try:
        native.bad_raise()
    except ValueError as e:
        assert isinstance(e.__cause__, KeyError)


def test_finally_on_return_and_with(jit):
    native, plain = jit("""
        log = []

        class CM:
            def __enter__(self):
                log.append("enter")
                return self
            def __exit__(self, *exc):
                log.append(("exit", exc[0]))
                return False

        def f(x):
            try:
                with CM():
                    if x:
                        return "early"
                    log.append("body")
            finally:
                log.append("finally")
            return "late"
    """, "f")
    assert native.f(True) == plain.f(True)
    assert native.f(False) == plain.f(False)
    assert native.log == plain.log


def test_global_rebound_by_callee_mid_function(jit):
    native, plain = jit("""
        K = 1

        def rebind():
            global K
            K = 100

        def f():
            a = K
            rebind()
            return a + K
    """, "f")
    assert native.f() == plain.f() == 101
    native.K = plain.K = 1
    assert native.f() == plain.f()


def test_settrace_switched_on_by_callee(jit):
    native, plain = jit("""
        import sys

        events = []

        def tracer(frame, event, arg):
            if frame.f_code.co_name == "f":
                events.append((event, frame.f_lineno))
            return tracer

        def start():
            sys.settrace(tracer)

        def f(n):
            start()
            t = 0
            for i in range(n):
                t += i
            sys.settrace(None)
            return t
    """, "f")
    assert native.f(3) == plain.f(3)
    assert native.events == plain.events
    assert fatjit.stats()["jit"]["deopts"]["tracing"] >= 1


@pytest.mark.parametrize("switch", ["settrace", "setprofile"])
def test_tracing_switched_on_by_a_callee_that_raises(jit, switch):
    # Regression (CPython's test_sys_settrace test_09_settrace_and_raise): the error handover
    # entered the interpreter with throwflag=1 while tracing was on, which reported a spurious
    # 'call' event for the frame (as for generator.throw()) before its 'exception' event.
    native, plain = jit(f"""
        import sys

        events = []

        def tracer(frame, event, arg):
            if frame.f_code.co_name == "f":
                events.append((event, frame.f_lineno))
            return tracer

        def start_and_raise():
            sys.{switch}(tracer)
            sys._getframe().f_back.f_trace = tracer
            raise RuntimeError("raised with tracing on")

        def f():
            try:
                start_and_raise()
            except RuntimeError:
                pass
            x = 1
            sys.{switch}(None)
            return x
    """, "f")
    assert native.f() == plain.f() == 1
    assert native.events == plain.events
    assert plain.events and plain.events[0][0] != "call"
    assert_compiled(native.f)


def test_finalizer_run_by_an_inline_decref_sees_the_current_line(jit):
    # Regression (CPython's test_warnings test_tracemalloc): STORE_FAST and POP_TOP release
    # references inline, and the last one runs the finalizer (__del__, a file's ResourceWarning)
    # with prev_instr still at the previous helper call, so it saw that call's line.
    native, plain = jit("""
        import sys
        import warnings

        lines = []

        class Finalized:
            def __del__(self):
                lines.append(sys._getframe(1).f_lineno)

        def store():
            d = Finalized()
            x = 1
            d = None
            return x

        def pop():
            Finalized()
            return 2

        def unclosed_file():
            f = open(__file__, "rb")
            x = 3
            f = None
            return x
    """, "store", "pop", "unclosed_file", __file__=__file__)
    assert native.store() == plain.store() == 1
    assert native.pop() == plain.pop() == 2
    assert native.lines == plain.lines
    for module in (native, plain):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            assert module.unclosed_file() == 3
        module.warned = [(w.category, w.lineno) for w in caught]
    assert native.warned == plain.warned and plain.warned[0][0] is ResourceWarning
    for name in ("store", "pop", "unclosed_file"):
        assert_compiled(getattr(native, name))


def test_frames_seen_from_callees(jit):
    native, plain = jit("""
        import sys

        def caller_info():
            frame = sys._getframe(1)
            return frame.f_code.co_name, frame.f_lineno, dict(frame.f_locals)

        def f(a):
            b = a + 1
            info = caller_info()
            return info, sorted(locals()), sys._getframe().f_locals["b"]
    """, "f")
    assert native.f(5) == plain.f(5)


def test_recursion_limit_at_the_same_depth(jit):
    native, plain = jit("""
        def depth(n):
            try:
                return depth(n + 1)
            except RecursionError:
                return n

        def fib(n):
            return n if n < 2 else fib(n - 1) + fib(n - 2)
    """, "depth", "fib")
    assert native.fib(20) == plain.fib(20)
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(400)
    try:
        assert abs(native.depth(0) - plain.depth(0)) <= 2
    finally:
        sys.setrecursionlimit(old)


def test_generators_fall_back(jit):
    native, plain = jit("""
        def gen(n):
            for i in range(n):
                yield i * i

        def uses_gen(n):
            return sum(gen(n)) + sum(x for x in range(n))
    """, "gen", "uses_gen")
    assert list(native.gen(5)) == list(plain.gen(5))
    assert native.uses_gen(10) == plain.uses_gen(10)
    assert "JIT: not compiled (generator" in fatjit.explain(native.gen)
    assert_compiled(native.uses_gen)


def test_keyboard_interrupt_in_a_long_compiled_loop(jit):
    native, _ = jit("""
        def spin():
            i = 0
            while True:
                i += 1
    """, "spin")
    old = signal.signal(signal.SIGALRM, lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with pytest.raises(KeyboardInterrupt):
            native.spin()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert_compiled(native.spin)


def test_signal_handler_raises_right_after_the_call(jit):
    # Regression (CPython's test_threading test_interrupt_main_with_signal_handler): ceval ends
    # CALL with CHECK_EVAL_BREAKER, so a handler of a signal tripped during a call raises at that
    # call, inside its try block; native code polled only at back-edges, so it raised later.
    native, plain = jit("""
        import _thread
        import signal

        def handler(signum, frame):
            1 / 0

        def caught():
            try:
                _thread.interrupt_main(signal.SIGTERM)
            except ZeroDivisionError:
                return "raised at the call"
            return "not raised at the call"

        def uncaught():
            x = [1]
            _thread.interrupt_main(signal.SIGTERM)
            return x
    """, "caught", "uncaught")
    old = signal.signal(signal.SIGTERM, plain.handler)
    try:
        assert native.caught() == plain.caught() == "raised at the call"
        got, want = outcome(native.uncaught), outcome(plain.uncaught)
        assert got == want and want[1][0] is ZeroDivisionError
    finally:
        signal.signal(signal.SIGTERM, old)
    assert_compiled(native.caught)
    assert_compiled(native.uncaught)


def test_other_thread_progresses_while_compiled_loop_spins(jit):
    native, _ = jit("""
        def spin(stop):
            i = 0
            while not stop:
                i += 1
            return i
    """, "spin")
    progress = []
    stop = []

    def worker():
        for k in range(50):
            progress.append(k)
            time.sleep(0.001)
        stop.append(True)

    t = threading.Thread(target=worker)
    t.start()
    assert native.spin(stop) > 0  # returns only because the worker got the GIL
    t.join()
    assert len(progress) == 50


def test_refcounts_unchanged_after_many_calls(jit):
    native, _ = jit("""
        def f(a, b, items):
            c = (a, b)
            for x in items:
                c = (c[0], x)
            try:
                {}[a]
            except KeyError:
                pass
            return c[1]
    """, "f")
    a, b, items = object(), object(), [object(), object()]
    native.f(a, b, items)
    gc.collect()
    counts = [sys.getrefcount(x) for x in (a, b, *items)]
    for _ in range(1000):
        assert native.f(a, b, items) is items[-1]
    gc.collect()
    assert [sys.getrefcount(x) for x in (a, b, *items)] == counts


@pytest.mark.parametrize("make_arg", [
    lambda: (1, 2, 3), lambda: [4, 5, 6], lambda: (1, 2), lambda: [1, 2, 3, 4], lambda: "abc",
    lambda: iter((7, 8, 9)), lambda: range(3), lambda: type("T", (tuple,), {})((1, 2, 3)),
    lambda: type("L", (list,), {})([1, 2, 3]), lambda: None])
def test_unpacking_and_str_formatting_match_the_interpreter(jit, make_arg):
    # UNPACK_SEQUENCE of an exact tuple or list of the right size and FORMAT_VALUE of an exact
    # str are inline; every other case (wrong size, subclasses, iterators, errors) is the helper.
    native, plain = jit("""
        class S(str):
            def __format__(self, spec):
                return "formatted"
            def __str__(self):
                return "converted"

        def f(seq):
            a, b, c = seq
            return f"{a}|{b!s}|{c!r}|{S('x')}|{S('y')!s}|{'z'}|{c:>3}"
    """, "f")
    assert outcome(lambda: native.f(make_arg())) == outcome(lambda: plain.f(make_arg()))
    objects = [object(), "s1", "s2"]
    for seq in (tuple(objects), list(objects)):
        native.f(seq)
        gc.collect()
        counts = [sys.getrefcount(x) for x in (seq, *objects)]
        for _ in range(100):
            native.f(seq)
        gc.collect()
        assert [sys.getrefcount(x) for x in (seq, *objects)] == counts
    assert_compiled(native.f)


def test_explain_dumps_ir_and_stats_count(jit):
    native, _ = jit("""
        def f(x):
            return len(x) + 1
    """, "f")
    before = fatjit.stats()["jit"]
    assert native.f("abc") == 4
    after = fatjit.stats()["jit"]
    assert after["compiles"] == before["compiles"] + 1
    assert after["code_bytes"] > 0
    assert after["compile_time_s"] > before["compile_time_s"]
    ir = fatjit.explain(native.f, ir=True)
    assert "define" in ir and "fatjit_rt_CALL" in ir
    with pytest.raises(ValueError, match="generator"):
        fatjit.explain(new_module("def g():\n    yield 1\n").g, ir=True)


def test_jit_rejects_bad_input():
    with pytest.raises(TypeError):
        fatjit.jit(len)
    with pytest.raises(ValueError):
        fatjit.jit(lambda: 0, assume="sometimes")
    with pytest.raises(TypeError):
        fatjit.specialize(lambda: 0, (lambda: 1).__code__, [], jit=True)


# The operator helpers' fast paths (jit/runtime/fast_paths.h) against the interpreter, on the
# edges of compact ints (one 30-bit digit), big ints, floats with NaN, inf and -0.0. One compiled
# function per operator, so that each runs natively (after an exception a call finishes in the
# interpreter).
_OPERATORS = ["a + b", "a - b", "a * b", "a / b", "a // b", "a % b", "a & b", "a | b", "a ^ b",
              "a << 3", "a >> 2", "a < b", "a <= b", "a == b", "a != b", "a > b", "a >= b",
              "[a, b][1]", "(a, b)[-1]", "[a, b][-3]"]
_OPS_SOURCE = "".join(f"def op{i}(a, b):\n    return {expr}\n" for i, expr in enumerate(_OPERATORS))
_OPS_SOURCE += """
def augmented(a, b):
    x = a
    x += b
    x *= 2
    x -= b
    return x
"""
_EDGES = [0, 1, -1, 2**30 - 1, -(2**30 - 1), 2**30, -(2**30), 2**62, -(2**63), 10**30, 7, -7]
_FLOATS = [0.0, -0.0, 1.5, -2.25, float("inf"), float("-inf"), float("nan"), 1e308]


def _outcome_repr(call):
    try:
        return repr(call())
    except Exception as e:  # noqa: BLE001 - the exception type is the outcome
        return type(e).__name__


@pytest.mark.parametrize("a", _EDGES + _FLOATS)
def test_operator_fast_paths_match_the_interpreter(jit, a):
    names = [f"op{i}" for i in range(len(_OPERATORS))] + ["augmented"]
    native, plain = jit(_OPS_SOURCE, *names)
    for b in _EDGES + _FLOATS + [True, 3]:
        for name in names:
            want = _outcome_repr(lambda: getattr(plain, name)(a, b))
            got = _outcome_repr(lambda: getattr(native, name)(a, b))
            assert got == want, (name, a, b)
    assert native_calls_of(*(getattr(native, name) for name in names)) == \
        len(names) * (len(_EDGES) + len(_FLOATS) + 2)


def test_global_cache_follows_every_rebinding(jit):
    # LOAD_GLOBAL's per-site cache (jit/runtime/global_cache.h) against rebinding, deleting and
    # shadowing globals and builtins, between calls and by a callee in the middle of a loop.
    native, plain = jit("""
        import builtins
        K = 1
        REAL_LEN = len

        def bump(i):
            global K
            if i == 3:
                K = 10
            if i == 5:
                builtins.len = lambda x: -1
            if i == 7:
                builtins.len = REAL_LEN

        def f(n):
            out = []
            for i in range(n):
                out.append((K, len("ab")))
                bump(i)
            return out
    """, "f")
    import builtins
    real_len = builtins.len
    try:
        want = plain.f(10)
        builtins.len = real_len
        plain.K = 1
        assert native.f(10) == want
        assert "global_cache_hit" in fatjit.explain(native.f, ir=True)  # the hit test is inline
        builtins.len = real_len
        native.K = 5
        assert native.f(2) == [(5, 2), (5, 2)]
        native.len = lambda x: 99  # a module global shadowing the builtin
        assert native.f(1) == [(5, 99)]
        del native.len
        assert native.f(1) == [(5, 2)]
        del native.K
        with pytest.raises(NameError, match="name 'K' is not defined"):
            native.f(1)
    finally:
        builtins.len = real_len


def test_perf_map_names_each_compiled_function_for_perf_report(tmp_path):
    # FATJIT_PERF_MAP=1: perf's JIT symbol file, /tmp/perf-PID.map, gets "START SIZE NAME" for
    # each compile, and the range holds the native entry (read back through ctypes: the first
    # bytes of the range are code, not zeros).
    program = tmp_path / "prog.py"
    program.write_text(textwrap.dedent("""
        import ctypes, os, fatjit

        @fatjit.jit
        def triangle(n):
            total = 0
            for i in range(n):
                total += i
            return total

        assert triangle(100) == 4950
        path = "/tmp/perf-%d.map" % os.getpid()
        try:
            lines = open(path).read().split("\\n")
        finally:
            os.unlink(path)
        entries = [line.split() for line in lines if "fatjit:triangle" in line]
        assert entries, lines
        start, size, name = entries[0]
        assert int(size, 16) > 16, entries
        assert ctypes.string_at(int(start, 16), 16) != bytes(16)
        print("ok", name)
    """))
    done = subprocess.run([sys.executable, str(program)], env=child_env(FATJIT_PERF_MAP="1"),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ok fatjit:triangle"), done.stdout


# Definite assignment (FunctionCompiler::FindBoundLocals): a LOAD_FAST of a local bound on every
# path to it has no null check; every other one raises UnboundLocalError as the interpreter does.
UNBOUND_PATHS = """
def one_branch(flag):
    if flag:
        x = 1
    return x

def deleted_in_loop(n):
    t = 0
    for i in range(n):
        x = i
        t += x
        if i == 2:
            del x
        t += x if i != 2 else 0
    return t

def read_before_first_store(n):
    out = []
    for i in range(n):
        if i:
            out.append(prev)
        prev = i * 10
    return out

def read_before_store_unguarded(n):
    out = []
    for i in range(n):
        out.append(prev)
        prev = i
    return out

def after_except(d):
    try:
        x = 10 // d
    except ZeroDivisionError:
        pass
    return x

def while_and_else(n):
    while n > 0:
        n -= 1
        last = n
    else:
        done = True
    return last, done

def stored_in_all_branches(k):
    if k == 0:
        y = "zero"
    elif k == 1:
        y = "one"
    else:
        y = "many"
    return y + y
"""


@pytest.mark.parametrize("name, args", [
    ("one_branch", (True,)), ("one_branch", (False,)), ("deleted_in_loop", (5,)),
    ("read_before_first_store", (4,)), ("read_before_store_unguarded", (3,)),
    ("read_before_store_unguarded", (0,)), ("after_except", (2,)), ("after_except", (0,)),
    ("while_and_else", (3,)), ("while_and_else", (0,)), ("stored_in_all_branches", (0,)),
    ("stored_in_all_branches", (2,))])
def test_unbound_locals_raise_as_in_the_interpreter(jit, name, args):
    native, plain = jit(UNBOUND_PATHS, name)
    for _ in range(3):
        assert outcome(lambda: getattr(native, name)(*args)) == \
            outcome(lambda: getattr(plain, name)(*args))
    assert "native code" in fatjit.explain(getattr(native, name))


def test_a_local_bound_on_every_path_is_not_checked_for_null(jit):
    native, _ = jit(UNBOUND_PATHS, "stored_in_all_branches", "one_branch")
    native.stored_in_all_branches(1)
    native.one_branch(True)
    assert "unbound" not in fatjit.explain(native.stored_in_all_branches, ir=True)
    assert "unbound" in fatjit.explain(native.one_branch, ir=True)
