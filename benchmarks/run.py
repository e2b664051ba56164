"""fatjit's benchmark runner: every suite program in every mode, side by side, in one run.

    python3 benchmarks/run.py --quick     # CI: every program once in every available mode,
                                          # results checked; ~1.5 min on 2 cores
    python3 benchmarks/run.py --full      # the real figures: ~16 min on 2 cores today
    python3 benchmarks/run.py --full --only nbody,fib --modes cpython,pypy

Writes a table to stdout, JSON and a PNG bar chart of speed-ups (benchmarks/results/latest.* for
--full, benchmarks/results/quick.* for --quick, or --out PREFIX). Exit status 1 if any program
crashed, timed out or returned a wrong result in any mode; a mode that is not available is
reported as "n/a" with the reason and is never a failure.

Modes (each program runs as its own subprocess per mode, see worker.py):
  cpython            the runner's interpreter (--python), plain
  fatjit-specialize  the same interpreter, fatjit imported, the program's HOT functions passed
                     to fatjit.specialize(f) (the automatic specializer; n/a while
                     fatjit.specialize(f) raises NotImplementedError)
  fatjit-jit         the same with fatjit.jit(f): specialized, then compiled to native code at
                     the first call (n/a while fatjit has no `jit`; a JIT that exists but
                     compiles nothing, e.g. its backend does not load, FAILS every program)
  fatjit-auto        `python -m fatjit worker.py ...` with FATJIT_SPECIALIZE_THRESHOLD=0,
                     FATJIT_JIT_THRESHOLD=0, FATJIT_JIT_BACKGROUND=0: the program unchanged, and every function the
                     process calls (the stdlib's and the worker's too) specialized and compiled
                     at its first call: the stress setting, not the default thresholds (n/a
                     while there is no fatjit.__main__ or enable() takes no jit_threshold)
  fatjit-ast         `python -m fatjit worker.py ...` with FATJIT_AST=1 and
                     FATJIT_SPECIALIZE_THRESHOLD=2147483647 FATJIT_JIT_THRESHOLD=off: the suite module is imported
                     through the AST specializer's import hook (its cache in a private
                     PYTHONPYCACHEPREFIX), and nothing else is specialized or compiled: what
                     the import-time specializer alone brings
  pypy               Debian's pypy3 (--pypy), plain
  numba              the runner's interpreter, the program's NUMBA kernels under numba.njit;
                     compile time measured apart (only the numeric kernels have NUMBA)
  native             the numeric kernels in C++ -O2 (native/kernels.cc): the CMake target
                     build/benchmarks/native_kernels, else compiled here with g++ -O2

Timing discipline. Each (program, mode) sample is a fresh process that imports the program, sets
the mode up, makes W untimed warm-up calls of run(n) and then R timed calls (time.perf_counter;
std::chrono::steady_clock in native). P such processes per (program, mode); the modes of a
program are interleaved (cpython, pypy, ..., then the next repetition in a rotated order), so a
change of machine load during the run hits every mode alike instead of whichever ran last. The
table gives the median of all P x R timed calls, the spread of the per-process medians (pyperf's
point: variation between processes, from ASLR and hash seeds, exceeds variation within one),
and the speed-up: the median over the P repetitions of cpython's process median / the mode's
process median, two processes that ran back to back. Pairing makes the speed-up robust to
bursts of load from other work on the machine (a burst that hits one repetition moves one pair,
not the pooled median of one mode); the range of the paired ratios is its error bar. Last, the
geometric mean of the speed-ups per mode.
pyperf itself is not used: its Runner calibrates and spawns its own workers for one Python
benchmark at a time, so it cannot alternate modes that are different executables (pypy3, a C++
binary, python -m fatjit), and it is not installed for pypy3 or Debian's python3. This runner
keeps its discipline (several processes, discarded warm-ups, medians, spread).

Memory: the peak RSS of each process (VmHWM, which it reads from /proc/self/status at exit; not
ru_maxrss, into which Linux copies the parent's RSS at fork), the maximum over its processes.
Correctness: every call within a process must return the same value, and the runner checks
each process's value with the program's check() (independent computation, in this process).
A fatjit-jit or fatjit-auto process must also show that its mode was in effect (native calls,
no backend failure, see worker.py), or it fails: a result computed by the interpreter alone
must not pass as the JIT's.

JIT figures (fatjit-jit, fatjit-auto): those two modes run with FATJIT_LOG=compile, which writes
one line to stderr per compile (when it happens: during the warm-up calls, never in steady
state); the runner takes each compile's duration and code size from those lines and the rest
(compiles, code bytes, native calls, deopts, raises, refusals) from fatjit.stats()["jit"], and
prints them as a second table and into the JSON (cell "jit").
"""

import argparse
import datetime
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH_DIR)
sys.path.insert(0, BENCH_DIR)

import suite  # noqa: E402  (after the path insert)

MODES = ["cpython", "fatjit-specialize", "fatjit-jit", "fatjit-auto", "fatjit-ast", "pypy",
         "numba", "native"]
