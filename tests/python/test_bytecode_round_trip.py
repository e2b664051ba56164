"""The bytecode model round-trips every function of the standard library byte for byte.

Decoding co_code and co_exceptiontable and encoding them again must give the same bytes: the
specializer rewrites code in place on that model, so any drift would corrupt offsets, jump
targets or handlers. (The GoogleTest specializer_bytecode_stdlib_test does the same over every
.py file of the library, module and class bodies included; this test walks live functions.)
"""

import importlib
import inspect
import pkgutil
import sys
import types

import pytest

from fatjit import _fatjit

SKIP = {"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo", "test", "__main__",
        "lib2to3", "ensurepip", "pydoc_data", "venv"}


def _code_objects(code):
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def _stdlib_functions():
    seen = set()
    names = sorted({m.name for m in pkgutil.iter_modules()
                    if m.name in sys.stdlib_module_names and m.name not in SKIP})
    for name in names:
        try:
            module = importlib.import_module(name)
        except Exception:  # platform-specific or optional modules
            continue
        for obj in list(vars(module).values()):
            candidates = [obj] if inspect.isfunction(obj) else (
                [v for v in vars(obj).values() if inspect.isfunction(v)]
                if inspect.isclass(obj) else [])
            for func in candidates:
                if id(func.__code__) not in seen:
                    seen.add(id(func.__code__))
                    yield func


def test_every_stdlib_function_round_trips_byte_for_byte():
    """decode(co_code) re-encodes to co_code, and the exception table to itself, for every
    function (and nested code object) of the importable standard library."""
    checked = 0
    mismatches = []
    for func in _stdlib_functions():
        for code in _code_objects(func.__code__):
            checked += 1
            if not _fatjit._round_trip(code):
                mismatches.append(f"{func.__module__}.{func.__qualname__}: {code.co_name}")
    print(f"\n{checked} code objects round-tripped")
    assert checked > 5000
    assert mismatches == []


def test_round_trip_rejects_non_code():
    """The helper names what it needs."""
    with pytest.raises(TypeError, match="expected a code object, not int"):
        _fatjit._round_trip(1)
