"""method_chain: chains of small method calls on objects (fluent setters, getters, a property,
a subclass override and a super() call).

Exercises LOAD_METHOD/CALL on Python methods, attribute loads and stores on instances, a
property and super(): call-heavy object code, the case where dispatch cost shows.
Check: the same arithmetic written inline without objects.
"""

from suite import expect

CATEGORY = "calls"
SIZES = {"quick": 500, "full": 120_000}
HOT = ["Accumulator.add", "Accumulator.scale", "Accumulator.clamp", "Accumulator.value",
       "Accumulator.total", "Counting.add", "kernel"]


class Accumulator:
    def __init__(self, limit):
        self._value = 0
        self.limit = limit

    def add(self, k):
        self._value += k
        return self

    def scale(self, k):
        self._value = self._value * k
        return self

    def clamp(self):
        if self._value > self.limit:
            self._value = self._value % self.limit
        return self

    def value(self):
        return self._value

    @property
    def total(self):
        return self._value


class Counting(Accumulator):
    def __init__(self, limit):
        super().__init__(limit)
        self.adds = 0

    def add(self, k):
        self.adds += 1
        return super().add(k)


def kernel(n):
    plain = Accumulator(1_000_003)
    counting = Counting(999_983)
    checksum = 0
    for i in range(n):
        plain.add(i).scale(3).clamp()
        counting.add(i % 17).add(1).scale(2).clamp()
        checksum += plain.value() - counting.total
    return (plain.value(), counting.value(), counting.adds, checksum)


def run(n):
    return kernel(n)


def check(n, result):
    p, c, checksum = 0, 0, 0
    for i in range(n):
        p = (p + i) * 3
        if p > 1_000_003:
            p %= 1_000_003
        c = (c + i % 17 + 1) * 2
        if c > 999_983:
            c %= 999_983
        checksum += p - c
    expect("method_chain(%d)" % n, result, (p, c, 2 * n, checksum))
