"""What compiling costs, per function and per tier: time, native code, memory (issue 6).

    python3 benchmarks/compile_cost.py [--copies 200] [--sample 1]

Two measurements, each in a fresh child process per tier (FATJIT_JIT_OPT fixes the tier, so no
tier-up runs behind the measurement): 0 is the baseline tier, 1 the optimizing tier
(ext/tuning.h, kOptimizingTier).

compile time   Every function of a fixed set of pure-Python stdlib modules (module functions
               and methods defined there, no generators or coroutines), compiled one by one
               through fatjit._fatjit._jit_report, which lowers and generates the code and then
               frees it. Reported: functions compiled, and the compile time per function (lowering
               plus code generation, as fatjit.stats() counts it) and native code size: median,
               90th percentile, max. The first compile of the process (it loads libLLVM) is done
               beforehand and not counted.

memory         What a compiled function keeps: --copies distinct functions of each shape below
               (one code object each: a copy of a template with its own constants) are put under
               fatjit.jit and called once (compiled at that call, in the calling thread), and the
               process's resident memory (VmRSS) is read before and after, each time after
               gc.collect() and glibc's malloc_trim(0), so that freed heap is not counted. Reported
               per function: RSS growth and native code bytes (stats()["jit"]["code_bytes"]).
               The RSS growth includes the function objects and code objects (made after the
               first reading), which plain CPython pays too: the CPython column is that share,
               the same functions made and called without fatjit.

The shapes: `one_line` (return a * k + b), `ten_lines` (a loop with a branch and an accumulator),
`forty_lines` (four such blocks, a call to a builtin, a list and a dict built).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_FATJIT_PATH = os.path.join(ROOT, "build", "python")

MODULES = [
    "argparse", "ast", "base64", "bisect", "calendar", "colorsys", "configparser", "csv",
    "dataclasses", "difflib", "email.utils", "enum", "fnmatch", "fractions", "gettext", "glob",
    "heapq", "html", "inspect", "ipaddress", "json.decoder", "json.encoder", "pathlib", "pprint",
    "random", "shlex", "shutil", "statistics", "string", "tarfile", "textwrap", "tokenize",
    "urllib.parse", "zipfile",
]

BLOCK = """
    total{j} = 0
    for i in range(n):
        if i % 3 == {j}:
            total{j} += i * {k}
        else:
            total{j} -= a
"""

SHAPES = {
    "one_line": "def f{k}(a, n):\n    return a * {k} + n\n",
    "ten_lines": "def f{k}(a, n):" + BLOCK.format(j=0, k="{k}") + "    return total0 + a\n",
    "forty_lines": ("def f{k}(a, n):" + "".join(BLOCK.format(j=j, k="{k}") for j in range(4)) +
                    "    items = [total0, total1, total2, total3]\n"
                    "    table = {{'min': min(items), 'max': max(items), 'n': len(items)}}\n"
                    "    if table['n'] != 4:\n"
                    "        raise ValueError(table)\n"
                    "    for key in table:\n"
                    "        total0 += len(key)\n"
                    "    return total0 + total1 + total2 + total3 + table['max'] - table['min']\n"),
}

CHILD = r"""
import ctypes, gc, inspect, importlib, json, statistics, sys, time
mode, copies = sys.argv[1], int(sys.argv[2])
modules, shapes = json.loads(sys.argv[3]), json.loads(sys.argv[4])
if mode != "cpython":
    import fatjit
    from fatjit import _fatjit
    def warm(a):
        return a + 1
    _fatjit._jit_report(warm)  # loads libLLVM: not a compile's cost

libc = ctypes.CDLL("libc.so.6")

def rss_kb():
    gc.collect()
    libc.malloc_trim(0)
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

