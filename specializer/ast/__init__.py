"""fatjit._ast: the AST specializer (source-level specialization, PEP 511 in spirit).

Installed from specializer/ast/ (one pass per file; driver.py runs them). Entry points:

    fatjit.specialize(func, source=True)      one function, from its source file
    specialize_source(func, assume, options, register)   the same, returning a Report
    import_hook.install(options)              FATJIT_AST=1 in automatic mode
    stats() / reset_stats()                   the counters (modules, cache, functions, passes)

Importing this package is cheap: the passes load only when something is transformed (a cached
import never loads them).
"""

from .counters import reset as reset_stats  # noqa: F401
from .counters import stats  # noqa: F401


def specialize_source(func, assume="stable", options=None, register=True):
    """fatjit.specialize(func, source=True), returning a Report (specialize_function_source.py)."""
    from .specialize_function_source import specialize_source as run
    return run(func, assume=assume, options=options, register=register)


__all__ = ["reset_stats", "specialize_source", "stats"]