FATJIT_MODES = ("fatjit-specialize", "fatjit-jit", "fatjit-auto", "fatjit-ast")
JIT_MODES = ("fatjit-jit", "fatjit-auto")
MODE_LEGEND = [
    "fatjit-specialize: the program's HOT functions under fatjit.specialize (interpreted "
    "specialized bytecode)",
    "fatjit-jit: the same HOT functions under fatjit.jit: specialized, then compiled to native "
    "code at their first call; the rest of the program runs interpreted",
    "fatjit-auto: the program unchanged, run by `python -m fatjit` with "
    "FATJIT_SPECIALIZE_THRESHOLD=0 FATJIT_JIT_THRESHOLD=0: every function the process calls "
    "(the program's, the stdlib's, the worker's) is specialized and compiled at its first call; "
    "a stress setting, not the default thresholds",
    "fatjit-ast: the program unchanged, run by `python -m fatjit` with FATJIT_AST=1 (the suite "
    "module imported through the AST specializer's import hook) and the bytecode specializer's "
    "threshold out of reach: what the import-time specializer alone brings",
]
SETTINGS = {  # processes per (program, mode), warm-up calls and timed calls per process
    "quick": {"processes": 1, "warmups": 0, "runs": 1, "timeout": 300},
    "full": {"processes": 5, "warmups": 2, "runs": 3, "timeout": 900},
}
MARKER = "FATJIT-BENCH "
UNAVAILABLE = 3  # worker / native exit status: this mode cannot run this program


class Mode:
    """How to start a worker in one mode, or why that mode is not available."""

    def __init__(self, name, command=None, env=None, description="", reason=None):
        self.name = name
        self.command = command          # argv prefix; the worker's arguments follow
        self.env = env
        self.description = description  # interpreter / version, for the header and JSON
        self.reason = reason            # None if available, else why not

    @property
    def available(self):
        return self.reason is None

    def applies_to(self, module):
        if self.name == "numba":
            return bool(getattr(module, "NUMBA", None))
        if self.name == "native":
            return bool(getattr(module, "NATIVE", False))
        return True


# ---------------------------------------------------------------------------------------------
# Finding out which modes are available

def clean_env(extra_pythonpath=None):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("FATJIT") and k != "PYTHONPATH"}
    if extra_pythonpath:
        env["PYTHONPATH"] = extra_pythonpath
    return env


def probe(command, env, code):
    """(exit status, stripped stdout + stderr) of `command -c code`."""
    try:
        proc = subprocess.run(command + ["-c", code], env=env, capture_output=True, text=True,
                              timeout=120)
    except (OSError, subprocess.TimeoutExpired) as error:
        return -1, str(error)
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def last_line(text):
    return text.splitlines()[-1] if text else ""


def fatjit_modes(python, fatjit_path):
    env = clean_env(fatjit_path)
    code = ("import sys, fatjit; print(getattr(fatjit, '__file__', '?'))")
    status, out = probe([python], env, code)
    if status != 0:
        reason = ("fatjit is not importable with PYTHONPATH=%s (build it: ninja -C build): %s"
                  % (fatjit_path, last_line(out)))
        return [Mode(name, reason=reason) for name in FATJIT_MODES]
    where = "fatjit from %s" % os.path.dirname(os.path.dirname(last_line(out)))
    modes = []

    status, out = probe([python], env, (
        "import sys, fatjit\n"
        "def f(x):\n    return x + 1\n"
        "try:\n    fatjit.specialize(f)\n"
        "except NotImplementedError as e:\n    print(e); sys.exit(3)\n"))
    if status == 0:
        modes.append(Mode("fatjit-specialize", [python], env, where))
    else:
        why = ("automatic specializer not built yet (fatjit.specialize(func) raises "
               "NotImplementedError)") if status == 3 else "probe failed: " + last_line(out)
        modes.append(Mode("fatjit-specialize", reason=why))

    # fatjit-jit and fatjit-auto log each compile (FATJIT_LOG=compile: one line on stderr per
    # compile or refusal, written when it happens, never in steady state): run_worker reads the
    # per-function compile times and code sizes from those lines.
    jit_env = dict(env, FATJIT_LOG="compile")
    # A JIT that exists but cannot compile (its backend does not load, say) is a failure, not
    # "n/a": the mode stays available and every one of its processes fails, loudly.
    status, out = probe([python], env, JIT_PROBE)
    if status == 3:
        modes.append(Mode("fatjit-jit", reason="JIT tier not built yet (fatjit has no attribute "
                                               "jit)"))
    else:
        modes.append(Mode("fatjit-jit", [python], jit_env, where + "; " + (
            last_line(out) if status == 0 else "JIT PROBE FAILED: " + last_line(out))))

    # FATJIT_JIT_BACKGROUND=0: compiled in the calling thread at the first call, as documented
    # (automatic mode's default compiles on a background thread, so the first calls would run
    # bytecode while codegen is under way)
    auto_env = dict(jit_env, FATJIT_SPECIALIZE_THRESHOLD="0", FATJIT_JIT_THRESHOLD="0",
                    FATJIT_JIT_BACKGROUND="0")
    status, out = probe([python], env, (
        "import sys, importlib.util, fatjit\n"
        "if not importlib.util.find_spec('fatjit.__main__'): sys.exit(3)\n"
        "try:\n    fatjit.enable(specialize_threshold=0, jit_threshold=0)\n"
        "except TypeError as e:\n    print(e); sys.exit(4)\n"
        "fatjit.disable()\n"))
    if status == 0:
        modes.append(Mode("fatjit-auto", [python, "-m", "fatjit"], auto_env,
                          where + "; python -m fatjit with FATJIT_SPECIALIZE_THRESHOLD=0 "
                          "FATJIT_JIT_THRESHOLD=0"))
    else:
        why = ("automatic mode not built yet (no fatjit.__main__: `python -m fatjit` fails)"
               if status == 3 else "automatic mode has no JIT threshold yet (%s)" % last_line(out)
               if status == 4 else "probe failed: " + last_line(out))
        modes.append(Mode("fatjit-auto", reason=why))

    status, out = probe([python], env, (
        "import sys, importlib.util\n"
        "if not importlib.util.find_spec('fatjit._ast.import_hook'): sys.exit(3)\n"))
    if status == 0:
        # The hook's cache (and the suite's .pyc) go to a private directory, not the tree.
        prefix = tempfile.mkdtemp(prefix="fatjit-ast-bench-")
        ast_env = dict(env, FATJIT_AST="1", FATJIT_SPECIALIZE_THRESHOLD=str(2**31 - 1),
                       FATJIT_JIT_THRESHOLD="off", PYTHONPYCACHEPREFIX=prefix)
        ast_env.pop("PYTHONDONTWRITEBYTECODE", None)
        modes.append(Mode("fatjit-ast", [python, "-m", "fatjit"], ast_env,
                          where + "; python -m fatjit with FATJIT_AST=1, bytecode specializer "
                          "off (threshold 2**31-1), JIT off"))
    else:
        modes.append(Mode("fatjit-ast", reason="no AST specializer (fatjit._ast.import_hook)"
                          if status == 3 else "probe failed: " + last_line(out)))
    return modes


