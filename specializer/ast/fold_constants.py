"""fold_constants: operators, comparisons, subscripts and conditional expressions on constants.

Assumes: operands are ast.Constant nodes holding literal values (constant_values.is_literal:
exact int, float, complex, str, bytes, bool, None, tuples and frozensets of them), so an
operator runs no Python code. Earlier passes (propagate_constants, globals_to_constants,
unroll_loops) turn more operands into constants; this pass goes further than CPython's own
AST optimizer, which folds only what is literally written.
Produces: the expression replaced by one ast.Constant with the location of the expression it
replaces, `C and X` / `C or X` and `X if C else Y` reduced by the truth of the literal C, and
tuple displays of constants turned into constant tuples.
Sound because: the fold evaluates the same operator on the same exact-type values CPython would
at run time, with warnings turned into errors; it refuses (leaves the node alone) whatever
raises or warns (1/0 stays 1/0, so its traceback is the original's), results over CPython's size
caps (** << and int*int over 128 bits, str/bytes over 4096, tuples over 256 items), `is`
between non-singletons (identity of equal constants is an implementation detail), comparisons
mixing bytes and str (BytesWarning under -b), and int/str conversions near the
int-max-str-digits limit, which a program may change at run time.
"""

# The interpreter's own, even while a program replaces them in builtins (tests do).
from builtins import len  # noqa: A004  pylint: disable=redefined-builtin

import ast
import operator
import warnings

from .constant_values import (MAX_COLLECTION_SIZE, MAX_INT_BITS, MAX_INT_STR_DIGITS,
                              MAX_STR_SIZE, is_literal, too_big)

NAME = "fold_constants"

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod,
           ast.Pow: operator.pow, ast.LShift: operator.lshift, ast.RShift: operator.rshift,
           ast.BitOr: operator.or_, ast.BitXor: operator.xor, ast.BitAnd: operator.and_}
_UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg, ast.Invert: operator.invert,
          ast.Not: operator.not_}
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt,
            ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
            ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b}
_SINGLETONS = (type(None), bool, type(Ellipsis))


class Refused(Exception):
    """This node is not folded; the message names why (for tests and remarks)."""


def literal(node):
    return isinstance(node, ast.Constant) and is_literal(node.value)


def _check_binary_size(op, left, right):
    """CPython's ast_opt.c caps, checked before computing (a huge ** would take forever)."""
    ints = type(left) is int and type(right) is int
    if op is ast.Pow and ints and right > 0 and left not in (0, 1, -1):
        if left.bit_length() * right > MAX_INT_BITS:
            raise Refused("int power over 128 bits")
    if op is ast.LShift and ints and left:
        if right > MAX_INT_BITS or left.bit_length() + right > MAX_INT_BITS:
            raise Refused("shift over 128 bits")
    if op is ast.Mult:
        if ints and left and right and left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise Refused("int product over 128 bits")
        for seq, count in ((left, right), (right, left)):
            if type(seq) in (str, bytes, tuple) and type(count) in (int, bool) and count > 0:
                limit = MAX_COLLECTION_SIZE if type(seq) is tuple else MAX_STR_SIZE
                if len(seq) * count > limit:
                    raise Refused("repeated sequence over the size cap")
    if op is ast.Mod and type(left) in (str, bytes):
        raise Refused("%-formatting")  # runs __format__/__str__ of operands in tuples
    if type(left) in (str, bytes) and type(right) in (str, bytes) and type(left) is not type(right):
        raise Refused("bytes and str mixed")


def _evaluate(compute):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            value = compute()
        except Exception as exc:  # noqa: BLE001 - any exception: the operation stays
            raise Refused(f"raises {type(exc).__name__}") from None
    if not is_literal(value):
        raise Refused(f"result of type {type(value).__name__}")
    if too_big(value):
        raise Refused("result over the size cap")
    return value


def fold_binop(node):
    op = type(node.op)
    if op not in _BINARY:
        raise Refused("matrix multiplication")
    left, right = node.left.value, node.right.value
    _check_binary_size(op, left, right)
    return _evaluate(lambda: _BINARY[op](left, right))


def fold_unaryop(node):
    value = node.operand.value
    return _evaluate(lambda: _UNARY[type(node.op)](value))


