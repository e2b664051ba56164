"""Native-to-native calls (jit/runtime/native_call.h): CALL from compiled code to a plain Python
function pushes the callee's frame itself and runs the callee's native code without the PEP 523
hook. Each test runs a compiled copy and a plain copy of the same module and compares results,
exceptions, tracebacks, frames and refcounts; stats()["jit"]["direct_calls"] shows the direct
path was taken.
"""

import gc
import os
import subprocess
import sys
import textwrap
import traceback

import pytest

import fatjit
from support import new_module


JIT_STRESS = os.environ.get("FATJIT_JIT_STRESS") == "1"


def direct_calls():
    return fatjit.stats()["jit"]["direct_calls"]


def assert_direct_calls(delta, want):
    """Exactly `want` direct calls; at least that many under the JIT stress setting, where every
    other function of the process (the plain copies, pytest's) is compiled and calls directly."""
    assert delta >= want if JIT_STRESS else delta == want, (delta, want)


def outcome(call):
    """(result, None) or (None, (exception type, str, traceback (function, line) pairs of the
    test module))."""
    try:
        return call(), None
    except BaseException as e:  # noqa: B902 - comparing every kind of exit
        lines = [(f.name, f.lineno) for f in traceback.extract_tb(e.__traceback__)
                 if f.filename.startswith("<fatjit_test_mod")]
        return None, (type(e), str(e), lines)


def warm(call, times=3):
    """Calls `call` a few times (compiles happen at first calls) and returns the last result."""
    for _ in range(times - 1):
        call()
    return call()


def test_recursion_results_and_direct_path(jit):
    native, plain = jit("""
        def fib(n):
            return n if n < 2 else fib(n - 1) + fib(n - 2)

        def ackermann(m, n):
            if m == 0:
                return n + 1
            if n == 0:
                return ackermann(m - 1, 1)
            return ackermann(m - 1, ackermann(m, n - 1))
    """, "fib", "ackermann")
    warm(lambda: native.fib(5))
    before = direct_calls()
    assert native.fib(20) == plain.fib(20) == 6765
    assert direct_calls() - before >= 6765 * 2
    assert native.ackermann(2, 3) == plain.ackermann(2, 3)


def test_recursion_error_at_exactly_the_interpreters_depth(jit):
    native, plain = jit("""
        def depth(n):
            try:
                return depth(n + 1)
            except RecursionError:
                return n

        def depth_with_default(n, step=1):
            try:
                return depth_with_default(n + step)
            except RecursionError:
                return n
    """, "depth", "depth_with_default")
    warm(lambda: native.depth(sys.getrecursionlimit() - 50))
    old = sys.getrecursionlimit()
    for limit in (100, 400, 3000):  # 3000 frames cross several data-stack chunks
        sys.setrecursionlimit(limit)
        try:
            before = direct_calls()
            got = native.depth(0)
            assert direct_calls() - before > limit // 2
            assert got == plain.depth(0)
            assert native.depth_with_default(0) == plain.depth_with_default(0)
        finally:
            sys.setrecursionlimit(old)


def callee_and_caller(body):
    """A module whose caller(n) sums callee(i) over range(n), callee(x) returning `body`."""
    return f"""
        K = 10

        def callee(x):
            return {body}

        def caller(n):
            t = 0
            for i in range(n):
                t += callee(i)
            return t
    """


def test_callee_whose_guard_fails_still_gives_the_right_result(jit):
    native, plain = jit(callee_and_caller("x + K"), "callee", "caller")
    assert warm(lambda: native.caller(10)) == plain.caller(10)
    assert "GuardGlobals(K)" in fatjit.explain(native.callee)
    failures = fatjit.stats()["guard_failures"]["globals"]
    native.K = plain.K = 20
    assert native.caller(10) == plain.caller(10) == 245
    assert fatjit.stats()["guard_failures"]["globals"] > failures  # counted as the hook counts
    native.K = plain.K = 10
    before = direct_calls()
    assert native.caller(10) == plain.caller(10) == 145
    assert_direct_calls(direct_calls() - before, 10)


