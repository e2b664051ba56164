"""float_loop: a float loop (Simpson's rule for the integral of 4 / (1 + x*x) over [0, 1], i.e. pi).

Exercises float BINARY_OP, int-to-float mixing and a loop-carried float accumulator.
Check: the same terms summed exactly with math.fsum (relative 1e-12), and the value of pi
(within the method's error).
"""

import math

from suite import expect

CATEGORY = "numeric"
SIZES = {"quick": 2_000, "full": 1_200_000}
HOT = ["kernel"]
NUMBA = ["kernel"]
NATIVE = True


def kernel(n):
    # n intervals (n even): h/3 * (f(0) + 4 f(h) + 2 f(2h) + ... + 4 f((n-1)h) + f(1))
    h = 1.0 / n
    total = 4.0 + 2.0  # f(0) + f(1)
    for i in range(1, n):
        x = i * h
        weight = 4.0 if i % 2 == 1 else 2.0
        total += weight * 4.0 / (1.0 + x * x)
    return total * h / 3.0


def run(n):
    return kernel(n)


def check(n, result):
    h = 1.0 / n
    terms = [4.0, 2.0] + [(4.0 if i % 2 else 2.0) * 4.0 / (1.0 + (i * h) ** 2) for i in range(1, n)]
    expect("float_loop(%d)" % n, result, math.fsum(terms) * h / 3.0, rel=1e-12)
    expect("float_loop(%d) vs pi" % n, result, math.pi, rel=1e-9)
