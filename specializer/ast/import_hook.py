"""FATJIT_AST=1: the import hook that specializes modules from their source (PEP 511 in spirit).

Assumes: automatic mode asked for it (fatjit/_autoload.py and python -m fatjit call install()
when FATJIT_AST=1); modules found on sys.path as source files (.py). Everything else (extension
modules, zip imports, namespace packages, frozen modules) is imported by the standard
machinery; a module found only as a .pyc is counted as `no_source`.
Produces: a path hook placed before the standard FileFinder hook, whose source loader imports
a module exactly as SourceFileLoader does (same code object, same .pyc), then, once the module
body ran, registers specialized code for its module-level functions and the methods of its
module-level classes through fatjit.specialize(func, code, guards) (registration.py). The
transformation (parse, passes, compile) is cached next to the .pyc, in
__pycache__/NAME.cpython-311.opt-fatjitXXXX.pyc, keyed on the source hash, the AST specializer's
version (fatjit's version and a hash of these files) and the options, so a second import only
reads and unmarshals it. Counters: fatjit._ast.stats().
Sound because: the module itself is never changed, so an import through the hook behaves as
without it; any failure in the transformation, the cache or the registration is caught,
counted by reason and leaves the module untouched (never breaks an import), and each
specialization is registered only after registration.py re-checked its assumptions against the
live module.
"""

# The interpreter's own, even while a program replaces them in builtins (tests do).
from builtins import len  # noqa: A004  pylint: disable=redefined-builtin

import marshal
import os
import sys
import time
from importlib._bootstrap_external import _RAW_MAGIC_NUMBER, cache_from_source
from importlib.machinery import (BYTECODE_SUFFIXES, EXTENSION_SUFFIXES, SOURCE_SUFFIXES,
                                 ExtensionFileLoader, FileFinder, SourceFileLoader,
                                 SourcelessFileLoader)

import _imp

from .counters import add_time, count
from .options import normalize_options, options_key

try:  # the C module alone: hashlib loads OpenSSL (14 ms at start-up)
    from _sha256 import sha256 as _sha256
except ImportError:  # pragma: no cover - a build without it
    from hashlib import sha256 as _sha256

# importlib.util is not imported at start-up (7 ms); its source_hash is this one line.


def source_hash(source_bytes):
    return _imp.source_hash(_RAW_MAGIC_NUMBER, source_bytes)

CACHE_FORMAT = 1
_state = {"options": None, "installed": False, "version": None}


def version():
    """fatjit's version and a hash of this package's sources: edits invalidate the cache."""
    if _state["version"] is None:
        digest = _sha256()
        here = os.path.dirname(os.path.abspath(__file__))
        for name in sorted(os.listdir(here)):
            if name.endswith(".py"):
                with open(os.path.join(here, name), "rb") as file:
                    digest.update(name.encode() + b"\0" + file.read())
        _state["version"] = f"0.1.0+{digest.hexdigest()[:16]}"
    return _state["version"]


def cache_tag(options):
    key = f"{version()}|{options_key(options)}|O{sys.flags.optimize}".encode()
    return "fatjit" + _sha256(key).hexdigest()[:12]


def _module_functions(tree):
    """(qualname, node) of the module-level defs and the methods of module-level classes."""
    import ast

    def walk(body, prefix):
        for stmt in body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield prefix + stmt.name, stmt
            elif isinstance(stmt, ast.ClassDef):
                yield from walk(stmt.body, prefix + stmt.name + ".")
            elif isinstance(stmt, (ast.If, ast.Try)):
                yield from walk(stmt.body, prefix)
                yield from walk(stmt.orelse, prefix)
                for handler in getattr(stmt, "handlers", ()):
                    yield from walk(handler.body, prefix)
    yield from walk(tree.body, "")


def transform_module(source_bytes, filename, options):
    """[(qualname, firstlineno, code, requirements)] for the functions the passes changed.

    requirements: {"globals": {name: literal or None}, "builtins": (names...),
    "inlined": {name: (qualname, firstlineno)}}. Raises on anything unexpected (the caller
    counts it and imports the module untouched).
    """
    import ast

    from . import driver
    from .environment import ModuleEnvironment
    # ast.parse reads the coding cookie itself (importlib's decode_source would import
    # tokenize, which may be the very module whose dependencies are being imported).
    tree = ast.parse(source_bytes, filename)
    if b"fatjit:" in source_bytes and driver.has_placeholder_collision(tree):
        raise _Untouched("source_has_placeholder_text")
    env = ModuleEnvironment(tree)
    changed = []
    for qualname, node in _module_functions(tree):
        if not driver.may_apply(node, env):
            continue
        first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
        context = driver.optimize_function(node, env, options)
        if context.changes:
            changed.append((qualname, first, context))
    if not changed:
        return []
    module_code = driver.compile_quietly(tree, filename)
    codes = driver.index_codes(module_code)
    entries = []
    for qualname, first, context in changed:
        code = codes.get((qualname, first))
        if code is None:
            count("functions_refused", "specialized_code_not_found")
            continue
        requirements = {"globals": dict(context.global_names),
                        "builtins": tuple(sorted(context.builtin_names)),
                        "inlined": dict(context.inlined),
                        "passes": dict(context.changes)}
        entries.append((qualname, first, driver.make_entry_stable(code), requirements))
    return entries


