"""globals_to_constants (guarded): a read of a module global or a builtin becomes a constant.

Assumes: the read is entry-stable (entry_stable.py decides, unless assume="entry"), the name is
a global read in this scope (not local, not declared `global` by this function, which may then
store it), and the environment knows its binding: live values for
fatjit.specialize(func, source=True), or for the import hook a module-level name bound exactly
once to a literal (environment.py).
Produces: an ast.Constant of the value when it is a literal (exact builtin immutable type), so
fold_constants and dead-code removal go on from it. Records the assumption: GuardGlobals(name).
Other objects (functions, classes, modules, builtins) stay LOAD_GLOBALs: an ast.Constant
standing for them would be folded by CPython's own compiler by its stand-in value (`not X`,
`if X:`, `X[0]`), so calls of builtins and module functions are resolved where they are called
(pure_builtin_calls, inline_functions), under GuardBuiltins / GuardGlobals + GuardFunc.
Sound because: the guard is checked at entry and the read happens before anything could rebind
the name, so it yields the same object LOAD_GLOBAL would; a name missing at specialization time
is not rewritten (the read raises NameError in the original, exactly).
"""

import ast

from .constant_values import is_literal, too_big

NAME = "globals_to_constants"


def rewrite_name(node, context):
    """The constant replacing the read `node` (an ast.Name), or None."""
    name = node.id
    if name in context.scope.declared_global:
        return None
    binding = context.env.lookup(name)
    if binding is None:
        return None
    if binding.kind == "global" and binding.literal and is_literal(binding.value) \
            and not too_big(binding.value):
        context.require(binding)
        return ast.copy_location(ast.Constant(value=binding.value), node)
    return None
