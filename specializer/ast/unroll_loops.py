"""unroll_loops: `for` over a constant tuple, or over range() of constants, written out.

Assumes: literal iterables come from the source or earlier passes (simplify_iterables turns
`[1, 2, 3]` into a tuple, fold_constants and propagate_constants make items constant). The size
limits are options: unroll_iterations (default 16) and unroll_statements (body statements times
iterations, default 128).
Produces: for `for x in (c1, ..., cn): BODY else: ELSE`, the statements
`x = c1; BODY[x := c1]; ...; x = cn; BODY[x := cn]; ELSE`, where reads of x in each copy of
the body become the constant when the body never rebinds x. The assignments keep the location
of the loop's target, the copies keep the locations of the body, so tracebacks and line numbers
are those of the loop. For `for x in range(a, b, c)` with constant arguments the unrolled copy
runs under a check made where range is looked up: `if range is <the builtin range>:
<unrolled> else: <the original loop>`, so a shadowed or rebound `range` runs the original loop
(no guard and no entry-stability needed).
Refused (left as a loop): a body with break or continue for this loop, with a nested scope (def,
lambda, class, comprehension: each copy would make another code object), an async for, an
unpacking target whose items do not all unpack, and loops over the limits.
Sound because: iterating a tuple of constants (or a builtin range of ints) runs no Python code
and yields exactly c1..cn; without break/continue the body runs once per item in order and the
else clause runs after the last; the eval-breaker poll of the back-edge is not a semantic event.
"""

# The interpreter's own, even while a program replaces them in builtins (tests do).
from builtins import len  # noqa: A004  pylint: disable=redefined-builtin

import ast
import copy

from .constant_values import is_literal, placeholder
from .function_scope import NESTED_SCOPES

NAME = "unroll_loops"
DEFAULT_ITERATIONS = 16
DEFAULT_STATEMENTS = 128


class Refused(Exception):
    pass


def _jumps_out(body):
    """A break or continue that belongs to this loop (not to a nested loop)."""
    stack = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Break, ast.Continue)):
            return True
        if isinstance(node, (ast.For, ast.AsyncFor, ast.While)):
            stack.extend(node.orelse)  # a loop's else belongs to the outer loop
            continue
        if isinstance(node, NESTED_SCOPES):
            continue
        stack.extend(n for n in ast.iter_child_nodes(node) if isinstance(n, ast.stmt))
    return False


def _has_nested_scope(body):
    return any(isinstance(n, NESTED_SCOPES) for stmt in body for n in ast.walk(stmt))


def _statement_count(body):
    return sum(1 for stmt in body for n in ast.walk(stmt) if isinstance(n, ast.stmt))


def _target_names(target):
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, (ast.Tuple, ast.List)):
        names = []
        for elt in target.elts:
            sub = _target_names(elt)
            if sub is None:
                return None
            names.extend(sub)
        return names
    return None


def _bind(target, value):
    """{name: value} for unpacking `value` into `target`, or Refused if it would not unpack."""
    if isinstance(target, ast.Name):
        return {target.id: value}
    if type(value) is not tuple or len(value) != len(target.elts):
        raise Refused("items do not unpack into the target")
    out = {}
    for elt, item in zip(target.elts, value):
        out.update(_bind(elt, item))
    return out


class _Substitute(ast.NodeTransformer):
    def visit_Assert(self, node):
        # An assert is left as written: with a constant test CPython compiles it differently
        # and its AssertionError's traceback position moves.
        return node

    def __init__(self, values):
        self.values = values

    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Load) and node.id in self.values:
            return ast.copy_location(ast.Constant(value=self.values[node.id]), node)
        return node


def _rebound_in(body, names):
    for stmt in body:
        for node in ast.walk(stmt):
            if isinstance(node, ast.Name) and node.id in names \
                    and not isinstance(node.ctx, ast.Load):
                return True
            if isinstance(node, (ast.Global, ast.Nonlocal)) and set(node.names) & set(names):
                return True
            if isinstance(node, ast.ExceptHandler) and node.name in names:
                return True
            if isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name in names:
                return True
            if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
                    (a.asname or a.name).split(".")[0] in names for a in node.names):
                return True
    return False


