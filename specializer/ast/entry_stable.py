"""Where guarded rewrites may apply: the entry-stable prefix of a function, walked in order.

Assumes: guards are checked when the function is called, and the specialized code's entry
RESUME does not service the eval breaker (the driver makes it RESUME 2, as the bytecode
specializer does), so between the check and the first instruction that may run arbitrary code
nothing can rebind a global or a builtin. The effect model is the bytecode specializer's
(specializer/effects.cc): a constant, a local read (LOAD_FAST/LOAD_DEREF) and a store into a
local that cannot hold a value yet run no code; everything else may (a call, an operator, a
truth test, an allocation that can start the collector and its finalizers, LOAD_GLOBAL itself
when a dict has a non-str key).
Produces: GuardedRewriter.run(func) walks the function's own body in evaluation order while no
effect has happened and offers each global read to rewrite_name and each call to rewrite_call
(globals_to_constants, pure_builtin_calls, inline_functions); operators whose operands became
constants are folded on the way (fold_constants.simplify), which keeps the prefix going.
A constant `if` test continues into the branch taken only. With assume="entry" (FAT Python's
semantics, opt-in) the walk covers the whole own scope, ignoring effects.
Sound because: each rewrite happens at a point every path to which is effect-free from entry,
so the guarded binding still holds there; a rewrite turns a LOAD_GLOBAL into a LOAD_CONST or a
call into its constant result, neither of which adds an effect. Nested scopes (closures,
lambdas, comprehensions, classes) run at other times and are never rewritten; generators and
coroutines run their body after the call returned and get no guarded rewrite at all.
"""

# The interpreter's own, even while a program replaces them in builtins (tests do).
from builtins import len  # noqa: A004  pylint: disable=redefined-builtin

import ast
import copy

from .fold_constants import literal, simplify
from .function_scope import NESTED_SCOPES, is_dead_test


