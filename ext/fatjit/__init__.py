"""fatjit: guarded specialization for CPython 3.11 (PEP 509/510/523, in the style of FAT Python).

    import fatjit

    def f(s):
        return len(s)

    def f_fast(s):
        return s.__len__()      # what f would do while `len` is the real builtin

    fatjit.specialize(f, f_fast.__code__, [fatjit.GuardBuiltins("len")])

f now runs f_fast's code while the guards pass at call time, and its own code otherwise.
Automatic mode (fatjit.enable(), FATJIT=auto, python -m fatjit) specializes hot functions with
no change to the program. See README.md for the whole API.
"""

import sys as _sys

__all__ = [
    "Guard", "GuardArgType", "GuardBuiltins", "GuardDict", "GuardFunc", "GuardGlobals",
    "GuardType", "disable", "enable", "explain", "get_specialized", "guard_type_dict",
    "is_enabled", "jit", "replace_consts", "reset_stats", "specialize", "stats", "unspecialize",
    "wait_for_compiles",
]


def _load_api():
    """fatjit._api's names, copied here on the first use of any (PEP 562): importing the package
    alone loads no extension (`python -m fatjit` starts with the start-up counter only)."""
    api = _sys.modules.get("fatjit._api")
    if api is None:
        import fatjit._api  # noqa: F401  (partially initialized while it hands over: see below)
        api = _sys.modules["fatjit._api"]
    namespace = globals()
    for key, value in vars(api).items():
        if not (key.startswith("__") and key.endswith("__")):
            namespace.setdefault(key, value)


def __getattr__(name):
    if not (name.startswith("__") and name.endswith("__")):
        _load_api()
        if name in globals():
            return globals()[name]
    raise AttributeError(f"module 'fatjit' has no attribute {name!r}")


def __dir__():
    _load_api()
    return sorted(globals())