# fatjit-jit's probe: fails (status 3) without fatjit.jit, else prints how long loading the LLVM
# backend (libfatjit_llvm.so, at the first compile of a process) and compiling a one-line
# function take.
JIT_PROBE = """\
import sys, fatjit
if not hasattr(fatjit, "jit"):
    sys.exit(3)
def f(x):
    return x + 1
def g(x):
    return x + 2
fatjit.jit(f)(1)
first = fatjit.stats()["jit"]["compile_time_s"]
fatjit.jit(g)(1)
jit = fatjit.stats()["jit"]
if jit["compiled"] != 2:
    print("fatjit.jit compiled %d of 2 one-line functions: %s" % (jit["compiled"], jit["refused"]))
    sys.exit(1)
if "backend_load_s" in jit:
    print("JIT backend: loading LLVM %.1f ms per process (apart from compile time), compiling "
          "a one-line function %.1f ms" % (jit["backend_load_s"] * 1e3,
                                           (jit["compile_time_s"] - first) * 1e3))
else:
    print("JIT backend: first compile in a process %.1f ms (loads LLVM), the next %.1f ms" % (
        first * 1e3, (jit["compile_time_s"] - first) * 1e3))
"""


def pypy_mode(pypy):
    path = shutil.which(pypy)
    if path is None:
        return Mode("pypy", reason="%s not installed (apt-get install pypy3)" % pypy)
    status, out = probe([path], clean_env(), "import sys; print(sys.version.replace('\\n', ' '))")
    if status != 0:
        return Mode("pypy", reason="%s does not start: %s" % (path, last_line(out)))
    return Mode("pypy", [path], clean_env(), "%s: Python %s" % (path, out))


def numba_mode(python):
    env = clean_env()
    status, out = probe([python], env, "import numba; print(numba.__version__)")
    if status != 0:
        return Mode("numba", reason="numba not installed for %s (pip install -r requirements.txt)"
                    % python)
    return Mode("numba", [python], env, "numba %s on %s" % (last_line(out), python))


def native_mode(native_exe, out_dir):
    source = os.path.join(BENCH_DIR, "native", "kernels.cc")
    candidates = [native_exe] if native_exe else [
        os.path.join(REPO, "build", "benchmarks", "native_kernels")]
    for exe in candidates:
        if exe and os.access(exe, os.X_OK) and (
                native_exe or os.path.getmtime(exe) >= os.path.getmtime(source)):
            return Mode("native", [exe], clean_env(), "%s (CMake, -O2)" % exe)
    if native_exe:
        return Mode("native", reason="--native-exe %s is not an executable" % native_exe)
    compiler = shutil.which("g++") or shutil.which("c++")
    if compiler is None:
        return Mode("native", reason="no native_kernels built and no g++ to build it")
    exe = os.path.join(out_dir, ".native_kernels")
    if not (os.access(exe, os.X_OK) and os.path.getmtime(exe) >= os.path.getmtime(source)):
        command = [compiler, "-O2", "-std=c++20", "-o", exe, source]
        proc = subprocess.run(command, capture_output=True, text=True)
        if proc.returncode != 0:
            return Mode("native", reason="g++ failed: " + last_line(proc.stderr))
    return Mode("native", [exe], clean_env(), "%s (%s -O2, built by run.py)" % (exe, compiler))


