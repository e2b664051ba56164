"""What a function's own scope binds, declares and reads: the facts every pass checks first.

Assumes: an ast.FunctionDef / AsyncFunctionDef as the parser makes it (before or after other
passes). Nested scopes (def, lambda, class, comprehensions) are not entered, except that a walrus
inside a comprehension binds in this function, and any name a nested scope mentions is treated
as possibly captured (a cell).
Produces: FunctionScope with params, locals (every name bound anywhere in the own scope),
executed binding sites per name (statically dead `if False:` / `while False:` bodies, which
remove_dead_code keeps so that the compiler still sees their names, are not counted), deleted
names, global/nonlocal declarations, names nested scopes mention, and whether the function is
a generator or coroutine.
Sound because: it over-approximates; a name any construct could bind counts as bound.
"""

import ast

NESTED_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef,
                 ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


def is_dead_test(test):
    """A test the compiler knows is false: the body under it never runs."""
    return isinstance(test, ast.Constant) and not test.value and test.value is not ... \
        and type(test.value) in (bool, int, type(None), str, bytes, float)


def own_scope_nodes(node, skip_dead=False):
    """Every node of the function's own scope below `node` (nested scopes: only their node)."""
    stack = list(ast.iter_child_nodes(node))
    while stack:
        child = stack.pop()
        yield child
        if isinstance(child, NESTED_SCOPES):
            continue
        if skip_dead and isinstance(child, (ast.If, ast.While)) and is_dead_test(child.test):
            stack.extend([child.test] + list(child.orelse))
            continue
        stack.extend(ast.iter_child_nodes(child))


def _target_names(target):
    if isinstance(target, ast.Name):
        yield target.id
    elif isinstance(target, (ast.Tuple, ast.List)):
        for elt in target.elts:
            yield from _target_names(elt)
    elif isinstance(target, ast.Starred):
        yield from _target_names(target.value)


class FunctionScope:
    def __init__(self, func):
        self.func = func
        args = func.args
        self.params = [a.arg for a in args.posonlyargs + args.args + args.kwonlyargs]
        if args.vararg:
            self.params.append(args.vararg.arg)
        if args.kwarg:
            self.params.append(args.kwarg.arg)
        self.declared_global = set()
        self.declared_nonlocal = set()
        self.bindings = {}          # name -> executed binding sites (stores, dels, imports...)
        self.deleted = set()
        self.mentioned_by_nested = set()
        self.is_generator = isinstance(func, ast.AsyncFunctionDef)
        self.has_nested_scopes = False
        all_bound = set(self.params)
        # One walk of the own scope; `dead` marks nodes under a statically dead test.
        stack = [(child, False) for child in ast.iter_child_nodes(func)]
        while stack:
            node, dead = stack.pop()
            if isinstance(node, ast.Global):
                self.declared_global.update(node.names)
            elif isinstance(node, ast.Nonlocal):
                self.declared_nonlocal.update(node.names)
            elif isinstance(node, (ast.Yield, ast.YieldFrom, ast.Await)):
                self.is_generator = True
            for name in self._bound_by(node):
                all_bound.add(name)
                if not dead:
                    self.bindings[name] = self.bindings.get(name, 0) + 1
            if isinstance(node, NESTED_SCOPES):
                self._nested(node)
                continue
            if isinstance(node, (ast.If, ast.While)) and is_dead_test(node.test):
                stack.append((node.test, dead))
                stack.extend((child, True) for child in node.body)
                stack.extend((child, dead) for child in node.orelse)
                continue
            stack.extend((child, dead) for child in ast.iter_child_nodes(node))
        self.locals = (all_bound | self._comprehension_walrus) \
            - self.declared_global - self.declared_nonlocal

    _comprehension_walrus = frozenset()

    def _nested(self, node):
        self.has_nested_scopes = True
        is_comprehension = isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp,
                                             ast.GeneratorExp))
        for inner in ast.walk(node):
            if isinstance(inner, ast.Name):
                self.mentioned_by_nested.add(inner.id)
            elif is_comprehension and isinstance(inner, ast.NamedExpr) \
                    and isinstance(inner.target, ast.Name):
                name = inner.target.id  # a walrus in a comprehension binds in the function
                self._comprehension_walrus = self._comprehension_walrus | {name}
                self.bindings[name] = self.bindings.get(name, 0) + 1

    def _bound_by(self, node):
        if isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            if isinstance(node.ctx, ast.Del):
                self.deleted.add(node.id)
            yield node.id
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield node.name
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                yield (alias.asname or alias.name).split(".")[0]
        elif isinstance(node, ast.ExceptHandler) and node.name:
            yield node.name
            self.deleted.add(node.name)  # the compiler deletes it at the end of the handler
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            yield node.name
        elif isinstance(node, ast.MatchMapping) and node.rest:
            yield node.rest

    def is_local(self, name):
        return name in self.locals or name in self.declared_nonlocal or name in self.params

    def is_global_read(self, name):
        """A read of `name` in this scope is LOAD_GLOBAL (a module global or a builtin)."""
        return not self.is_local(name)

    def binding_count(self, name):
        return self.bindings.get(name, 0)

    def never_rebound(self, name):
        """A global this function never writes (no `global name` store, del or import)."""
        return name not in self.declared_global
