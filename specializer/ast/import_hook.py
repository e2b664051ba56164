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
__pycache__/NAME.cpython-311.opt-fatjitXXXX.pyc, keyed .pyc-style on the source's (mtime, size),
the AST specializer's version stamp (fatjit's version, CPython's magic number, the (mtime,
size) of these files) and the options, so a second import stats the source, reads and
unmarshals the cache file, and loads none of the passes. Counters: fatjit._ast.stats().
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

from .counters import add_time, count
from .options import normalize_options, options_key

try:  # the C module alone: hashlib loads OpenSSL (14 ms at start-up)
    from _sha256 import sha256 as _sha256
except ImportError:  # pragma: no cover - a build without it
    from hashlib import sha256 as _sha256

CACHE_FORMAT = 2
_state = {"options": None, "installed": False, "version": None, "tags": {}}
VERSION = "0.1.0"


def version(directory=None):
    """A stamp of this package's sources, .pyc-style: the (name, mtime, size) of every .py file
    of fatjit/_ast plus fatjit's version and CPython's bytecode magic. An edited or reinstalled
    specializer (a copy gets new mtimes) or another CPython misses the cache. One listdir and
    ~20 stats per process; no file is read."""
    if directory is None and _state["version"] is not None:
        return _state["version"]
    here = directory or os.path.dirname(os.path.abspath(__file__))
    parts = [VERSION, str(_RAW_MAGIC_NUMBER)]
    for name in sorted(os.listdir(here)):
        if name.endswith(".py"):
            info = os.stat(os.path.join(here, name))
            parts.append(f"{name}:{info.st_mtime_ns}:{info.st_size}")
    stamp = "|".join(parts)
    if directory is None:
        _state["version"] = stamp
    return stamp


def _setting(options_text):
    """(file tag, digest) of this specializer's version, the options and -O: the tag names the
    cache file (one per setting), the digest is part of the key stored in it."""
    setting = _state["tags"].get(options_text)
    if setting is None:
        key = f"{version()}|{options_text}|O{sys.flags.optimize}".encode()
        digest = _sha256(key).hexdigest()
        setting = _state["tags"][options_text] = ("fatjit" + digest[:12], digest)
    return setting


def cache_tag(options):
    return _setting(options_key(options))[0]


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
    if (b"fatjit:" in source_bytes or b"__fatjit_const_" in source_bytes) and \
            driver.has_placeholder_collision(tree):
        raise _Untouched("source_has_placeholder_text")
    env = ModuleEnvironment(tree)
    changed = []
    for qualname, node in _module_functions(tree):
        if not driver.may_apply(node, env):
            continue
        first = node.decorator_list[0].lineno if node.decorator_list else node.lineno
        context = driver.optimize_function(node, env, options)
        if context.changes and _only_object_constants(context):
            # A LOAD_GLOBAL made a LOAD_CONST saves less than the guard check the
            # specialization adds to every call (and its registration costs every import).
            count("functions_refused", "only_object_constants")
        elif context.changes:
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
        try:
            code = driver.finish_specialized_code(code)
        except ValueError:
            count("functions_refused", "placeholder_left")
            continue
        entries.append((qualname, first, driver.make_entry_stable(code), requirements))
    return entries


def _only_object_constants(context):
    """The function's only rewrites are objects (not literals) read as constants."""
    return set(context.changes) == {"globals_to_constants"} and \
        all(value is None for value in context.global_names.values())


class _Untouched(Exception):
    """The module is imported as is; the message is the counted reason."""


def _read_cache(path, key):
    try:  # os-level calls: no buffered file object for a file read in one go
        descriptor = os.open(path, os.O_RDONLY)
        try:
            raw = os.read(descriptor, os.fstat(descriptor).st_size + 1)
        finally:
            os.close(descriptor)
        data = marshal.loads(raw)
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


def specializations_for(path, module_code):
    """The module's entries, from the cache or freshly transformed (and then cached).

    The key is .pyc-style: the source's (mtime, size) as stat gives them, and a digest of the
    specializer's version stamp, the options and -O (asserts stripped). A hit reads neither the
    source nor the passes: one stat, one read, one unmarshal. On a miss the source is read
    after the stat (as SourceFileLoader does), so a source edited in between misses next time.
    """
    options = _state["options"]
    options_text = _state.get("options_text") or options_key(options)
    tag, digest = _setting(options_text)
    info = os.stat(path)
    key = (CACHE_FORMAT, info.st_mtime_ns, info.st_size, digest)
    try:
        cache_path = cache_from_source(path, optimization=tag)
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
        with open(path, "rb") as file:
            source_bytes = file.read()
        entries = transform_module(source_bytes, path, options)
        entries = _drop_unchanged(entries, module_code)
    finally:
        add_time("transform_time_s", time.perf_counter() - start)
    if cache_path is not None:
        _write_cache(cache_path, key, entries)
    return entries


def _drop_unchanged(entries, module_code):
    """Entries whose code CPython's compiler produced already (its own folding did the same)
    are dropped before caching, so a cached import does not compare them again."""
    if module_code is None or not entries:
        return entries
    from .code_layout import index_codes, make_entry_stable
    originals = index_codes(module_code)
    kept = []
    for entry in entries:
        original = originals.get((entry[0], entry[1]))
        if original is not None and make_entry_stable(original) == entry[2]:
            count("functions_refused", "nothing_to_specialize")
            continue
        kept.append(entry)
    return kept


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
            entries = specializations_for(self.get_filename(module.__name__),
                                          getattr(self, "_fatjit_module_code", None))
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
    _state["options_text"] = options_key(options)
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