def fold_compare(node):
    values = [node.left.value] + [c.value for c in node.comparators]
    for (a, b), op in zip(zip(values, values[1:]), node.ops):
        kind = type(op)
        if kind in (ast.Is, ast.IsNot):
            if not (isinstance(a, _SINGLETONS) and isinstance(b, _SINGLETONS)):
                raise Refused("identity of non-singleton constants")
        elif {type(a), type(b)} == {str, bytes} or (
                kind in (ast.In, ast.NotIn) and type(b) in (tuple, frozenset)
                and any(type(x) in (str, bytes) for x in b) and type(a) in (str, bytes)
                and any(type(x) is not type(a) for x in b if type(x) in (str, bytes))):
            raise Refused("bytes and str compared")

    def compute():
        for (a, b), op in zip(zip(values, values[1:]), node.ops):
            kind = type(op)
            if kind is ast.Is:
                ok = a is b
            elif kind is ast.IsNot:
                ok = a is not b
            else:
                ok = _COMPARE[kind](a, b)
            if not ok:
                return False
        return True
    return _evaluate(compute)


def fold_subscript(node):
    container = node.value.value
    if type(container) not in (tuple, str, bytes):
        raise Refused("subscript of a non-sequence")
    index = node.slice
    if literal(index):
        key = index.value
        if type(key) not in (int, bool):
            raise Refused("non-int index")
    elif isinstance(index, ast.Slice):
        parts = [index.lower, index.upper, index.step]
        if not all(p is None or (literal(p) and type(p.value) in (int, bool, type(None)))
                   for p in parts):
            raise Refused("non-constant slice")
        key = slice(*[None if p is None else p.value for p in parts])
    else:
        raise Refused("non-constant index")
    return _evaluate(lambda: container[key])


def fold_formatted(node):
    """f"{C}" with no conversion or format spec, C a str or a small int."""
    parts = []
    for value in node.values:
        if literal(value) and type(value.value) is str:
            parts.append(value.value)
        elif isinstance(value, ast.FormattedValue) and value.conversion == -1 \
                and value.format_spec is None and literal(value.value) \
                and type(value.value.value) in (str, int) \
                and len(str(value.value.value)) <= MAX_INT_STR_DIGITS:
            parts.append(str(value.value.value))
        else:
            raise Refused("f-string with a non-constant part")
    return _evaluate(lambda: "".join(parts))


def fold_node(node):
    """The folded value of `node` whose operands are already constants, or Refused."""
    if isinstance(node, ast.BinOp) and literal(node.left) and literal(node.right):
        return fold_binop(node)
    if isinstance(node, ast.UnaryOp) and literal(node.operand):
        return fold_unaryop(node)
    if isinstance(node, ast.Compare) and literal(node.left) \
            and all(literal(c) for c in node.comparators):
        return fold_compare(node)
    if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and literal(node.value):
        return fold_subscript(node)
    if isinstance(node, ast.Tuple) and isinstance(node.ctx, ast.Load) \
            and all(literal(e) for e in node.elts):
        return _evaluate(lambda: tuple(e.value for e in node.elts))
    if isinstance(node, ast.JoinedStr):
        return fold_formatted(node)
    raise Refused("operands are not constants")


def constant_like(value, node):
    return ast.copy_location(ast.Constant(value=value), node)


def simplify(node):
    """`node` folded, or reduced by a constant truth value, or None when nothing applies."""
    if isinstance(node, ast.BoolOp):
        values = list(node.values)
        is_and = isinstance(node.op, ast.And)
        while len(values) > 1 and literal(values[0]):
            truth = bool(values[0].value)
            if truth != is_and:       # `falsy and X` -> falsy ; `truthy or X` -> truthy
                return values[0]
            values.pop(0)             # `truthy and X` -> X ; `falsy or X` -> X
        if len(values) == len(node.values):
            return None
        if len(values) == 1:
            return values[0]
        return ast.copy_location(ast.BoolOp(op=node.op, values=values), node)
    if isinstance(node, ast.IfExp) and literal(node.test):
        return node.body if node.test.value else node.orelse
    try:
        return constant_like(fold_node(node), node)
    except Refused:
        return None


class _Folder(ast.NodeTransformer):
    def visit_Assert(self, node):
        # An assert is left as written: with a constant test CPython compiles it differently
        # and its AssertionError's traceback position moves.
        return node

    def __init__(self):
        self.changed = False

    def generic_visit(self, node):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef,
                             ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            return node  # nested scopes are specialized on their own, if ever
        super().generic_visit(node)
        if isinstance(node, ast.expr):
            folded = simplify(node)
            if folded is not None:
                self.changed = True
                return folded
        return node


def run(func, context):
    """Folds in the function's body. Returns whether anything changed."""
    folder = _Folder()
    func.body = [folder.visit(stmt) for stmt in func.body]
    return folder.changed
