#!/usr/bin/env python3
"""What automatic mode costs at start-up: scripts/startup_cost.py [--runs N] [--python EXE].

Assumes a built tree (BUILD_DIR/python holds the fatjit package and the build tree's
sitecustomize.py; default build/) and a CPython 3.11 interpreter (default: the one running this
script, resolved past pyenv's shim, so the shim's own start-up is not counted).

Produces, for an empty program, the wall time and the CPU time (user + system) of a whole
process (spawn to exit) in six settings, run N times each, interleaved (one of each per round,
so that a slow moment of a noisy machine hits every setting alike):
  plain     python3 -c pass                                  (no PYTHONPATH)
  tree      PYTHONPATH=BUILD_DIR/python python3 -c pass      (FATJIT unset: sitecustomize only)
  auto      the same with FATJIT=auto                        (automatic mode on: the start-up
                                                              counter _fatjit_boot, ext/boot.c)
  handover  FATJIT=auto python3 -c "import fatjit; fatjit.is_enabled()"
                                                             (fatjit loaded and turned on, what
                                                              the first hot function costs once)
  plain-m   PYTHONPATH=...:TMP python3 -m EMPTY              (python -m's own cost: runpy...)
  module    PYTHONPATH=... python3 -m fatjit EMPTY.py        (FATJIT unset)
with medians, the spread (first and third quartiles), and the differences of the medians (tree
and auto against plain, auto against tree (fatjit's own share: an installed fatjit has no
sitecustomize, its .pth line costs one environment lookup), handover against auto, module
against plain-m (both with the build tree's sitecustomize)). Then
where the hand-over's time goes, from child processes that time each step themselves (medians):
the dynamic loader's share (dlopen of _fatjit*.so alone, with the flags the import system
uses), the extension's initialisation (PyInit, the .so already mapped), the rest of
`import fatjit`, and `fatjit.enable()`; and the fatjit lines of `python3 -X importtime`.

Sound because only differences of medians (and of first deciles) of interleaved runs are
reported as costs; the
absolute figures depend on the machine (and on whatever .pth files its site-packages holds).
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Run in a child with PYTHONPATH=BUILD_DIR/python and FATJIT unset: prints four durations in
# nanoseconds. The dlopen goes through ctypes (imported before the clock starts) with
# sys.getdlopenflags(), the flags the import system passes; the import that follows finds the
# object already mapped, so it measures PyInit and the import machinery only.
_STEPS_CHILD = r"""
import ctypes, glob, os, sys, time, importlib.machinery, importlib.util
package_dir = os.path.join(sys.argv[1], "fatjit")
so_path = glob.glob(os.path.join(package_dir, "_fatjit*.so"))[0]
t0 = time.perf_counter_ns()
handle = ctypes.CDLL(so_path, mode=sys.getdlopenflags())
t1 = time.perf_counter_ns()
spec = importlib.util.spec_from_file_location("fatjit._fatjit", so_path)
module = importlib.util.module_from_spec(spec)
sys.modules["fatjit._fatjit"] = module
t2 = time.perf_counter_ns()
import fatjit
t3 = time.perf_counter_ns()
fatjit.enable()
t4 = time.perf_counter_ns()
fatjit.disable()
print(t1 - t0, t2 - t1, t3 - t2, t4 - t3)
"""


def real_python(exe):
    """The interpreter's own path (a pyenv shim would add its own start-up, ~30 ms)."""
    return subprocess.run([exe, "-c", "import sys; print(sys.executable)"], check=True,
                          capture_output=True, text=True).stdout.strip()


_TO_DEVNULL = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_RDWR, 0) for fd in (0, 1, 2)]


def run_once(argv, env):
    """(wall ms, CPU ms) of one child: CPU time (user + system, from wait4) is what the child
    itself consumed, so it is less disturbed than wall time by other work on the machine."""
    start = time.perf_counter_ns()
    pid = os.posix_spawn(argv[0], argv, env, file_actions=_TO_DEVNULL)
    _, status, usage = os.wait4(pid, 0)
    wall = (time.perf_counter_ns() - start) / 1e6
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"startup_cost: {' '.join(argv)} failed ({status})")
    return wall, (usage.ru_utime + usage.ru_stime) * 1e3


