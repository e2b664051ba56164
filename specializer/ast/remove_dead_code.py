"""remove_dead_code: statements that can never run, after constant tests and after jumps.

Assumes: tests already folded to ast.Constant by fold_constants / globals_to_constants.
Produces: `if C: A else: B` with a literal C becomes the statements of the branch taken;
`while <falsy>: A else: B` becomes B; statements after return, raise, break or continue in
the same block go. What is dropped is kept under `if False:` (a "husk") whenever it is not
empty: the compiler emits no code for it, but its symbol table still sees every name, `global`,
`yield` and nested scope in it, so the code object keeps its locals layout, cells and flags
(the PEP 510 API requires them equal), and names keep their scope.
Sound because: a literal test has no side effect, so skipping its evaluation and the branch it
never takes changes nothing, and code after an unconditional jump is unreachable. Husks are
placed where the dropped code was, so names appear to the compiler in the same order.
"""

# The interpreter's own, even while a program replaces them in builtins (tests do).
from builtins import len  # noqa: A004  pylint: disable=redefined-builtin

import ast

from .constant_values import is_literal
from .function_scope import NESTED_SCOPES, is_dead_test

NAME = "remove_dead_code"

_JUMPS = (ast.Return, ast.Raise, ast.Break, ast.Continue)


def husk(statements, at):
    """`if False: statements` located at `at`, or nothing for an empty list."""
    if not statements:
        return []
    return [ast.copy_location(ast.If(test=ast.copy_location(ast.Constant(value=False), at),
                                     body=statements, orelse=[]), at)]


def _is_husk(stmt):
    return isinstance(stmt, ast.If) and is_dead_test(stmt.test) and not stmt.orelse


class _Block:
    def __init__(self):
        self.changed = False

    def block(self, statements):
        out = []
        for index, stmt in enumerate(statements):
            out.extend(self.statement(stmt))
            if isinstance(stmt, _JUMPS) and index + 1 < len(statements):
                rest = statements[index + 1:]
                if not (len(rest) == 1 and _is_husk(rest[0])):
                    self.changed = True
                    out.extend(husk(rest, rest[0]))
                else:
                    out.extend(rest)
                break
        return out

    def statement(self, stmt):
        if isinstance(stmt, NESTED_SCOPES):
            return [stmt]
        if isinstance(stmt, ast.If) and isinstance(stmt.test, ast.Constant) \
                and is_literal(stmt.test.value) and not _is_husk(stmt):
            self.changed = True
            if stmt.test.value:
                return self.block(stmt.body) + husk(stmt.orelse, stmt.orelse[0] if stmt.orelse
                                                    else stmt)
            return husk(stmt.body, stmt) + self.block(stmt.orelse)
        if isinstance(stmt, ast.While) and isinstance(stmt.test, ast.Constant) \
                and is_literal(stmt.test.value) and not stmt.test.value:
            self.changed = True
            return husk(stmt.body, stmt) + self.block(stmt.orelse)
        if _is_husk(stmt):
            return [stmt]
        for field in ("body", "orelse", "finalbody"):
            statements = getattr(stmt, field, None)
            if statements:
                setattr(stmt, field, self.block(statements) or [ast.copy_location(ast.Pass(),
                                                                                stmt)])
        if isinstance(stmt, ast.Try):
            for handler in stmt.handlers:
                handler.body = self.block(handler.body)
        if isinstance(stmt, ast.Match):
            for case in stmt.cases:
                case.body = self.block(case.body)
        return [stmt]


def run(func, context):
    remover = _Block()
    func.body = remover.block(func.body) or [ast.copy_location(ast.Pass(), func)]
    return remover.changed
