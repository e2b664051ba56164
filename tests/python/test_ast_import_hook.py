"""The AST specializer's import hook (FATJIT=auto FATJIT_AST=1), in subprocesses.

Each test writes modules into a temporary directory and runs a small program there with the
hook on; the program prints what it saw (results, fatjit._ast.stats(), which functions got a
specialization) as JSON. Checked: a module is specialized and its functions give the same
results; the second import reads the transformation from the cache (cache_hits, no
transform_time_s: counted, not timed); a module the passes cannot handle is imported untouched
and counted; a module without source is skipped and counted; nothing happens without
FATJIT_AST=1; a changed source is transformed again. The cache file serves the module's code
(a hit writes no .pyc and compiles nothing), a module the passes cannot handle is cached as
such, a source edited during its transformation is neither specialized nor cached, a checked
hash-based .pyc makes the cache check the source hash, and installing the hook swaps the
loaders of the finders already cached instead of dropping them.
"""

import json
import os
import pathlib
import subprocess
import sys
import textwrap

import fatjit
from fatjit._ast.code_layout import RESUME

PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(fatjit.__file__)))
REPO = pathlib.Path(__file__).resolve().parents[2]

MODULE_A = """
    N = 4
    DEBUG = False

    def pair(x, y):
        return (x, y)

    def f(a):
        k = 3
        n = N * k + len("abcd")
        if DEBUG:
            print("debug")
        t = 0
        for i in (1, 2, 3):
            t += i * k
        return t + n + a

    def g(a):
        return pair(a, N)

    class C:
        def method(self):
            return N * 2
"""

PROGRAM = """
    import json, sys
    import fatjit, fatjit._ast

    def delta(before, after):
        out = {{}}
        for key, value in after.items():
            if isinstance(value, dict):
                old = before.get(key, {{}})
                changed = {{k: v - old.get(k, 0) for k, v in value.items() if v != old.get(k, 0)}}
                if changed:
                    out[key] = changed
            elif value != before.get(key, 0):
                out[key] = value - before.get(key, 0)
        return out

    import fatjit._ast.driver, fatjit._ast.registration  # the passes and what they import
    {prelude}
    before = fatjit._ast.stats()
    import {module}
    results = {calls}  # registrations are made at each function's first call
    imported = fatjit._ast.stats()
    out = {{"results": results, "stats": delta(before, imported),
           "with_literal_consts": {consts_probe},
           "specialized": sorted(name for name in {names}
                                 if fatjit.get_specialized(eval("{module}." + name)))}}
    print(json.dumps(out))
"""


