"""FAT Python's pure-Python helpers."""

import types

__all__ = ["replace_consts"]


def _key(value):
    # 1, 1.0 and True are equal but not interchangeable as constants: match on exact type too.
    return (type(value), value)


def replace_consts(code, mapping):
    """Return a copy of `code` whose constants found in `mapping` are replaced by their values.

    As fat.replace_consts: `mapping` maps a constant of code.co_consts to its replacement, which
    may be any object (a builtin function, a module...). A constant matches a key of the same
    exact type that compares equal. Nested code objects (inner functions, comprehensions) are
    left alone.
    """
    if not isinstance(code, types.CodeType):
        raise TypeError(f"replace_consts: code must be a code object, not {type(code).__name__}")
    if not isinstance(mapping, dict):
        raise TypeError(f"replace_consts: mapping must be a dict, not {type(mapping).__name__}")
    table = {}
    for old, new in mapping.items():
        try:
            table[_key(old)] = new
        except TypeError:
            raise TypeError(
                f"replace_consts: mapping keys must be hashable constants, got {old!r}"
            ) from None
    consts = []
    for const in code.co_consts:
        try:
            consts.append(table.get(_key(const), const))
        except TypeError:  # an unhashable constant cannot be a key
            consts.append(const)
    return code.replace(co_consts=tuple(consts))