def find_modes(args, out_dir):
    modes = {"cpython": Mode("cpython", [args.python], clean_env(),
                             "%s: Python %s" % (args.python, interpreter_version(args.python)))}
    for mode in fatjit_modes(args.python, args.fatjit_path):
        modes[mode.name] = mode
    modes["pypy"] = pypy_mode(args.pypy)
    modes["numba"] = numba_mode(args.python)
    modes["native"] = native_mode(args.native_exe, out_dir)
    return {name: modes[name] for name in args.modes}


def interpreter_version(python):
    status, out = probe([python], clean_env(), "import sys; print(sys.version.split()[0])")
    return out if status == 0 else "?"


# ---------------------------------------------------------------------------------------------
# Running one sample

def run_worker(mode, name, n, setting, timeout):
    """One process of one program in one mode: a dict with times, result, peak RSS, or an
    error / unavailable reason."""
    if mode.name == "native":
        argv = mode.command + [name, str(n), str(setting["warmups"]), str(setting["runs"])]
    else:
        argv = mode.command + [os.path.join(BENCH_DIR, "worker.py"), name, str(n),
                               "--mode", mode.name, "--warmups", str(setting["warmups"]),
                               "--runs", str(setting["runs"])]
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, env=mode.env, stdout=out, stderr=err, cwd=REPO)
        status, rusage = wait_with_timeout(proc, timeout)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
    # ru_maxrss only if the process does not report its VmHWM: it overstates (see the docstring)
    sample = {"wall": time.perf_counter() - started, "peak_rss_mb": rusage.ru_maxrss / 1024.0
              if rusage else None}
    if mode.env and mode.env.get("FATJIT_LOG"):
        stderr = read_compile_log(stderr, sample)
    if status == "timeout":
        sample["error"] = "timed out after %d s" % timeout
    elif status == UNAVAILABLE:
        sample["unavailable"] = last_line(stderr) or "exit status 3"
    elif status != 0:
        sample["error"] = "exit status %s: %s" % (status, stderr.strip()[-2000:])
    else:
        lines = [line for line in stdout.splitlines() if line.startswith(MARKER)]
        if not lines:
            sample["error"] = "no %r line in the output: %s" % (MARKER.strip(), stdout[-500:])
        else:
            sample.update(json.loads(lines[-1][len(MARKER):]))
            if sample.get("peak_rss_kb"):  # VmHWM, measured by the process itself
                sample["peak_rss_mb"] = sample.pop("peak_rss_kb") / 1024.0
    return sample


COMPILED_LINE = re.compile(r"^fatjit: compile (\S+) \((.*)\): compiled: (\d+) bytes of native "
                           r"code, (\d+) deopt sites, ([\d.]+) ms$")
REFUSED_LINE = re.compile(r"^fatjit: compile (\S+) \((.*)\): refused: (\w+)")


def read_compile_log(stderr, sample):
    """Moves FATJIT_LOG=compile's lines from stderr into sample: "compiles", one
    [qualname, code bytes, ms, file] per compile in the order they happened, and "jit_refusals",
    [qualname, reason] per function the JIT refused. Returns the rest of stderr."""
    compiles, refusals, rest = [], [], []
    for line in stderr.splitlines():
        compiled = COMPILED_LINE.match(line)
        refused = None if compiled else REFUSED_LINE.match(line)
        if compiled:
            where = compiled.group(2).rsplit(":", 1)[0]
            compiles.append([compiled.group(1), int(compiled.group(3)), float(compiled.group(5)),
                             where])
        elif refused:
            refusals.append([refused.group(1), refused.group(3)])
        else:
            rest.append(line)
    sample["compiles"] = compiles
    sample["jit_refusals"] = refusals
    return "\n".join(rest)


def wait_with_timeout(proc, timeout):
    """(exit status or "timeout", resource usage of that one child), waiting in os.wait4 (no
    polling: the runner must not compete for the CPU with the process it times)."""
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        _, status, rusage = os.wait4(proc.pid, 0)
    finally:
        timed_out = not timer.is_alive()
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return ("timeout" if timed_out and proc.returncode < 0 else proc.returncode), rusage


# ---------------------------------------------------------------------------------------------
# The run: interleaved samples, checks, statistics

def load_programs(only):
    names = suite.NAMES if not only else only
    unknown = [name for name in names if name not in suite.NAMES]
    if unknown:
        sys.exit("unknown benchmark(s): %s (known: %s)" % (", ".join(unknown),
                                                            ", ".join(suite.NAMES)))
    return {name: __import__("suite." + name, fromlist=["run"]) for name in names}


class Checker:
    """Runs each program's check() once per distinct result value."""

    def __init__(self):
        self.verdicts = {}

    def __call__(self, name, module, n, result):
        key = (name, n, json.dumps(result, sort_keys=True))
        if key not in self.verdicts:
            try:
                module.check(n, result)
                self.verdicts[key] = None
            except Exception as error:  # a wrong result, or a result of the wrong shape
                self.verdicts[key] = "%s: %s" % (type(error).__name__, error)
        return self.verdicts[key]