def test_callee_that_raises_has_the_same_traceback(jit):
    native, plain = jit("""
        def inner(x):
            y = x + 1
            return {"a": 1}[y]

        def middle(x):
            return inner(x) + 1

        def outer(x):
            try:
                return middle(x)
            except KeyError as e:
                raise ValueError("wrapped") from e

        def unbound(flag):
            if flag:
                v = 1
            return v

        def calls_unbound():
            return unbound(False)
    """, "inner", "middle", "outer", "unbound", "calls_unbound")
    warm(lambda: outcome(lambda: native.outer(1)))
    before = direct_calls()
    for name, args in [("middle", (1,)), ("outer", (1,)), ("calls_unbound", ())]:
        got = outcome(lambda: getattr(native, name)(*args))
        want = outcome(lambda: getattr(plain, name)(*args))
        assert got == want, name
        assert got[1] is not None
    assert direct_calls() > before
    try:
        native.outer(1)
    except ValueError as e:
        assert isinstance(e.__cause__, KeyError)
        # the frames kept by the traceback outlived their calls: their f_back chains are intact
        frame = traceback.extract_tb(e.__cause__.__traceback__)
        assert [f.name for f in frame][-2:] == ["middle", "inner"]
        tb = e.__cause__.__traceback__
        while tb.tb_next is not None:
            tb = tb.tb_next
        assert tb.tb_frame.f_code.co_name == "inner"
        assert tb.tb_frame.f_locals == {"x": 1, "y": 2}
        assert tb.tb_frame.f_back.f_code.co_name == "middle"
        assert tb.tb_frame.f_back.f_back.f_code.co_name == "outer"


def test_callee_that_deopts_mid_function(jit):
    # assume="entry": the callee's native code uses K after the call to rebind and re-checks its
    # guard there, so a rebinding deopts mid-function; K is restored before each return, so
    # every call enters the native code directly.
    native, plain = jit("""
        K = 1

        def rebind(value):
            global K
            K = value

        def callee(x):
            a = K
            rebind(x)
            b = K
            rebind(1)
            return a * 1000 + b

        def caller(n):
            out = []
            for i in range(n):
                out.append(callee(i))
            return out
    """, "caller")
    fatjit.jit(native.callee, assume="entry")
    try:
        warm(lambda: native.caller(1))
        before = fatjit.stats()["jit"]["deopts"]["guard_failed"]
        calls_before = direct_calls()
        assert native.caller(5) == plain.caller(5) == [1000, 1001, 1002, 1003, 1004]
        assert native.K == plain.K
        assert fatjit.stats()["jit"]["deopts"]["guard_failed"] - before == 4
        assert_direct_calls(direct_calls() - calls_before, 5)
        assert "assume=entry" in fatjit.explain(native.callee)
    finally:
        fatjit.unspecialize(native.callee)


def test_callee_that_deopts_for_tracing(jit):
    native, plain = jit("""
        import sys

        events = []

        def tracer(frame, event, arg):
            if frame.f_code.co_name in ("callee", "caller"):
                events.append((frame.f_code.co_name, event, frame.f_lineno))
            return tracer

        def start():
            sys.settrace(tracer)

        def callee(x):
            if x == 2:
                start()
            y = x * 2
            return y

        def caller(n):
            t = 0
            for i in range(n):
                t += callee(i)
            sys.settrace(None)
            return t
    """, "callee", "caller")
    warm(lambda: native.caller(2))
    native.events.clear()
    plain.events.clear()
    before = fatjit.stats()["jit"]["deopts"]["tracing"]
    calls_before = direct_calls()
    assert native.caller(4) == plain.caller(4)
    assert native.events == plain.events and plain.events
    assert fatjit.stats()["jit"]["deopts"]["tracing"] - before >= 2  # callee, then caller
    assert_direct_calls(direct_calls() - calls_before, 3)  # the call after tracing went on is interpreted


def test_frames_seen_and_kept_by_the_callee(jit):
    native, plain = jit("""
        import sys

        kept = []

        def caller_info():
            frame = sys._getframe(1)
            return frame.f_code.co_name, frame.f_lineno, dict(frame.f_locals)

        def keep_frame(a, b=5):
            c = a * b
            kept.append(sys._getframe())
            return c

        def f(a):
            b = a + 1
            info = caller_info()
            r = keep_frame(b)
            return info, r, sys._getframe().f_locals["b"]
    """, "caller_info", "keep_frame", "f")
    warm(lambda: native.f(1))
    native.kept.clear()
    plain.kept.clear()
    before = direct_calls()
    assert native.f(5) == plain.f(5)
    assert direct_calls() - before >= 2
    got, want = native.kept[0], plain.kept[0]
    assert got.f_locals == want.f_locals == {"a": 6, "b": 5, "c": 30}
    assert got.f_lineno == want.f_lineno
    assert got.f_code is native.keep_frame.__code__
    assert got.f_back is not None and got.f_back.f_code is native.f.__code__
    assert got.f_back.f_lineno == want.f_back.f_lineno
    assert got.f_back.f_locals["b"] == 6
    assert gc.is_tracked(got)
    refs = sys.getrefcount(got)
    native.kept.clear()
    assert refs == sys.getrefcount(want)
    del got, want
    gc.collect()