def run(tmp_path, module, calls, names, ast_hook=True, prelude="", consts_probe="None",
        **environment):
    program = textwrap.dedent(PROGRAM).format(module=module, calls=calls, names=names,
                                              prelude=prelude, consts_probe=consts_probe)
    (tmp_path / "program.py").write_text(program)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONDONTWRITEBYTECODE", "FATJIT_JIT_STRESS")}
    # Every .pyc and AST cache file goes under tmp_path, none into the interpreter's own tree.
    env.update(PYTHONPATH=PACKAGE_ROOT, FATJIT="auto",
               PYTHONPYCACHEPREFIX=str(tmp_path / "pycache"))
    env.update(environment)
    if ast_hook:
        env["FATJIT_AST"] = "1"
    else:
        env.pop("FATJIT_AST", None)
    done = subprocess.run([sys.executable, "program.py"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def write(tmp_path, name, source):
    (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))


CALLS_A = "[mod_a.f(2), mod_a.g(1), mod_a.C().method()]"
NAMES_A = "['f', 'g', 'pair', 'C.method']"


def test_module_is_specialized_then_cached(tmp_path):
    write(tmp_path, "mod_a", MODULE_A)
    first = run(tmp_path, "mod_a", CALLS_A, NAMES_A)
    assert first["results"] == [36, [1, 4], 8]
    assert first["specialized"] == ["C.method", "f", "g"]
    stats = first["stats"]
    assert stats["modules_specialized"] == 1
    assert stats["cache_misses"] == 1 and stats["cache_writes"] == 1
    assert stats["functions_specialized"] == 3
    assert stats["transform_time_s"] > 0

    second = run(tmp_path, "mod_a", CALLS_A, NAMES_A)
    assert second["results"] == first["results"]
    assert second["specialized"] == first["specialized"]
    assert second["stats"]["cache_hits"] == 1
    assert "cache_misses" not in second["stats"]
    assert "transform_time_s" not in second["stats"]  # the passes never ran

    # An edited source is transformed again (the cache is keyed on its mtime and size).
    write(tmp_path, "mod_a", MODULE_A.replace("N = 4", "N = 15"))
    third = run(tmp_path, "mod_a", CALLS_A, NAMES_A)
    assert third["results"] == [2 + 18 + 15 * 3 + 4, [1, 15], 30]
    assert third["specialized"] == ["C.method", "f", "g"]
    assert third["stats"]["cache_misses"] == 1


def test_cache_misses_on_a_same_size_edit_other_options_or_another_version(tmp_path):
    write(tmp_path, "mod_a", MODULE_A)
    first = run(tmp_path, "mod_a", CALLS_A, NAMES_A)
    assert first["stats"]["cache_misses"] == 1 and first["stats"]["cache_writes"] == 1
    assert run(tmp_path, "mod_a", CALLS_A, NAMES_A)["stats"]["cache_hits"] == 1

    # The same size, a later mtime (the .pyc's own rule): transformed again, new results.
    path = tmp_path / "mod_a.py"
    info = os.stat(path)
    write(tmp_path, "mod_a", MODULE_A.replace("N = 4", "N = 5"))
    assert os.stat(path).st_size == info.st_size
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns + 2_000_000_000))
    edited = run(tmp_path, "mod_a", CALLS_A, NAMES_A)
    # (stdlib modules the passes import lazily may hit or miss too: count the transform)
    assert edited["stats"]["cache_misses"] >= 1 and edited["stats"]["transform_time_s"] > 0
    assert edited["results"] == [18 + 5 * 3 + 4 + 2, [1, 5], 10]
    again = run(tmp_path, "mod_a", CALLS_A, NAMES_A)["stats"]
    assert again["cache_hits"] == 1 and "transform_time_s" not in again

    # Other options: another cache entry (a miss, then hits).
    reinstall = ("from fatjit._ast import import_hook; import_hook.uninstall(); "
                 "import_hook.install({'unroll_iterations': 2})")
    other = run(tmp_path, "mod_a", CALLS_A, NAMES_A, prelude=reinstall)
    assert other["stats"]["cache_misses"] >= 1 and other["stats"]["transform_time_s"] > 0
    again = run(tmp_path, "mod_a", CALLS_A, NAMES_A, prelude=reinstall)["stats"]
    assert again["cache_hits"] >= 1 and "transform_time_s" not in again

    # Another version of the specializer (its version stamp differs): a miss.
    other_version = ("from fatjit._ast import import_hook; import_hook._state['version'] = 'x'; "
                     "import_hook._state['tags'].clear()")
    changed = run(tmp_path, "mod_a", CALLS_A, NAMES_A, prelude=other_version)
    assert changed["stats"]["cache_misses"] >= 1 and changed["stats"]["transform_time_s"] > 0


def test_version_stamp_is_the_build_digest_of_the_specializer_sources(tmp_path):
    """The cache key's stamp holds SOURCE_DIGEST, which the build computes from
    specializer/ast/*.py (ext/source_digest.cmake): an edited specializer, once rebuilt, misses
    the cache; a package without the file does not cache at all."""
    import hashlib

    from fatjit._ast import import_hook
    sources = sorted((REPO / "specializer" / "ast").glob("*.py"), key=lambda p: p.name)
    listing = "".join(f"{p.name}:{hashlib.sha256(p.read_bytes()).hexdigest()}\n" for p in sources)
    expected = hashlib.sha256(listing.encode()).hexdigest()
    package = pathlib.Path(import_hook.__file__).parent
    assert (package / "SOURCE_DIGEST").read_text().strip() == expected, \
        "the build's SOURCE_DIGEST is stale: rebuild"
    assert import_hook.version().endswith("|" + expected)

    assert import_hook.version(str(tmp_path)) is None
    (tmp_path / "SOURCE_DIGEST").write_text("abc\n")
    before = import_hook.version(str(tmp_path))
    (tmp_path / "SOURCE_DIGEST").write_text("abd\n")
    assert before.endswith("|abc") and import_hook.version(str(tmp_path)) != before


