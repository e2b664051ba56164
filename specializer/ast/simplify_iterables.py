"""simplify_iterables: a list display iterated by `for` or tested by `in` becomes a tuple.

Assumes: the list is a display (`[a, b, c]`, no starred items) used only as the iterable of a
for statement, or as the right operand of `in` / `not in`.
Produces: the same display as a tuple: BUILD_TUPLE instead of BUILD_LIST, or a constant tuple
when every item is constant (then fold_constants and unroll_loops can go further).
Sound because: the list is unreachable from Python code (only the iterator or the `in` test
holds it), so its type is unobservable; items are evaluated in the same order, and iteration
and containment of a tuple and a list of the same items compare and yield the same objects.
"""

import ast

from .function_scope import NESTED_SCOPES

NAME = "simplify_iterables"


def _as_tuple(node):
    if isinstance(node, ast.List) and isinstance(node.ctx, ast.Load) \
            and not any(isinstance(e, ast.Starred) for e in node.elts):
        return ast.copy_location(ast.Tuple(elts=node.elts, ctx=ast.Load()), node)
    return None


class _Simplify(ast.NodeTransformer):
    def visit_Assert(self, node):
        # An assert is left as written: with a constant test CPython compiles it differently
        # and its AssertionError's traceback position moves.
        return node

    def __init__(self):
        self.changed = False

    def generic_visit(self, node):
        if isinstance(node, NESTED_SCOPES):
            return node
        return super().generic_visit(node)

    def visit_For(self, node):
        self.generic_visit(node)
        replaced = _as_tuple(node.iter)
        if replaced is not None:
            node.iter, self.changed = replaced, True
        return node

    def visit_Compare(self, node):
        self.generic_visit(node)
        for i, (op, right) in enumerate(zip(node.ops, node.comparators)):
            if isinstance(op, (ast.In, ast.NotIn)):
                replaced = _as_tuple(right)
                if replaced is not None:
                    node.comparators[i], self.changed = replaced, True
        return node


def run(func, context):
    simplify = _Simplify()
    func.body = [simplify.visit(stmt) for stmt in func.body]
    return simplify.changed