def _iteration_values(loop, scope):
    """(items, via_range) for a loop that may be unrolled, or Refused."""
    it = loop.iter
    if isinstance(it, ast.Constant) and type(it.value) is tuple and is_literal(it.value):
        return list(it.value), False
    if isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "range" \
            and scope.is_global_read("range") and not it.keywords and 1 <= len(it.args) <= 3 \
            and all(isinstance(a, ast.Constant) and type(a.value) is int for a in it.args):
        try:
            items = range(*[a.value for a in it.args])
        except ValueError:
            raise Refused("range() raises") from None
        if len(items) > 100_000:
            raise Refused("too many iterations")
        return list(items), True
    raise Refused("not a constant iterable")


def unroll(loop, scope, options):
    """The statements replacing `loop`, or Refused."""
    if isinstance(loop, ast.AsyncFor):
        raise Refused("async for")
    items, via_range = _iteration_values(loop, scope)
    if len(items) > options.get("unroll_iterations", DEFAULT_ITERATIONS):
        raise Refused("more iterations than unroll_iterations")
    if len(items) * _statement_count(loop.body) > options.get("unroll_statements",
                                                               DEFAULT_STATEMENTS):
        raise Refused("more statements than unroll_statements")
    if _jumps_out(loop.body):
        raise Refused("break or continue")
    if _has_nested_scope(loop.body) or _has_nested_scope(loop.orelse):
        raise Refused("nested scope in the body")
    names = _target_names(loop.target)
    if names is None:
        raise Refused("target is not names")
    bindings = [_bind(loop.target, item) for item in items]
    substitute = not _rebound_in(loop.body, names)
    out = []
    for item, values in zip(items, bindings):
        target = copy.deepcopy(loop.target)
        assign = ast.copy_location(ast.Assign(targets=[target], value=ast.copy_location(
            ast.Constant(value=item), loop.target)), loop.target)
        out.append(assign)
        body = copy.deepcopy(loop.body)
        if substitute:
            body = [_Substitute(values).visit(stmt) for stmt in body]
        out.extend(body)
    out.extend(copy.deepcopy(loop.orelse))
    if not via_range:
        return out
    is_range = ast.copy_location(ast.Compare(
        left=ast.copy_location(ast.Name(id="range", ctx=ast.Load()), loop.iter.func),
        ops=[ast.Is()],
        comparators=[ast.copy_location(ast.Constant(value=placeholder("type", "range")),
                                       loop.iter.func)]), loop.iter.func)
    return [ast.copy_location(ast.If(test=is_range, body=out or [ast.Pass()], orelse=[loop]),
                              loop)]


class _Unroll:
    def __init__(self, scope, options, context):
        self.scope, self.options, self.context = scope, options, context
        self.changed = False

    def block(self, statements):
        out = []
        for stmt in statements:
            if isinstance(stmt, (ast.For, ast.AsyncFor)) and not getattr(stmt, "_fatjit_kept",
                                                                         False):
                try:
                    replacement = unroll(stmt, self.scope, self.options)
                except Refused as why:
                    self.context.remark(NAME, stmt, str(why))
                else:
                    self.changed = True
                    if isinstance(replacement[0], ast.If) and replacement[0].orelse == [stmt]:
                        stmt._fatjit_kept = True  # noqa: SLF001 - the fallback stays a loop
                        self.context.uses_placeholders = True
                    out.extend(self.block(replacement))
                    continue
            if not isinstance(stmt, NESTED_SCOPES):
                for field in ("body", "orelse", "finalbody"):
                    if getattr(stmt, field, None):
                        setattr(stmt, field, self.block(getattr(stmt, field))
                                or [ast.copy_location(ast.Pass(), stmt)])
                for handler in getattr(stmt, "handlers", ()):
                    handler.body = self.block(handler.body) or [ast.copy_location(ast.Pass(),
                                                                                  handler)]
            out.append(stmt)
        return out


def run(func, context):
    unroller = _Unroll(context.scope, context.options, context)
    func.body = unroller.block(func.body) or [ast.copy_location(ast.Pass(), func)]
    return unroller.changed