def run_all(programs, modes, setting, size_key, log):
    samples = {(name, mode): [] for name in programs for mode in modes}
    checker = Checker()
    total = sum(1 for name, module in programs.items() for mode in modes.values()
                if mode.available and mode.applies_to(module)) * setting["processes"]
    done = 0
    for rep in range(setting["processes"]):
        for index, (name, module) in enumerate(programs.items()):
            runnable = [m for m in modes.values() if m.available and m.applies_to(module)]
            shift = (rep + index) % len(runnable) if runnable else 0
            for mode in runnable[shift:] + runnable[:shift]:
                n = module.SIZES[size_key]
                sample = run_worker(mode, name, n, setting, setting["timeout"])
                if "result" in sample:
                    verdict = checker(name, module, n, sample["result"])
                    if verdict:
                        sample["error"] = "wrong result: " + verdict
                samples[name, mode.name].append(sample)
                done += 1
                status = ("ok %8.4f s" % statistics.median(sample["times"])
                          if "times" in sample and "error" not in sample
                          else "n/a" if "unavailable" in sample else "FAILED")
                log("[%3d/%d] %-17s %-18s %s" % (done, total, name, mode.name, status))
                if "error" in sample:
                    log("        " + sample["error"].replace("\n", "\n        "))
    return samples


def summarize(programs, modes, samples, size_key):
    """Per program and mode: status, median, speed-up vs cpython, spread, RSS, compile time."""
    table = {}
    for name, module in programs.items():
        row = {}
        for mode_name, mode in modes.items():
            cell = row[mode_name] = {}
            got = samples[name, mode_name]
            if not mode.available:
                cell["status"] = "n/a"
                cell["reason"] = mode.reason
                continue
            if not mode.applies_to(module):
                cell["status"] = "not applicable"
                continue
            errors = [s["error"] for s in got if "error" in s]
            unavailable = [s["unavailable"] for s in got if "unavailable" in s]
            if errors:
                cell.update(status="failed", errors=errors)
                continue
            if unavailable:
                cell.update(status="n/a", reason=unavailable[0])
                continue
            times = [t for s in got for t in s["times"]]
            process_medians = [statistics.median(s["times"]) for s in got]
            median = statistics.median(times)
            cell.update(status="ok", median_s=median, times_s=times,
                        process_medians_s=process_medians,
                        spread=(max(process_medians) - min(process_medians)) / 2 / median
                        if median > 0 else 0.0,
                        first_call_s=[s["first"] for s in got],
                        peak_rss_mb=max(s["peak_rss_mb"] for s in got if s["peak_rss_mb"]),
                        result=got[0]["result"])
            if any("compile" in s for s in got):
                cell["compile_s"] = statistics.median(s["compile"] for s in got if "compile" in s)
            if any("stats" in s for s in got):
                cell["fatjit_stats"] = got[-1]["stats"]
            if mode_name in JIT_MODES:
                cell["jit"] = jit_summary(got)
        base = row.get("cpython", {})
        for cell in row.values():
            if cell.get("status") == "ok" and base.get("status") == "ok" and cell["median_s"] > 0:
                # Repetition k of every mode ran back to back, under the same load: the median
                # of these paired ratios is the speed-up. (The ratio of the pooled medians is
                # kept too; a burst of load on some repetitions can skew it, never the pairs.)
                cell["paired_speedups"] = [b / m for b, m in zip(base["process_medians_s"],
                                                                 cell["process_medians_s"])]
                cell["speedup"] = statistics.median(cell["paired_speedups"])
                cell["ratio_of_medians"] = base["median_s"] / cell["median_s"]
        table[name] = {"n": module.SIZES[size_key], "category": module.CATEGORY, "modes": row}
    return table


