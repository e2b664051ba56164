"""Start-up: what FATJIT=auto and python -m fatjit load, and that FATJIT unset loads nothing.

Each test starts child interpreters that find the build tree (build/python: fatjit and the build
tree's sitecustomize.py) as an installed fatjit would be found, and compares the modules they
hold once start-up is over. FATJIT=auto adds one module to start-up, the start-up counter
_fatjit_boot (ext/boot.c); fatjit itself loads when a function gets hot or the program first
uses its API (test_boot.py has those). python -m fatjit adds the same counter and the package's
`__init__`, which loads the API (fatjit._api and its extension) at its first use. Everything
else fatjit has (the report, the AST specializer, the pure-Python helpers) and the stdlib
modules they pull in load at their first use. The comparison is with the same interpreter started without FATJIT, so whatever the
machine's own site-packages loads at start-up cancels out. No timings here (scripts/
startup_cost.py measures them); a test fails when a module comes back into start-up.
"""

import json
import pathlib
import subprocess
import sys

import fatjit
from support import child_env as env

REPO = pathlib.Path(__file__).resolve().parents[2]

# What FATJIT=auto may add to an interpreter's start-up: nothing else. atexit (built into the
# interpreter; fatjit registers its exit handler there) is usually loaded already by site.
AUTO_MODULES = {"_fatjit_boot"}
BUILT_IN_MODULES = {"atexit"}
# Loaded at their first use, never at start-up: a regression that imports one of them again (or
# anything else) fails test_automatic_mode_loads_only_what_the_hook_needs; listed here so that
# the failure names it.
LAZY_MODULES = [
    "fatjit._report",  # FATJIT_STATS=1's table
    "fatjit._ast",  # the AST specializer (FATJIT_AST=1, specialize(source=True))
    "fatjit.__main__",
    "types", "inspect", "re", "ast", "dis", "dataclasses", "importlib.util", "threading",
    "weakref", "json", "textwrap", "functools", "collections",
]

# The module names are taken before json is imported: under FATJIT=auto, importing json (re,
# enum, ...) is counted by the start-up counter, and on a loaded machine its time (loop time
# counts as calls, wall clock, callees included) can make importlib's functions hot, which loads
# fatjit: what the program does after start-up, not what start-up loads.
# FATJIT=auto with thresholds no start-up reaches: site's lookups after the counter started (the
# sitecustomize it shadows, usercustomize) are counted too, and on a loaded machine their
# wall-clock time (loop time counts as calls, 10 us per call) could reach the default threshold
# and load fatjit during start-up. What start-up loads is the question here, not when functions
# get hot (test_boot.py).
NOTHING_GETS_HOT = {"FATJIT": "auto", "FATJIT_SPECIALIZE_THRESHOLD": str(2**31 - 1),
                    "FATJIT_JIT_THRESHOLD": "off"}
PRINT_MODULES = "import sys; names = sorted(sys.modules); import json; print(json.dumps(names))"


def run(args, cwd=None, **changes):
    out = subprocess.run([sys.executable, *args], capture_output=True, text=True,
                         env=env(**changes), cwd=cwd, timeout=60)
    assert out.returncode == 0, out.stderr
    return out


def modules_after_start_up(args, **changes):
    """The modules a child holds when its program starts."""
    return set(json.loads(run(args, **changes).stdout.splitlines()[-1]))


def test_without_FATJIT_nothing_of_fatjit_is_imported():
    out = run(["-c", "import sys; print('fatjit' in sys.modules)"])
    assert out.stdout == "False\n"
    out = run(["-c", "import sys; print(sorted(m for m in sys.modules if 'fatjit' in m))"],
              FATJIT="off")
    assert out.stdout == "[]\n"


def test_FATJIT_auto_counts_from_start_up_and_importing_fatjit_finds_automatic_mode_on():
    probe = ("import sys, _fatjit_boot; loaded = 'fatjit' in sys.modules; "
             "counting = _fatjit_boot.status()['counting']; import fatjit; "
             "print(loaded, counting, fatjit.is_enabled(), fatjit.stats()['hook_installed'], "
             "_fatjit_boot.status()['counting'])")
    out = run(["-c", probe], **NOTHING_GETS_HOT)
    assert out.stdout == "False True True True False\n"
    assert out.stderr == ""


def test_automatic_mode_loads_only_what_the_hook_needs():
    plain = modules_after_start_up(["-c", PRINT_MODULES])
    auto = modules_after_start_up(["-c", PRINT_MODULES], **NOTHING_GETS_HOT)
    added = auto - plain
    assert [name for name in LAZY_MODULES if name in added] == []
    assert added - BUILT_IN_MODULES == AUTO_MODULES


def test_the_installed_pth_line_loads_only_what_the_hook_needs(tmp_path):
    # -S: no site at start-up (so no build-tree sitecustomize); the probe runs site on a
    # directory holding the .pth file pip installs, as the interpreter does with site-packages.
    site_dir = tmp_path / "site"
    site_dir.mkdir()
    pth_line = (REPO / "ext" / "fatjit_autoload.pth").read_text()
    (site_dir / "fatjit_autoload.pth").write_text(pth_line)
    probe = f"import site, sys; site.addsitedir(sys.argv[1]); {PRINT_MODULES}"
    plain = modules_after_start_up(["-S", "-c", probe, str(site_dir)])
    auto = modules_after_start_up(["-S", "-c", probe, str(site_dir)], **NOTHING_GETS_HOT)
    added = auto - plain
    assert [name for name in LAZY_MODULES if name in added] == []
    assert added - BUILT_IN_MODULES == AUTO_MODULES


def test_python_m_fatjit_loads_only_what_the_hook_needs(tmp_path):
    (tmp_path / "probe.py").write_text(PRINT_MODULES + "\n")
    # The same program run by python -m, so that runpy's own imports cancel out.
    plain = modules_after_start_up(["-m", "probe"], cwd=tmp_path)
    under_fatjit = modules_after_start_up(["-m", "fatjit", "-m", "probe"], cwd=tmp_path)
    added = under_fatjit - plain
    assert [name for name in LAZY_MODULES if name in added] == []
    assert added - BUILT_IN_MODULES == {"fatjit", "_fatjit_boot"}


