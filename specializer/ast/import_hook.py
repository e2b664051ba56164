"""FATJIT_AST=1: the import hook that specializes modules from their source (PEP 511 in spirit).

Assumes: automatic mode asked for it (fatjit/_autoload.py and python -m fatjit call install()
when FATJIT_AST=1); modules found on sys.path as source files (.py). Everything else (extension
modules, zip imports, namespace packages, frozen modules) is imported by the standard
machinery; a module found only as a .pyc is counted as `no_source`.
Produces: a path hook placed before the standard FileFinder hook (and the same loaders swapped
into the FileFinders already cached, which keep their directory listings), whose source loader
serves the module's code from the AST cache file,
__pycache__/NAME.cpython-311.opt-fatjitXXXX.pyc, in place of the .pyc: the file holds the module
code object (the one SourceFileLoader would give) and the module's specializations, keyed
.pyc-style on the source's (mtime, size), the AST specializer's version stamp (fatjit's version,
CPython's magic number, SOURCE_DIGEST: the build's digest of these files) and the options. So a second import
stats the source, reads and unmarshals one file (as a .pyc hit does), runs the module body,
then registers each specialization of its module-level functions and the methods of its
module-level classes through fatjit.specialize(func, code, guards) (registration.py). A module
with nothing to specialize costs nothing more than a .pyc hit; no pass is loaded on a hit.
A miss loads the code as SourceFileLoader does, transforms the source after the body ran,
checks the entries against the module code once (prepared_entries) and writes the file; a
module the passes cannot handle is cached as such (the reason), so it is not parsed again.
Counters: fatjit._ast.stats().
Sound because: the module's own code is the one CPython compiles from the same source (or the
same object, stored on a miss), so an import through the hook behaves as without it; the key
misses when the source, the options, the specializer or CPython change; a source changed
while it was transformed is neither cached nor specialized; any failure in the
transformation, the cache or the registration is caught, counted by reason and leaves the
module untouched (never breaks an import), and each specialization is registered only after
registration.py re-checked its assumptions against the live module.
"""

# The interpreter's own, even while a program replaces them in builtins (tests do).
from builtins import len  # noqa: A004  pylint: disable=redefined-builtin

import marshal
import os
import sys
import time
import _imp
from _imp import _fix_co_filename
from importlib._bootstrap_external import MAGIC_NUMBER, _RAW_MAGIC_NUMBER, cache_from_source
from importlib.machinery import (BYTECODE_SUFFIXES, EXTENSION_SUFFIXES, SOURCE_SUFFIXES,
                                 ExtensionFileLoader, FileFinder, SourceFileLoader,
                                 SourcelessFileLoader)

from .counters import add_time, count
from .options import normalize_options, options_key
# loaded with the hook: a cached import that registers must import nothing
from .registration import register_module

CACHE_FORMAT = 5
_CODE_TYPE = type((lambda: None).__code__)
_UNREAD = object()
_state = {"options": None, "installed": False, "version": _UNREAD, "tags": {}}
VERSION = "0.1.0"


def version(directory=None):
    """A stamp of this specializer, or None (no cache then): fatjit's version, CPython's
    bytecode magic and SOURCE_DIGEST, the digest of fatjit/_ast's sources that the build writes
    next to them (ext/source_digest.cmake). A rebuilt or reinstalled specializer with other
    sources, or another CPython, misses the cache. One small file read per process."""
    if directory is None and _state["version"] is not _UNREAD:
        return _state["version"]
    here = directory or os.path.dirname(os.path.abspath(__file__))
    try:
        descriptor = os.open(os.path.join(here, "SOURCE_DIGEST"), os.O_RDONLY)
        try:
            digest = os.read(descriptor, 128).decode("ascii").strip()
        finally:
            os.close(descriptor)
    except (OSError, UnicodeDecodeError):
        digest = ""
    stamp = f"{VERSION}|{_RAW_MAGIC_NUMBER}|{digest}" if digest else None
    if directory is None:
        _state["version"] = stamp
    return stamp


def _setting(options_text):
    """(file tag, digest) of this specializer's version, the options and -O: the tag names the
    cache file (one per setting), the digest is part of the key stored in it."""
    setting = _state["tags"].get(options_text)
    if setting is None:
        key = f"{version()}|{options_text}|O{sys.flags.optimize}".encode()
        # CPython's own source hash (the one of hash-based .pyc files): built in, so no
        # module is loaded for it (_sha256 is an extension module: ~0.4 ms per process)
        digest = _imp.source_hash(_RAW_MAGIC_NUMBER, key).hex()
        setting = _state["tags"][options_text] = ("fatjit" + digest[:12], digest)
    return setting


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


def _cache_location(path):
    """(cache file, key) for the source at `path`, or None (no cache path, no stat, or no
    version stamp: a package without SOURCE_DIGEST never caches, counted as cache_off).

    The key is .pyc-style: the source's (mtime, size) as stat gives them, and a digest of the
    specializer's version stamp, the options and -O (asserts stripped)."""
    if version() is None:
        count("cache_off", "no_source_digest")
        return None
    options_text = _state.get("options_text") or options_key(_state["options"])
    tag, digest = _setting(options_text)
    try:
        cache_path = cache_from_source(path, optimization=tag)
        info = os.stat(path)
    except (NotImplementedError, ValueError, OSError):
        return None
    return cache_path, (CACHE_FORMAT, info.st_mtime_ns, info.st_size, digest)