out = {}
if mode != "cpython":
    functions = []
    for name in modules:
        module = importlib.import_module(name)
        for value in list(vars(module).values()):
            candidates = [value]
            if inspect.isclass(value) and value.__module__ == module.__name__:
                candidates = [v for v in vars(value).values()]
            for f in candidates:
                f = getattr(f, "__func__", f)
                if (inspect.isfunction(f) and f.__module__ == module.__name__ and
                        not (f.__code__.co_flags & 0x3a0)):  # generators, coroutines
                    functions.append(f)
    times, sizes, refused = [], [], 0
    for f in functions:
        report = _fatjit._jit_report(f)
        if report["compiled"]:
            times.append(report["compile_s"] * 1e3)
            sizes.append(report["code_bytes"] / 1024)
        else:
            refused += 1
    out["sweep"] = {"functions": len(functions), "compiled": len(times), "refused": refused,
                    "times_ms": times, "code_kb": sizes}

out["memory"] = {}
for shape, template in shapes.items():
    namespace = {}
    before_code = fatjit.stats()["jit"]["code_bytes"] if mode != "cpython" else 0
    before = rss_kb()
    for k in range(copies):
        exec(template.format(k=k), namespace)
    made = [namespace["f%d" % k] for k in range(copies)]
    for f in made:
        if mode != "cpython":
            fatjit.jit(f)
        f(3, 10)
    after = rss_kb()
    code = (fatjit.stats()["jit"]["code_bytes"] - before_code) if mode != "cpython" else 0
    if mode != "cpython":
        assert all("JIT: native code" in fatjit.explain(f) for f in made), shape
    out["memory"][shape] = {"rss_kb": (after - before) / copies, "code_kb": code / 1024 / copies}
print("COMPILE-COST " + json.dumps(out))
"""


def run_child(mode, copies, fatjit_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FATJIT")}
    env["PYTHONPATH"] = fatjit_path
    if mode != "cpython":
        env["FATJIT_JIT_OPT"] = mode
        env["FATJIT_JIT_BACKGROUND"] = "0"
    done = subprocess.run([sys.executable, "-c", CHILD, mode, str(copies), json.dumps(MODULES),
                           json.dumps(SHAPES)], capture_output=True, text=True, env=env,
                          timeout=1800)
    for line in done.stdout.splitlines():
        if line.startswith("COMPILE-COST "):
            return json.loads(line[len("COMPILE-COST "):])
    raise SystemExit("child %s failed:\n%s%s" % (mode, done.stdout, done.stderr))


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=200,
                        help="functions of each shape for the memory figure (default 200)")
    parser.add_argument("--fatjit-path", default=DEFAULT_FATJIT_PATH,
                        help="directory holding the fatjit package (default build/python)")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args()
    tiers = {"0": "baseline (opt 0)", "1": "optimizing (opt 1)"}
    results = {mode: run_child(mode, args.copies, args.fatjit_path)
               for mode in ["cpython", *tiers]}
    print("Compile time per function, stdlib sweep (%d modules; each function compiled alone):"
          % len(MODULES))
    print("| tier | compiled / functions | median ms | p90 ms | max ms | code KB median | max |")
    print("|---|---|---|---|---|---|---|")
    for mode, label in tiers.items():
        sweep = results[mode]["sweep"]
        t, s = sweep["times_ms"], sweep["code_kb"]
        print("| %s | %d / %d | %.2f | %.2f | %.1f | %.1f | %.0f |" % (
            label, sweep["compiled"], sweep["functions"], statistics.median(t),
            percentile(t, 0.9), max(t), statistics.median(s), max(s)))
    print()
    print("Memory per compiled function (%d copies of each shape, RSS after gc + malloc_trim):"
          % args.copies)
    print("| shape | CPython RSS KB | " +
          " | ".join("%s RSS KB | code KB" % label for label in tiers.values()) + " |")
    print("|---|---|" + "---|---|" * len(tiers))
    for shape in SHAPES:
        row = [shape, "%.1f" % results["cpython"]["memory"][shape]["rss_kb"]]
        for mode in tiers:
            m = results[mode]["memory"][shape]
            row += ["%.1f" % m["rss_kb"], "%.1f" % m["code_kb"]]
        print("| " + " | ".join(row) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f)


if __name__ == "__main__":
    main()
