"""The automatic specializer over the standard library: every reachable function is specialized
without error or refused with a counted reason, and what it produces keeps the code's layout.

Reachable functions: the module-level functions of every importable top-level stdlib module and
of the submodules of a broad set of packages, the methods of their classes (nested classes,
staticmethod/classmethod, property accessors), and, wrapped as functions over their module's
globals, the code objects nested in all of them (inner functions, lambdas, comprehensions,
generator expressions). Modules with import side effects are skipped (SKIP, test packages,
`__main__` submodules); a module that fails to import (a missing C extension, Windows-only) is
skipped too. The specializer runs through fatjit._fatjit._specialize_report, which attaches
nothing, under assume="stable" and assume="entry".

A second test specializes (for real) every function of a set of pure-Python modules and runs a
workload through them, comparing with the results plain CPython gave.

Run as a script for the numbers alone: PYTHONPATH=build/python python3
tests/python/test_stdlib_sweep.py
"""

import collections
import contextlib
import dis
import gc
import importlib
import io
import pkgutil
import sysconfig
import time
import types
import warnings

import pytest

import fatjit

report = fatjit._fatjit._specialize_report

SKIP = {
    "antigravity", "this", "tkinter", "turtle", "turtledemo", "idlelib", "test", "__hello__",
    "__phello__", "rlcompleter", "lib2to3", "ensurepip", "pydoc_data", "xxlimited", "site",
    "_sysconfigdata__linux_x86_64-linux-gnu",
}
PACKAGES = {
    "asyncio", "collections", "concurrent", "ctypes", "curses", "dbm", "distutils", "email",
    "encodings", "html", "http", "importlib", "json", "logging", "multiprocessing", "sqlite3",
    "tomllib", "unittest", "urllib", "wsgiref", "xml", "xmlrpc", "zoneinfo",
}
BAD_REASONS = ("internal_error", "rewrite_rejected")
MIN_FUNCTIONS = 5000


def module_names():
    root = sysconfig.get_paths()["stdlib"]
    names = []
    for info in pkgutil.iter_modules([root]):
        if info.name in SKIP:
            continue
        names.append(info.name)
        if info.ispkg and info.name in PACKAGES:
            for sub in pkgutil.walk_packages([f"{root}/{info.name}"], prefix=info.name + ".",
                                             onerror=lambda name: None):
                parts = sub.name.split(".")
                if any(p in ("test", "tests", "idle_test", "__main__") for p in parts):
                    continue
                names.append(sub.name)
    return names


def import_modules():
    """(modules imported, names that failed), quietly."""
    modules, failed = [], []
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
            contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        for name in module_names():
            try:
                modules.append(importlib.import_module(name))
            except BaseException:  # noqa: BLE001 - ImportError, SystemExit, anything: skip it
                failed.append(name)
    return modules, failed


def collect_functions(modules):
    """(functions defined in the modules and their classes, nested code objects as functions)."""
    seen, functions = set(), []

    def add(obj):
        if isinstance(obj, types.FunctionType) and id(obj) not in seen:
            seen.add(id(obj))
            functions.append(obj)

    def walk_class(cls, module_name, depth):
        if depth > 5:
            return
        for value in list(vars(cls).values()):
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            if isinstance(value, property):
                for accessor in (value.fget, value.fset, value.fdel):
                    add(accessor)
            elif isinstance(value, type) and value is not cls and \
                    getattr(value, "__module__", None) == module_name:
                walk_class(value, module_name, depth + 1)
            else:
                add(value)

    for module in modules:
        for value in list(vars(module).values()):
            if isinstance(value, types.FunctionType) and value.__module__ == module.__name__:
                add(value)
            elif isinstance(value, type) and getattr(value, "__module__", None) == module.__name__:
                walk_class(value, module.__name__, 0)

    nested = []
    for func in functions:
        stack = [c for c in func.__code__.co_consts if isinstance(c, types.CodeType)]
        while stack:
            code = stack.pop()
            stack.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
            closure = tuple(types.CellType() for _ in code.co_freevars)
            nested.append(types.FunctionType(code, func.__globals__, code.co_name, None, closure))
    return functions, nested


def describe(func):
    code = func.__code__
    return f"{func.__module__}.{func.__qualname__} ({code.co_filename}:{code.co_firstlineno})"