def test_generator_callees(jit):
    native, plain = jit("""
        def gen(n, step=1):
            for i in range(0, n, step):
                yield i * i

        def uses_gen(n):
            return sum(gen(n)) + sum(gen(n, 2)) + list(gen(3))[-1]
    """, "gen", "uses_gen")
    assert warm(lambda: native.uses_gen(10)) == plain.uses_gen(10)
    assert "JIT: native code" in fatjit.explain(native.uses_gen)


def test_default_arguments(jit):
    native, plain = jit("""
        def callee(a, b=2, c=None, d=[]):
            d.append(a)
            return a, b, c, len(d)

        def caller():
            return [callee(1), callee(1, 3), callee(1, 3, 4), callee(1, 3, 4, [])]

        def too_few():
            return callee()

        def too_many():
            return callee(1, 2, 3, 4, 5)
    """, "callee", "caller", "too_few", "too_many")
    assert warm(native.caller) == warm(plain.caller)
    before = direct_calls()
    assert native.caller() == plain.caller()
    assert_direct_calls(direct_calls() - before, 4)
    # Defaults are read at call time, as initialize_locals reads them.
    native.callee.__defaults__ = (20, 30, [])
    plain.callee.__defaults__ = (20, 30, [])
    assert native.caller() == plain.caller()
    native.callee.__defaults__ = plain.callee.__defaults__ = None
    assert outcome(native.caller) == outcome(plain.caller)
    assert outcome(native.too_few) == outcome(plain.too_few)
    assert outcome(native.too_many) == outcome(plain.too_many)


def test_bound_methods_and_closures(jit):
    native, plain = jit("""
        class Counter:
            __jit__ = ("add", "add_twice")

            def __init__(self):
                self.total = 0

            def add(self, x):
                self.total += x
                return self

            def add_twice(self, x):
                return self.add(x).add(x).total

        def make_adder(k):
            def adder(x):
                return x + k
            return adder

        def captured(x):
            def get():
                return x
            x += 1
            return get()

        def caller(n):
            c = Counter()
            add = make_adder(n)
            t = 0
            for i in range(n):
                t += c.add_twice(i) + add(i) + captured(i)
            return t, c.total
    """, "Counter", "captured", "caller")
    assert warm(lambda: native.caller(10)) == plain.caller(10)
    before = direct_calls()
    assert native.caller(10) == plain.caller(10)
    assert direct_calls() - before >= 30  # add_twice, add (x2), captured per iteration


def test_callee_locals_start_unbound_whatever_the_data_stack_held(jit):
    # The callee's frame reuses the data-stack memory of the earlier calls from the same site,
    # which bound every local; a local the last call does not bind must be unbound there (a
    # stale value would be a wrong answer, or a crash once its object is freed).
    native, plain = jit("""
        def maybe(x, flag):
            if flag:
                y = [x * 2]
                z = x
            return y

        class Box:
            __jit__ = ("get",)

            def get(self, flag):
                if flag:
                    w = [self]
                return w

        def caller(n, last_flag):
            total = 0
            box = Box()
            for i in range(n):
                flag = i < n - 1 or last_flag
                total += maybe(i, flag)[0] + len(box.get(flag))
            return total
    """, "maybe", "Box", "caller")
    assert warm(lambda: native.caller(5, True)) == plain.caller(5, True)
    before = direct_calls()
    assert native.caller(50, True) == plain.caller(50, True)
    assert_direct_calls(direct_calls() - before, 2 * 50)
    for _ in range(3):
        got = outcome(lambda: native.caller(50, False))
        assert got == outcome(lambda: plain.caller(50, False))
        assert got[1][0] is UnboundLocalError


def test_direct_calls_from_every_depth_of_the_data_stack(jit):
    # Frames live in chunks of the thread's data stack; a call whose frame does not fit in the
    # current chunk starts a new one (native_call.cc keeps it for the next such call). Calls
    # made from every depth cross every position of a chunk boundary: results, the frames a
    # callee keeps (their f_back chain) and exceptions must be the interpreter's.
    native, plain = jit("""
        import sys

        def callee(x, keep):
            a, b, c, d = x, x + 1, x + 2, x + 3
            frame = sys._getframe()
            if keep is not None:
                keep.append(frame)
            if x == -1:
                raise ValueError(a)
            return a + b + c + d + (frame.f_back.f_code.co_name == "loop")

        def loop(n, keep):
            total = 0
            for i in range(n):
                total += callee(i, keep if i % 7 == 0 else None)
            return total

        def deep(k, n, keep):
            if k == 0:
                return loop(n, keep)
            return deep(k - 1, n, keep)

        def recurse(k):
            if k == 0:
                return callee(-1, None)
            return k + recurse(k - 1)
    """, "callee", "loop", "recurse")
    warm(lambda: native.loop(20, []))
    before = direct_calls()
    for k in range(0, 300):
        kept_native, kept_plain = [], []
        assert native.deep(k, 30, kept_native) == plain.deep(k, 30, kept_plain)
        assert [f.f_locals["x"] for f in kept_native] == [f.f_locals["x"] for f in kept_plain]
        assert [f.f_back.f_code.co_name for f in kept_native] == ["loop"] * len(kept_plain)
    assert_direct_calls(direct_calls() - before, 30 * 300)
    for k in (10, 250, 600):  # native recursion across several chunks, an error at the bottom
        got = outcome(lambda: native.recurse(k))
        assert got == outcome(lambda: plain.recurse(k))
        assert got[1][0] is ValueError