def jit_summary(got):
    """The JIT's figures for one program in one mode, over its processes: from fatjit.stats()
    ["jit"] (compiles, total and longest compile, loading LLVM, native code bytes, native calls,
    raises and deopts handed to the interpreter, refusals) and from the FATJIT_LOG=compile lines
    (each compile's duration and size). Loading the LLVM backend (once per process) is not
    compile time: fatjit counts it apart (backend_load_s). A fatjit older than that counted it in
    the process's first compile: then that compile is given apart ("first_compile_ms") and the
    per-function median and maximum are over the other compiles (over all of them when a process
    compiles just one function). Counts are the last process's (they do not vary between
    processes); times are medians over the processes, the maximum over all of them."""
    last = got[-1]["stats"]["jit"]
    events = [s.get("compiles") or [] for s in got]
    loads = [s["stats"]["jit"].get("backend_load_s") for s in got]
    load_apart = all(load is not None for load in loads)
    every = [e[2] for es in events for e in es]
    later = every if load_apart else [e[2] for es in events for e in es[1:]]
    per_function = {}  # the program's own functions (fatjit-auto compiles the stdlib's too)
    suite_dir = os.path.join(BENCH_DIR, "suite")
    for es in events:
        for qualname, size, ms, where in es:
            if os.path.dirname(os.path.abspath(where)) == suite_dir:
                per_function.setdefault(qualname, {"code_bytes": size, "ms": []})["ms"].append(ms)
    return {
        "compiles": last["compiles"],
        "compiled": last["compiled"],
        "compile_time_s": statistics.median(s["stats"]["jit"]["compile_time_s"] for s in got),
        "compile_time_max_s": max(s["stats"]["jit"]["compile_time_max_s"] for s in got),
        "backend_load_ms": statistics.median(loads) * 1e3 if load_apart else None,
        "first_compile_ms": None if load_apart or not all(events) else
        statistics.median(es[0][2] for es in events),
        "compile_ms_median": statistics.median(later or every) if every else None,
        "compile_ms_max": max(later or every) if every else None,
        "compile_ms_over": "all compiles" if load_apart or not later else
        "compiles after the first",
        "code_bytes": last["code_bytes"],
        "native_calls": last["native_calls"],
        "raises": last["raises"],
        "deopts": sum(last["deopts"].values()),
        "deopts_by_reason": {k: v for k, v in last["deopts"].items() if v},
        "refused": {k: v for k, v in last["refused"].items() if v},
        "refused_functions": got[-1].get("jit_refusals", []),
        "functions": {q: {"code_bytes": f["code_bytes"], "compile_ms": statistics.median(f["ms"])}
                      for q, f in per_function.items()},
        "compiles_outside_program": sum(1 for e in events[-1]
                                        if os.path.dirname(os.path.abspath(e[3])) != suite_dir),
        "slowest_compiles": [[q, os.path.basename(where), size, ms] for q, size, ms, where in
                             sorted(events[-1], key=lambda e: -e[2])[:3]],
        "hot": got[-1].get("hot", {}),
        "first_call_s": statistics.median(s["first"] for s in got),
    }


def geomeans(table, modes):
    """Geometric mean of the speed-ups per mode: over the programs it ran ("all"), and over the
    programs that every available mode ran ("common": the like-for-like comparison with numba
    and native, which have only the numeric kernels)."""
    available = [m for m in modes if modes[m].available]
    common = [name for name, entry in table.items()
              if all(entry["modes"][m].get("status") == "ok" for m in available)]
    out = {}
    for mode in modes:
        speedups = {name: entry["modes"][mode]["speedup"] for name, entry in table.items()
                    if "speedup" in entry["modes"][mode]}
        if not speedups:
            continue
        shared = [speedups[name] for name in common if name in speedups]
        out[mode] = {"all": geomean(speedups.values()), "count": len(speedups),
                     "common": geomean(shared) if shared else None,
                     "common_count": len(shared)}
    return out, common


def geomean(values):
    values = list(values)
    return math.exp(sum(math.log(v) for v in values) / len(values))


# ---------------------------------------------------------------------------------------------
# Output: the table, the JSON, the chart

def machine_info(modes):
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory_gb = None
    try:
        memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        pass
    git = subprocess.run(["git", "-C", REPO, "describe", "--always", "--dirty"],
                         capture_output=True, text=True)
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": memory_gb,
            "os": platform.platform(), "git": git.stdout.strip() or None,
            "modes": {name: mode.description if mode.available else "n/a: " + mode.reason
                      for name, mode in modes.items()}}


def format_time(seconds):
    if seconds >= 1:
        return "%.2f s" % seconds
    if seconds >= 1e-3:
        return "%.1f ms" % (seconds * 1e3)
    return "%.0f us" % (seconds * 1e6)


