"""inline_functions (guarded): a call of a small module-level function becomes its expression.

Assumes: the callee is a global read at an entry-stable point (GuardGlobals on its name), and
the environment knows the callee's definition (a top-level `def` in
the same source file, bound once). The callee is a plain function: no decorator, not async or
a generator, positional parameters only, no defaults used, and its body is `return EXPR`
(after an optional docstring). The call passes exactly one positional argument per parameter,
each a literal constant or a parameter of the caller that the caller never deletes.
Produces: EXPR with the arguments substituted, folded by fold_constants, kept only when the
result cannot raise: constants, the caller's parameters, tuples of those and `is` / `is not`
between them. Records GuardFunc(callee) (its code object) besides GuardGlobals(name).
Sound because: such an expression runs no Python code and cannot raise, so the callee's frame,
which would only appear in a traceback, is never observable; the arguments have no effects to
reorder (constants, bound parameters), and the guards ensure the name still denotes a function
with this code. A caveat shared with every inliner: a call that would have hit the recursion
limit does not.
"""

# The interpreter's own, even while a program replaces them in builtins (tests do).
from builtins import len  # noqa: A004  pylint: disable=redefined-builtin

import ast
import copy

from .fold_constants import _Folder, literal

NAME = "inline_functions"


def _callee_expression(fdef):
    if fdef.decorator_list or not isinstance(fdef, ast.FunctionDef):
        return None
    args = fdef.args
    if args.vararg or args.kwarg or args.kwonlyargs or args.defaults or args.kw_defaults:
        return None
    body = fdef.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    if len(body) != 1 or not isinstance(body[0], ast.Return) or body[0].value is None:
        return None
    return body[0].value


def _cannot_raise(node, allowed_names):
    if isinstance(node, ast.Constant):
        return literal(node)
    if isinstance(node, ast.Name):
        return node.id in allowed_names and isinstance(node.ctx, ast.Load)
    if isinstance(node, ast.Tuple):
        return all(_cannot_raise(e, allowed_names) for e in node.elts)
    if isinstance(node, ast.Compare):
        return all(isinstance(op, (ast.Is, ast.IsNot)) for op in node.ops) and \
            _cannot_raise(node.left, allowed_names) and \
            all(_cannot_raise(c, allowed_names) for c in node.comparators)
    return False


class _Substitute(ast.NodeTransformer):
    def __init__(self, mapping, at):
        self.mapping, self.at = mapping, at

    def visit_Name(self, node):
        if node.id in self.mapping:
            return copy.deepcopy(self.mapping[node.id])
        return node

    def generic_visit(self, node):
        node = super().generic_visit(node)
        if not isinstance(node, (ast.Name,)) and hasattr(node, "lineno"):
            ast.copy_location(node, self.at)
            node.end_lineno, node.end_col_offset = self.at.end_lineno, self.at.end_col_offset
        return node


def rewrite_call(node, context):
    func = node.func
    if not isinstance(func, ast.Name) or node.keywords \
            or not context.scope.is_global_read(func.id) \
            or func.id in context.scope.declared_global:
        return None
    name = func.id
    binding = context.env.lookup(name)
    if binding is None or binding.kind != "global" or binding.function_def is None:
        return None
    expression = _callee_expression(binding.function_def)
    if expression is None:
        context.remark(NAME, node, f"{name}() is not a one-expression function")
        return None
    args = binding.function_def.args
    params = [a.arg for a in args.posonlyargs + args.args]
    if len(node.args) != len(params):
        return None
    if any(isinstance(n, ast.Name) and n.id not in params for n in ast.walk(expression)):
        context.remark(NAME, node, f"{name}() reads a name that is not its parameter")
        return None
    scope = context.scope
    allowed = {p for p in scope.params if p not in scope.deleted}
    for arg in node.args:
        if not (literal(arg) or (isinstance(arg, ast.Name) and arg.id in allowed)):
            context.remark(NAME, node, f"{name}(): an argument is not a constant or a parameter")
            return None
    body = _Substitute(dict(zip(params, node.args)), node).visit(copy.deepcopy(expression))
    wrapper = ast.Module(body=[ast.Expr(value=body)], type_ignores=[])
    folder = _Folder()
    wrapper.body = [folder.visit(stmt) for stmt in wrapper.body]
    result = wrapper.body[0].value
    if not _cannot_raise(result, allowed):
        context.remark(NAME, node, f"{name}(): its expression may raise")
        return None
    context.require(binding)
    context.require_function(binding)
    return result
