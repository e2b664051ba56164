"""matmul: n x n matrix multiply on lists of lists of floats (i-k-j order, rows hoisted).

Exercises nested list indexing, in-place float updates of list items, and list building.
The entries are small integers stored as floats, so every product and sum is exact and all
modes must agree bit for bit. Check: B transposed with zip and each entry computed with
sum(map(...)) over a row and a column.
"""

from suite import expect

CATEGORY = "numeric"
SIZES = {"quick": 12, "full": 140}
HOT = ["kernel"]
NUMBA = ["kernel"]
NATIVE = True


def kernel(n):
    a = [[float((i * 3 + j * 5) % 11 - 5) for j in range(n)] for i in range(n)]
    b = [[float((i * 7 + j * 2) % 13 - 6) for j in range(n)] for i in range(n)]
    c = [[0.0] * n for _ in range(n)]
    for i in range(n):
        ai = a[i]
        ci = c[i]
        for k in range(n):
            aik = ai[k]
            bk = b[k]
            for j in range(n):
                ci[j] += aik * bk[j]
    checksum = 0.0
    for i in range(n):
        ci = c[i]
        for j in range(n):
            checksum += ci[j] * ((i + 2 * j) % 17 - 8)
    return checksum


def run(n):
    return kernel(n)


def check(n, result):
    a = [[float((i * 3 + j * 5) % 11 - 5) for j in range(n)] for i in range(n)]
    b = [[float((i * 7 + j * 2) % 13 - 6) for j in range(n)] for i in range(n)]
    bt = list(zip(*b))
    want = sum(sum(map(float.__mul__, a[i], bt[j])) * ((i + 2 * j) % 17 - 8)
               for i in range(n) for j in range(n))
    expect("matmul(%d)" % n, result, want)
