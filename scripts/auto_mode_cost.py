"""What automatic mode costs a call-heavy program whose functions are each only warm.

Generates a program of N distinct small functions in call trees (each does a little arithmetic,
reads a global and a builtin, and calls its children), and calls every function exactly CALLS
times. Runs it side by side, each configuration in its own process, REPEAT times interleaved:
plain python3; the PEP 523 hook alone (a PEP 510 specialization of an unused function keeps it
installed); FATJIT=auto at the default threshold (no function gets hot: the hook and the
counting only); FATJIT=auto with thresholds low enough that every function is specialized.
Reports the best time of the call phase over the repetitions (the machine may be shared:
interference only ever adds time), its median, the process's best wall time, and each one's
ratio to plain.

    PYTHONPATH=build/python python3 scripts/auto_mode_cost.py [--functions N] [--calls K]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

PROGRAM = r'''
import os, sys, time
if os.environ.get("HOOK_ONLY"):  # the PEP 523 hook alone: one PEP 510 specialization, no counting
    import fatjit
    def _unused(): pass
    fatjit.specialize(_unused, (lambda: None).__code__, [fatjit.GuardBuiltins("len")])
N, CALLS, FANOUT = {n}, {calls}, 3
SCALE = 3
src = []
for i in range(N):
    kids = [j for j in range(i * FANOUT + 1, i * FANOUT + 1 + FANOUT) if j < N]
    body = " + ".join(f"f{{j}}(x + {{k}})" for k, j in enumerate(kids)) or "0"
    src.append(f"def f{{i}}(x):\n    y = x * SCALE + len('abc') - {{i % 7}}\n"
               f"    return (y if y & 1 else -y) + {{body}}\n")
t0 = time.perf_counter()
code = compile("\n".join(src), "<warm>", "exec")
ns = {{"SCALE": SCALE}}
exec(code, ns)
t1 = time.perf_counter()
root = ns["f0"]
total = 0
for r in range(CALLS):
    total += root(r)
t2 = time.perf_counter()
stats = {{}}
if "fatjit" in sys.modules:
    s = sys.modules["fatjit"].stats()
    stats = {{k: s[k] for k in ("auto_specialized", "calls_counted", "specialize_time_s")}}
    stats["refused"] = sum(s["auto_refused"].values())
print(json.dumps({{"compile_s": t1 - t0, "calls_s": t2 - t1, "total": total, "fatjit": stats}}))
'''


def run(program, env_changes, pythonpath):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FATJIT")}
    env["PYTHONPATH"] = pythonpath
    env.update(env_changes)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", "import json\n" + program], env=env,
                         capture_output=True, text=True, check=True)
    wall = time.perf_counter() - start
    result = json.loads(out.stdout)
    result["wall_s"] = wall
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--functions", type=int, default=4000)
    parser.add_argument("--calls", type=int, default=20, help="calls of each function")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--pythonpath", default=os.environ.get("PYTHONPATH", "build/python"))
    args = parser.parse_args()
    program = PROGRAM.format(n=args.functions, calls=args.calls)
    configs = [
        ("python3 (plain)", {}),
        ("hook only, no automatic mode", {"HOOK_ONLY": "1"}),
        ("FATJIT=auto (default threshold)", {"FATJIT": "auto"}),
        (f"FATJIT=auto threshold {args.calls}", {"FATJIT": "auto",
                                                 "FATJIT_SPECIALIZE_THRESHOLD": str(args.calls)}),
        ("FATJIT=auto threshold 0", {"FATJIT": "auto", "FATJIT_SPECIALIZE_THRESHOLD": "0"}),
    ]
    results = {name: [] for name, _ in configs}
    for _ in range(args.repeat):  # interleaved, so drift hits every configuration alike
        for name, env in configs:
            results[name].append(run(program, env, args.pythonpath))
    totals = {r["total"] for rs in results.values() for r in rs}
    assert len(totals) == 1, f"configurations computed different results: {totals}"
    print(f"{args.functions} functions, each called {args.calls} times "
          f"({args.functions * args.calls:,} calls); best and median of {args.repeat} runs")
    plain = results[configs[0][0]]
    base_best = min(r["calls_s"] for r in plain)
    base_median = statistics.median(r["calls_s"] for r in plain)
    base_wall = min(r["wall_s"] for r in plain)
    print(f"{'configuration':34} {'call phase: best':>16} {'ratio':>6} {'median':>9} {'ratio':>6}"
          f" {'process':>9} {'ratio':>6}  specialized/refused, time specializing")
    for name, _ in configs:
        best = min(r["calls_s"] for r in results[name])
        median = statistics.median(r["calls_s"] for r in results[name])
        wall = min(r["wall_s"] for r in results[name])
        fj = results[name][-1]["fatjit"]
        extra = (f"  {fj['auto_specialized']}/{fj['refused']}, "
                 f"{fj['specialize_time_s'] * 1e3:.1f} ms" if fj else "")
        print(f"{name:34} {best * 1e3:14.1f}ms {best / base_best:6.2f} {median * 1e3:7.1f}ms "
              f"{median / base_median:6.2f} {wall * 1e3:7.1f}ms {wall / base_wall:6.2f}{extra}")


if __name__ == "__main__":
    main()