def _read_cache(path, key, source_path):
    """(module code, outcome) stored under `key`, else None. outcome: the entries (a tuple,
    maybe empty), or the reason (a str) the module is imported untouched. A module whose .pyc
    is a checked hash-based one (PEP 552) also had its source hash stored: the source is then
    read and hashed, as SourceFileLoader does for such a .pyc."""
    try:  # os-level calls: no buffered file object for a file read in one go
        descriptor = os.open(path, os.O_RDONLY)
        try:
            raw = os.read(descriptor, os.fstat(descriptor).st_size + 1)
        finally:
            os.close(descriptor)
        data = marshal.loads(raw)
    except (OSError, EOFError, ValueError, TypeError):
        return None
    if not (type(data) is tuple and len(data) == 4 and data[0] == key and
            type(data[1]) is _CODE_TYPE and type(data[2]) in (tuple, str)):
        return None
    if data[3] is not None:
        try:
            with open(source_path, "rb") as file:
                if _imp.source_hash(_RAW_MAGIC_NUMBER, file.read()) != data[3]:
                    return None
        except OSError:
            return None
    return data[1], data[2]


def _checked_source_hash(source_path):
    """The source hash in the header of the module's .pyc when it is a hash-based .pyc that
    SourceFileLoader checks against the source (PEP 552), else None (a timestamp .pyc, or
    none). Read after SourceFileLoader.get_code validated or rewrote that .pyc."""
    try:
        with open(cache_from_source(source_path), "rb") as file:
            header = file.read(16)
    except (OSError, NotImplementedError, ValueError):
        return None
    if len(header) < 16 or header[:4] != MAGIC_NUMBER:
        return None
    flags = int.from_bytes(header[4:8], "little")
    mode = _imp.check_hash_based_pycs
    if flags & 0b1 and mode != "never" and (flags & 0b10 or mode == "always"):
        return header[8:16]
    return None


def _write_cache(location, module_code, outcome):
    if sys.dont_write_bytecode:
        return
    path, key, source_hash = location
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temporary = f"{path}.{os.getpid()}.tmp"
        with open(temporary, "wb") as file:
            file.write(marshal.dumps((key, module_code, outcome, source_hash)))
        os.replace(temporary, path)
        count("cache_writes")
    except OSError:
        count("cache_write_failed")


def _source_unchanged(path, key):
    """The source still has the (mtime, size) of `key` (read again after the transform)."""
    try:
        info = os.stat(path)
    except OSError:
        return False
    return (info.st_mtime_ns, info.st_size) == key[1:3]


def transform_source_file(path, module_code):
    """The module's entries (a tuple) or the reason (a str) it stays untouched: parse, passes,
    compile, then only the entries registration can use with `module_code` (prepared_entries).
    Counted and timed; the cache miss path of the loader."""
    start = time.perf_counter()
    try:
        with open(path, "rb") as file:
            source_bytes = file.read()
        entries = transform_module(source_bytes, path, _state["options"])
        return prepared_entries(entries, module_code)
    except _Untouched as why:
        return str(why)
    except SyntaxError:
        return "syntax_error"
    except Exception as exc:  # noqa: BLE001 - never break an import: counted, left untouched
        return f"transform_failed: {type(exc).__name__}"
    finally:
        add_time("transform_time_s", time.perf_counter() - start)


def prepared_entries(entries, module_code):
    """The entries worth registering against `module_code`, checked once, before caching, for
    everything that depends only on the two code objects: an entry whose code CPython's
    compiler produced already (its own folding did the same) is dropped, and so is one that
    could not run in the original's frame (code_layout.check_compatible). Each kept entry is
    (qualname, firstlineno, const_path, payload): const_path is where the original sits in
    `module_code` (a cached import checks a function's identity with it), payload the
    marshalled (specialized code, requirements), the requirements gaining placeholders
    ((constant, kind, name) of each placeholder constant). The payload is unmarshalled at the
    function's first call only: an import does not decode the code of functions it never
    calls. A cached import then only checks what depends on the live module
    (registration.py)."""
    if not entries:
        return ()
    from .code_layout import (check_compatible, const_path, index_codes, make_entry_stable,
                              placeholders_in)
    from .constant_values import parse_placeholder
    originals = index_codes(module_code)
    kept = []
    for entry in entries:
        original = originals.get((entry[0], entry[1]))
        path = const_path(module_code, original) if original is not None else None
        if path is None:
            count("functions_refused", "original_code_not_found")
            continue
        if make_entry_stable(original) == entry[2]:
            count("functions_refused", "nothing_to_specialize")
            continue
        reason = check_compatible(original, entry[2])
        if reason is not None:
            count("functions_refused", f"incompatible: {reason}")
            continue
        placeholders = tuple((value,) + parse_placeholder(value)
                             for value in placeholders_in(entry[2]))
        requirements = dict(entry[3], placeholders=placeholders)
        kept.append((entry[0], entry[1], path, marshal.dumps((entry[2], requirements))))
    return tuple(kept)