class GuardedRewriter:
    def __init__(self, func, scope, rewrite_name, rewrite_call, entry_mode):
        self.func, self.scope = func, scope
        self.rewrite_name, self.rewrite_call = rewrite_name, rewrite_call
        self.entry_mode = entry_mode
        self.clean = True
        self.maybe_bound = set(scope.params)
        self.changed = False

    def run(self):
        if self.entry_mode:
            whole = _WholeScope(self)
            self.func.body = [whole.visit(stmt) for stmt in self.func.body]
        else:
            self.block(self.func.body)
        return self.changed

    # -- assume="stable": the prefix, statement by statement ----------------------------------

    def effect(self):
        self.clean = False

    def block(self, statements):
        for stmt in statements:
            if not self.clean:
                return
            self.statement(stmt)

    def statement(self, stmt):
        if isinstance(stmt, ast.Expr):
            stmt.value = self.expr(stmt.value)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            if stmt.value is None:
                return  # an annotation alone runs nothing in a function
            stmt.value = self.expr(stmt.value)
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                self.store(target)
        elif isinstance(stmt, ast.If):
            stmt.test = self.expr(stmt.test)
            if self.clean and literal(stmt.test):
                self.block(stmt.body if stmt.test.value else stmt.orelse)
            else:
                self.effect()
        elif isinstance(stmt, ast.Return):
            if stmt.value is not None:
                stmt.value = self.expr(stmt.value)
            self.effect()  # nothing after it runs: stop
        elif isinstance(stmt, (ast.Pass, ast.Global, ast.Nonlocal)):
            pass
        else:
            self.effect()

    def store(self, target):
        if not self.clean:
            return
        if isinstance(target, ast.Name) and target.id in self.scope.locals \
                and target.id not in self.maybe_bound \
                and target.id not in self.scope.mentioned_by_nested:
            self.maybe_bound.add(target.id)  # the slot was empty: nothing is dropped
        else:
            self.effect()

    def expr(self, node):
        if not self.clean:
            return node
        if isinstance(node, ast.Constant):
            return node
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            if self.scope.is_local(node.id):
                return node
            replaced = self.rewrite_name(node)
            if replaced is None:
                self.effect()
                return node
            self.changed = True
            return replaced
        if isinstance(node, ast.BoolOp):
            return self.bool_op(node)
        if isinstance(node, ast.IfExp):
            node.test = self.expr(node.test)
            if self.clean and literal(node.test):
                self.changed = True
                return self.expr(node.body if node.test.value else node.orelse)
            self.effect()
            return node
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, (ast.Tuple, ast.BinOp, ast.UnaryOp, ast.Compare, ast.Subscript,
                             ast.JoinedStr)) and getattr(node, "ctx", ast.Load()).__class__ \
                is ast.Load:
            self.children(node)
            if not self.clean:
                return node
            folded = simplify(node)
            if folded is None or not literal(folded):
                self.effect()
                return node
            self.changed = True
            return folded
        self.effect()
        return node

    def children(self, node):
        """Visits the operands of an operator node in evaluation order."""
        if isinstance(node, ast.Tuple):
            node.elts = [self.expr(e) for e in node.elts]
        elif isinstance(node, ast.BinOp):
            node.left = self.expr(node.left)
            node.right = self.expr(node.right)
        elif isinstance(node, ast.UnaryOp):
            node.operand = self.expr(node.operand)
        elif isinstance(node, ast.Compare):
            node.left = self.expr(node.left)
            node.comparators = [self.expr(c) for c in node.comparators]
        elif isinstance(node, ast.Subscript):
            node.value = self.expr(node.value)
            if isinstance(node.slice, ast.Slice):
                for field in ("lower", "upper", "step"):
                    part = getattr(node.slice, field)
                    if part is not None:
                        setattr(node.slice, field, self.expr(part))
            else:
                node.slice = self.expr(node.slice)
        elif isinstance(node, ast.JoinedStr):
            for value in node.values:
                if isinstance(value, ast.FormattedValue):
                    if value.format_spec is not None:
                        self.effect()
                    value.value = self.expr(value.value)

    def bool_op(self, node):
        values = []
        for index, value in enumerate(node.values):
            value = self.expr(value)
            values.append(value)
            if not self.clean:
                values.extend(node.values[index + 1:])
                break
            if index + 1 < len(node.values) and not literal(value):
                self.effect()  # a truth test of an unknown object
                values.extend(node.values[index + 1:])
                break
        node.values = values
        reduced = simplify(node)
        if reduced is not None:
            self.changed = True
            return reduced
        return node

    def call(self, node):
        if isinstance(node.func, ast.Name) and not self.scope.is_local(node.func.id):
            return self.call_of_global(node)
        node.func = self.expr(node.func)
        self.arguments(node)
        if self.clean:
            self.effect()  # a call of a local or of an expression's value: any code
        return node

    def arguments(self, node):
        args = []
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                self.effect()
            args.append(self.expr(arg))
        node.args = args
        for keyword in node.keywords:
            keyword.value = self.expr(keyword.value)

    def call_of_global(self, node):
        """`name(args)`, name a global: its LOAD_GLOBAL counts as an effect, unless the call
        folds or inlines away. The arguments are tried on a copy first, so when the call stays,
        nothing after its LOAD_GLOBAL has been rewritten."""
        saved = (self.clean, set(self.maybe_bound), self.changed)
        trial = copy.deepcopy(node)
        self.arguments(trial)
        if self.clean:
            replaced = self.rewrite_call(trial)
            if replaced is not None:
                self.changed = True
                if not literal(replaced):
                    self.effect()  # an inlined expression may build a tuple or compare
                return replaced
        self.clean, self.maybe_bound, self.changed = saved
        # The call stays. Its LOAD_GLOBAL runs before the arguments, still in the prefix:
        # it may become a constant, and then the arguments are evaluated in the prefix too.
        replaced_func = self.rewrite_name(node.func) if self.clean else None
        if replaced_func is None:
            self.effect()
            return node
        self.changed = True
        node.func = replaced_func
        self.arguments(node)
        self.effect()  # the call itself: any code
        return node


class _WholeScope(ast.NodeTransformer):
    """assume="entry": every global read and call of the own scope, bottom-up."""

    def __init__(self, rewriter):
        self.rewriter = rewriter

    def generic_visit(self, node):
        if isinstance(node, NESTED_SCOPES) or (isinstance(node, ast.If)
                                                and is_dead_test(node.test) and not node.orelse):
            return node  # another scope, or a husk of dead code
        node = super().generic_visit(node)
        if isinstance(node, ast.Call):
            replaced = self.rewriter.rewrite_call(node)
            if replaced is not None:
                self.rewriter.changed = True
                return replaced
        elif isinstance(node, ast.expr):
            folded = simplify(node)
            if folded is not None:
                self.rewriter.changed = True
                return folded
        return node

    def visit_Call(self, node):
        """A call of a global is offered whole (pure_builtin_calls, inline_functions) before
        its name is: the name turned into a placeholder would hide what it calls."""
        if not isinstance(node.func, ast.Name):
            return self.generic_visit(node)
        node.args = [self.visit(arg) for arg in node.args]
        node.keywords = [self.visit(keyword) for keyword in node.keywords]
        replaced = self.rewriter.rewrite_call(node)
        if replaced is not None:
            self.rewriter.changed = True
            return replaced
        node.func = self.visit(node.func)
        return node

    def visit_Assert(self, node):
        return node  # folding its test moves the AssertionError's traceback position

    def visit_Name(self, node):
        if isinstance(node.ctx, ast.Load) and not self.rewriter.scope.is_local(node.id):
            replaced = self.rewriter.rewrite_name(node)
            if replaced is not None:
                self.rewriter.changed = True
                return replaced
        return node
