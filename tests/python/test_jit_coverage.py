"""The JIT over the standard library (issue 5's coverage figure): every reachable function either
compiles or is refused with a counted reason, and none is refused for a reason that is a bug
(malformed bytecode, a layout mismatch, a backend error). The functions are those
test_stdlib_sweep collects (module functions, methods, nested code as functions); each is
compiled through fatjit._fatjit._jit_report, which attaches nothing.

Run as a script for the figures: PYTHONPATH=build/python python3 tests/python/test_jit_coverage.py
"""

import collections
import statistics
import time

import fatjit
from test_stdlib_sweep import collect_functions, describe, import_modules

BUG_REASONS = ("malformed", "layout_mismatch", "backend_error", "backend_unavailable")


def sweep(functions):
    counts, details, times, sizes, problems = collections.Counter(), collections.Counter(), [], [], []
    start = time.perf_counter()
    for func in functions:
        result = fatjit._fatjit._jit_report(func)
        if result["compiled"]:
            counts["compiled"] += 1
            times.append(result["compile_s"])
            sizes.append(result["code_bytes"])
        else:
            counts[result["reason"]] += 1
            details[f'{result["reason"]}: {result["detail"]}'] += 1
            if result["reason"] in BUG_REASONS:
                problems.append(f"{describe(func)}: {result['reason']}: {result['detail']}")
    return counts, details, times, sizes, problems, time.perf_counter() - start


def test_stdlib_functions_compile_or_are_refused_for_a_reason():
    modules, _ = import_modules()
    functions, nested = collect_functions(modules)
    sample = (functions + nested)[::7]  # every 7th: the whole walk is the script's job
    counts, _, _, _, problems, _ = sweep(sample)
    assert not problems, "\n".join(problems[:20])
    assert counts["compiled"] > 0.8 * len(sample), counts


if __name__ == "__main__":
    modules, failed = import_modules()
    functions, nested = collect_functions(modules)
    everything = functions + nested
    counts, details, times, sizes, problems, elapsed = sweep(everything)
    total = len(everything)
    print(f"{len(modules)} modules ({len(failed)} not importable), {total} functions "
          f"({len(functions)} defined, {len(nested)} nested), swept in {elapsed:.1f} s")
    for reason, n in counts.most_common():
        print(f"  {reason:22} {n:6}  {100 * n / total:5.1f}%")
    for detail, n in details.most_common(12):
        print(f"    {n:6}  {detail}")
    if times:
        print(f"compile time per function: median {statistics.median(times) * 1e3:.2f} ms, "
              f"mean {statistics.mean(times) * 1e3:.2f} ms, max {max(times) * 1e3:.1f} ms")
        print(f"native code per function: median {statistics.median(sizes):.0f} bytes, "
              f"max {max(sizes)} bytes, total {sum(sizes) / 1e6:.1f} MB")
    for p in problems[:20]:
        print("PROBLEM", p)
