"""spectral_norm: the spectral norm of the infinite matrix a(i, j) = 1 / ((i+j)(i+j+1)/2 + i + 1),
truncated to n x n, by ten steps of the power method on A^T A.

Exercises a small helper called in the innermost loop (a(i, j)), float division, and list
indexing. Check: A materialized as a list of rows and multiplied with sum(map(...)) (relative
1e-12); for n >= 100 also the known limit 1.2742241528 (relative 1e-5: the truncation error
at n = 100 is 3e-6).
"""

import math

from suite import expect

CATEGORY = "numeric"
SIZES = {"quick": 20, "full": 150}
HOT = ["a", "times", "times_transposed", "kernel"]
NUMBA = ["kernel", "a", "times", "times_transposed"]
NATIVE = True


def a(i, j):
    return 1.0 / ((i + j) * (i + j + 1) // 2 + i + 1)


def times(v, n):
    out = [0.0] * n
    for i in range(n):
        s = 0.0
        for j in range(n):
            s += a(i, j) * v[j]
        out[i] = s
    return out


def times_transposed(v, n):
    out = [0.0] * n
    for i in range(n):
        s = 0.0
        for j in range(n):
            s += a(j, i) * v[j]
        out[i] = s
    return out


def kernel(n):
    u = [1.0] * n
    v = [0.0] * n
    for _ in range(10):
        v = times_transposed(times(u, n), n)
        u = times_transposed(times(v, n), n)
    vbv = 0.0
    vv = 0.0
    for i in range(n):
        vbv += u[i] * v[i]
        vv += v[i] * v[i]
    return math.sqrt(vbv / vv)


def run(n):
    return kernel(n)


def check(n, result):
    rows = [[1.0 / ((i + j) * (i + j + 1) // 2 + i + 1) for j in range(n)] for i in range(n)]
    cols = [list(col) for col in zip(*rows)]

    def ata(v):
        w = [sum(map(float.__mul__, row, v)) for row in rows]
        return [sum(map(float.__mul__, col, w)) for col in cols]

    u = [1.0] * n
    for _ in range(10):
        v = ata(u)
        u = ata(v)
    want = math.sqrt(sum(map(float.__mul__, u, v)) / sum(map(float.__mul__, v, v)))
    expect("spectral_norm(%d)" % n, result, want, rel=1e-12)
    if n >= 100:
        expect("spectral_norm(%d) vs its limit" % n, result, 1.2742241528, rel=1e-5)