def sweep(functions, assume):
    """Counts by outcome, the problems found, and the time it took."""
    counts = collections.Counter()
    problems, results = [], []
    rewrites = active = 0
    start = time.perf_counter()
    for func in functions:
        try:
            result = report(func, assume=assume)
        except BaseException as exc:  # noqa: BLE001 - any exception is a finding
            problems.append(f"{describe(func)}: raised {type(exc).__name__}: {exc}")
            continue
        counts[result["reason"] or "specialized"] += 1
        rewrites += result["rewrites"]
        active += result["active"]
        if result["reason"] in BAD_REASONS:
            problems.append(f"{describe(func)}: {result['reason']}: {result['detail']}")
        if result["code"] is not None:
            results.append((func, result["code"]))
    elapsed = time.perf_counter() - start
    return counts, problems, results, rewrites, active, elapsed


def boundaries(code):
    """Offsets where an instruction (or its EXTENDED_ARG prefix) starts: not inline caches."""
    raw = code.co_code
    out, offset = set(), 0
    caches = dis._inline_cache_entries  # noqa: SLF001 - 3.11's table of cache sizes
    while offset < len(raw):
        out.add(offset)
        offset += 2 + 2 * caches[raw[offset]]
    return out


def layout_problems(func, specialized):
    """What differs between func's code and the specialized code beyond the instructions."""
    original = func.__code__
    problems = []
    for attr in ("co_linetable", "co_exceptiontable", "co_names", "co_varnames", "co_freevars",
                 "co_cellvars", "co_argcount", "co_posonlyargcount", "co_kwonlyargcount",
                 "co_flags", "co_firstlineno", "co_name", "co_qualname", "co_filename",
                 "co_nlocals"):
        if getattr(specialized, attr) != getattr(original, attr):
            problems.append(attr)
    if len(specialized.co_code) != len(original.co_code):
        problems.append("co_code length")
    if specialized.co_stacksize > original.co_stacksize:
        problems.append("co_stacksize grew")
    targets = set(dis.findlabels(original.co_code))
    for entry in dis._parse_exception_table(original):  # noqa: SLF001
        targets.update((entry.start, entry.target))
    missing = targets - boundaries(specialized)
    if missing:
        problems.append(f"jump/handler targets no longer instruction starts: {sorted(missing)}")
    return problems


@pytest.fixture(scope="module")
def stdlib():
    modules, failed = import_modules()
    functions, nested = collect_functions(modules)
    gc.collect()
    gc.freeze()  # they live for the session: keep the per-test gc.collect of conftest cheap
    return types.SimpleNamespace(modules=modules, failed=failed, functions=functions,
                                 nested=nested)


def test_enough_functions(stdlib):
    print(f"\n{len(stdlib.modules)} modules imported ({len(stdlib.failed)} skipped: "
          f"{', '.join(stdlib.failed)}); {len(stdlib.functions)} functions, "
          f"{len(stdlib.nested)} nested code objects")
    assert len(stdlib.modules) >= 300
    assert len(stdlib.functions) >= MIN_FUNCTIONS


@pytest.mark.parametrize("assume", ["stable", "entry"])
def test_every_function_specialized_or_refused_with_a_reason(stdlib, assume):
    everything = stdlib.functions + stdlib.nested
    counts, problems, results, rewrites, active, elapsed = sweep(everything, assume)
    layout = []
    for func, code in results:
        for problem in layout_problems(func, code):
            layout.append(f"{describe(func)}: {problem}")
    print(f"\nassume={assume}: {len(everything)} functions in {elapsed:.2f} s "
          f"({len(everything) / elapsed:,.0f} functions/s); {dict(sorted(counts.items()))}; "
          f"{rewrites} rewrites, {active} active")
    assert not problems, "\n".join(problems[:50])
    assert not layout, "\n".join(layout[:50])
    assert sum(counts.values()) == len(everything)
    assert counts["specialized"] > len(everything) // 4


# ------------------------------------------------------------------------------------------------
# Specialized for real: stdlib functions run through the dispatcher


