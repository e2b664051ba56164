"""int_loop: an integer loop (a linear congruential generator, bit and modulo arithmetic, a branch).

Exercises BINARY_OP on small ints, COMPARE_OP, a data-dependent branch, and FOR_ITER over range.
Check: the same sequence generated into a list, then summed by a generator expression.
"""

from suite import expect

CATEGORY = "numeric"
SIZES = {"quick": 2_000, "full": 1_000_000}
HOT = ["kernel"]
NUMBA = ["kernel"]
NATIVE = True


def kernel(n):
    total = 0
    x = 12345
    for i in range(n):
        x = (x * 1103515245 + 12345) & 2147483647
        if x & 1:
            total += x % 1000
        else:
            total -= i % 13
    return total


def run(n):
    return kernel(n)


def check(n, result):
    xs = []
    x = 12345
    for _ in range(n):
        x = (x * 1103515245 + 12345) % 2147483648
        xs.append(x)
    want = sum(x % 1000 if x % 2 == 1 else -(i % 13) for i, x in enumerate(xs))
    expect("int_loop(%d)" % n, result, want)