def test_a_package_without_source_digest_imports_without_caching(tmp_path):
    write(tmp_path, "mod_a", MODULE_A)
    no_digest = ("from fatjit._ast import import_hook; import_hook._state['version'] = None; "
                 "import_hook._state['tags'].clear()")
    for _ in range(2):
        done = run(tmp_path, "mod_a", CALLS_A, NAMES_A, prelude=no_digest)
        assert done["specialized"] == ["C.method", "f", "g"]
        assert done["stats"]["cache_off"]["no_source_digest"] >= 1
        assert "cache_hits" not in done["stats"] and "cache_writes" not in done["stats"]


def test_guards_protect_the_imported_specialization(tmp_path):
    write(tmp_path, "mod_a", MODULE_A)
    out = run(tmp_path, "mod_a",
              "[mod_a.f(2), setattr(mod_a, 'N', 10), mod_a.f(2), mod_a.g(1), "
              "setattr(mod_a, 'pair', lambda x, y: 'rebound'), mod_a.g(1)]", NAMES_A)
    assert out["results"] == [36, None, 2 + 18 + 30 + 4, [1, 10], None, "rebound"]


def test_automatic_mode_compiles_the_specialized_code_once_hot(tmp_path):
    # The hook's code runs natively like any function's (tests/python/test_jit_given_code.py):
    # at the JIT threshold's call, here the first, also from the cache.
    write(tmp_path, "mod_a", MODULE_A)
    probe = "[mod_a.f(2), mod_a.f(2), 'JIT: native code' in fatjit.explain(mod_a.f)]"
    for _ in range(2):  # the cache's miss, then its hit
        out = run(tmp_path, "mod_a", probe, NAMES_A, FATJIT_JIT_THRESHOLD="0",
                  FATJIT_JIT_BACKGROUND="0")
        assert out["results"] == [36, 36, True]
        assert "f" in out["specialized"]


def test_registration_waits_for_each_functions_first_call(tmp_path):
    # An import registers nothing yet (functions_deferred); each function's first call checks
    # the module as it is then and registers; a function never called never pays.
    write(tmp_path, "mod_a", MODULE_A)
    run(tmp_path, "mod_a", "[]", "[]")  # fills the cache
    out = run(tmp_path, "mod_a",
              "[sorted(fatjit._ast.stats().items())[0:0], mod_a.f(2), "
              "fatjit.explain(mod_a.g).splitlines()[1].strip(), "
              "fatjit._ast.stats().get('functions_specialized', 0)]", NAMES_A)
    # (stdlib modules the program imports go through the hook too: their functions count as well)
    assert out["results"][1:3] == [36, "specialization 0: from the AST import hook, made at the "
                                       "next call"]
    assert out["results"][3] >= 1
    assert out["specialized"] == ["f"]  # g and C.method were never called
    assert out["stats"]["functions_deferred"] >= 3


def test_a_global_rebound_before_the_first_call_is_seen_at_registration(tmp_path):
    # N = 4 was assumed from the source; rebound before f's first call, f is not specialized
    # (refused: global_value_differs) and computes with the new value.
    write(tmp_path, "mod_a", MODULE_A)
    run(tmp_path, "mod_a", "[]", "[]")
    out = run(tmp_path, "mod_a", "[setattr(mod_a, 'N', 10), mod_a.f(2), mod_a.g(1)]", NAMES_A)
    assert out["results"] == [None, 2 + 18 + 30 + 4, [1, 10]]
    assert out["specialized"] == []
    assert out["stats"]["functions_refused"] == {"global_value_differs": 2}


def test_module_the_passes_cannot_handle_is_imported_untouched(tmp_path):
    # A 1500-term expression: CPython compiles it; the passes (recursive Python) give up.
    chain = " + ".join(["a"] * 1500)
    write(tmp_path, "mod_deep", f"K = 2\ndef f(a):\n    return K * 2 + ({chain})\n")
    out = run(tmp_path, "mod_deep", "[mod_deep.f(1)]", "['f']")
    assert out["results"] == [2 * 2 + 1500]
    assert out["specialized"] == []
    # (the stdlib modules the passes import lazily are transformed too, after it)
    assert out["stats"]["modules_untouched"]["transform_failed: RecursionError"] == 1


