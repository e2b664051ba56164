"""fatjit.specialize(func, source=True): the AST passes over one live function.

Assumes: `func` is a Python function whose code was compiled from a file (or a linecache
entry) that has not changed since: the file is parsed again, compiled unmodified, and the code
object found there must equal func.__code__, else ValueError. Lambdas are refused (no def to
find); so are guarded rewrites when the function's globals or builtins are not exact dicts.
Produces: a Report (what was done and why not) and, with register=True, the specialized code
registered through the PEP 510 API, fatjit.specialize(func, code, guards), with
GuardFunc(func) plus GuardGlobals / GuardBuiltins for every global and builtin assumed and
GuardFunc(callee) for every inlined callee: dispatch, explain and stats then treat it like any
other specialization.
Sound because: the guards cover every assumption the passes recorded, values are the live ones
(globals_to_constants reads func.__globals__ at this moment, and the guards keep those
objects), and driver.check_compatible guarantees the code fits the original frame.
"""

# The interpreter's own, even while a program replaces them in builtins (tests do).
from builtins import len  # noqa: A004  pylint: disable=redefined-builtin

import ast
import linecache
import types

from . import driver
from .counters import count
from .environment import LiveEnvironment


class Report:
    """The outcome for one function: refused (a reason) or the code and guards."""

    def __init__(self, func):
        self.function = func
        self.refused = None
        self.code = None
        self.guards = []
        self.remarks = []
        self.changes = {}
        self.before = self.after = None

    def __repr__(self):
        state = f"refused: {self.refused}" if self.refused else f"{len(self.guards)} guards"
        return f"<fatjit AST report for {self.function.__qualname__}: {state}>"


def _unparse(node):
    try:
        return ast.unparse(node)
    except (ValueError, RecursionError) as exc:  # e.g. a placeholder inside an f-string
        return f"<not unparsable: {exc}>"


def _source_of(func):
    code = func.__code__
    lines = linecache.getlines(code.co_filename, func.__globals__)
    if not lines:
        raise ValueError(f"fatjit.specialize(source=True): the source of "
                         f"{func.__qualname__}() is unavailable (no readable file "
                         f"{code.co_filename!r})")
    return "".join(lines)


def _resolve_live(func, tree_original_codes):
    globals_, builtins_ = func.__globals__, func.__builtins__

    def resolve(kind, name):
        if kind == "type":
            return {"range": range}[name]
        return (globals_ if kind == "global" else builtins_)[name]
    return resolve


def specialize_source(func, assume="stable", options=None, register=True):
    """Runs the AST passes over `func`; registers the result unless register=False."""
    if isinstance(func, types.MethodType):
        raise TypeError("fatjit.specialize(source=True): expected a Python function, got a "
                        "bound method (pass its __func__)")
    if not isinstance(func, types.FunctionType):
        raise TypeError(f"fatjit.specialize(source=True): expected a Python function, got "
                        f"{type(func).__name__}")
    options = driver.normalize_options(dict(options or {}, assume=assume))
    code = func.__code__
    if code.co_name == "<lambda>":
        raise ValueError(f"fatjit.specialize(source=True): {func.__qualname__} is a lambda; "
                         "only functions defined with def have a source to specialize")
    source = _source_of(func)
    try:
        tree = ast.parse(source, code.co_filename)
        original_module = compile(tree, code.co_filename, "exec", dont_inherit=True)
    except (SyntaxError, ValueError) as exc:
        raise ValueError(f"fatjit.specialize(source=True): the source of {func.__qualname__}() "
                         f"in {code.co_filename!r} does not compile: {exc}") from None
    originals = driver.index_codes(original_module)
    if originals.get((code.co_qualname, code.co_firstlineno)) != code:
        raise ValueError(f"fatjit.specialize(source=True): the source of {func.__qualname__}() "
                         f"in {code.co_filename!r} does not match its code object (edited "
                         "since it was compiled?)")
    node = driver.find_function_node(tree, code.co_name, code.co_firstlineno)
    report = Report(func)
    report.before = _unparse(node)

    def refuse(reason):
        report.refused = reason
        count("functions_refused", reason)
        return report

    if driver.has_placeholder_collision(tree):
        return refuse("source_has_placeholder_text")
    env = None
    if type(func.__globals__) is dict and type(func.__builtins__) is dict:
        env = LiveEnvironment(func, tree, originals)
    context = driver.optimize_function(node, env, options)
    report.after = _unparse(node)
    report.remarks, report.changes = context.remarks, context.changes
    if not context.changes:
        return refuse("nothing_to_specialize")
    try:
        new_module = driver.compile_quietly(tree, code.co_filename)
    except (SyntaxError, ValueError, RecursionError) as exc:
        return refuse(f"compile_failed: {type(exc).__name__}")
    new_code = driver.index_codes(new_module).get((code.co_qualname, code.co_firstlineno))
    if new_code is None:
        return refuse("specialized_code_not_found")
    try:
        new_code = driver.finish_specialized_code(new_code)
    except ValueError:
        return refuse("placeholder_left")
    if new_code == code:
        return refuse("nothing_to_specialize")
    reason = driver.check_compatible(code, new_code)
    if reason is not None:
        return refuse(f"incompatible: {reason}")
    new_code = driver.make_entry_stable(new_code)
    resolve = _resolve_live(func, originals)
    try:
        mapping = driver.placeholder_values(new_code, resolve)
    except KeyError:
        return refuse("name_missing")
    if mapping:
        from fatjit import replace_consts
        new_code = replace_consts(new_code, mapping)
    import fatjit
    guards = [fatjit.GuardFunc(func)]
    if context.global_names:
        guards.append(fatjit.GuardGlobals(*sorted(context.global_names)))
    if context.builtin_names:
        guards.append(fatjit.GuardBuiltins(*sorted(context.builtin_names)))
    for name in sorted(context.inlined):
        guards.append(fatjit.GuardFunc(func.__globals__[name]))
    for name, value in context.global_names.items():
        if value is not None and func.__globals__.get(name, driver) is not value:
            return refuse("global_changed_while_specializing")
    report.code, report.guards = new_code, guards
    for name, rounds in context.changes.items():
        count("rewrites_by_pass", name, rounds)
    if register:
        fatjit._fatjit.specialize(func, new_code, guards)
        count("functions_specialized")
    return report
