"""fatjit: guarded specialization for CPython 3.11 (PEP 509/510/523, in the style of FAT Python).

    import fatjit

    def f(s):
        return len(s)

    def f_fast(s):
        return s.__len__()      # what f would do while `len` is the real builtin

    fatjit.specialize(f, f_fast.__code__, [fatjit.GuardBuiltins("len")])

f now runs f_fast's code while the guards pass at call time, and its own code otherwise.
See README.md for the whole API.
"""

from ._fatjit import (  # noqa: F401  (re-exported API)
    Guard,
    GuardArgType,
    GuardBuiltins,
    GuardDict,
    GuardFunc,
    GuardGlobals,
    GuardType,
    explain,
    get_specialized,
    guard_type_dict,
    reset_stats,
    specialize,
    stats,
    unspecialize,
)
from ._helpers import replace_consts  # noqa: F401

__all__ = [
    "Guard", "GuardArgType", "GuardBuiltins", "GuardDict", "GuardFunc", "GuardGlobals",
    "GuardType", "explain", "get_specialized", "guard_type_dict", "replace_consts",
    "reset_stats", "specialize", "stats", "unspecialize",
]