class ASTSpecializingLoader(SourceFileLoader):
    """SourceFileLoader whose get_code reads the AST cache file instead of the .pyc (it holds
    the module's code object, as the .pyc does, and the specializations), and whose
    exec_module registers the specializations once the module's body ran.

    A hit costs what a .pyc hit costs (one stat of the source, one read, one unmarshal) plus
    the registration of the module's specialized functions; a module with none costs nothing
    more. A miss loads the code as SourceFileLoader does (the .pyc, or the source), then, after
    the body ran, transforms the source and writes the cache file for next time."""

    _fatjit_module_code = None
    _fatjit_outcome = None     # entries (tuple) or untouched reason (str): a cache hit
    _fatjit_location = None    # (cache file, key, checked source hash) to write after a miss

    def get_code(self, fullname):
        self._fatjit_outcome = self._fatjit_location = None
        if fullname.partition(".")[0] == "fatjit":
            return super().get_code(fullname)  # the specializer itself: never transformed
        path = self.get_filename(fullname)
        location = _cache_location(path)
        if location is not None:
            cached = _read_cache(location[0], location[1], path)
            if cached is not None:
                code, self._fatjit_outcome = cached
                _fix_co_filename(code, path)  # as a .pyc read does (a moved tree)
                self._fatjit_module_code = code
                count("cache_hits")
                return code
            count("cache_misses")
        code = super().get_code(fullname)
        self._fatjit_module_code = code
        if location is not None:
            self._fatjit_location = location + (_checked_source_hash(path),)
        return code

    def exec_module(self, module):
        super().exec_module(module)
        if module.__name__.partition(".")[0] == "fatjit":
            return  # the specializer itself (imported lazily, once the hook is in)
        count("modules_seen")
        outcome, location = self._fatjit_outcome, self._fatjit_location
        if outcome is not None and not outcome:
            count("modules_untouched", "nothing_to_specialize")  # the common hit: done
            return
        if type(outcome) is str:
            count("modules_untouched", outcome)
            return
        job = (module, self._fatjit_module_code, outcome, location,
               self.get_filename(module.__name__))
        if _state.get("busy"):
            # Imported by the specializer's own work (a lazy import of a pass): specialized
            # once the current module is done, so that the outcome does not depend on
            # whether the passes were loaded (a cached import does not load them).
            _state.setdefault("pending", []).append(job)
            return
        _state["busy"] = True
        try:
            _specialize(*job)
            while _state.get("pending"):
                _specialize(*_state["pending"].pop(0))
        finally:
            _state["busy"] = False


def _specialize(module, module_code, outcome, location, path):
    """Registers the module's specializations: `outcome` from the cache, or (None after a
    miss) transformed now and cached."""
    if outcome is None:
        if module_code is None:
            count("modules_untouched", "no_code")
            return
        outcome = transform_source_file(path, module_code)
        if location is not None:
            if _source_unchanged(path, location[1]):
                if outcome != "transform_failed: MemoryError":  # may not fail next time
                    _write_cache(location, module_code, outcome)
            elif type(outcome) is not str:  # the entries may not match the code that ran
                outcome = "source_changed_while_importing"
        if type(outcome) is str:
            count("modules_untouched", outcome)
            return
        if not outcome:
            count("modules_untouched", "nothing_to_specialize")
            return
    start = time.perf_counter()
    try:
        register_module(module, module_code, outcome)
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


_OURS = {SourceFileLoader: ASTSpecializingLoader, SourcelessFileLoader: CountingSourcelessLoader}
_STANDARD = {ours: standard for standard, ours in _OURS.items()}


def _swap_loaders(replacements):
    """Replaces the loader classes of the standard FileFinders already in
    sys.path_importer_cache, in place (FileFinder._loaders: (suffix, loader) pairs, CPython
    3.11), so that they keep their directory listings: clearing the cache would make the next
    import list every sys.path directory again (~0.7 ms). A finder of another shape is dropped
    from the cache instead (the path hooks make a new one)."""
    for entry, finder in list(sys.path_importer_cache.items()):
        if type(finder) is not FileFinder:
            continue
        loaders = getattr(finder, "_loaders", None)
        if type(loaders) is not list or not all(type(p) is tuple and len(p) == 2
                                                for p in loaders):
            del sys.path_importer_cache[entry]
            continue
        finder._loaders = [(suffix, replacements.get(loader, loader))
                           for suffix, loader in loaders]


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
    _swap_loaders(_OURS)
    _state["installed"] = True
    _state["hook"] = hook
    return True


def uninstall():
    if not _state["installed"]:
        return
    if _state["hook"] in sys.path_hooks:
        sys.path_hooks.remove(_state["hook"])
    _swap_loaders(_STANDARD)
    _state["installed"] = False
