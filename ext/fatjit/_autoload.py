"""FATJIT=auto: turns automatic mode on while the interpreter starts.

Imported only when FATJIT=auto, by the one line of fatjit_autoload.pth that `pip install`
places in site-packages (or, in the build tree, by build/python/sitecustomize.py). Start-up
must not break because of fatjit: a failure to turn it on is reported on one line of stderr, and
a fatjit that cannot be imported at all is reported by site ("Error processing line ..." or
"Error in sitecustomize"); either way the program then runs without it. Sub-interpreters (which
run site too) are left alone silently: automatic mode belongs to the main interpreter.
"""

import sys


def _enable():
    try:
        import fatjit
        if fatjit._fatjit._in_main_interpreter():
            fatjit.enable()
    except Exception as exc:  # noqa: BLE001  (any failure: report it and run without fatjit)
        print(f"fatjit: FATJIT=auto ignored: {type(exc).__name__}: {exc}", file=sys.stderr)


_enable()
