"""Registering a module's cached specializations once its body has run (the import hook).

Assumes: `entries` from import_hook.transform_module (or its cache) for this exact source; the
module object just executed, and the module code object it ran (to recognise its functions by
identity).
Produces: for each entry, the function bound under the entry's qualname (a module-level
function, or a function, staticmethod or classmethod of a module-level class, nested classes
included) if its code object is the one the module's code created (code_layout.created_by),
a fatjit.specialize(func, code, guards) call, with the placeholder constants swapped for the
objects they stand for (fatjit.replace_consts). Guards: GuardFunc(func);
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


def _functions(module, module_code, wanted):
    """(func, key) for each wanted (qualname, first line) bound under its own qualname in the
    module (a module-level function, or a function, staticmethod or classmethod of a class
    bound there, at any depth) whose code object the module's code created. Looked up by name,
    not by scanning the namespace: a cached import must stay cheap. (A function bound only
    under another name is not found, and so not specialized.)"""
    namespace = vars(module)
    for key in wanted:
        parts = key[0].split(".")
        value = namespace.get(parts[0])
        for part in parts[1:]:
            value = vars(value).get(part) if isinstance(value, type) else None
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if type(value) is not types.FunctionType:
            continue
        code = value.__code__
        if (code.co_qualname, code.co_firstlineno) == key and \
                module_code is not None and driver.created_by(module_code, code):
            yield value, key


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
    if not by_key:
        return
    module_codes = None
    for func, key in _functions(module, module_code, by_key):
        code, requirements = by_key[key]
        if requirements["inlined"] and module_codes is None:
            module_codes = driver.index_codes(module_code) if module_code is not None else {}
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
            guards, resolve = _guards_and_mapping(func, requirements, module_codes or {})
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
