"""fatjit's API, loaded at its first use by the package (fatjit/__init__.py re-exports it).

Importing this module loads the extension fatjit._fatjit and, through it, libstdc++ and Abseil
(~4.5 ms of dynamic loading); the package defers it so that `python -m fatjit` and FATJIT=auto
start with the start-up counter only (ext/boot.c).
"""

import atexit as _atexit
import os as _os
import sys as _sys

from . import _fatjit
from ._fatjit import (  # noqa: F401  (re-exported API)
    Guard,
    GuardArgType,
    GuardBuiltins,
    GuardDict,
    GuardFunc,
    GuardGlobals,
    GuardType,
    disable,
    enable,
    explain,
    get_specialized,
    guard_type_dict,
    is_enabled,
    replace_consts,
    unspecialize,
    wait_for_compiles,
)


_ASSUME = ("stable", "entry")


def stats():
    """The counters (README "stats()"); "ast": the AST specializer's (fatjit._ast.stats(),
    empty while it was never loaded); "start_up_counter": what FATJIT=auto's start-up counter
    did before fatjit loaded (_fatjit_boot.status(), ext/boot.c; empty without it)."""
    counters = _fatjit.stats()
    ast_package = _sys.modules.get("fatjit._ast")
    counters["ast"] = ast_package.stats() if ast_package is not None else {}
    boot = _sys.modules.get("_fatjit_boot")
    counters["start_up_counter"] = boot.status() if boot is not None else {}
    return counters


def reset_stats():
    """Every counter of stats() back to zero, the AST specializer's included."""
    _fatjit.reset_stats()
    ast_package = _sys.modules.get("fatjit._ast")
    if ast_package is not None:
        ast_package.reset_stats()


_MISSING = object()


def specialize(func=None, code=_MISSING, guards=_MISSING, *, assume="stable", jit=False,
               source=False):
    """Specialize a function, automatically or with caller-supplied code (PEP 510).

    fatjit.specialize(func)                  automatic: at func's first call, derive specialized
    @fatjit.specialize                       bytecode and the guards it needs; returns func
    @fatjit.specialize(assume="entry")       the same with FAT Python's semantics (see below)
    fatjit.specialize(func, code, guards)    PEP 510: run `code` instead while `guards` pass

    assume="stable" (the default) uses a specialized instruction only where nothing that could
    invalidate its guard (a call, an operator on an unknown type, a loop back-edge...) can have
    run since the guards were checked at entry, so the function's meaning never changes.
    assume="entry" uses every rewrite, trusting guards checked at call entry for the whole call,
    as FAT Python did: faster where the function calls code that rebinds what it specialized on,
    and then wrong. Opt in only for code you know.

    jit=True also compiles the specialized code (or the function's own code, when there is
    nothing to specialize) to native code at the first call: see fatjit.jit.

    source=True specializes now, from the function's source file, with the AST specializer
    (fatjit._ast: constant propagation and folding, loop unrolling, dead code, builtins and
    globals to constants, inlining); the result is registered as a PEP 510 specialization.
    ValueError when the source is unavailable or no longer matches the function's code.
    """
    if assume not in _ASSUME:
        raise ValueError(
            f"fatjit.specialize: assume must be 'stable' or 'entry', not {assume!r}")
    if source:
        if code is not _MISSING or guards is not _MISSING:
            raise TypeError("fatjit.specialize: source=True derives code and guards itself; "
                            "do not pass them")
        if jit:
            raise TypeError("fatjit.specialize: source=True and jit=True do not combine")
        from ._ast import specialize_source
        if func is None:
            return lambda f: specialize_source(f, assume=assume).function
        return specialize_source(func, assume=assume).function
    if func is None:
        if code is not _MISSING or guards is not _MISSING:
            raise TypeError("fatjit.specialize: code and guards need func")
        return lambda f: _fatjit.specialize_auto(f, assume=assume, jit=jit)
    if code is _MISSING and guards is _MISSING:
        return _fatjit.specialize_auto(func, assume=assume, jit=jit)
    if code is _MISSING or guards is _MISSING:
        raise TypeError("fatjit.specialize(func, code, guards): code and guards go together")
    if jit:
        raise TypeError("fatjit.specialize: jit=True applies to automatic specialization only; "
                        "the JIT compiles code it specialized itself")
    if assume != "stable":
        raise TypeError("fatjit.specialize: assume= applies to automatic specialization only; "
                        "with code and guards, the guards are checked at entry by definition")
    return _fatjit.specialize(func, code, guards)


def jit(func=None, *, assume="stable"):
    """Compile a function to native code at its first call: @fatjit.jit or fatjit.jit(func).

    The function is first specialized as fatjit.specialize(func) would (under the same guards),
    then its bytecode is translated to native code by the LLVM tier. Native code does what the
    interpreter would, instruction by instruction; where it cannot go on (a guard broke, tracing
    was switched on, an exception is raised) it hands the frame to the interpreter at the same
    point, so results, exceptions and tracebacks are the same. Functions the JIT does not compile
    (generators, coroutines) run as before; fatjit.explain(func) says why. Returns func.
    """
    if assume not in _ASSUME:
        raise ValueError(f"fatjit.jit: assume must be 'stable' or 'entry', not {assume!r}")
    if func is None:
        return lambda f: _fatjit.specialize_auto(f, assume=assume, jit=True)
    return _fatjit.specialize_auto(func, assume=assume, jit=True)


if _os.environ.get("FATJIT_STATS", "") not in ("", "0"):
    from ._report import print_stats as _print_stats
else:
    _print_stats = None


def _at_exit():
    """FATJIT_STATS's table, then automatic mode off, so that interpreter teardown (module
    cleanup, finalizers) runs no specializer. atexit runs the last registered handler first:
    imported at start-up (FATJIT=auto, python -m fatjit), this runs after the program's own."""
    try:
        if _print_stats is not None:
            _print_stats()
    finally:
        disable()
        # Compiles still queued are dropped; one under way finishes first (a few ms).
        _fatjit._jit_shutdown()


if _fatjit._in_main_interpreter():
    _atexit.register(_at_exit)
    # The background compiler thread does not survive fork: it is held idle across the fork, and
    # the child starts without it (and recompiles what it needs).
    _os.register_at_fork(before=_fatjit._jit_before_fork,
                         after_in_parent=_fatjit._jit_after_fork_in_parent,
                         after_in_child=_fatjit._jit_after_fork_in_child)

__all__ = [
    "Guard", "GuardArgType", "GuardBuiltins", "GuardDict", "GuardFunc", "GuardGlobals",
    "GuardType", "disable", "enable", "explain", "get_specialized", "guard_type_dict",
    "is_enabled", "jit", "replace_consts", "reset_stats", "specialize", "stats", "unspecialize",
    "wait_for_compiles",
]

# The API is fatjit's (help(), repr(), pickling by reference name the package, not this file).
for _name in __all__:
    if getattr(globals()[_name], "__module__", None) == __name__:
        globals()[_name].__module__ = "fatjit"
del _name

# Automatic mode started with the start-up counter (ext/boot.c) still counting: the program's first
# use of the API turns automatic mode on now, so that it finds it on.
if "_fatjit_boot" in _sys.modules:
    _sys.modules["_fatjit_boot"].hand_over()
