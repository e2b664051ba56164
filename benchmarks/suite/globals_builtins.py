"""globals_builtins: hot loops that read module globals (constants, a table, a helper function)
and builtins (len, abs, min, max, isinstance, ord) on every iteration: the loads a FAT-Python
specializer turns into constants under GuardGlobals/GuardBuiltins.

Exercises LOAD_GLOBAL (module and builtin), calls of a global helper and of builtins.
Check: the same formulas with every global and builtin bound to a local first, in a
comprehension-based formulation.
"""

from suite import expect

CATEGORY = "globals"
SIZES = {"quick": 2_000, "full": 160_000}
HOT = ["mix", "checksum", "kernel"]
MASK = 0xFFFFFF
SHIFT = 3
LIMIT = 5000
MIDPOINT = 2500
TABLE = [(k * 2654435761) % 65521 for k in range(256)]
WEIGHTS = (3, 5, 7, 11)
ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def mix(h, v):
    return ((h << SHIFT) ^ (h >> 7) ^ TABLE[v & 255]) & MASK


def checksum(values):
    h = 0
    for v in values:
        if isinstance(v, int):
            h = mix(h, v * WEIGHTS[v % len(WEIGHTS)])
            h += abs(v - MIDPOINT) + min(v, LIMIT) - max(0, v - LIMIT)
        else:
            h = mix(h, ord(v[0]) + len(v))
    return h & MASK


def kernel(n):
    values = []
    for i in range(n):
        if i % 5 == 0:
            values.append(ALPHABET[i % len(ALPHABET)] * (1 + i % 3))
        else:
            values.append((i * 7919) % 10007)
    return checksum(values)


def run(n):
    return kernel(n)


def check(n, result):
    table, weights, mask = list(TABLE), tuple(WEIGHTS), MASK
    values = [ALPHABET[i % 36] * (1 + i % 3) if i % 5 == 0 else (i * 7919) % 10007
              for i in range(n)]
    h = 0
    for v in values:
        if type(v) is str:
            x = ord(v[0]) + len(v)
            h = ((h << 3) ^ (h >> 7) ^ table[x % 256]) % (mask + 1)
        else:
            x = v * weights[v % 4]
            h = ((h << 3) ^ (h >> 7) ^ table[x % 256]) % (mask + 1)
            h += (v - 2500 if v > 2500 else 2500 - v) + (v if v < 5000 else 5000)
            h -= v - 5000 if v > 5000 else 0
    expect("globals_builtins(%d)" % n, result, h % (mask + 1))
