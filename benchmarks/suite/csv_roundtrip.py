"""csv_roundtrip: format n records as CSV text (%-formatting, f-strings, str.join), then parse
the text back (split, int(), float(), dict building) and aggregate per group.

Exercises string formatting and parsing builtins, tuple unpacking and dict updates.
Check: the per-group aggregates computed from the records directly, without any text (the
values are chosen so that float formatting round-trips exactly).
"""

from suite import expect

CATEGORY = "strings"
SIZES = {"quick": 500, "full": 45_000}
HOT = ["write_csv", "read_csv"]
GROUPS = ["north", "south", "east", "west", "centre"]


def record(i):
    return (i, GROUPS[i * 7 % 5], (i * 37) % 1000, (i % 64) * 0.125, "item-%05d" % (i % 9973))


def write_csv(n):
    lines = ["id,group,qty,price,label"]
    for i in range(n):
        ident, group, qty, price, label = record(i)
        lines.append(f"{ident},{group},{qty},{price!r},{label}")
    return "\n".join(lines)


def read_csv(text):
    totals = {}
    lines = text.split("\n")
    header = lines[0].split(",")
    for line in lines[1:]:
        fields = dict(zip(header, line.split(",")))
        group = fields["group"]
        qty = int(fields["qty"])
        value = qty * float(fields["price"])
        entry = totals.get(group)
        if entry is None:
            entry = totals[group] = [0, 0, 0.0, ""]
        entry[0] += 1
        entry[1] += qty
        entry[2] += value
        if fields["label"] > entry[3]:
            entry[3] = fields["label"]
    return sorted([group] + entry for group, entry in totals.items())


def run(n):
    return read_csv(write_csv(n))


def check(n, result):
    totals = {}
    for i in range(n):
        _, group, qty, price, label = record(i)
        entry = totals.setdefault(group, [0, 0, 0.0, ""])
        entry[0] += 1
        entry[1] += qty
        entry[2] += qty * price
        entry[3] = max(entry[3], label)
    expect("csv_roundtrip(%d)" % n, result, sorted([g] + e for g, e in totals.items()))
