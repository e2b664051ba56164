"""fib: naive recursive Fibonacci, about 1.6^n Python calls.

Exercises the call path itself (every call goes through fatjit's PEP 523 hook when it is set),
a global lookup of the function and small-int arithmetic.
Check: the iterative recurrence.
"""

from suite import expect

CATEGORY = "calls"
SIZES = {"quick": 12, "full": 30}
HOT = ["fib"]
NUMBA = ["fib"]
NATIVE = True


def fib(n):
    if n < 2:
        return n
    return fib(n - 1) + fib(n - 2)


def run(n):
    return fib(n)


def check(n, result):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    expect("fib(%d)" % n, result, a)
