"""FATJIT_STATS=1: the table fatjit prints to stderr at exit, from fatjit.stats()."""

import os
import sys

from . import _fatjit

__all__ = ["format_stats", "print_stats"]


def _by_reason(counts):
    """'name 3, other 1' for the non-zero counts, largest first; '-' if none."""
    items = sorted(((n, name) for name, n in counts.items() if n), reverse=True)
    return ", ".join(f"{name} {n:,}" for n, name in items) or "-"


def format_stats(stats):
    """The exit table for a fatjit.stats() dict, as text ending in a newline."""
    refused = sum(stats["auto_refused"].values())
    failures = sum(stats["guard_failures"].values())
    forever = sum(stats["guard_failures_forever"].values())
    fallbacks = sum(stats["fallbacks"].values())
    mode = (f"on, threshold {stats['specialize_threshold']:,} calls" if stats["auto_mode"]
            else "off")
    rows = [
        ("automatic mode", mode),
        ("calls counted", f"{stats['calls_counted']:,}"),
        ("functions specialized", f"{stats['auto_specialized']:,}"),
        ("refused", f"{refused:,}  ({_by_reason(stats['auto_refused'])})"),
        ("time specializing", f"{stats['specialize_time_s'] * 1e3:.1f} ms"),
        ("specialized runs", f"{stats['specialized_runs']:,}"),
        ("guard checks", f"{stats['guard_checks']:,}"),
        ("guard failures", f"{failures:,}  ({_by_reason(stats['guard_failures'])})"),
        ("failed for good", f"{forever:,}  ({_by_reason(stats['guard_failures_forever'])})"),
        ("fallbacks", f"{fallbacks:,}  ({_by_reason(stats['fallbacks'])})"),
        ("specializations live", f"{stats['specializations']:,}"),
    ]
    jit = stats["jit"]
    if jit["compiles"] or sum(jit["refused"].values()) or jit["threshold"] >= 0:
        threshold = (f"threshold {jit['threshold']:,} calls" if jit["threshold"] >= 0
                     else "decorators only")
        jit_refused = sum(jit["refused"].values())
        rows += [
            ("JIT", threshold),
            ("functions compiled", f"{jit['compiled']:,}  ({jit['code_bytes'] / 1024:,.0f} KiB "
                                   f"of native code live)"),
            ("JIT refused", f"{jit_refused:,}  ({_by_reason(jit['refused'])})"),
            ("time compiling", f"{jit['compile_time_s'] * 1e3:.1f} ms  (max "
                               f"{jit['compile_time_max_s'] * 1e3:.1f} ms per function; "
                               f"{jit['backend_load_s'] * 1e3:.0f} ms loading LLVM)"),
            ("native calls", f"{jit['native_calls']:,}"),
            ("code-level native", f"{jit['code_level_live']:,} code objects  "
                                  f"({jit['code_level_runs']:,} calls; compiled unchanged, "
                                  f"shared by every function on the code object)"),
            ("deopts", f"{sum(jit['deopts'].values()):,}  ({_by_reason(jit['deopts'])})"),
            ("exceptions unwound", f"{jit['raises']:,}  (handed to the interpreter)"),
        ]
    width = max(len(name) for name, _ in rows)
    program = (getattr(sys, "argv", None) or [""])[0]
    # Every process of a program that starts others prints its own table: say whose it is.
    lines = [f"fatjit stats, pid {os.getpid()}: {program}"]
    lines += [f"  {name:<{width}}  {value}" for name, value in rows]
    return "\n".join(lines) + "\n"


def print_stats(file=None):
    """Writes the table to `file` (default: sys.stderr)."""
    (file or sys.stderr).write(format_stats(_fatjit.stats()))