def summary(samples):
    q1, median, q3 = statistics.quantiles(samples, n=4)
    return median, q1, q3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40, help="runs of each setting (default 40)")
    parser.add_argument("--python", default=sys.executable, help="the interpreter to measure")
    parser.add_argument("--build-dir", default=os.path.join(ROOT, "build"),
                        help="the build tree (default build/)")
    parser.add_argument("--instructions", action="store_true",
                        help="also count each setting's instructions under valgrind's callgrind "
                             "(one run each; the count does not move with the machine's load)")
    args = parser.parse_args()

    python = real_python(args.python)
    package_root = os.path.join(os.path.abspath(args.build_dir), "python")
    if not os.path.isdir(os.path.join(package_root, "fatjit")):
        sys.exit(f"startup_cost: no fatjit package in {package_root}: build first")
    # PYTHONDONTWRITEBYTECODE is dropped: the first (untimed) run of each setting writes the
    # .pyc files, as an installed package has them (pip compiles them at install time).
    base_env = {k: v for k, v in os.environ.items()
                if k not in ("PYTHONPATH", "PYTHONSTARTUP", "PYTHONDONTWRITEBYTECODE")
                and not k.startswith("FATJIT")}
    tree_env = dict(base_env, PYTHONPATH=package_root)
    auto_env = dict(tree_env, FATJIT="auto")
    empty_dir = tempfile.TemporaryDirectory()
    empty = os.path.join(empty_dir.name, "startup_cost_empty.py")
    open(empty, "w").close()
    settings = {
        "plain": ([python, "-c", "pass"], base_env),
        "tree": ([python, "-c", "pass"], tree_env),
        "auto": ([python, "-c", "pass"], auto_env),
        "handover": ([python, "-c", "import fatjit; fatjit.is_enabled()"], auto_env),
        # python -m itself imports runpy and importlib.util (~5 ms): the -m baseline.
        "plain-m": ([python, "-m", "startup_cost_empty"],
                    dict(tree_env, PYTHONPATH=f"{package_root}{os.pathsep}{empty_dir.name}")),
        "module": ([python, "-m", "fatjit", empty], tree_env),
    }
    with empty_dir:
        for argv, env in settings.values():  # warm the page cache and the .pyc files
            run_once(argv, env)
        walls = {name: [] for name in settings}
        cpus = {name: [] for name in settings}
        for _ in range(args.runs):
            for name, (argv, env) in settings.items():
                wall, cpu = run_once(argv, env)
                walls[name].append(wall)
                cpus[name].append(cpu)

    print(f"interpreter: {python}")
    print(f"start-up of an empty program, {args.runs} interleaved runs each "
          "(median [first quartile, third quartile], ms):")
    print(f"  {'':7s} {'wall':>7s}  {'':16s}  {'CPU':>7s}")
    medians = {}
    for name in settings:
        wall, wall_q1, wall_q3 = summary(walls[name])
        cpu, cpu_q1, cpu_q3 = summary(cpus[name])
        medians[name] = wall, cpu
        command = " ".join(settings[name][0][1:])
        print(f"  {name:7s} {wall:7.2f}  [{wall_q1:6.2f}, {wall_q3:6.2f}]  {cpu:7.2f}  "
              f"[{cpu_q1:6.2f}, {cpu_q3:6.2f}]   {command}")
    print("differences of the medians (wall, CPU):")
    for name, base in (("tree", "plain"), ("auto", "plain"), ("auto", "tree"),
                       ("handover", "auto"), ("module", "plain-m")):
        base_wall, base_cpu = medians[base]
        extra_wall = medians[name][0] - base_wall
        extra_cpu = medians[name][1] - base_cpu
        print(f"  {name:7s} - {base:7s}  {extra_wall:+7.2f} ms "
              f"({100 * extra_wall / base_wall:+5.1f}%)  {extra_cpu:+7.2f} ms "
              f"({100 * extra_cpu / base_cpu:+5.1f}%)")
    # A busy machine makes start-up times bimodal (quartiles 13 and 18 ms for one setting):
    # the fastest tenth of each setting's runs is what the program costs when nothing else
    # intervenes, which noise can only lengthen.
    fast = {name: statistics.quantiles(cpus[name], n=10)[0] for name in settings}
    print("differences of the first deciles (CPU; the undisturbed runs):")
    for name, base in (("tree", "plain"), ("auto", "plain"), ("auto", "tree"),
                       ("handover", "auto"), ("module", "plain-m")):
        extra = fast[name] - fast[base]
        print(f"  {name:7s} - {base:7s}  {extra:+7.2f} ms ({100 * extra / fast[base]:+5.1f}%)"
              f"   [{fast[base]:.2f} -> {fast[name]:.2f} ms]")

    if args.instructions:
        with tempfile.TemporaryDirectory() as again:
            empty_again = os.path.join(again, "startup_cost_empty.py")
            open(empty_again, "w").close()
            counts = {}
            for name, (argv, env) in settings.items():
                if name == "handover":
                    continue
                argv = [empty_again if a == empty else a for a in argv]
                if name == "plain-m":
                    env = dict(env, PYTHONPATH=f"{package_root}{os.pathsep}{again}")
                err = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                                      *argv], env=env, capture_output=True, text=True).stderr
                found = re.search(r"Collected : (\d+)", err)
                counts[name] = int(found[1]) if found else None
        print("instructions of one run under callgrind (user space only: not the kernel's page "
              "faults and file system work):")
        # Not the hand-over: under valgrind everything runs ~50x slower, so loop time (which
        # counts toward the thresholds) makes functions hot that are not, and LLVM loads.
        for name, base in (("tree", "plain"), ("auto", "plain"), ("auto", "tree"),
                           ("module", "plain-m")):
            if counts[name] and counts[base]:
                extra = counts[name] - counts[base]
                print(f"  {name:7s} - {base:7s}  {extra / 1e6:+7.2f} M ({100 * extra / counts[base]:+5.1f}%)"
                      f"   [{counts[base] / 1e6:.1f} -> {counts[name] / 1e6:.1f} M]")

    steps = [[], [], [], []]
    for _ in range(max(5, args.runs // 2)):
        out = subprocess.run([python, "-c", _STEPS_CHILD, package_root], env=tree_env,
                             check=True, capture_output=True, text=True).stdout.split()
        for column, value in zip(steps, out):
            column.append(int(value) / 1e6)
    print("fatjit's hand-over (a function got hot, or `import fatjit`), step by step "
          "(medians of child processes that time themselves, ms):")
    for label, column in zip(("dlopen of _fatjit*.so (the dynamic loader)",
                              "PyInit__fatjit (module initialisation)",
                              "the rest of `import fatjit`",
                              "fatjit.enable()"), steps):
        median, q1, q3 = summary(column)
        print(f"  {median:6.2f}  [{q1:.2f}, {q3:.2f}]  {label}")

    imports = {}
    for _ in range(max(5, args.runs // 4)):
        err = subprocess.run([python, "-X", "importtime", "-c", "pass"], env=auto_env,
                             check=True, capture_output=True, text=True).stderr
        for line in err.splitlines():
            match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|(\s+)(\S+)", line)
            if match and ("fatjit" in match[4] or match[4] in ("sitecustomize", "site")):
                imports.setdefault((len(match[3]), match[4]), []).append(
                    (int(match[1]), int(match[2])))
    print("FATJIT=auto, python3 -X importtime (medians, ms: self, cumulative):")
    for (depth, name), pairs in sorted(imports.items(), key=lambda kv: -kv[0][0]):
        own = statistics.median(p[0] for p in pairs) / 1000
        total = statistics.median(p[1] for p in pairs) / 1000
        print(f"  {own:6.2f} {total:6.2f}  {' ' * (depth - 1)}{name}")
    modules = subprocess.run(
        [python, "-c", "import sys; print(' '.join(sorted(m for m in sys.modules "
         "if 'fatjit' in m)))"], env=auto_env, check=True, capture_output=True,
        text=True).stdout.strip()
    print(f"fatjit modules loaded at start-up by FATJIT=auto: {modules}")


if __name__ == "__main__":
    main()
