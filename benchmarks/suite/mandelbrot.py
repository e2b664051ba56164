"""mandelbrot: escape-time iteration of z -> z*z + c over an n x n grid of [-2, 0.5] x [-1.25, 1.25].

Exercises a tight float loop with an early exit, nested in two counted loops.
Check: the same grid iterated point by point with Python complex numbers in a comprehension (the
same float operations, so the counts are exact), and a sanity bound on the area of the set.
"""

from suite import expect

CATEGORY = "numeric"
SIZES = {"quick": 24, "full": 220}
HOT = ["kernel"]
NUMBA = ["kernel"]
NATIVE = True
MAX_ITER = 60


def kernel(n):
    inside = 0
    iterations = 0
    for row in range(n):
        ci = -1.25 + 2.5 * row / n
        for col in range(n):
            cr = -2.0 + 2.5 * col / n
            zr = 0.0
            zi = 0.0
            k = 0
            while k < MAX_ITER:
                zr2 = zr * zr
                zi2 = zi * zi
                if zr2 + zi2 > 4.0:
                    break
                zi = 2.0 * zr * zi + ci
                zr = zr2 - zi2 + cr
                k += 1
            iterations += k
            if k == MAX_ITER:
                inside += 1
    return (inside, iterations)


def run(n):
    return kernel(n)


def _escape(c):
    z = 0j
    for k in range(MAX_ITER):
        if z.real * z.real + z.imag * z.imag > 4.0:
            return k
        z = complex(z.real * z.real - z.imag * z.imag + c.real, 2.0 * z.real * z.imag + c.imag)
    return MAX_ITER


def check(n, result):
    counts = [_escape(complex(-2.0 + 2.5 * col / n, -1.25 + 2.5 * row / n))
              for row in range(n) for col in range(n)]
    want = (counts.count(MAX_ITER), sum(counts))
    expect("mandelbrot(%d)" % n, result, want)
    area = 6.25 * result[0] / (n * n)  # the set's area is about 1.506
    if n >= 100 and not 1.4 < area < 1.7:
        expect("mandelbrot(%d) area" % n, area, 1.506, rel=0.1)