def test_refcounts_of_arguments_unchanged_after_many_calls(jit):
    native, _ = jit("""
        def callee(a, b, c=None):
            return b

        def raises(a, b):
            raise KeyError(a)

        def catches(a, b):
            try:
                raises(a, b)
            except KeyError:
                pass

        def caller(a, b, n):
            for i in range(n):
                callee(a, b)
                callee(a, b, a)
                catches(a, b)
            return callee(a, b)
    """, "callee", "raises", "catches", "caller")
    a, b = object(), object()
    warm(lambda: native.caller(a, b, 2))
    gc.collect()
    counts = [sys.getrefcount(a), sys.getrefcount(b), sys.getrefcount(native.callee),
              sys.getrefcount(native.callee.__code__)]
    before = direct_calls()
    assert native.caller(a, b, 1000) is b
    assert direct_calls() - before >= 3000
    gc.collect()
    assert [sys.getrefcount(a), sys.getrefcount(b), sys.getrefcount(native.callee),
            sys.getrefcount(native.callee.__code__)] == counts


def test_callee_frame_released_at_its_pop(jit):
    # The caller's inline pop releases what the callee's frame holds: its locals (a finalizer
    # runs there, seeing the caller's frame as the interpreter shows it), and the dict locals()
    # stored in the frame (f_locals).
    native, plain = jit("""
        import sys

        seen = []

        class Noisy:
            def __del__(self):
                frame = sys._getframe(1)
                seen.append((frame.f_code.co_name, frame.f_lineno))

        def callee_with_finalizer(n):
            o = Noisy()
            return n + 1

        def callee_with_locals(a, b):
            d = locals()
            return len(d)

        def caller(a, n):
            t = 0
            for i in range(n):
                t = t + callee_with_finalizer(i)
                t = t + callee_with_locals(a, i)
            return t
    """, "callee_with_finalizer", "callee_with_locals", "caller")
    a = object()
    warm(lambda: native.caller(a, 2))
    warm(lambda: plain.caller(a, 2))
    native.seen.clear()
    plain.seen.clear()
    gc.collect()
    count = sys.getrefcount(a)
    before = direct_calls()
    assert native.caller(a, 100) == plain.caller(a, 100)
    assert direct_calls() - before >= 200
    assert sys.getrefcount(a) == count
    assert len(native.seen) == 100 and native.seen == plain.seen


def test_settrace_switched_on_inside_a_callee(jit):
    native, plain = jit("""
        import sys

        events = []

        def tracer(frame, event, arg):
            if frame.f_code.co_name in ("f", "start", "after"):
                events.append((frame.f_code.co_name, event, frame.f_lineno))
            return tracer

        def start():
            sys.settrace(tracer)
            return 1

        def after(x):
            return x + 1

        def f(n):
            t = start()
            for i in range(n):
                t += after(i)
            sys.settrace(None)
            return t
    """, "start", "after", "f")
    assert native.f(3) == plain.f(3)
    assert native.events == plain.events
    native.events.clear()
    plain.events.clear()
    assert native.f(3) == plain.f(3)
    assert native.events == plain.events
    assert any(name == "after" and event == "call" for name, event, _ in plain.events)


def test_direct_calls_switch_off():
    # FATJIT_JIT_DIRECT_CALLS=0 keeps every call on the ordinary path (the switch is read once).
    script = textwrap.dedent("""
        import fatjit

        def fib(n):
            return n if n < 2 else fib(n - 1) + fib(n - 2)

        fatjit.jit(fib)
        assert fib(15) == 610
        jit = fatjit.stats()["jit"]
        print(jit["direct_calls"], jit["native_calls"] > 0)
    """)
    for value, want in (("0", "0 True"), ("1", None)):
        env = dict(os.environ, FATJIT_JIT_DIRECT_CALLS=value)
        env.pop("FATJIT_JIT_STRESS", None)
        out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        if want is not None:
            assert out.stdout.split() == want.split()
        else:
            assert int(out.stdout.split()[0]) > 0