def test_module_without_source_is_skipped_and_counted(tmp_path):
    import py_compile  # (a legacy .pyc next to where the source was: found without source)
    write(tmp_path, "mod_src", "def f():\n    return 1 + 1\n")
    py_compile.compile(str(tmp_path / "mod_src.py"), cfile=str(tmp_path / "mod_nosrc.pyc"))
    os.remove(tmp_path / "mod_src.py")
    out = run(tmp_path, "mod_nosrc", "[mod_nosrc.f()]", "['f']")
    assert out["results"] == [2]
    assert out["stats"]["modules_untouched"] == {"no_source": 1}


def test_hook_is_off_without_fatjit_ast(tmp_path):
    write(tmp_path, "mod_a", MODULE_A)
    out = run(tmp_path, "mod_a", CALLS_A, NAMES_A, ast_hook=False)
    assert out["results"] == [36, [1, 4], 8]
    assert out["specialized"] == [] and out["stats"] == {}
    assert "fatjit._ast.import_hook" not in out.get("loaded", [])


def test_resume_opcode_number():
    import opcode
    from fatjit._ast import code_layout
    assert RESUME == opcode.opmap["RESUME"]
    for name in ("LOAD_GLOBAL", "LOAD_CONST", "PUSH_NULL", "NOP", "EXTENDED_ARG"):
        assert getattr(code_layout, name) == opcode.opmap[name], name
    assert code_layout.LOAD_GLOBAL_CACHES == \
        opcode._inline_cache_entries[opcode.opmap["LOAD_GLOBAL"]]


def test_objects_alone_are_not_worth_a_specialization(tmp_path):
    """A function whose only rewrite is an object read as a constant (a builtin, a module
    function) is left alone by the hook: the guard check would cost more than it saves. With a
    literal folded too, the object loads become LOAD_CONSTs as well."""
    write(tmp_path, "mod_obj", """
        K = 3
        def helper(x):
            return -x
        def only_objects(x):
            return helper(x)
        def with_literal(x):
            k = K
            h = helper
            return h(x) * k
    """)
    out = run(tmp_path, "mod_obj", "[mod_obj.only_objects(2), mod_obj.with_literal(2)]",
              "['only_objects', 'with_literal']",
              consts_probe="[c.__name__ for c in fatjit.get_specialized(mod_obj.with_literal)"
                           "[0][0].co_consts if callable(c)][0]")
    assert out["results"] == [-2, -6]
    assert out["specialized"] == ["with_literal"]
    assert out["stats"]["functions_refused"]["only_object_constants"] == 1
    assert out["with_literal_consts"] == "helper"


def standard_pycs(tmp_path, name):
    return [os.path.join(d, f) for d, _, files in os.walk(tmp_path / "pycache") for f in files
            if f == f"{name}.cpython-311.pyc"]


def test_cache_hit_serves_the_module_code_itself(tmp_path):
    """A hit reads the AST cache file in place of the .pyc (it holds the module's code object
    too): with the .pyc deleted, the second import neither compiles the source nor writes a
    .pyc, and the module and its specializations are the same."""
    write(tmp_path, "mod_a", MODULE_A)
    first = run(tmp_path, "mod_a", CALLS_A, NAMES_A)
    pycs = standard_pycs(tmp_path, "mod_a")
    assert len(pycs) == 1
    os.remove(pycs[0])
    second = run(tmp_path, "mod_a", CALLS_A, NAMES_A)
    assert second["stats"]["cache_hits"] == 1 and "cache_misses" not in second["stats"]
    assert second["results"] == first["results"]
    assert second["specialized"] == first["specialized"] == ["C.method", "f", "g"]
    assert standard_pycs(tmp_path, "mod_a") == []  # SourceFileLoader.get_code never ran


def test_module_the_passes_cannot_handle_is_cached_untouched(tmp_path):
    chain = " + ".join(["a"] * 1500)
    write(tmp_path, "mod_deep", f"K = 2\ndef f(a):\n    return K * 2 + ({chain})\n")
    run(tmp_path, "mod_deep", "[mod_deep.f(1)]", "['f']")
    again = run(tmp_path, "mod_deep", "[mod_deep.f(1)]", "['f']")
    assert again["results"] == [2 * 2 + 1500] and again["specialized"] == []
    assert again["stats"]["cache_hits"] == 1 and "transform_time_s" not in again["stats"]
    assert again["stats"]["modules_untouched"] == {"transform_failed: RecursionError": 1}


