"""A compiled workload for the leak check (scripts/leak_check.sh): functions compiled by fatjit.jit
run many times through every way out of native code — return, error handed to the
interpreter's unwinder, deopt (tracing switched on by a callee) — then everything is dropped
again (unspecialize releases the native code). Checks its own results."""

import sys

import fatjit


def make():
    namespace = {"sys": sys, "__name__": "workload"}
    exec('''
def arith(n):
    t = 0
    for i in range(n):
        t += i * 2 - (i // 3)
    return t

def containers(n):
    d = {i: str(i) for i in range(n)}
    l = [v + "x" for v in d.values()]
    a, *rest = l or ["", ""]
    return len(d), a, len(rest), {*l} == set(l), (1, 2) + tuple(rest[:2])

def raises(n):
    caught = 0
    for i in range(n):
        try:
            {}[i]
        except KeyError:
            caught += 1
    return caught

def tracer(frame, event, arg):
    return None

def turn_tracing_on():
    sys.settrace(tracer)

def deopts(n):
    turn_tracing_on()
    t = 0
    for i in range(n):
        t += i
    sys.settrace(None)
    return t
''', namespace)
    return namespace


def main():
    for round_ in range(3):
        ns = make()
        funcs = [ns[name] for name in ("arith", "containers", "raises", "deopts")]
        for f in funcs:
            fatjit.jit(f)
        for _ in range(200):
            assert ns["arith"](50) == sum(i * 2 - (i // 3) for i in range(50))
            assert ns["containers"](10)[0] == 10
            assert ns["raises"](5) == 5
        assert ns["deopts"](10) == 45
        stats = fatjit.stats()["jit"]
        assert stats["native_calls"] > 0 and stats["raises"] > 0, stats
        assert stats["deopts"]["tracing"] > 0, stats
        for f in funcs:
            fatjit.unspecialize(f)
    print("workload ok:", fatjit.stats()["jit"]["native_calls"], "native calls")


if __name__ == "__main__":
    main()