def print_report(report, modes, common, out=sys.stdout):
    def p(line=""):
        print(line, file=out)

    table = report["benchmarks"]
    setting = report["discipline"]
    shown = [m for m in modes if modes[m].available]
    p()
    p("fatjit benchmark suite, %s setting: %d process(es) x (%d warm-up + %d timed) calls per "
      "program and mode, modes interleaved" % (report["setting"], setting["processes"],
                                               setting["warmups"], setting["runs"]))
    machine = report["machine"]
    p("machine: %s, %s cores, %.0f GB, %s; git %s; load average %s -> %s" % (
        machine["cpu"], machine["cores"], machine["memory_gb"] or 0, machine["os"],
        machine["git"], report["load_average"]["start"], report["load_average"]["end"]))
    for name, mode in modes.items():
        p("  %-18s %s" % (name, mode.description if mode.available else "n/a: " + mode.reason))
    for line in MODE_LEGEND:
        p("  " + line)
    p()
    p("speed-up over cpython (higher is faster): median over the repetitions of the paired "
      "ratio cpython / mode; in parentheses the mode's median time per run(n); ± = half the "
      "range of the per-process medians; - = no such kernel")
    width = 20
    p("%-17s %9s  " % ("benchmark", "n") + "".join("%-*s" % (width, m) for m in shown))
    for name, entry in table.items():
        cells = []
        for mode in shown:
            cell = entry["modes"][mode]
            status = cell.get("status")
            if status == "ok":
                text = format_time(cell["median_s"])
                if mode != "cpython":
                    text = "%.2fx %s" % (cell["speedup"], "(" + text + ")") if "speedup" in cell else text
                else:
                    text += " ±%.0f%%" % (cell["spread"] * 100)
            elif status == "not applicable":
                text = "-"
            elif status == "n/a":
                text = "n/a"
            else:
                text = "FAILED"
            cells.append("%-*s" % (width, text))
        p("%-17s %9d  " % (name, entry["n"]) + "".join(cells))
    p("%-17s %9s  " % ("geomean", "") + "".join(
        "%-*s" % (width, "%.2fx (%d)" % (report["geomean"][m]["all"], report["geomean"][m]["count"])
                  if m in report["geomean"] and m != "cpython" else "")
        for m in shown))
    if common and len(common) < len(table):
        p("%-17s %9s  " % ("geomean common", "") + "".join(
            "%-*s" % (width, "%.2fx (%d)" % (report["geomean"][m]["common"],
                                             report["geomean"][m]["common_count"])
                      if m in report["geomean"] and m != "cpython"
                      and report["geomean"][m]["common"] else "")
            for m in shown))
        p("  (geomean: over the programs the mode ran, their count in parentheses; geomean "
          "common: over the %d programs every mode ran: %s)" % (len(common), ", ".join(common)))
    if setting["processes"] > 1:
        p()
        p("speed-up per repetition, min .. max (repetition k of each mode ran right after or "
          "before cpython's repetition k, under the same machine load)")
        p("%-17s %9s  " % ("benchmark", "") + "".join("%-*s" % (width, m) for m in shown[1:]))
        for name, entry in table.items():
            cells = []
            for mode in shown[1:]:
                paired = entry["modes"][mode].get("paired_speedups")
                cells.append("%-*s" % (width, "%.2f .. %.2f" % (min(paired), max(paired))
                                       if paired else "-"))
            p("%-17s %9s  " % (name, "") + "".join(cells))
    p()
    p("peak RSS in MB (max over the processes)")
    p("%-17s %9s  " % ("benchmark", "") + "".join("%-12s" % m[:11] for m in shown))
    for name, entry in table.items():
        p("%-17s %9s  " % (name, "") + "".join(
            "%-12s" % ("%.1f" % entry["modes"][m]["peak_rss_mb"]
                       if entry["modes"][m].get("status") == "ok" else "-") for m in shown))
    for mode in JIT_MODES:
        if mode in shown:
            print_jit_table(table, mode, p)
    compiled = [(name, entry["modes"]["numba"]) for name, entry in table.items()
                if "numba" in entry["modes"] and "compile_s" in entry["modes"]["numba"]]
    if compiled:
        p()
        p("numba compile time (njit of the kernel and its helpers for (int64,), median over "
          "processes; not in the times above)")
        for name, cell in compiled:
            p("  %-17s %s" % (name, format_time(cell["compile_s"])))
    unavailable = [(m, modes[m].reason) for m in modes if not modes[m].available]
    if unavailable:
        p()
        p("not available:")
        for mode, reason in unavailable:
            p("  %-18s %s" % (mode, reason))
    failures = report["failures"]
    p()
    if failures:
        p("FAILED: %d program/mode pair(s):" % len(failures))
        for failure in failures:
            p("  %s [%s]: %s" % (failure["benchmark"], failure["mode"],
                                 failure["errors"][0].splitlines()[-1] if failure["errors"]
                                 else "?"))
    else:
        p("all results checked: every program returned the right value in every mode it ran")
    p("wall time %.0f s; JSON %s; chart %s" % (report["wall_s"], report["outputs"]["json"],
                                                report["outputs"]["chart"]
                                                or "not written: " + report["outputs"]["chart_note"]))


