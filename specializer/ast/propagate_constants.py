"""propagate_constants: reads of a local that is assigned a constant once become the constant.

Assumes: FunctionScope facts (function_scope.py) for the function as it is now.
Produces: for a statement `x = C` at the top level of the body (C a literal ast.Constant, x a
plain local: not a parameter, bound by no other executed construct anywhere in the function,
never deleted, not declared global or nonlocal, not mentioned by a nested scope), every read
of x in the statements after it becomes C. The assignment itself stays (locals(), tracebacks'
frame locals and the code object's variable layout see x as before).
Sound because: a top-level statement dominates every later top-level statement, so x holds C
at every rewritten read, and nothing else can change a fast local (frame.f_locals writes go
back to fast locals only under a tracer, and tracing runs the original code). Reads before the
assignment are left alone: they raise UnboundLocalError exactly as before.
"""

# The interpreter's own, even while a program replaces them in builtins (tests do).
from builtins import len  # noqa: A004  pylint: disable=redefined-builtin

import ast

from .constant_values import is_literal
from .function_scope import NESTED_SCOPES

NAME = "propagate_constants"


class _Replace(ast.NodeTransformer):
    def visit_Assert(self, node):
        # An assert is left as written: with a constant test CPython compiles it differently
        # and its AssertionError's traceback position moves.
        return node

    def __init__(self, name, value):
        self.name, self.value, self.count = name, value, 0

    def visit_Name(self, node):
        if node.id == self.name and isinstance(node.ctx, ast.Load):
            self.count += 1
            return ast.copy_location(ast.Constant(value=self.value), node)
        return node

    def generic_visit(self, node):
        if isinstance(node, NESTED_SCOPES):
            return node
        return super().generic_visit(node)


def candidates(func, scope):
    """(index, name, value) of the top-level `name = constant` statements that qualify."""
    for index, stmt in enumerate(func.body):
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name)
                and isinstance(stmt.value, ast.Constant) and is_literal(stmt.value.value)):
            continue
        name = stmt.targets[0].id
        if name in scope.params or name in scope.declared_global \
                or name in scope.declared_nonlocal or name in scope.deleted \
                or name in scope.mentioned_by_nested or scope.binding_count(name) != 1:
            continue
        yield index, name, stmt.value.value


def run(func, context):
    scope = context.scope
    changed = False
    for index, name, value in list(candidates(func, scope)):
        replace = _Replace(name, value)
        func.body[index + 1:] = [replace.visit(stmt) for stmt in func.body[index + 1:]]
        changed |= replace.count > 0
    return changed
