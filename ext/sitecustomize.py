"""Build tree only: FATJIT=auto for processes run with PYTHONPATH=build/python.

CMake copies this file to build/python/sitecustomize.py; it is never installed. An installed
fatjit gets the same from fatjit_autoload.pth in site-packages, which the interpreter reads from
site-packages only (never from PYTHONPATH), hence this fallback. With FATJIT unset it imports
nothing. It shadows any other sitecustomize on sys.path (Debian's installs an apport hook), so
it runs that one afterwards, as if it were first.
"""

import os

if os.environ.get("FATJIT") == "auto":
    import _fatjit_boot  # noqa: F401  (ext/boot.c: fatjit itself loads when a function gets hot)


def _run_shadowed_sitecustomize():
    import sys
    from importlib.machinery import PathFinder  # already loaded: importlib.util is not (7 ms)

    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or ".") != here]
    spec = PathFinder.find_spec("sitecustomize", rest)
    if spec is not None and spec.loader is not None:
        module = type(sys)(spec.name)
        module.__file__, module.__spec__, module.__loader__ = spec.origin, spec, spec.loader
        spec.loader.exec_module(module)


_run_shadowed_sitecustomize()
del _run_shadowed_sitecustomize
