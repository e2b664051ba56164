"""The AST specializer's driver: runs the passes over one function and builds the code object.

Assumes: a parsed module (ast.parse of the file the function was compiled from) and one of its
FunctionDef nodes; an environment (environment.py) for the guarded passes, or None for the
unguarded ones only.
Produces: optimize_function() runs, in rounds until nothing changes (at most MAX_ROUNDS), the
unguarded passes simplify_iterables, fold_constants, propagate_constants, unroll_loops,
remove_dead_code, then the guarded ones (globals_to_constants, pure_builtin_calls,
inline_functions) through entry_stable.GuardedRewriter. It returns a FunctionContext holding
the assumptions made (what the guards must be), remarks (why something was not rewritten) and
per-pass change counts. compile_specialized() compiles the whole module with the function
replaced, so scopes, closures, qualnames and first line numbers are the compiler's own, and
takes the function's code object out of it; check_compatible() refuses code whose calling
convention, locals layout, cells, flags, names or first line differ from the original's, or
whose stack is deeper (the original's frame must fit it); make_entry_stable() turns the entry
RESUME 0 into RESUME 2 (no eval-breaker service before the first instruction).
Sound because: every pass is sound on its own (see each file), the compiler rebuilds line and
exception tables from node locations the passes preserve, and check_compatible() guarantees
the PEP 510 machinery can run the result in the original's frame.
"""

# The interpreter's own, even while a program replaces them in builtins (tests do).
from builtins import len  # noqa: A004  pylint: disable=redefined-builtin

import ast

from . import (fold_constants, globals_to_constants, inline_functions, propagate_constants,
               pure_builtin_calls, remove_dead_code, simplify_iterables, unroll_loops)
from .code_layout import (LOAD_GLOBAL, check_compatible, code_objects,  # noqa: F401
                          index_codes, load_placeholders_as_constants, make_entry_stable,
                          placeholder_values, placeholders_in)
from .constant_values import (PLACEHOLDER_NAME_PREFIX, PLACEHOLDER_PREFIX,
                              parse_placeholder_name)
from .entry_stable import GuardedRewriter
from .function_scope import FunctionScope

MAX_ROUNDS = 8
UNGUARDED = (simplify_iterables, fold_constants, propagate_constants, unroll_loops,
             remove_dead_code)
GUARDED_NAME = "guarded"
from .options import PASS_NAMES, normalize_options, options_key  # noqa: E402,F401

assert PASS_NAMES == tuple(p.NAME for p in UNGUARDED) + (
    globals_to_constants.NAME, pure_builtin_calls.NAME, inline_functions.NAME)


class FunctionContext:
    """One function's run: its options, environment, assumptions and remarks."""

    def __init__(self, func, env, options):
        self.func, self.env, self.options = func, env, options
        self.scope = FunctionScope(func)
        self.remarks = []                 # (pass, line, reason), deduplicated
        self.changes = {}                 # pass -> rounds in which it changed something
        self.global_names = {}            # name -> literal value assumed, or None (an object)
        self.builtin_names = set()
        self.inlined = {}                 # name -> (qualname, firstlineno) of the callee
        self.uses_placeholders = False

    def remark(self, pass_name, node, reason):
        entry = (pass_name, getattr(node, "lineno", 0), reason)
        if entry not in self.remarks:
            self.remarks.append(entry)

    def require(self, binding):
        if binding.kind == "builtin":
            self.builtin_names.add(binding.name)
        else:
            self.global_names[binding.name] = binding.value if binding.literal else None

    def require_function(self, binding):
        fdef = binding.function_def
        first = fdef.decorator_list[0].lineno if fdef.decorator_list else fdef.lineno
        self.inlined[binding.name] = (fdef.name, first)
        self.changes[inline_functions.NAME] = self.changes.get(inline_functions.NAME, 0) + 1

    @property
    def guarded(self):
        return bool(self.global_names or self.builtin_names or self.inlined)


def _run_guarded(func, context):
    disabled = set(context.options["disable"])
    scope = context.scope

    def rewrite_name(node):
        if globals_to_constants.NAME in disabled:
            return None
        return globals_to_constants.rewrite_name(node, context)

    def rewrite_call(node):
        if inline_functions.NAME not in disabled:
            replaced = inline_functions.rewrite_call(node, context)
            if replaced is not None:
                return replaced
        if pure_builtin_calls.NAME not in disabled:
            replaced = pure_builtin_calls.rewrite_call(node, context)
            if replaced is not None:
                context.changes[pure_builtin_calls.NAME] = \
                    context.changes.get(pure_builtin_calls.NAME, 0) + 1
            return replaced
        return None

    rewriter = GuardedRewriter(func, scope, rewrite_name, rewrite_call,
                               entry_mode=context.options["assume"] == "entry")
    changed = rewriter.run()
    if changed:
        context.changes[globals_to_constants.NAME] = \
            context.changes.get(globals_to_constants.NAME, 0) + 1
    return changed


_OPERATORS = (ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp, ast.IfExp, ast.Subscript,
              ast.JoinedStr, ast.FormattedValue, ast.Tuple)
_JUMPS = (ast.Return, ast.Raise, ast.Break, ast.Continue)


