"""What the AST specializer's import hook (FATJIT=auto FATJIT_AST=1) costs at import time, and
what it brings on the benchmark suite, side by side.

    python3 benchmarks/ast_import_cost.py                   # ~30 stdlib modules, 5 rounds
    python3 benchmarks/ast_import_cost.py --suite globals_builtins,nbody --n full

Imports: each module is imported in a fresh process (its own dependencies included, as a
program would), timed in-process around the import statement with perf_counter (wall) and
process_time (CPU time of the process: what to compare on a loaded machine); the median of the
rounds is reported per mode, and the totals for both clocks:
  cpython      plain python3, .pyc files present (warm)
  auto         FATJIT=auto, no hook: automatic mode's own cost
  ast-first    FATJIT=auto FATJIT_AST=1, .pyc present, AST cache absent: parse, passes,
               second compile, cache write, registration
  ast-second   the same again: a cache hit, the AST cache file read in place of the .pyc (it
               holds the module's code object and its specializations), then each
               specialization registered once the module body ran
Every mode uses a private PYTHONPYCACHEPREFIX (copied from a warmed one), so the runs never write
into the interpreter's own __pycache__ directories. Modules imported at start-up (before the
hook is installed) are not transformed: the list avoids them.

Together (--together N): all the modules imported in one process (as one program would), N
interleaved runs per mode after one ast-first run has filled the cache; min and median CPU time.
One more mode there, auto-at-start: automatic mode turned on before the imports (as FATJIT_AST=1
turns it on, since its hook must see every import) where plain FATJIT=auto counts calls with its
light start-up hook until a function gets hot; ast-second minus auto-at-start, run by run, is
the hook's own cost.
What a program pays once (loading the hook's registration code, the version stamp) counts once
here, where the per-module rows above pay it per module.

Suite (--suite): benchmarks/worker.py per program in modes cpython, auto (python -m fatjit)
and auto+ast (the same with FATJIT_AST=1), median of the timed calls, 3 processes each.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DEFAULT_PACKAGE = os.path.join(ROOT, "build", "python")

MODULES = ["argparse", "ast", "base64", "calendar", "colorsys", "configparser", "csv",
           "dataclasses", "difflib", "email.message", "fractions", "gettext", "glob",
           "graphlib", "heapq", "html.parser", "http.client", "inspect", "json", "queue",
           "logging", "pathlib", "pprint", "random", "shlex", "statistics", "string",
           "textwrap", "tokenize", "tomllib", "urllib.parse", "uuid", "zipfile"]

PROGRAM = """
import sys, time
t0, c0 = time.perf_counter(), time.process_time()
import {module}
t1, c1 = time.perf_counter(), time.process_time()
import json
out = {{"import_s": t1 - t0, "import_cpu_s": c1 - c0}}
if "fatjit._ast" in sys.modules:
    out["ast"] = sys.modules["fatjit._ast"].stats()
