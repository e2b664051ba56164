"""sieve: the sieve of Eratosthenes on a list of flags; the count and the sum of primes below n.

Exercises list stores in strided inner loops and a final scan.
Check: a second sieve built with bytearray slice assignment, summed with itertools.compress;
for n = 10**k also the known prime counts pi(n).
"""

import itertools

from suite import expect

CATEGORY = "numeric"
SIZES = {"quick": 10_000, "full": 1_500_000}
HOT = ["kernel"]
NUMBA = ["kernel"]
NATIVE = True
PRIME_COUNTS = {10**3: 168, 10**4: 1229, 10**5: 9592, 10**6: 78498, 10**7: 664579}


def kernel(n):
    flags = [True] * n
    flags[0] = False
    flags[1] = False
    i = 2
    while i * i < n:
        if flags[i]:
            for j in range(i * i, n, i):
                flags[j] = False
        i += 1
    count = 0
    total = 0
    for k in range(n):
        if flags[k]:
            count += 1
            total += k
    return (count, total)


def run(n):
    return kernel(n)


def check(n, result):
    flags = bytearray([1]) * n
    flags[0:2] = b"\0\0"
    for i in range(2, int(n ** 0.5) + 1):
        if flags[i]:
            flags[i * i::i] = bytes(len(range(i * i, n, i)))
    primes = list(itertools.compress(range(n), flags))
    expect("sieve(%d)" % n, result, (len(primes), sum(primes)))
    if n in PRIME_COUNTS:
        expect("sieve(%d) prime count" % n, result[0], PRIME_COUNTS[n])
