"""fatjit's benchmark suite: small self-checking programs, one module each.

Every module is one program with the same interface, which benchmarks/run.py and
benchmarks/worker.py rely on:

    CATEGORY = "numeric"            # numeric, calls, objects, strings, generators, globals
    SIZES = {"quick": 10, "full": 100_000}   # the argument n of run() in each setting
    HOT = ["kernel", "Task.step"]   # what the fatjit-specialize and fatjit-jit modes decorate:
                                    # module-level functions or Class.method, by name
    NUMBA = ["kernel"]              # optional: functions @njit'ed in the numba mode, the entry
                                    # point that run(n) calls first (compiled for (int64,) up
                                    # front, so compile time is measured apart), then its helpers
    NATIVE = True                   # optional: benchmarks/native/kernels.cc has this kernel

    def run(n): ...                 # the timed work; returns a JSON-serializable result
    def check(n, result): ...       # raises Mismatch unless result is right for n, using an
                                    # independent computation (closed form, another algorithm,
                                    # or the standard library), never the timed code itself

run() must be deterministic and keep to Python 3.9 syntax (Debian's pypy3 is 3.9). Integer
results of the numeric kernels stay within int64 so that Numba and C++ compute the same values.
check() runs in the runner's CPython, outside any timing, on the result every mode returned.

To add a program: write suite/<name>.py with that interface, pick SIZES so that run(full) takes
0.1-0.5 s on CPython 3.11 and run(quick) a few ms, and add <name> to NAMES below.
"""

NAMES = [
    # numeric kernels (also in the numba and native modes)
    "int_loop", "float_loop", "nbody", "spectral_norm", "mandelbrot", "matmul", "sieve",
    # call-heavy
    "fib", "method_chain",
    # object-oriented
    "scheduler", "stack_vm", "particles",
    # strings and dicts
    "tokenizer", "word_count", "json_encode", "csv_roundtrip", "shortest_paths",
    # generators
    "generators",
    # globals and builtins
    "globals_builtins",
]


class Mismatch(AssertionError):
    """A benchmark returned a wrong result."""


def expect(what, got, want, rel=None):
    """Raises Mismatch unless got == want (or, with rel, each float is within rel of want)."""
    if rel is None:
        ok = _lists(got) == _lists(want)
    else:
        gots = got if isinstance(got, (list, tuple)) else [got]
        wants = want if isinstance(want, (list, tuple)) else [want]
        ok = len(gots) == len(wants) and all(
            abs(g - w) <= rel * max(abs(w), 1e-300) for g, w in zip(gots, wants))
    if not ok:
        raise Mismatch("%s: got %r, expected %r%s" % (
            what, got, want, "" if rel is None else " (relative tolerance %g)" % rel))


def _lists(value):
    """value with every tuple turned into a list, as a JSON round trip does."""
    if isinstance(value, (list, tuple)):
        return [_lists(v) for v in value]
    return value