# The resolver's memo (ext/code_state.h, CodeState::direct_*): the last callee function of a code
# object and its first specialization, valid while no specialization anywhere was added or
# dropped and the callee is the memo's function. Each case changes what the hook would pick.

def native_runs(func):
    """The native calls explain() reports for func's specialization (0 if it has none)."""
    import re
    m = re.search(r"(\d+) native calls", fatjit.explain(func))
    return int(m.group(1)) if m else 0


def test_memo_follows_the_callee_among_functions_of_one_code_object(jit):
    native, plain = jit("""
        def callee(x):
            return x + 1

        def caller(f, n):
            total = 0
            for i in range(n):
                total += f(i)
            return total
    """, "caller", "callee")
    import types
    other = types.FunctionType(native.callee.__code__, native.__dict__, "other")
    special = new_module("def callee(x):\n    return x + 100\n").callee
    warm(lambda: native.caller(native.callee, 3))
    fatjit.specialize(other, special.__code__, [fatjit.GuardGlobals("caller")])  # swapped code
    try:
        for _ in range(3):  # alternate the callees at the same call site
            assert native.caller(native.callee, 10) == plain.caller(plain.callee, 10) == 55
            assert native.caller(other, 10) == 1045
        before = direct_calls()
        native.caller(native.callee, 10)
        assert_direct_calls(direct_calls() - before, 10)
        # The specialization dropped: no native code for it; made again: native again.
        fatjit.unspecialize(native.callee)
        runs = native_runs(native.caller)
        before = direct_calls()
        assert native.caller(native.callee, 10) == 55
        assert_direct_calls(direct_calls() - before, 0)
        fatjit.jit(native.callee)
        warm(lambda: native.caller(native.callee, 3))
        before = direct_calls()
        assert native.caller(native.callee, 10) == 55
        assert_direct_calls(direct_calls() - before, 10)
        assert native_runs(native.caller) > runs
    finally:
        fatjit.unspecialize(other)


def test_memo_sees_a_new_function_where_a_dead_callee_was(jit):
    native, plain = jit("""
        def make(k):
            def callee(x):
                return x + k
            return callee

        def caller(f, n):
            total = 0
            for i in range(n):
                total += f(i)
            return total
    """, "caller")
    # Each round: a compiled closure becomes the memo's function, then dies with its
    # specialization still attached (Dispatch drops it later); a new closure, not specialized,
    # often gets the dead one's address. Its calls must not run the dead one's native code.
    reused = 0
    for k in range(20):
        f = native.make(k)
        fatjit.jit(f)
        for _ in range(3):
            native.caller(f, 2)
        old = id(f)
        del f
        g = native.make(k + 100)
        reused += id(g) == old
        before = direct_calls()
        assert native.caller(g, 10) == 45 + 10 * (k + 100)
        assert_direct_calls(direct_calls() - before, 0)
        del g
    assert reused > 0 or JIT_STRESS, "no address was reused: the case was not exercised"


# --- C functions and C methods (jit/runtime/builtin_call.h) ----------------------------------

def builtin_calls():
    return fatjit.stats()["jit"]["builtin_calls"]


BUILTIN_CALLS = """
    class Text(str):
        def lower(self):
            return "overridden"

    def shapes(s, items, table):
        out = []
        out.append(len(s))                           # builtin METH_O
        out.append(isinstance(s, str))               # builtin METH_FASTCALL
        out.append(sorted(items, key=abs, reverse=True))  # builtin FASTCALL|KEYWORDS
        out.append(s.lower())                        # method NOARGS
        out.append(s.strip(",."))                    # method FASTCALL
        out.append(s.startswith("a"))                # method (varargs in 3.11)
        out.append(s.split(sep=","))                 # method FASTCALL|KEYWORDS, by keyword
        out.append(table.get(s, 0))                  # dict.get: method FASTCALL
        items.append(s)                              # list.append: method O
        out.append(str.upper(s))                     # an unbound method descriptor
        return out

    def bad(case, s):
        if case == 0:
            return len()                             # METH_O with no argument
        if case == 1:
            return len(obj=s)                        # METH_O given a keyword
        if case == 2:
            return s.lower(1)                        # NOARGS given one
        if case == 3:
            return str.lower(5)                      # self of the wrong type
        if case == 4:
            return s.split(nosuch=1)                 # a keyword the method does not take
        if case == 5:
            return [].append(1, 2)                   # METH_O given two
        if case == 6:
            return {}.get()                          # FASTCALL that checks its count itself
        if case == 7:
            return str.split(sep=",")                # no self: the keyword value is not self
        if case == 8:
            return str.split(s, sep="y")             # self positional, then a keyword
        return s.lower()
"""


