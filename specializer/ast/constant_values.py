"""Which Python values may appear as folded constants, and CPython's size caps for folding.

Assumes: values come from ast.Constant nodes or from evaluating operators on them.
Produces: is_literal(value) (an immutable builtin value the compiler can store in co_consts
and whose operators run no Python code), too_big(value) (the caps CPython's own AST optimizer,
Python/ast_opt.c, uses, so folding never bloats a code object), and the placeholder strings that
stand for objects a code object cannot hold before the driver swaps them in with
fatjit.replace_consts (and the placeholder global names that become such strings once the
function is compiled).
Sound because: every value accepted is of an exact builtin type (no subclass can override an
operator), and placeholders are never treated as literals, so nothing folds through them.
"""

# The interpreter's own, even while a program replaces them in builtins (tests do).
from builtins import len  # noqa: A004  pylint: disable=redefined-builtin

# (kept with the registration, which a cached import needs without this module)
from .registration import genuine_builtin  # noqa: F401

MAX_INT_BITS = 128           # ast_opt.c MAX_INT_SIZE: ** << and int * int results
MAX_COLLECTION_SIZE = 256    # ast_opt.c: tuples built by * and +
MAX_STR_SIZE = 4096          # ast_opt.c: str and bytes built by * and +
MAX_INT_STR_DIGITS = 600     # below sys.set_int_max_str_digits' smallest limit (640)

PLACEHOLDER_PREFIX = "\x00fatjit:"

_SCALARS = (int, float, complex, str, bytes, bool, type(None), type(Ellipsis))


def is_placeholder(value):
    return type(value) is str and value.startswith(PLACEHOLDER_PREFIX)


def placeholder(kind, name):
    """The string constant standing for `kind` ("global", "builtin", "type") `name`."""
    return f"{PLACEHOLDER_PREFIX}{kind}:{name}"


PLACEHOLDER_NAME_PREFIX = "__fatjit_const_"


def placeholder_name(kind, name):
    """The global name standing, in the AST, for the object `kind` ("global" or "builtin")
    `name` is bound to: the compiler emits a LOAD_GLOBAL of it, which it cannot fold, and
    code_layout.load_placeholders_as_constants turns that into a LOAD_CONST of
    placeholder(kind, name) once compiled."""
    return f"{PLACEHOLDER_NAME_PREFIX}{kind}_{name}"


def parse_placeholder_name(identifier):
    """(kind, name) of a placeholder_name, or None for any other identifier."""
    if not identifier.startswith(PLACEHOLDER_NAME_PREFIX):
        return None
    kind, _, name = identifier[len(PLACEHOLDER_NAME_PREFIX):].partition("_")
    return kind, name


def parse_placeholder(value):
    """(kind, name) of a placeholder string."""
    kind, _, name = value[len(PLACEHOLDER_PREFIX):].partition(":")
    return kind, name


def is_literal(value, depth=0):
    """An exact builtin immutable value (tuples and frozensets of such), not a placeholder."""
    if depth > 20:
        return False
    tp = type(value)
    if tp in _SCALARS:
        return not is_placeholder(value)
    if tp is tuple or tp is frozenset:
        return all(is_literal(item, depth + 1) for item in value)
    return False


def size_of(value):
    """Items of a sequence, 0 for a scalar."""
    if type(value) in (str, bytes, tuple, frozenset):
        return len(value)
    return 0


def too_big(value):
    """Results folding refuses to create (huge constants are slower to load and to marshal)."""
    tp = type(value)
    if tp is int:
        return value.bit_length() > 4096
    if tp in (str, bytes):
        return len(value) > MAX_STR_SIZE
    if tp in (tuple, frozenset):
        return len(value) > MAX_COLLECTION_SIZE or any(too_big(item) for item in value)
    return False