def test_source_edited_while_transformed_is_neither_cached_nor_specialized(tmp_path):
    write(tmp_path, "mod_a", MODULE_A)
    edit_during_transform = (
        "from fatjit._ast import import_hook\n"
        "_transform = import_hook.transform_module\n"
        "def transform_after_an_edit(source, path, options):\n"
        "    with open(path, 'a') as f:\n"
        "        f.write('# edited\\n')\n"
        "    return _transform(source, path, options)\n"
        "import_hook.transform_module = transform_after_an_edit\n")
    out = run(tmp_path, "mod_a", CALLS_A, NAMES_A, prelude=edit_during_transform)
    assert out["results"] == [36, [1, 4], 8]
    assert out["specialized"] == []
    assert out["stats"]["modules_untouched"] == {"source_changed_while_importing": 1}
    assert "cache_writes" not in out["stats"]
    after = run(tmp_path, "mod_a", CALLS_A, NAMES_A)
    assert after["stats"]["cache_misses"] == 1 and after["stats"]["cache_writes"] == 1
    assert after["specialized"] == ["C.method", "f", "g"]


def test_checked_hash_pyc_makes_the_cache_check_the_source_hash(tmp_path):
    """PEP 552: with a checked hash-based .pyc, SourceFileLoader notices an edit that keeps
    the mtime and the size; the AST cache (which serves the module code) must notice it too."""
    write(tmp_path, "mod_a", MODULE_A)
    path = tmp_path / "mod_a.py"
    info = os.stat(path)
    env = dict(os.environ, PYTHONPYCACHEPREFIX=str(tmp_path / "pycache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-c",
                    "import importlib.util, py_compile, sys; p = sys.argv[1]; "
                    "py_compile.compile(p, cfile=importlib.util.cache_from_source(p), "
                    "invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH, "
                    "doraise=True)", str(path)], env=env, check=True)
    first = run(tmp_path, "mod_a", CALLS_A, NAMES_A)
    assert first["results"] == [36, [1, 4], 8] and first["stats"]["cache_writes"] == 1
    assert run(tmp_path, "mod_a", CALLS_A, NAMES_A)["stats"]["cache_hits"] == 1
    write(tmp_path, "mod_a", MODULE_A.replace("N = 4", "N = 5"))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert os.stat(path).st_size == info.st_size
    edited = run(tmp_path, "mod_a", CALLS_A, NAMES_A)
    assert edited["results"] == [18 + 5 * 3 + 4 + 2, [1, 5], 10]
    assert edited["stats"]["cache_misses"] == 1


FINDERS_PROGRAM = """
import json, sys
from importlib.machinery import FileFinder
from fatjit._ast import import_hook
def loader_names(finder):
    return sorted({loader.__name__ for suffix, loader in finder._loaders if suffix == ".py"})
def finders():
    return {k: f for k, f in sys.path_importer_cache.items() if type(f) is FileFinder}
import_hook.uninstall()
before = finders()
standard = sorted({n for f in before.values() for n in loader_names(f)})
import_hook.install()
kept = all(sys.path_importer_cache.get(k) is f for k, f in before.items())
installed = sorted({n for f in finders().values() for n in loader_names(f)})
import glob
glob_loader = type(glob.__loader__).__name__
import_hook.uninstall()
import colorsys
print(json.dumps({"count": len(before), "standard": standard, "installed": installed,
                  "kept": kept and all(sys.path_importer_cache.get(k) is f
                                       for k, f in before.items()),
                  "uninstalled": sorted({n for f in finders().values() for n in loader_names(f)}),
                  "glob": glob_loader, "colorsys": type(colorsys.__loader__).__name__}))
"""


def test_install_swaps_the_loaders_of_the_cached_finders(tmp_path):
    """The hook keeps the FileFinders already cached (and their directory listings) and swaps
    their source loader; uninstall swaps it back."""
    (tmp_path / "program.py").write_text(FINDERS_PROGRAM)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHONPATH=PACKAGE_ROOT, FATJIT="auto", FATJIT_AST="1",
               PYTHONPYCACHEPREFIX=str(tmp_path / "pycache"))
    done = subprocess.run([sys.executable, "program.py"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120, check=True)
    out = json.loads(done.stdout.splitlines()[-1])
    assert out["count"] >= 1 and out["kept"]
    assert out["standard"] == ["SourceFileLoader"]
    assert out["installed"] == ["ASTSpecializingLoader"]
    assert out["uninstalled"] == ["SourceFileLoader"]
    assert out["glob"] == "ASTSpecializingLoader" and out["colorsys"] == "SourceFileLoader"