print("AST-COST " + json.dumps(out))
"""


# FATJIT_* settings given to every fatjit mode (--jit-threshold).
FATJIT_SETTINGS = {}


def environment(package, prefix, mode):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("FATJIT") and k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
    env["PYTHONPATH"] = package
    env["PYTHONPYCACHEPREFIX"] = prefix
    if mode != "cpython":
        env["FATJIT"] = "auto"
        env.update(FATJIT_SETTINGS)
    if mode.startswith("ast"):
        env["FATJIT_AST"] = "1"
    return env


def measure(python, package, prefix, mode, module):
    done = subprocess.run([python, "-c", PROGRAM.format(module=module)],
                          env=environment(package, prefix, mode), capture_output=True,
                          text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{mode} {module}: {done.stderr.strip()[-500:]}")
    line = [l for l in done.stdout.splitlines() if l.startswith("AST-COST ")][-1]
    return json.loads(line[len("AST-COST "):])


def import_costs(args):
    work = tempfile.mkdtemp(prefix="fatjit-ast-cost-")
    warm = os.path.join(work, "warm")
    modules = args.modules.split(",") if args.modules else MODULES
    rows = {}
    try:
        for module in modules:  # warm the .pyc files of every module and its dependencies
            measure(args.python, args.package, warm, "cpython", module)
        for module in modules:
            times = {"cpython": [], "auto": [], "ast-first": [], "ast-second": []}
            cpu = {mode: [] for mode in times}
            functions = transformed = 0
            for _ in range(args.rounds):
                for mode in ("cpython", "auto"):
                    done = measure(args.python, args.package, warm, mode, module)
                    times[mode].append(done["import_s"])
                    cpu[mode].append(done["import_cpu_s"])
                fresh = os.path.join(work, "fresh")
                shutil.rmtree(fresh, ignore_errors=True)
                shutil.copytree(warm, fresh)
                first = measure(args.python, args.package, fresh, "ast-first", module)
                second = measure(args.python, args.package, fresh, "ast-second", module)
                times["ast-first"].append(first["import_s"])
                times["ast-second"].append(second["import_s"])
                cpu["ast-first"].append(first["import_cpu_s"])
                cpu["ast-second"].append(second["import_cpu_s"])
                functions = second.get("ast", {}).get("functions_deferred", 0)
                transformed = second.get("ast", {}).get("modules_specialized", 0)
                assert second.get("ast", {}).get("cache_misses", 0) == 0, (module, second)
            rows[module] = ({mode: statistics.median(v) for mode, v in times.items()},
                            functions, transformed,
                            {mode: statistics.median(v) for mode, v in cpu.items()})
            med = rows[module][0]
            print(f"{module:16} cpython {med['cpython'] * 1e3:7.2f} ms  auto {med['auto'] * 1e3:7.2f}"
                  f"  ast-first {med['ast-first'] * 1e3:7.2f}  ast-second "
                  f"{med['ast-second'] * 1e3:7.2f}   modules specialized {transformed:3d}, "
                  f"functions {functions:4d}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for label, column in (("wall", 0), ("cpu", 3)):
        total = {mode: sum(r[column][mode] for r in rows.values()) for mode in
                 ("cpython", "auto", "ast-first", "ast-second")}
        print(f"\n{'total ' + label:16} cpython {total['cpython'] * 1e3:7.1f} ms  auto "
              f"{total['auto'] * 1e3:7.1f}  ast-first {total['ast-first'] * 1e3:7.1f}  ast-second "
              f"{total['ast-second'] * 1e3:7.1f}   (sum of per-module medians over {len(rows)} "
              f"modules, {args.rounds} rounds; {label} = "
              f"{'perf_counter' if label == 'wall' else 'process_time: robust to a loaded machine'})")
        print(f"ratios vs auto: ast-first {total['ast-first'] / total['auto']:.2f}x, "
              f"ast-second {total['ast-second'] / total['auto']:.2f}x; vs cpython: auto "
              f"{total['auto'] / total['cpython']:.2f}x, ast-first "
              f"{total['ast-first'] / total['cpython']:.2f}x, ast-second "
              f"{total['ast-second'] / total['cpython']:.2f}x")


def together(args):
    modules = args.modules.split(",") if args.modules else MODULES
    program = PROGRAM.replace("import {module}", "\n".join(f"import {m}" for m in modules))
    program = program.replace("{{", "{").replace("}}", "}")
    work = tempfile.mkdtemp(prefix="fatjit-ast-cost-")
    prefix = os.path.join(work, "prefix")

    # automatic mode turned on before the imports, as FATJIT_AST=1 turns it on (the hook must
    # see every import): the baseline that isolates the hook's own cost
    at_start = "import _fatjit_boot\n_fatjit_boot.hand_over()\n" + program

    def run(mode):
        done = subprocess.run([args.python, "-c", at_start if mode == "auto-at-start" else program],
                              env=environment(args.package, prefix, mode), capture_output=True,
                              text=True, timeout=300)
        if done.returncode != 0:
            raise RuntimeError(f"{mode}: {done.stderr.strip()[-500:]}")
        line = [l for l in done.stdout.splitlines() if l.startswith("AST-COST ")][-1]
        return json.loads(line[len("AST-COST "):])
    try:
        run("cpython")  # .pyc files
        first = run("ast-first")
        cpu = {"cpython": [], "auto": [], "auto-at-start": [], "ast-second": []}
        for _ in range(args.together):
            for mode in cpu:
                done = run(mode)
                cpu[mode].append(done["import_cpu_s"])
                if mode == "ast-second":
                    assert done["ast"].get("cache_misses", 0) == 0, done["ast"]
                    functions = done["ast"].get("functions_deferred", 0)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{len(modules)} modules in one process, {args.together} interleaved runs per mode; "
          f"first import (cache filled) {first['import_cpu_s'] * 1e3:.0f} ms CPU; "
          f"{functions} functions registered (for their first call) on the second")
    for mode, values in cpu.items():
        print(f"{mode:14} CPU min {min(values) * 1e3:7.2f} ms  median "
              f"{statistics.median(values) * 1e3:7.2f} ms")
    for label, pick in (("min", min), ("median", statistics.median)):
        print(f"ast-second vs auto ({label}): {pick(cpu['ast-second']) / pick(cpu['auto']):.3f}x; "
              f"vs auto-at-start: {pick(cpu['ast-second']) / pick(cpu['auto-at-start']):.3f}x; "
              f"auto vs cpython: {pick(cpu['auto']) / pick(cpu['cpython']):.3f}x")
    # the runs were interleaved: the per-run difference cancels the machine's slow drifts
    paired = sorted(a - b for a, b in zip(cpu["ast-second"], cpu["auto-at-start"]))
    quarter = len(paired) // 4
    print(f"ast-second - auto-at-start per run: median {statistics.median(paired) * 1e3:+.2f} ms, "
          f"middle half {paired[quarter] * 1e3:+.2f} .. {paired[-quarter - 1] * 1e3:+.2f} ms")


def suite(args):
    rows = []
    for bench in args.suite.split(","):
        sizes = {}
        out = subprocess.run([args.python, "-c", f"import sys; sys.path.insert(0, {HERE!r}); "
                              f"import suite.{bench} as m; print(m.SIZES[{args.n!r}])"],
                             capture_output=True, text=True, check=True)
        n = int(out.stdout.strip())
        for mode in ("cpython", "auto", "auto+ast"):
            medians = []
            for _ in range(args.processes):
                with tempfile.TemporaryDirectory() as prefix:
                    env = environment(args.package, prefix,
                                      {"cpython": "cpython", "auto": "auto",
                                       "auto+ast": "ast"}[mode])
                    command = [args.python] + (["-m", "fatjit"] if mode != "cpython" else []) + [
                        os.path.join(HERE, "worker.py"), bench, str(n), "--warmups", "1",
                        "--runs", "3"]
                    done = subprocess.run(command, env=env, capture_output=True, text=True,
                                          timeout=900, cwd=HERE)
                    if done.returncode != 0:
                        raise RuntimeError(f"{bench} {mode}: {done.stderr[-500:]}")
                    line = [l for l in done.stdout.splitlines()
                            if l.startswith("FATJIT-BENCH ")][-1]
                    medians.append(statistics.median(json.loads(line[13:])["times"]))
            sizes[mode] = statistics.median(medians)
        rows.append((bench, sizes))
        print(f"{bench:18} cpython {sizes['cpython'] * 1e3:9.2f} ms  auto "
              f"{sizes['auto'] * 1e3:9.2f} ms  auto+ast {sizes['auto+ast'] * 1e3:9.2f} ms   "
              f"auto+ast vs auto {sizes['auto'] / sizes['auto+ast']:.2f}x faster, vs cpython "
              f"{sizes['cpython'] / sizes['auto+ast']:.2f}x", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--package", default=DEFAULT_PACKAGE,
                        help="directory holding the fatjit package (default build/python)")
    parser.add_argument("--modules", help="comma-separated module names (default: ~30 stdlib)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--together", type=int, metavar="N",
                        help="import all the modules in one process, N runs per mode")
    parser.add_argument("--suite", help="comma-separated suite programs: run those instead")
    parser.add_argument("--n", default="quick", choices=("quick", "full"))
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--jit-threshold", metavar="CALLS",
                        help="FATJIT_JIT_THRESHOLD for the fatjit modes (e.g. off: the hook's "
                             "own cost without the compiler thread's CPU time)")
    args = parser.parse_args()
    if args.jit_threshold is not None:
        FATJIT_SETTINGS["FATJIT_JIT_THRESHOLD"] = args.jit_threshold
    if args.suite:
        suite(args)
    elif args.together:
        together(args)
    else:
        import_costs(args)


if __name__ == "__main__":
    main()
