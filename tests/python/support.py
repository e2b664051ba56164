"""Helpers shared by the fatjit tests: fresh modules, code objects, stats deltas."""

import itertools
import os
import pathlib
import textwrap
import traceback
import types
import warnings

import fatjit

_module_ids = itertools.count()

# The directory that makes this fatjit importable (build/python), for child processes.
BUILD_PYTHON = pathlib.Path(fatjit.__file__).resolve().parent.parent


def child_env(**changes):
    """A child's environment: the build tree (its fatjit and sitecustomize) on sys.path, none of
    this process's FATJIT* settings, then `changes`."""
    child = {k: v for k, v in os.environ.items() if not k.startswith("FATJIT")}
    child["PYTHONPATH"] = str(BUILD_PYTHON)
    child.update(changes)
    return child


def new_module(source, **names):
    """A fresh module with `names` preset and `source` (dedented) executed in it."""
    name = f"fatjit_test_mod_{next(_module_ids)}"
    module = types.ModuleType(name)
    module.__dict__.update(names)
    code = compile_source(source, f"<{name}>")
    exec(code, module.__dict__)
    return module


def compile_source(source, filename="<fatjit-test>"):
    """Compiles dedented source; SyntaxWarnings (e.g. calling a str constant) are silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SyntaxWarning)
        return compile(textwrap.dedent(source), filename, "exec")


def function_code(source, name):
    """The code object of function `name` defined at top level in `source`."""
    return new_module(source).__dict__[name].__code__


def stats_delta(before, after):
    """after - before, for the numeric counters and the per-kind / per-reason / per-pass dicts
    (a key that appeared since counts from 0)."""
    delta = {}
    for key, value in after.items():
        if isinstance(value, dict):
            delta[key] = stats_delta(before.get(key, {}), value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            delta[key] = value - before.get(key, 0)
    return delta


class StatsWatch:
    """Takes a stats() snapshot now; .delta() is what moved since."""

    def __init__(self):
        self.before = fatjit.stats()

    def delta(self):
        return stats_delta(self.before, fatjit.stats())


SWAP = "runs as: the frame's code swapped in place"
CALL = "runs as: a call with the bound arguments"


def run_paths(func):
    """How each specialization of func runs, newest first: 'swap' or 'call' (from explain)."""
    paths = []
    for line in fatjit.explain(func).splitlines():
        line = line.strip()
        if line == SWAP:
            paths.append("swap")
        elif line == CALL:
            paths.append("call")
    return paths


def outcome_with_locals(call):
    """(type, repr) of call()'s result, or the exception's type, message, traceback lines in
    new_module's modules and the raising frame's locals: what a compiled function and its
    interpreted twin must agree on."""
    try:
        result = call()
        return type(result), repr(result)
    except Exception as e:  # noqa: BLE001 - comparing every kind of exit
        frames = [(f, line) for f, line in traceback.walk_tb(e.__traceback__)
                  if f.f_code.co_filename.startswith("<fatjit_test_mod")]
        return (type(e), str(e), [line for _, line in frames],
                repr(sorted(frames[-1][0].f_locals.items())) if frames else None)
