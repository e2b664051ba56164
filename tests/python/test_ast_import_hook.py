"""The AST specializer's import hook (FATJIT=auto FATJIT_AST=1), in subprocesses.

Each test writes modules into a temporary directory and runs a small program there with the
hook on; the program prints what it saw (results, fatjit._ast.stats(), which functions got a
specialization) as JSON. Checked: a module is specialized and its functions give the same
results; the second import reads the transformation from the cache (cache_hits, no
transform_time_s: counted, not timed); a module the passes cannot handle is imported untouched
and counted; a module without source is skipped and counted; nothing happens without
FATJIT_AST=1; a changed source is transformed again.
"""

import json
import os
import subprocess
import sys
import textwrap

import fatjit
from fatjit._ast.code_layout import RESUME

PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(fatjit.__file__)))

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
    before = fatjit._ast.stats()
    import {module}
    imported = fatjit._ast.stats()
    out = {{"results": {calls}, "stats": delta(before, imported),
           "specialized": sorted(name for name in {names}
                                 if fatjit.get_specialized(eval("{module}." + name)))}}
    print(json.dumps(out))
"""


def run(tmp_path, module, calls, names, ast_hook=True):
    program = textwrap.dedent(PROGRAM).format(module=module, calls=calls, names=names)
    (tmp_path / "program.py").write_text(program)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONDONTWRITEBYTECODE", "FATJIT_JIT_STRESS")}
    # Every .pyc and AST cache file goes under tmp_path, none into the interpreter's own tree.
    env.update(PYTHONPATH=PACKAGE_ROOT, FATJIT="auto",
               PYTHONPYCACHEPREFIX=str(tmp_path / "pycache"))
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

    # An edited source is transformed again (the cache is keyed on the source hash).
    write(tmp_path, "mod_a", MODULE_A.replace("N = 4", "N = 15"))
    third = run(tmp_path, "mod_a", CALLS_A, NAMES_A)
    assert third["results"] == [2 + 18 + 15 * 3 + 4, [1, 15], 30]
    assert third["specialized"] == ["C.method", "f", "g"]
    assert third["stats"]["cache_misses"] == 1


def test_guards_protect_the_imported_specialization(tmp_path):
    write(tmp_path, "mod_a", MODULE_A)
    out = run(tmp_path, "mod_a",
              "[mod_a.f(2), setattr(mod_a, 'N', 10), mod_a.f(2), mod_a.g(1), "
              "setattr(mod_a, 'pair', lambda x, y: 'rebound'), mod_a.g(1)]", NAMES_A)
    assert out["results"] == [36, None, 2 + 18 + 30 + 4, [1, 10], None, "rebound"]


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
    assert RESUME == opcode.opmap["RESUME"]