class _Untouched(Exception):
    """The module is imported as is; the message is the counted reason."""


def _read_cache(path, key):
    try:
        with open(path, "rb") as file:
            data = marshal.loads(file.read())
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if type(data) is tuple and len(data) == 2 and data[0] == key:
        return data[1]
    return None


def _write_cache(path, key, entries):
    if sys.dont_write_bytecode:
        return
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temporary = f"{path}.{os.getpid()}.tmp"
        with open(temporary, "wb") as file:
            file.write(marshal.dumps((key, entries)))
        os.replace(temporary, path)
        count("cache_writes")
    except OSError:
        count("cache_write_failed")


def specializations_for(loader, path):
    """The module's entries, from the cache or freshly transformed (and then cached)."""
    options = _state["options"]
    source_bytes = loader.get_data(path)
    key = (CACHE_FORMAT, source_hash(source_bytes), version(), options_key(options),
           sys.flags.optimize)  # -O strips asserts from what the passes compile
    try:
        cache_path = cache_from_source(path, optimization=cache_tag(options))
    except (NotImplementedError, ValueError):
        cache_path = None
    if cache_path is not None:
        entries = _read_cache(cache_path, key)
        if entries is not None:
            count("cache_hits")
            return entries
        count("cache_misses")
    start = time.perf_counter()
    try:
        entries = transform_module(source_bytes, path, options)
    finally:
        add_time("transform_time_s", time.perf_counter() - start)
    if cache_path is not None:
        _write_cache(cache_path, key, entries)
    return entries


class ASTSpecializingLoader(SourceFileLoader):
    """SourceFileLoader, plus the module's specializations registered after its body ran."""

    def get_code(self, fullname):
        code = super().get_code(fullname)
        self._fatjit_module_code = code
        return code

    def exec_module(self, module):
        super().exec_module(module)
        if module.__name__.partition(".")[0] == "fatjit":
            return  # the specializer itself (imported lazily, once the hook is in)
        count("modules_seen")
        if _state.get("busy"):
            # Imported by the specializer's own work (a lazy import of a pass): specialized
            # once the current module is done, so that the outcome does not depend on
            # whether the passes were loaded (a cached import does not load them).
            _state.setdefault("pending", []).append((self, module))
            return
        _state["busy"] = True
        try:
            self._specialize(module)
            while _state.get("pending"):
                loader, pending = _state["pending"].pop(0)
                loader._specialize(pending)
        finally:
            _state["busy"] = False

    def _specialize(self, module):
        try:
            entries = specializations_for(self, self.get_filename(module.__name__))
        except _Untouched as why:
            count("modules_untouched", str(why))
            return
        except SyntaxError:
            count("modules_untouched", "syntax_error")
            return
        except Exception as exc:  # noqa: BLE001 - never break an import: count and go on
            count("modules_untouched", f"transform_failed: {type(exc).__name__}")
            return
        if not entries:
            count("modules_untouched", "nothing_to_specialize")
            return
        from .registration import register_module
        start = time.perf_counter()
        try:
            register_module(module, getattr(self, "_fatjit_module_code", None), entries)
            count("modules_specialized")
        except Exception as exc:  # noqa: BLE001 - the module stays as imported
            count("modules_untouched", f"register_failed: {type(exc).__name__}")
        finally:
            add_time("register_time_s", time.perf_counter() - start)


class CountingSourcelessLoader(SourcelessFileLoader):
    """A module found only as a .pyc: imported as usual, counted as `no_source`."""

    def exec_module(self, module):
        super().exec_module(module)
        count("modules_seen")
        count("modules_untouched", "no_source")


def install(options=None):
    """Puts the hook in front of the standard source finder (once); returns whether it did."""
    options = normalize_options(options)
    if _state["installed"]:
        return False
    _state["options"] = options
    hook = FileFinder.path_hook((ExtensionFileLoader, EXTENSION_SUFFIXES),
                                (ASTSpecializingLoader, SOURCE_SUFFIXES),
                                (CountingSourcelessLoader, BYTECODE_SUFFIXES))
    position = 0
    for index, existing in enumerate(sys.path_hooks):
        if getattr(existing, "__name__", "") == "path_hook_for_FileFinder":
            position = index
            break
    sys.path_hooks.insert(position, hook)
    sys.path_importer_cache.clear()
    _state["installed"] = True
    _state["hook"] = hook
    return True


def uninstall():
    if not _state["installed"]:
        return
    if _state["hook"] in sys.path_hooks:
        sys.path_hooks.remove(_state["hook"])
    sys.path_importer_cache.clear()
    _state["installed"] = False
