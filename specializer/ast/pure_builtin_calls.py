"""pure_builtin_calls (guarded): a call of a pure builtin on constants becomes its result.

Assumes: the callee is a global read (LOAD_GLOBAL) that finds the genuine builtin
(environment.genuine_builtin() confirms the object; GuardBuiltins(name) is recorded, which also
fails while a module global shadows it), the call is entry-stable (entry_stable.py), and every
argument is a literal constant (no keywords, no *args).
Produces: an ast.Constant of the result, located where the call was.
Refused: results that are not literals or are over the size caps of constant_values.py, calls
that raise or warn (int("x") stays a call: its traceback is the original's), int<->str
conversions of more than 600 digits (sys.set_int_max_str_digits may change at run time, and
the import cache outlives the process), and anything process-dependent (hash, id: not listed).
Sound because: these builtins compute their result from their arguments alone, run no Python
code for literal arguments, and give the same result in every process.
"""

# The interpreter's own, even while a program replaces them in builtins (tests do).
from builtins import len  # noqa: A004  pylint: disable=redefined-builtin

import ast
import warnings

from .constant_values import MAX_INT_BITS, MAX_INT_STR_DIGITS, is_literal, too_big
from .fold_constants import literal

NAME = "pure_builtin_calls"

PURE = frozenset({"abs", "all", "any", "ascii", "bin", "bool", "chr", "complex", "divmod",
                  "float", "frozenset", "hex", "int", "len", "max", "min", "oct", "ord", "pow",
                  "repr", "round", "str", "sum", "tuple"})


class Refused(Exception):
    pass


def _check_arguments(name, args):
    for arg in args:
        if type(arg) is int and arg.bit_length() > 3 * MAX_INT_STR_DIGITS and name in (
                "str", "repr", "ascii"):
            raise Refused("int to str over the digit limit")
        if type(arg) in (str, bytes) and len(arg) > MAX_INT_STR_DIGITS and name == "int":
            raise Refused("str to int over the digit limit")
    if name == "pow" and len(args) >= 2 and all(type(a) is int for a in args[:2]):
        base, exp = args[0], args[1]
        if exp > 0 and base not in (0, 1, -1) and base.bit_length() * exp > MAX_INT_BITS \
                and len(args) == 2:
            raise Refused("int power over 128 bits")


def evaluate(name, function, args):
    _check_arguments(name, args)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            value = function(*args)
        except Exception as exc:  # noqa: BLE001 - the call stays, and raises at run time
            raise Refused(f"raises {type(exc).__name__}") from None
    if not is_literal(value) or too_big(value):
        raise Refused(f"result {type(value).__name__} is not a small literal")
    return value


def rewrite_call(node, context):
    """The constant replacing the call `node`, or None."""
    func = node.func
    if not isinstance(func, ast.Name) or func.id not in PURE or node.keywords \
            or not context.scope.is_global_read(func.id) \
            or func.id in context.scope.declared_global:
        return None
    name = func.id
    if not all(literal(a) for a in node.args):
        return None
    binding = context.env.lookup(name)
    if binding is None or binding.kind != "builtin" or not binding.genuine:
        return None
    try:
        value = evaluate(name, binding.value, [a.value for a in node.args])
    except Refused as why:
        context.remark(NAME, node, f"{name}(): {why}")
        return None
    context.require(binding)
    return ast.copy_location(ast.Constant(value=value), node)
