"""FATJIT=auto: turns automatic mode on while the interpreter starts.

Imported only when FATJIT=auto, by the start-up counter _fatjit_boot (ext/boot.c), which the one
line of fatjit_autoload.pth that `pip install` places in site-packages imports (or, in the build
tree, build/python/sitecustomize.py): at start-up when a threshold is 0 or FATJIT_AST, FATJIT_STATS
or FATJIT_LOG is set, otherwise when the first function gets hot or the program first uses
fatjit's API.
The program must not break because of fatjit: a failure to turn it on is reported on one line of
stderr, and the program then runs without it. Sub-interpreters (which
run site too) are left alone silently: automatic mode belongs to the main interpreter.
FATJIT_AST=1 also installs the AST specializer's import hook (fatjit/_ast/import_hook.py):
modules imported from then on get source-level specializations.
"""

import sys


def install_ast_hook_if_asked():
    """FATJIT_AST=1: the import hook of the AST specializer (only in automatic mode)."""
    import os
    if os.environ.get("FATJIT_AST", "") == "1":
        from fatjit._ast import import_hook
        import_hook.install()


def _enable():
    try:
        import fatjit
        if fatjit._fatjit._in_main_interpreter():
            fatjit.enable()
            install_ast_hook_if_asked()
    except Exception as exc:  # noqa: BLE001  (any failure: report it and run without fatjit)
        print(f"fatjit: FATJIT=auto ignored: {type(exc).__name__}: {exc}", file=sys.stderr)


_enable()
