"""Registering a module's specializations, each at its function's first call (the import hook).

Assumes: `entries` from import_hook.prepared_entries (or the cache file holding them) for this
exact module code object, which the module just executed (its functions are recognised by
identity): prepared_entries already dropped the entries CPython's own compile equals and those
whose code cannot run in the original's frame (code_layout.check_compatible), checks that
depend on the two code objects alone and so need not be repeated on every cached import.
Produces: for each entry, the function bound under the entry's qualname (a module-level
function, or a function, staticmethod or classmethod of a module-level class, nested classes
included) if its code object is the one the module's code holds where the entry says
(the entry's const_path, found by code_layout.const_path when the entry was prepared),
a pending registration (fatjit._fatjit.specialize_at_first_call) that becomes, at the
function's first call, a fatjit.specialize(func, code, guards) call with the placeholder
constants swapped for the
objects they stand for (fatjit.replace_consts). Guards: GuardFunc(func);
GuardGlobals for every global assumed; GuardBuiltins for every builtin; GuardFunc(callee) for
every inlined callee. Counted per function: deferred at import, then specialized or refused by
reason at the first call. Why at the first call: registering costs ~20 us per function (guard
objects, replace_consts, specialize), which an import paid for every function, called or not.
Sound because: nothing is registered unless every assumption holds at that first call, in this
module (the module as the program left it by then, not as its body left it): a
literal global assumed from the source must be bound to an equal value of the same type (the
guard then keeps that object); an assumed builtin must be the genuine one and not shadowed by a
global; an inlined callee must be the function the module's own code defined at that line; a
placeholder must resolve (the frame fit was checked with the entry, for this module code).
"""

import builtins
import marshal
import types
from _imp import _fix_co_filename

from .counters import count

# Loaded with the import hook (at start-up): nothing else of the specializer is imported here,
# so that a cached import registers without importing a module.
_HEAPTYPE = 1 << 9
_SCALAR_LITERALS = (int, float, complex, str, bytes, bool, type(None), type(Ellipsis))


class _Refused(Exception):
    pass


def genuine_builtin(name, value):
    """`value` is the builtin the interpreter defines under `name` (not a replacement)."""
    if isinstance(value, types.BuiltinFunctionType):
        return value.__name__ == name and getattr(value, "__self__", None) is builtins
    if isinstance(value, type):
        return not (value.__flags__ & _HEAPTYPE) and value.__name__ == name
    return False


def code_at(module_code, path):
    """The constant at `path` (code_layout.const_path) in `module_code`, or None."""
    current = module_code
    for index in path:
        consts = getattr(current, "co_consts", ())
        if index >= len(consts):
            return None
        current = consts[index]
    return current


def _functions(module, module_code, entries):
    """(func, payload) for each entry whose function is bound under its own qualname in the
    module (a module-level function, or a function, staticmethod or classmethod of a class
    bound there, at any depth) and whose code object is the one the module's code holds at
    the entry's const_path. Looked up by name, not by scanning the namespace: a cached import
    must stay cheap. (A function bound only under another name is not found, and so not
    specialized.)"""
    namespace = vars(module)
    for qualname, _, path, payload in entries:
        parts = qualname.split(".")
        value = namespace.get(parts[0])
        for part in parts[1:]:
            value = vars(value).get(part) if isinstance(value, type) else None
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if type(value) is types.FunctionType and code_at(module_code, path) is value.__code__:
            yield value, payload


def _same_literal(a, b):
    """`a` (live) is the literal `b` (from the source): same exact type, equal, same repr."""
    if type(a) is not type(b):
        return False
    if type(a) not in _SCALAR_LITERALS:  # a tuple or frozenset: its items must be literals
        from .constant_values import is_literal
        if not is_literal(a):
            return False
    return (a == b or (a != a and b != b)) and repr(a) == repr(b)


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
    """Defers the registration of every entry whose function is found in `module` to that
    function's first call (fatjit._fatjit.specialize_at_first_call): an import pays one lookup
    and one call per specialized function, and functions never called pay nothing more. At the
    first call, _register_at_first_call checks the assumptions against the module as it is then
    and registers, or refuses; counted per function then."""
    import fatjit
    if module_code is None or not entries:
        return
    later = fatjit._fatjit.specialize_at_first_call
    shared = [module_code, None]  # the module's code, and its index of code objects once built
    deferred = 0
    for func, payload in _functions(module, module_code, entries):
        later(func, _Deferred(shared, payload))
        deferred += 1
    if deferred:
        count("functions_deferred", amount=deferred)


class _Deferred:
    """The callable specialize_at_first_call runs at the function's first call: decodes the
    entry's payload (the specialized code, named after the module's file as a .pyc read names
    its code, and the requirements), then registers."""
    __slots__ = ("shared", "payload")

    def __init__(self, shared, payload):
        self.shared, self.payload = shared, payload

    def __call__(self, func):
        try:
            code, requirements = marshal.loads(self.payload)
            _fix_co_filename(code, self.shared[0].co_filename)
            _register(func, code, requirements, self.shared)
        except _Refused as why:
            count("functions_refused", str(why))
        except Exception as exc:  # noqa: BLE001 - the function runs unspecialized
            count("functions_refused", f"register_failed: {type(exc).__name__}")


def _register(func, code, requirements, shared):
    import fatjit
    module_codes = {}
    if requirements["inlined"]:
        if shared[1] is None:
            from .code_layout import index_codes
            shared[1] = index_codes(shared[0])
        module_codes = shared[1]
    for name in requirements["builtins"]:
        # Calls of it may have been folded with the genuine builtin: require it.
        if not genuine_builtin(name, func.__builtins__.get(name)):
            raise _Refused("builtin_not_genuine")
    guards, resolve = _guards_and_mapping(func, requirements, module_codes)
    try:
        mapping = {value: resolve(kind, name)
                   for value, kind, name in requirements["placeholders"]}
    except KeyError:
        raise _Refused("name_missing") from None
    if mapping:
        code = fatjit.replace_consts(code, mapping)
    fatjit._fatjit.specialize(func, code, guards)
    count("functions_specialized")
    for name, rounds in requirements.get("passes", {}).items():
        count("rewrites_by_pass", name, rounds)