@pytest.mark.parametrize("s", ["a,b.", "Abc", "", "subclass"])
def test_builtin_calls_give_the_interpreters_results(jit, s):
    native, plain = jit(BUILTIN_CALLS, "shapes")
    s_plain = s
    if s == "subclass":  # self not exactly of the descriptor's type: the generic call
        s, s_plain = native.Text("Q,r"), plain.Text("Q,r")
    before = builtin_calls()
    got = warm(lambda: native.shapes(s, [3, -7, 1], {"Abc": 42}))
    assert got == plain.shapes(s_plain, [3, -7, 1], {"Abc": 42})
    # A subclass that overrides lower() runs its own method (LOAD_METHOD finds it; the
    # descriptor shapes never see it): "overridden" in both.
    assert builtin_calls() - before >= 3 * 6


@pytest.mark.parametrize("case", range(10))
def test_builtin_calls_raise_the_interpreters_errors(jit, case):
    native, plain = jit(BUILTIN_CALLS, "bad")
    for _ in range(3):
        assert outcome(lambda: native.bad(case, "Xy")) == outcome(lambda: plain.bad(case, "Xy"))


def test_builtin_calls_keep_refcounts(jit):
    native, _ = jit("""
        def f(s, items, table, n):
            for i in range(n):
                table.get(s, items)
                items.append(s)
                items.pop()
                len(items)
                s.strip(s)
            return len(s)
    """, "f")
    s, items, table = "xyz" * 3, [], {}
    warm(lambda: native.f(s, items, table, 2))
    counts = [sys.getrefcount(s), sys.getrefcount(items), sys.getrefcount(table)]
    before = builtin_calls()
    assert native.f(s, items, table, 1000) == 9
    assert builtin_calls() - before >= 5000
    assert [sys.getrefcount(s), sys.getrefcount(items), sys.getrefcount(table)] == counts


LIST_APPEND = """
    class Sub(list):
        pass

    class Appends(list):
        def append(self, item):
            list.append(self, ("own", item))

    class Borrowed:
        append = list.append                         # list's descriptor on another type

    def fill(target, items):
        for item in items:
            target.append(item)                      # inline when target is an exact list
        return target

    def temporary(item):
        return [].append(item)                       # the list's last reference is the stack's

    def borrowed(item):
        return Borrowed().append(item)               # TypeError from the descriptor
"""


@pytest.mark.parametrize("kind", ["list", "Sub", "Appends", "grown"])
def test_list_append_gives_the_interpreters_results(jit, kind):
    # CALL of list.append on an exact list with room is inline (ceval's
    # PRECALL_NO_KW_LIST_APPEND); a resize, a subclass and an override take the helper.
    native, plain = jit(LIST_APPEND, "fill", "temporary", "borrowed")
    items = [object(), "s", 3, None] * 50
    def target(module):
        if kind == "list":
            return []
        if kind == "grown":
            return list(range(7))                    # allocated == size: the first append grows
        return getattr(module, kind)()
    for _ in range(3):
        got, want = native.fill(target(native), items), plain.fill(target(plain), items)
        assert type(got).__name__ == type(want).__name__ and list(got) == list(want)
    assert native.temporary(1) is None
    assert outcome(lambda: native.borrowed(1)) == outcome(lambda: plain.borrowed(1))
    if kind == "list":  # the inline path is there (and the generic one behind it)
        ir = fatjit.explain(native.fill, ir=True)
        assert "list_append" in ir and "list_append_generic" in ir and "precall_unpack" in ir


def test_list_append_keeps_refcounts(jit):
    native, _ = jit(LIST_APPEND, "fill")
    item, target = object(), []
    native.fill([], [item])
    counts = [sys.getrefcount(item), sys.getrefcount(target)]
    before = builtin_calls()
    native.fill(target, [item] * 1000)
    assert builtin_calls() - before >= 1000            # counted as direct C calls
    assert len(target) == 1000
    assert sys.getrefcount(item) == counts[0] + 1000
    del target[:]
    assert [sys.getrefcount(item), sys.getrefcount(target)] == counts


def test_builtin_call_recursion_is_counted(jit):
    # A C call counts one level of recursion, as the generic call does: the same depth limit.
    native, plain = jit("""
        import sys

        def down(n):
            return n if n == 0 else max(down(n - 1), 0)

        def deepest():
            n = 10
            try:
                while True:
                    down(n)
                    n += 10
            except RecursionError:
                return n
    """, "down", "deepest")
    assert native.deepest() == plain.deepest()


