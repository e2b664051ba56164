"""python -m fatjit: run a program in automatic mode, as `python` itself would run it.

    python -m fatjit SCRIPT [ARGS...]       like `python SCRIPT ARGS...`
    python -m fatjit -m MODULE [ARGS...]    like `python -m MODULE ARGS...`

What the program sees is what it sees without fatjit (as with `python -m cProfile`): sys.argv,
sys.path[0], a fresh `__main__` module with the same attributes, exit codes (sys.exit(3) -> 3,
an uncaught exception -> 1, an uncaught KeyboardInterrupt -> killed by SIGINT), and the same
traceback: this runner's own frames are cut from it before sys.excepthook prints it. The -m
form runs the module through runpy._run_module_as_main, the function `python -m` itself calls,
so its traceback shows the same two runpy frames.
"""

import os
import runpy
import sys
import types

import fatjit

USAGE = """\
usage: python -m fatjit [-h] SCRIPT [ARGS...]
       python -m fatjit [-h] -m MODULE [ARGS...]

Run a Python program with fatjit's automatic mode on: functions called often get
specialized. Everything after SCRIPT or MODULE goes to the program, whose sys.argv,
__main__, exit code and tracebacks are those of plain `python`.

environment:
  FATJIT_SPECIALIZE_THRESHOLD=N  calls before a function is specialized (default 10000;
                                 0 = at its first call)
  FATJIT_STATS=1                 print a summary table to stderr at exit
  FATJIT_LOG=EVENT,...           one line per event on stderr: specialize, refuse, guard,
                                 or all
  FATJIT_AST=1                   specialize imported modules from their source as well
                                 (the AST specializer's import hook)
"""


def _usage_error(message):
    sys.stderr.write(USAGE.split("\n\n")[0] + f"\npython -m fatjit: error: {message}\n")
    return 2


def _fresh_main(**attributes):
    """Installs a new, empty `__main__` module, as the interpreter makes one for a program.
    (This runner itself is running as `__main__`; its globals stay alive through its frames.)"""
    main = types.ModuleType("__main__")
    main.__dict__.update(__annotations__={}, __builtins__=sys.modules["builtins"], **attributes)
    sys.modules["__main__"] = main
    return main


def _run_script(path, args):
    """`python PATH ARGS`: a directory or zip file runs its __main__ module, as python does.
    Since 3.9 python makes the path absolute for __file__ and tracebacks; argv keeps it as given."""
    sys.argv[:] = [path, *args]
    path = os.path.abspath(path)
    if os.path.isdir(path) or _is_zip(path):  # python runs its __main__ module
        if not sys.flags.safe_path:
            sys.path[0] = path
        _fresh_main()
        runpy._run_module_as_main("__main__", alter_argv=False)
        return
    if not sys.flags.safe_path:
        # python puts the script's directory (symbolic links resolved) first on sys.path, where
        # `python -m fatjit` put the working directory.
        sys.path[0] = os.path.dirname(os.path.realpath(path))
    from importlib.machinery import SourceFileLoader  # loaded at start-up already
    with open(path, "rb") as file:
        source = file.read()
    code = compile(source, path, "exec", dont_inherit=True)
    main = _fresh_main(__file__=path, __cached__=None, __package__=None, __spec__=None,
                       __loader__=SourceFileLoader("__main__", path))
    exec(code, main.__dict__)


def _is_zip(path):
    # As python decides it: through the zip importer (built in; the zipfile module costs 20 ms).
    import zipimport
    try:
        zipimport.zipimporter(path)
        return True
    except (zipimport.ZipImportError, OSError):
        return False


def _run_module(name, args):
    """`python -m NAME ARGS`: runpy sets sys.argv[0] to the module's file."""
    sys.argv[:] = [name, *args]
    _fresh_main()
    runpy._run_module_as_main(name, alter_argv=True)


_RUNNER_CODE = {_run_script.__code__, _run_module.__code__}


def _program_traceback(tb):
    """`tb` without the frames of python -m fatjit: what plain python would print."""
    start = tb
    while tb is not None:
        if tb.tb_frame.f_code in _RUNNER_CODE:
            start = tb.tb_next
        tb = tb.tb_next
    return start


def _report_like_python(exc):
    """Makes the interpreter's own report of `exc` (sys.excepthook, then exit status 1, or
    SIGINT for KeyboardInterrupt) show the program's traceback only. Then re-raise exc."""
    program_tb = _program_traceback(exc.__traceback__)
    hook = sys.excepthook

    def excepthook(exc_type, value, tb):
        sys.excepthook = hook
        if value is exc:
            # The default hook prints value.__traceback__ when it has one, not `tb`.
            tb = value.__traceback__ = program_tb
        hook(exc_type, value, tb)

    sys.excepthook = excepthook


def _cant_open(path, error):
    # The message and exit status of `python missing.py`.
    sys.stderr.write(f"{sys.executable}: can't open file {os.path.abspath(path)!r}: "
                     f"[Errno {error.errno}] {error.strerror}\n")
    return 2


def _parse(argv):
    """(run, None) for a command line, or (None, exit status) once usage was handled."""
    if not argv:
        return None, _usage_error("a SCRIPT or -m MODULE is required")
    first, rest = argv[0], argv[1:]
    if first in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return None, 0
    if first.startswith("-m"):
        name = first[2:]
        if not name and rest:
            name, rest = rest[0], rest[1:]
        if not name:
            return None, _usage_error("-m needs a MODULE")
        return (lambda: _run_module(name, rest)), None
    if first.startswith("-"):
        return None, _usage_error(f"unknown option {first} (reading a program from stdin is "
                                  "not supported; options of the program go after it)")
    try:
        with open(first, "rb"):
            pass
    except IsADirectoryError:
        pass
    except OSError as error:
        return None, _cant_open(first, error)
    return (lambda: _run_script(first, rest)), None


def _start_counting():
    """Automatic mode through the start-up counter (ext/boot.c), as FATJIT=auto starts it:
    fatjit loads when the first function gets hot. False when it is needed from the start (a
    threshold of 0 or malformed, FATJIT_AST, FATJIT_STATS, FATJIT_LOG): then main() turns it on."""
    try:
        import _fatjit_boot
    except ImportError:
        return False
    return _fatjit_boot.start()


def main(argv):
    run, status = _parse(argv)
    if run is None:
        return status
    if not _start_counting():
        try:
            fatjit.enable()
        except ValueError as error:  # a malformed FATJIT_SPECIALIZE_THRESHOLD
            sys.stderr.write(f"python -m fatjit: error: {error}\n")
            return 2
        if os.environ.get("FATJIT_AST", "") == "1":  # the AST specializer's import hook
            from fatjit._ast import import_hook
            import_hook.install()
    try:
        run()
    except SystemExit:
        raise  # the interpreter handles it exactly as without fatjit
    except BaseException as exc:
        _report_like_python(exc)
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