def workload():
    """Calls into pure-Python stdlib modules; returns what they computed."""
    import base64
    import colorsys
    import difflib
    import fractions
    import ipaddress
    import json
    import posixpath
    import shlex
    import statistics
    import string
    import textwrap
    import urllib.parse
    text = "The quick brown fox jumps over the lazy dog. " * 8
    a = ["line %d\n" % i for i in range(40)]
    b = a[:10] + ["changed\n"] + a[12:] + ["end\n"]
    data = {"k": [1, 2.5, "x", None, True], "nested": {"a": [{"b": i} for i in range(5)]}}
    return [
        textwrap.fill(text, width=30), textwrap.dedent("    a\n      b\n"),
        textwrap.shorten(text, 40),
        "".join(difflib.unified_diff(a, b, "a", "b")),
        difflib.SequenceMatcher(None, "abcdefgh", "abxdefzh").ratio(),
        json.dumps(data, sort_keys=True, indent=2), json.loads(json.dumps(data)),
        posixpath.normpath("/a/./b/../c//d"), posixpath.join("a", "b", "/c", "d"),
        posixpath.relpath("/a/b/c", "/a/x"), posixpath.splitext("archive.tar.gz"),
        shlex.split("a 'b c' \"d e\" f\\ g"), shlex.quote("it's"),
        str(fractions.Fraction(3, 4) + fractions.Fraction(5, 6)),
        statistics.mean([1, 2, 3, 4.5]), statistics.median([5, 1, 3]),
        statistics.pstdev([1.0, 2.0, 4.0]),
        str(ipaddress.ip_network("10.0.0.0/22").netmask),
        [str(h) for h in list(ipaddress.ip_network("192.168.1.0/29").hosts())],
        urllib.parse.urlsplit("https://u:p@example.com:8080/p/a?q=1&r=2#f"),
        urllib.parse.urlencode({"a": "1 2", "b": "é"}), urllib.parse.quote("a b/c"),
        base64.b64encode(b"fatjit" * 3), base64.b32decode(base64.b32encode(b"xyz")),
        colorsys.rgb_to_hsv(0.2, 0.4, 0.6), colorsys.hls_to_rgb(0.5, 0.5, 0.5),
        string.capwords("hello   big world"), string.Template("$a-$b").substitute(a=1, b=2),
    ]


WORKLOAD_MODULES = ["base64", "colorsys", "difflib", "fractions", "ipaddress", "json",
                    "json.decoder", "json.encoder", "json.scanner", "posixpath", "genericpath",
                    "shlex", "statistics", "string", "textwrap", "urllib.parse", "numbers",
                    "re", "re._compiler", "re._parser", "functools", "collections"]


@pytest.mark.parametrize("assume", ["stable", "entry"])
def test_stdlib_workload_specialized(assume):
    """Every function of the workload's modules is marked; the workload then runs through the
    specialized code and computes exactly what plain CPython computed."""
    expected = workload()
    modules = [importlib.import_module(name) for name in WORKLOAD_MODULES]
    functions, _ = collect_functions(modules)
    before = fatjit.stats()
    try:
        for func in functions:
            fatjit.specialize(func, assume=assume)
        first = workload()
        second = workload()
        made = fatjit.stats()["auto_specialized"] - before["auto_specialized"]
        runs = fatjit.stats()["specialized_runs"] - before["specialized_runs"]
    finally:
        for func in functions:
            fatjit.unspecialize(func)
    print(f"\n{len(functions)} functions marked, {made} specialized at their first call, "
          f"{runs} calls ran specialized code")
    assert first == expected
    assert second == expected
    assert made >= 30
    assert runs >= 150


def main():
    modules, failed = import_modules()
    functions, nested = collect_functions(modules)
    print(f"{len(modules)} modules, {len(failed)} skipped; {len(functions)} functions + "
          f"{len(nested)} nested code objects")
    for assume in ("stable", "entry"):
        counts, problems, _, rewrites, active, elapsed = sweep(functions + nested, assume)
        total = len(functions) + len(nested)
        print(f"assume={assume}: {total / elapsed:,.0f} functions/s; "
              f"{dict(sorted(counts.items()))}; rewrites {rewrites}, active {active}; "
              f"problems {len(problems)}")
        for problem in problems[:20]:
            print("  " + problem)


if __name__ == "__main__":
    main()
