"""generators: a pipeline of generator functions (source, filter, map, a sliding-window sum,
yield from, and a generator expression), consumed by a for loop.

Exercises generator creation, resumption (SEND/YIELD_VALUE/FOR_ITER_GEN paths), yield from,
and a deque window. fatjit does not specialize generators yet: this case shows the fallback.
Check: the same pipeline computed with lists and slicing.
"""

import collections

from suite import expect

CATEGORY = "generators"
SIZES = {"quick": 2_000, "full": 500_000}
HOT = ["source", "evens", "scaled", "windows", "chained", "kernel"]


def source(n):
    for i in range(n):
        yield (i * 7919) % 10007


def evens(values):
    for x in values:
        if x % 2 == 0:
            yield x


def scaled(values, k):
    for x in values:
        yield x * k + 1


def windows(values, size):
    window = collections.deque()
    total = 0
    for x in values:
        window.append(x)
        total += x
        if len(window) > size:
            total -= window.popleft()
        if len(window) == size:
            yield total


def chained(n):
    yield from windows(scaled(evens(source(n)), 3), 4)
    yield from (x % 97 for x in source(n // 10))


def kernel(n):
    total = 0
    count = 0
    for i, value in enumerate(chained(n)):
        if i % 3 == 0:
            total += value
            count += 1
    return (count, total)


def run(n):
    return kernel(n)


def check(n, result):
    values = [(i * 7919) % 10007 for i in range(n)]
    scaled_evens = [x * 3 + 1 for x in values if x % 2 == 0]
    sums = [sum(scaled_evens[i - 3:i + 1]) for i in range(3, len(scaled_evens))]
    sums += [(i * 7919) % 10007 % 97 for i in range(n // 10)]
    picked = sums[::3]
    expect("generators(%d)" % n, result, (len(picked), sum(picked)))