def test_recursion_through_fastcall_builtins_fails_at_the_interpreters_depth(jit):
    # getattr() and sorted() are METH_FASTCALL: the interpreter's specialized calls of them count
    # no recursion level (only its generic call does), so neither does native code. Counting one
    # made getattr() -> __getattr__ recursion fail at half the depth (CPython's test_support).
    native, plain = jit("""
        class G:
            __jit__ = ("__getattr__",)

            def __init__(self, n):
                self.n = n

            def __getattr__(self, name):
                if self.n:
                    return getattr(G(self.n - 1), name)
                return 0

        def by_key(n):
            if n:
                sorted([n - 1], key=by_key)
            return 0

        def deepest(f):
            n = 1
            try:
                while True:
                    f(n)
                    n += 1
            except RecursionError:
                return n
    """, "G", "by_key", "deepest")
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(300)
    try:
        for module in (plain, native):  # the interpreter's copy warmed up: its calls specialized
            for _ in range(3):
                got = (module.deepest(lambda n: module.G(n).x), module.deepest(module.by_key))
        assert got == (plain.deepest(lambda n: plain.G(n).x), plain.deepest(plain.by_key))
        assert got[0] > 250  # one level per __getattr__ call, not two
    finally:
        sys.setrecursionlimit(old)


def test_native_code_dropped_by_its_own_call_stays_until_that_call_returns(jit):
    # fatjit.unspecialize(victim) inside victim frees its specialization; the machine code the
    # call is running stays (pinned, jit/native_code.h) until the call returns, then is freed.
    native, plain = jit("""
        import fatjit, gc

        def victim(n, drop):
            total = 0
            for i in range(n):
                if drop and i == 3:
                    fatjit.unspecialize(victim)
                    gc.collect()
                    [object() for _ in range(1000)]  # reuse freed memory, if any was
                total += i * 2
            return total

        def caller(n, drop):
            return victim(n, drop) + 1
    """, "victim", "caller")
    native.fatjit = fatjit
    for _ in range(3):  # the code exists: compiled, native calls
        assert native.caller(10, False) == plain.caller(10, False)
    assert "native code" in fatjit.explain(native.victim)
    before = fatjit.stats()["jit"]["code_bytes"]
    before_direct = direct_calls()
    # Called directly from the compiled caller (native_call.h): dropped mid-call.
    assert native.caller(10, True) == plain.caller(10, False)
    assert direct_calls() - before_direct >= 1
    assert fatjit.stats()["jit"]["code_bytes"] < before  # freed once the call returned
    assert "native code" not in fatjit.explain(native.victim)
    # Through the hook (a call from this interpreted test): the same.
    fatjit.jit(native.victim)
    for _ in range(3):
        assert native.victim(10, False) == plain.victim(10, False)
    before = fatjit.stats()["jit"]["code_bytes"]
    assert native.victim(10, True) == plain.victim(10, False)
    assert fatjit.stats()["jit"]["code_bytes"] < before


KEYWORD_CALLS = """
    def callee(a, b=2, /, c=3, d=None, *, e=5, f):
        return a, b, c, d, e, f

    def plain_kw(x, y=10, z=20):
        return x, y, z

    def good():
        return [plain_kw(1, z=3), plain_kw(x=1), plain_kw(1, y=2, z=3), plain_kw(z=0, x=1),
                callee(1, f=6), callee(1, 2, d=4, f=6, c=0), callee(0, e=1, f=2),
                callee(1, 2, 3, 4, f=0, e=9)]

    def bad(case):
        if case == 0:
            return plain_kw(1, x=2)            # a second value for x
        if case == 1:
            return plain_kw(1, w=2)            # no such parameter
        if case == 2:
            return callee(1, b=2, f=3)         # positional-only given by keyword
        if case == 3:
            return callee(1)                   # keyword-only f missing
        if case == 4:
            return plain_kw(y=1)               # x missing
        return callee(1, 2, 3, 4, 5, f=6)      # too many positional
"""


def test_keyword_calls_bind_as_the_interpreter_binds(jit):
    native, plain = jit(KEYWORD_CALLS, "callee", "plain_kw", "good", "bad")
    assert warm(native.good) == warm(plain.good)
    before = direct_calls()
    assert native.good() == plain.good()
    assert_direct_calls(direct_calls() - before, 8)  # every call above binds directly
    for case in range(6):
        assert outcome(lambda: native.bad(case)) == outcome(lambda: plain.bad(case)), case
    # Defaults and keyword-only defaults are read at call time.
    native.callee.__kwdefaults__ = {"e": 50, "f": 60}
    plain.callee.__kwdefaults__ = {"e": 50, "f": 60}
    assert native.good() == plain.good()
    assert native.bad(3) == plain.bad(3)
    native.callee.__kwdefaults__ = plain.callee.__kwdefaults__ = None
    assert outcome(native.good) == outcome(plain.good)


