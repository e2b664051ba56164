"""What a guarded pass may assume about the names a function reads: its environment.

Assumes: for LiveEnvironment, a function whose globals and builtins are exact dicts
(fatjit.specialize(func, source=True) refuses guarded rewrites otherwise); for
ModuleEnvironment, only the module's source (the import hook runs before the module does).
Produces: lookup(name) -> Binding or None. A Binding says where the name lives ("global" or
"builtin"), its value when known (live values; for a module: a name bound exactly once at the
top level to an expression that folds to a literal), whether that builtin is the genuine one,
and the callee's `def` for inline_functions. Every binding a pass uses is recorded by the
context and becomes a guard, re-checked against the live module when the import hook
registers the specialization (registration.py).
Sound because: a Binding is only a candidate; the guards, checked at every call, and the
registration-time checks (value equal, builtin genuine and not shadowed, callee code the one
compiled from this source) decide whether the specialized code may run.
"""

# The interpreter's own, even while a program replaces them in builtins (tests do).
from builtins import len  # noqa: A004  pylint: disable=redefined-builtin

import ast
import builtins
import types

from .constant_values import genuine_builtin, is_literal, too_big  # noqa: F401
from .fold_constants import _Folder



class Binding:
    __slots__ = ("kind", "name", "value", "literal", "known", "genuine", "function_def",
                 "function", "bound_at_module_level")

    def __init__(self, kind, name, value=None, literal=False, known=False, genuine=False,
                 function_def=None, function=None, bound_at_module_level=True):
        self.kind, self.name, self.value = kind, name, value
        self.literal, self.known, self.genuine = literal, known, genuine
        self.function_def, self.function = function_def, function
        # False for a global only a function binds (`global x`): it may be unbound when the
        # module's specializations are registered.
        self.bound_at_module_level = bound_at_module_level


def _literal_binding(value):
    return is_literal(value) and not too_big(value)


def top_level_functions(tree):
    """{name: FunctionDef} of the module's top-level defs (the last one for a name)."""
    return {stmt.name: stmt for stmt in tree.body
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef))}


def first_line(fdef):
    return fdef.decorator_list[0].lineno if fdef.decorator_list else fdef.lineno


class LiveEnvironment:
    """The values a function sees now (fatjit.specialize(func, source=True))."""

    def __init__(self, func, tree, original_codes):
        self.globals = func.__globals__
        self.builtins = func.__builtins__
        self.functions = top_level_functions(tree)
        self.original_codes = original_codes  # (qualname, firstlineno) -> compiled code

    def lookup(self, name):
        if name in self.globals:
            value = self.globals[name]
            fdef = None
            if isinstance(value, types.FunctionType):
                candidate = self.functions.get(name)
                code = value.__code__
                if candidate is not None and first_line(candidate) == code.co_firstlineno \
                        and self.original_codes.get((code.co_qualname, code.co_firstlineno)) \
                        == code:
                    fdef = candidate
            return Binding("global", name, value, literal=_literal_binding(value), known=True,
                           function_def=fdef, function=value if fdef else None)
        if name in self.builtins:
            value = self.builtins[name]
            return Binding("builtin", name, value, known=True,
                           genuine=genuine_builtin(name, value))
        return None


class ModuleEnvironment:
    """What the source of a module says about its globals (the import hook)."""

    def __init__(self, tree):
        counts = {}
        self.star_import = False
        for node in _module_scope_nodes(tree):
            for name in _bound_names(node):
                counts[name] = counts.get(name, 0) + 1
            if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
                self.star_import = True
        written_by_functions = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Global):
                written_by_functions.update(node.names)
        self.bound = set(counts) | written_by_functions
        self.bound_at_module_level = set(counts) - written_by_functions
        self.constants = {}
        for stmt in tree.body:
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 \
                    and isinstance(stmt.targets[0], ast.Name):
                name = stmt.targets[0].id
                if counts.get(name) != 1 or name in written_by_functions \
                        or name.startswith("__"):
                    continue
                value = _fold_expression(stmt.value)
                if value is not _NOT_CONSTANT and _literal_binding(value):
                    self.constants[name] = value
        functions = top_level_functions(tree)
        self.functions = {name: fdef for name, fdef in functions.items()
                          if counts.get(name) == 1 and name not in written_by_functions}

    def lookup(self, name):
        if name in self.constants:
            return Binding("global", name, self.constants[name], literal=True, known=True)
        if name in self.functions:
            return Binding("global", name, function_def=self.functions[name])
        if name in self.bound:
            return Binding("global", name,
                           bound_at_module_level=name in self.bound_at_module_level)
        if self.star_import or not hasattr(builtins, name):
            return None
        value = getattr(builtins, name)
        return Binding("builtin", name, value, known=True, genuine=genuine_builtin(name, value))


_NOT_CONSTANT = object()


def _fold_expression(expr):
    import copy
    wrapper = ast.Expression(body=copy.deepcopy(expr))
    folded = _Folder().visit(wrapper).body
    if isinstance(folded, ast.Constant) and is_literal(folded.value):
        return folded.value
    return _NOT_CONSTANT


def _module_scope_nodes(tree):
    stack = list(tree.body)
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        stack.extend(ast.iter_child_nodes(node))


def _bound_names(node):
    if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
        yield node.id
    elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        yield node.name
    elif isinstance(node, (ast.Import, ast.ImportFrom)):
        for alias in node.names:
            if alias.name != "*":
                yield (alias.asname or alias.name).split(".")[0]
    elif isinstance(node, ast.ExceptHandler) and node.name:
        yield node.name
    elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
        yield node.name
    elif isinstance(node, ast.MatchMapping) and node.rest:
        yield node.rest
