"""globals_to_constants (guarded): a read of a module global or a builtin becomes a constant.

Assumes: the read is entry-stable (entry_stable.py decides, unless assume="entry"), the name is
a global read in this scope (not local, not declared `global` by this function, which may then
store it), and the environment knows its binding: live values for
fatjit.specialize(func, source=True), or for the import hook a module-level name bound exactly
once to a literal (environment.py).
Produces: an ast.Constant of the value when it is a literal (exact builtin immutable type), so
fold_constants and dead-code removal go on from it. Any other object (a function, class,
module, a genuine builtin) cannot be an ast.Constant: CPython's compiler would fold a stand-in
constant by the stand-in's value (`not X`, `if X:`, `X[0]`). Its read becomes a read of a
placeholder global name instead (constant_values.placeholder_name), which the compiler leaves
as a LOAD_GLOBAL; once compiled, code_layout.load_placeholders_as_constants turns that into a
LOAD_CONST of a placeholder string, and registration swaps in the object itself
(fatjit.replace_consts). Records the assumption: GuardGlobals(name) or GuardBuiltins(name).
Sound because: the guard is checked at entry and the read happens before anything could rebind
the name, so it yields the same object LOAD_GLOBAL would; a name missing at specialization time
is not rewritten (the read raises NameError in the original, exactly); a builtin is rewritten
only if it is the genuine one; names the compiler treats specially (`super`, which makes it
create the `__class__` cell) and dunder names are left alone.
"""

import ast

from .constant_values import is_literal, placeholder_name, too_big

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
    if name == "super" or name.startswith("__"):
        return None
    if binding.kind == "builtin" and not binding.genuine:
        return None
    if binding.kind == "global" and not binding.bound_at_module_level:
        return None
    context.require(binding)
    return ast.copy_location(ast.Name(id=placeholder_name(binding.kind, name), ctx=ast.Load()),
                             node)