def test_keyword_calls_keep_refcounts(jit):
    native, _ = jit("""
        def callee(a, *, key=None, other=None):
            return key

        def caller(a, b, n):
            for i in range(n):
                callee(a, key=b)
                callee(a, other=a, key=b)
                callee(a)
            return callee(b, key=a)
    """, "callee", "caller")
    a, b = object(), object()
    warm(lambda: native.caller(a, b, 2))
    counts = [sys.getrefcount(a), sys.getrefcount(b)]
    before = direct_calls()
    assert native.caller(a, b, 1000) is a
    assert direct_calls() - before >= 3000
    assert [sys.getrefcount(a), sys.getrefcount(b)] == counts


BROKEN_C_CALLS = """
def call(f):
    return f()
"""


@pytest.mark.parametrize("name", ["return_null_without_error", "return_result_with_error"])
def test_c_functions_that_break_the_api_contract_raise_the_interpreters_system_error(jit, name):
    # A C function returning NULL with no exception set, or a result with one set: the direct C
    # call must check the result as PyObject_Vectorcall does (it used to resume the frame with a
    # NULL on its stack: a crash in CPython's test_capi).
    testcapi = pytest.importorskip("_testcapi", reason="CPython's _testcapi is not installed")
    native, plain = jit(BROKEN_C_CALLS, "call")
    func = getattr(testcapi, name)
    before = builtin_calls()
    for _ in range(3):
        got, want = outcome(lambda: native.call(func)), outcome(lambda: plain.call(func))
        assert got == want
        assert want[1][0] is SystemError and name in want[1][1], want
    assert builtin_calls() - before >= 3


# --- the call site's cache (jit/runtime/call_cache.h) ----------------------------------------

def test_call_site_cache_sees_the_callees_code_replaced(jit):
    # (K, a global: a callee of pure arithmetic on its arguments would be inlined into caller's
    # numeric loop, lower_numeric_loops.cc, and make no call at all)
    native, plain = jit(callee_and_caller("x + K - 9"), "callee", "caller")
    assert warm(lambda: native.caller(10)) == plain.caller(10) == 55
    original = native.callee.__code__
    replacement = new_module("def callee(x):\n    return x + 100\n").callee.__code__
    native.callee.__code__ = plain.callee.__code__ = replacement
    try:
        assert native.caller(10) == plain.caller(10) == 1045
    finally:
        native.callee.__code__ = plain.callee.__code__ = original
    before = direct_calls()
    assert native.caller(10) == plain.caller(10) == 55
    assert_direct_calls(direct_calls() - before, 10)


def test_call_site_cache_checks_the_callees_guards_at_every_call(jit):
    native, plain = jit("""
        K = 1

        def callee(x):
            return x + K

        def flip():
            global K
            K = 3 - K

        def caller(n):
            t = 0
            for i in range(n):
                t += callee(i)  # the guard on K passes and fails in turn at this site
                flip()
            return t
    """, "callee", "caller")
    warm(lambda: native.caller(4))
    assert "GuardGlobals(K)" in fatjit.explain(native.callee)
    for _ in range(3):
        assert native.caller(10) == plain.caller(10) == 60
    before = direct_calls()
    assert native.caller(10) == plain.caller(10) == 60
    assert_direct_calls(direct_calls() - before, 5)  # the calls while K == 1


def test_call_site_cache_follows_unspecialize_and_a_new_compile(jit):
    native, plain = jit(callee_and_caller("x + K - 11"), "callee", "caller")  # (K: as above)
    assert warm(lambda: native.caller(10)) == plain.caller(10)
    for round in range(3):
        fatjit.unspecialize(native.callee)
        before = direct_calls()
        assert native.caller(10) == plain.caller(10) == 35
        assert_direct_calls(direct_calls() - before, 0)
        fatjit.jit(native.callee)
        warm(lambda: native.caller(2))
        before = direct_calls()
        assert native.caller(10) == plain.caller(10) == 35
        assert_direct_calls(direct_calls() - before, 10)


def test_call_site_cache_serves_a_site_that_calls_many_functions(jit):
    # One site, twelve callees in turn: more than the cache's entries, so entries are replaced
    # while others are reused; every call must run its own callee.
    source = "".join(f"def f{k}(x):\n    return x * {k + 2}\n\n" for k in range(12)) + """
def caller(functions, n):
    t = 0
    for i in range(n):
        t += functions[i % len(functions)](i)
    return t
"""
    native, plain = jit(source, "caller", *[f"f{k}" for k in range(12)])
    for count in (3, 8, 12):
        args_native = [getattr(native, f"f{k}") for k in range(count)]
        args_plain = [getattr(plain, f"f{k}") for k in range(count)]
        warm(lambda: native.caller(args_native, count))
        before = direct_calls()
        assert native.caller(args_native, 120) == plain.caller(args_plain, 120)
        assert_direct_calls(direct_calls() - before, 120)