def _foldable_here(node):
    kind = type(node)
    if kind is ast.BoolOp:
        return type(node.values[0]) is ast.Constant
    if kind is ast.IfExp:
        return type(node.test) is ast.Constant
    if kind is ast.Tuple:
        return type(node.ctx) is ast.Load and bool(node.elts) and \
            all(type(e) is ast.Constant for e in node.elts)
    if kind is ast.Subscript:
        return type(node.value) is ast.Constant
    children = [c for c in ast.iter_child_nodes(node) if isinstance(c, ast.expr)]
    return bool(children) and all(type(c) is ast.Constant for c in children)


def may_apply(func, env):
    """One cheap walk: False when no pass could change `func` (most functions of a module),
    so the import hook skips them without building scopes or running passes."""
    for stmt in func.body:
        if type(stmt) is ast.Assign and type(stmt.value) is ast.Constant:
            return True  # propagate_constants
    pure = pure_builtin_calls.PURE
    for node in ast.walk(func):
        kind = type(node)
        if kind in _OPERATORS:
            if _foldable_here(node):
                return True
        elif kind is ast.For:
            if type(node.iter) in (ast.Tuple, ast.List, ast.Constant) or (
                    type(node.iter) is ast.Call and type(node.iter.func) is ast.Name
                    and node.iter.func.id == "range"):
                return True
        elif kind in (ast.If, ast.While):
            if type(node.test) is ast.Constant and node.test.value:
                return True  # (`if 0:` is what remove_dead_code leaves behind)
        elif kind is ast.Name:
            if env is not None and type(node.ctx) is ast.Load:
                binding = env.lookup(node.id)
                if binding is not None and (binding.literal or binding.function_def is not None):
                    return True
        elif kind is ast.Call:
            if type(node.func) is ast.Name and node.func.id in pure and node.args and \
                    all(type(a) is ast.Constant for a in node.args):
                return True
        body = getattr(node, "body", None)
        if type(body) is list and any(type(stmt) in _JUMPS for stmt in body[:-1]):
            return True
    return False


def optimize_function(func, env, options):
    """Runs the passes over `func` (an ast.FunctionDef, changed in place); its FunctionContext."""
    options = normalize_options(options)
    context = FunctionContext(func, env, options)
    disabled = set(options["disable"])
    for _ in range(MAX_ROUNDS):
        changed = False
        for unguarded in UNGUARDED:
            if unguarded.NAME in disabled:
                continue
            if unguarded.run(func, context):
                changed = True
                context.changes[unguarded.NAME] = context.changes.get(unguarded.NAME, 0) + 1
                context.scope = FunctionScope(func)
        if env is not None:
            if context.scope.is_generator:
                context.remark(GUARDED_NAME, func, "generator or coroutine: its body runs "
                                                   "after the guards were checked")
            elif _run_guarded(func, context):
                changed = True
                context.scope = FunctionScope(func)
        if not changed:
            break
    if context.changes:
        ast.fix_missing_locations(func)
    return context


def find_function_node(tree, name, firstlineno):
    """The def named `name` whose first line (decorators included) is `firstlineno`."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
            if first == firstlineno:
                return node
    return None


def has_placeholder_collision(tree):
    """A string constant of the module that looks like a placeholder, or an identifier that
    looks like a placeholder name (never in real code)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and type(node.value) is str \
                and node.value.startswith(PLACEHOLDER_PREFIX):
            return True
        for _, value in ast.iter_fields(node):
            if type(value) is str and value.startswith(PLACEHOLDER_NAME_PREFIX):
                return True
    return False


def finish_specialized_code(code):
    """The compiled function's code with its placeholder names' LOAD_GLOBALs turned into
    LOAD_CONSTs of placeholder strings (code_layout.load_placeholders_as_constants). Raises
    ValueError if a placeholder name is left anywhere else (it would raise NameError)."""
    import opcode
    code = load_placeholders_as_constants(code, opcode._inline_cache_entries)
    nested = [c for c in code_objects(code) if c is not code]
    if any(parse_placeholder_name(n) for c in nested for n in c.co_names):
        raise ValueError("placeholder name in a nested scope")
    if any(parse_placeholder_name(code.co_names[oparg >> 1])
           for op, oparg in _instructions(code) if op == LOAD_GLOBAL):
        raise ValueError("placeholder name left in a LOAD_GLOBAL")
    return code


def _instructions(code):
    """(opcode, oparg) of each instruction of `code` (EXTENDED_ARG folded in)."""
    import opcode
    raw = code.co_code
    offset = extended = 0
    while offset < len(raw):
        op, arg = raw[offset], raw[offset + 1]
        if op == opcode.EXTENDED_ARG:
            extended = (extended | arg) << 8
            offset += 2
            continue
        yield op, extended | arg
        extended = 0
        offset += 2 * (1 + opcode._inline_cache_entries[op])


def compile_quietly(tree, filename):
    """compile() of a transformed module without the compiler's warnings: the original source
    was compiled (and warned about) already, and a placeholder compared with `is` makes the
    compiler warn about a literal that is not one once swapped."""
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return compile(tree, filename, "exec", dont_inherit=True)