def print_jit_table(table, mode, p):
    """The JIT's compile time, code size and handovers to the interpreter, per program."""
    p()
    p("%s: compile time and native code (compiles, code bytes, native calls, deopts and raises "
      "from fatjit.stats()['jit'] of the last process; compile times from FATJIT_LOG=compile, "
      "median over processes)" % mode)
    p("  load = loading LLVM, once per process (not compile time; \"+N\": a fatjit that counts it "
      "in the first compile, which is given instead, load included); median, max = per compiled "
      "function (over the compiles after the first in that case); calls = calls that entered "
      "native code; deopts, raises = frames handed to the interpreter mid-function (a deopt, or "
      "an exception raised in native code)%s" % (
          "; compiles include every stdlib function the process called"
          if mode == "fatjit-auto" else ""))
    p("%-17s %8s %9s %8s %8s %8s %9s %10s %7s %7s  %s" % (
        "benchmark", "compiles", "total ms", "load", "median", "max", "code KB", "calls",
        "deopts", "raises", "refused"))
    for name, entry in table.items():
        cell = entry["modes"][mode]
        jit = cell.get("jit")
        if cell.get("status") != "ok" or not jit:
            p("%-17s %s" % (name, cell.get("status", "-")))
            continue

        def ms(value):
            return "%.1f" % value if value is not None else "-"
        load = (ms(jit["backend_load_ms"]) if jit["backend_load_ms"] is not None
                else "+" + ms(jit["first_compile_ms"]))
        alone = jit["compile_ms_over"] == "all compiles" and jit["backend_load_ms"] is None
        refused = ", ".join("%s %d" % item for item in sorted(jit["refused"].items())) or "-"
        p("%-17s %8d %9.1f %8s %8s %8s %9.1f %10d %7d %7d  %s" % (
            name, jit["compiles"], jit["compile_time_s"] * 1e3, load,
            "-" if alone else ms(jit["compile_ms_median"]),
            "-" if alone else ms(jit["compile_ms_max"]),
            jit["code_bytes"] / 1024.0, jit["native_calls"], jit["deopts"], jit["raises"],
            refused))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[1:12]))
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--quick", dest="setting", action="store_const", const="quick",
                       help="tiny sizes, one process, one call: correctness of every program "
                            "in every available mode (CI)")
    which.add_argument("--full", dest="setting", action="store_const", const="full",
                       help="full sizes, %(processes)d processes x (%(warmups)d warm-up + "
                            "%(runs)d timed calls): real figures (the default)" % SETTINGS["full"])
    parser.add_argument("--modes", default=",".join(MODES),
                        help="comma-separated subset of: %s" % ", ".join(MODES))
    parser.add_argument("--only", default="", help="comma-separated programs (default: all)")
    parser.add_argument("--processes", type=int, help="override the setting's processes")
    parser.add_argument("--warmups", type=int, help="override the setting's warm-up calls")
    parser.add_argument("--runs", type=int, help="override the setting's timed calls")
    parser.add_argument("--out", help="output prefix (default benchmarks/results/latest for "
                                      "--full, benchmarks/results/quick for --quick)")
    parser.add_argument("--no-chart", action="store_true", help="do not write the PNG")
    parser.add_argument("--python", default=sys.executable,
                        help="the CPython of the cpython, fatjit-* and numba modes "
                             "(default: this one)")
    parser.add_argument("--pypy", default="pypy3", help="the PyPy executable (default pypy3)")
    parser.add_argument("--fatjit-path", default=os.environ.get(
        "FATJIT_PATH", os.path.join(REPO, "build", "python")),
        help="PYTHONPATH that makes fatjit importable (default $FATJIT_PATH or build/python)")
    parser.add_argument("--native-exe", help="the native_kernels executable (default: "
                                             "build/benchmarks/native_kernels, else g++ -O2)")
    args = parser.parse_args()
    args.setting = args.setting or "full"
    args.modes = [m for m in args.modes.split(",") if m]
    bad = [m for m in args.modes if m not in MODES]
    if bad:
        parser.error("unknown mode(s) %s; known: %s" % (", ".join(bad), ", ".join(MODES)))
    if "cpython" not in args.modes:
        args.modes.insert(0, "cpython")  # the baseline of every ratio
    args.modes = [m for m in MODES if m in args.modes]

    setting = dict(SETTINGS[args.setting])
    for key in ("processes", "warmups", "runs"):
        if getattr(args, key) is not None:
            setting[key] = getattr(args, key)
    prefix = args.out or os.path.join(BENCH_DIR, "results",
                                      "latest" if args.setting == "full" else "quick")
    out_dir = os.path.dirname(os.path.abspath(prefix))
    os.makedirs(out_dir, exist_ok=True)

    started = time.perf_counter()
    load_start = "%.2f" % os.getloadavg()[0]
    programs = load_programs([n for n in args.only.split(",") if n])
    modes = find_modes(args, out_dir)

    def log(line):
        print(line, file=sys.stderr, flush=True)

    log("modes: " + ", ".join(m + ("" if modes[m].available else " (n/a)") for m in modes))
    samples = run_all(programs, modes, setting, args.setting, log)
    table = summarize(programs, modes, samples, args.setting)
    means, common = geomeans(table, modes)
    failures = [{"benchmark": name, "mode": mode, "errors": cell["errors"]}
                for name, entry in table.items() for mode, cell in entry["modes"].items()
                if cell.get("status") == "failed"]
    report = {
        "setting": args.setting,
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(modes),
        "discipline": dict(setting, interleaved=True,
                           statistic="median_s: median of all timed calls; speedup: median "
                                     "over repetitions k of cpython process median k / mode "
                                     "process median k"),
        "modes": {name: {"available": mode.available, "description": mode.description,
                         "reason": mode.reason} for name, mode in modes.items()},
        "benchmarks": table,
        "geomean": means,
        "geomean_common_programs": common,
        "failures": failures,
        "load_average": {"start": load_start, "end": "%.2f" % os.getloadavg()[0]},
        "outputs": {"json": prefix + ".json", "chart": None, "chart_note": "--no-chart"},
    }
    if not args.no_chart:
        import chart
        try:
            chart.write_chart(report, prefix + ".png")
            report["outputs"]["chart"] = prefix + ".png"
        except ImportError as error:
            report["outputs"]["chart_note"] = "matplotlib not installed (%s)" % error
    report["wall_s"] = time.perf_counter() - started
    with open(prefix + ".json", "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")
    print_report(report, modes, common)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
