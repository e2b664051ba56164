"""Registering a module's cached specializations once its body has run (the import hook).

Assumes: `entries` from import_hook.transform_module (or its cache) for this exact source; the
module object just executed, and the module code object it ran (to recognise its functions by
identity).
Produces: for each module-level function, and each function, staticmethod or classmethod
found in a module-level class, whose code object is one the module's code created and for
which an entry exists, a fatjit.specialize(func, code, guards) call. Guards: GuardFunc(func);
GuardGlobals for every global assumed; GuardBuiltins for every builtin; GuardFunc(callee) for
every inlined callee. Counted per function: specialized, or refused by reason.
Sound because: nothing is registered unless every assumption holds now, in this module: a
literal global assumed from the source must be bound to an equal value of the same type (the
guard then keeps that object); an assumed builtin must be the genuine one and not shadowed by a
global; an inlined callee must be the function the module's own code defined at that line; a
placeholder must resolve; and the code must fit the function's frame (driver.check_compatible).
"""

import types

from . import code_layout as driver
from .constant_values import is_literal
from .counters import count
from .constant_values import genuine_builtin


class _Refused(Exception):
    pass


def _functions(module, module_code):
    """(func, key) of the module's functions whose code the module's code created."""
    known = {id(code): code for code in driver.code_objects(module_code)} if module_code else {}
    seen = set()

    def consider(value):
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if isinstance(value, types.FunctionType) and id(value) not in seen:
            code = value.__code__
            if known.get(id(code)) is code:
                seen.add(id(value))
                yield value, (code.co_qualname, code.co_firstlineno)

    namespace = vars(module)
    for value in list(namespace.values()):
        yield from consider(value)
        if isinstance(value, type) and value.__module__ == module.__name__:
            for attr in list(vars(value).values()):
                yield from consider(attr)


def _same_literal(a, b):
    return type(a) is type(b) and is_literal(a) and (a == b or (a != a and b != b)) \
        and repr(a) == repr(b)


def _guards_and_mapping(func, requirements, module_codes):
    import fatjit
    namespace = func.__globals__
    builtins_ = func.__builtins__
    if type(namespace) is not dict or type(builtins_) is not dict:
        raise _Refused("globals_not_dict")
    for name, value in requirements["globals"].items():
        if name not in namespace:
            raise _Refused("global_missing")
        if value is not None and not _same_literal(namespace[name], value):
            raise _Refused("global_value_differs")
    for name in requirements["builtins"]:
        if name in namespace:
            raise _Refused("builtin_shadowed")
        if name not in builtins_:
            raise _Refused("builtin_missing")
    for name, key in requirements["inlined"].items():
        callee = namespace.get(name)
        if not isinstance(callee, types.FunctionType) or \
                module_codes.get(key) is not callee.__code__:
            raise _Refused("inlined_callee_differs")
    guards = [fatjit.GuardFunc(func)]
    if requirements["globals"]:
        guards.append(fatjit.GuardGlobals(*sorted(requirements["globals"])))
    if requirements["builtins"]:
        guards.append(fatjit.GuardBuiltins(*sorted(requirements["builtins"])))
    for name in sorted(requirements["inlined"]):
        guards.append(fatjit.GuardFunc(namespace[name]))

    def resolve(kind, name):
        if kind == "type" and name == "range":
            return range
        if kind == "builtin":
            return builtins_[name]
        if kind == "global":
            return namespace[name]
        raise _Refused("unknown_placeholder")
    return guards, resolve


def register_module(module, module_code, entries):
    import fatjit
    by_key = {(qualname, first): (code, requirements)
              for qualname, first, code, requirements in entries}
    module_codes = driver.index_codes(module_code) if module_code is not None else {}
    for func, key in _functions(module, module_code):
        entry = by_key.get(key)
        if entry is None:
            continue
        code, requirements = entry
        if driver.make_entry_stable(func.__code__) == code:
            count("functions_refused", "nothing_to_specialize")  # CPython did the same already
            continue
        try:
            reason = driver.check_compatible(func.__code__, code)
            if reason is not None:
                raise _Refused(f"incompatible: {reason}")
            for name in requirements["builtins"]:
                # Calls of it may have been folded with the genuine builtin: require it.
                if not genuine_builtin(name, func.__builtins__.get(name)):
                    raise _Refused("builtin_not_genuine")
            guards, resolve = _guards_and_mapping(func, requirements, module_codes)
            try:
                mapping = driver.placeholder_values(code, resolve)
            except KeyError:
                raise _Refused("name_missing") from None
            if mapping:
                code = fatjit.replace_consts(code, mapping)
            fatjit._fatjit.specialize(func, code, guards)
        except _Refused as why:
            count("functions_refused", str(why))
            continue
        count("functions_specialized")
        for name, rounds in requirements.get("passes", {}).items():
            count("rewrites_by_pass", name, rounds)
