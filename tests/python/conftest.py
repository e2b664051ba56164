"""Shared fixtures: every test starts and ends with no specialization of its own alive.

- `spec` wraps fatjit.specialize and remembers the function, so teardown can unspecialize it
  even when the test failed half-way.
- builtins are snapshotted and restored, so a test that monkeypatches `len` cannot leak it.
- teardown asserts stats()['specializations'] and the hook state are back where they were:
  a test that leaks a specialization fails, whatever it asserted itself.

FATJIT_JIT_STRESS=1 runs the whole suite a second time under the JIT's stress setting: automatic
mode on from pytest_configure with both thresholds 0, so every Python function of the process
(pytest's, hypothesis', the stdlib's, the tests') is specialized and compiled at its first call,
and kept on: a test that turns it off (enable/disable tests) finds it on again at the next test.
Tests whose subject is automatic mode's own bookkeeping, which the process-wide mode perturbs,
carry @pytest.mark.no_jit_stress(reason) and are skipped in that setting with the reason.

Tests define the functions they specialize with support.new_module(source): a fresh module, so
shadowing a builtin or rebinding a global never touches this package's own globals.
"""

import builtins
import gc
import os
import sys

import pytest

import fatjit
from support import new_module


JIT_STRESS = os.environ.get("FATJIT_JIT_STRESS") == "1"

# The optimizing tier recompiles every compiled function on the background thread, which would
# make counters (compiles, code bytes) and the set of live native code move under the tests'
# feet. Off for this process (read at the first compile); test_jit_tier_up.py runs it in child
# processes, and tests/python/test_*.py pass under FATJIT_JIT_OPT=1 (the tier's codegen) too.
os.environ.setdefault("FATJIT_JIT_TIER_UP", "0")
# Compiled in the caller at the first call, not on the background thread: the first call runs
# native code too.
STRESS_THRESHOLDS = {"specialize_threshold": 0, "jit_threshold": 0, "jit_background": False}


def stress_mode_on():
    """Automatic mode with the stress thresholds, (re)enabled unless it already is exactly that."""
    stats = fatjit.stats()
    if not (stats["auto_mode"] and stats["specialize_threshold"] == 0
            and stats["jit"]["threshold"] == 0 and not stats["jit"]["background"]):
        fatjit.enable(**STRESS_THRESHOLDS)


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "no_jit_stress(reason): skipped under FATJIT_JIT_STRESS=1, where automatic mode compiles "
        "every function of the process; the reason says what that setting perturbs")
    if JIT_STRESS:
        stress_mode_on()


def pytest_runtest_setup(item):
    if JIT_STRESS:
        marker = item.get_closest_marker("no_jit_stress")
        if marker is not None:
            reason = marker.args[0] if marker.args else marker.kwargs.get("reason", "")
            pytest.skip(f"no_jit_stress: {reason}")


# JIT counters over the whole stress run (a test of reset_stats() zeroes them half-way).
_STRESS_TOTALS = {"compiled": 0, "native_calls": 0, "raises": 0}
_STRESS_LAST = dict(_STRESS_TOTALS)


def _accumulate_jit_totals():
    jit = fatjit.stats()["jit"]
    for key in _STRESS_TOTALS:
        now = jit[key]
        _STRESS_TOTALS[key] += now - _STRESS_LAST[key] if now >= _STRESS_LAST[key] else now
        _STRESS_LAST[key] = now


def pytest_terminal_summary(terminalreporter):
    if JIT_STRESS:
        _accumulate_jit_totals()
        terminalreporter.write_line(
            f"JIT stress: {_STRESS_TOTALS['compiled']} functions compiled, "
            f"{_STRESS_TOTALS['native_calls']} native calls, {_STRESS_TOTALS['raises']} errors "
            f"handed to the interpreter")


@pytest.hookimpl(trylast=True)  # after the fixtures' teardown, which may also disable it
def pytest_runtest_teardown(item, nextitem):
    if JIT_STRESS:
        _accumulate_jit_totals()
        stress_mode_on()  # a test of enable/disable may have turned it off or changed it


def pytest_collection_finish(session):
    """Everything imported so far (pytest, hypothesis, the test modules) lives for the whole
    session: freeze it out of the collector, so the full collection each teardown runs is cheap."""
    gc.collect()
    gc.freeze()


@pytest.fixture(autouse=True)
def restore_builtins():
    """Puts back every builtin a test rebinds, adds or deletes."""
    saved = dict(vars(builtins))
    yield
    current = vars(builtins)
    for name in set(current) - set(saved):
        del current[name]
    for name, value in saved.items():
        if current.get(name, object()) is not value:
            current[name] = value


@pytest.fixture(autouse=True)
def no_leaked_specializations(restore_builtins):
    """Fails the test if it leaves a specialization (or the dispatcher hook) behind."""
    before = fatjit.stats()
    trace, profile = sys.gettrace(), sys.getprofile()
    yield
    sys.settrace(trace)
    sys.setprofile(profile)
    gc.collect()
    after = fatjit.stats()
    if JIT_STRESS:
        # Automatic mode creates and drops specializations of every function the process runs
        # (and keeps the hook installed), so neither count says anything about the test.
        return
    assert after["specializations"] == before["specializations"], (
        "the test leaked specializations"
    )
    assert after["hook_installed"] == before["hook_installed"]


@pytest.fixture
def jit(no_leaked_specializations):
    """jit(source, *names) -> (compiled module, plain module): `names` compiled on first call
    (for a class, the methods listed in its __jit__); unspecialized after the test."""
    compiled = []

    def make(source, *names, **preset):
        plain = new_module(source, **preset)
        native = new_module(source, **preset)
        for name in names:
            func = getattr(native, name)
            if isinstance(func, type):  # a class: compile the methods named in __jit__
                for method in func.__jit__:
                    fatjit.jit(getattr(func, method))
                    compiled.append(getattr(func, method))
            else:
                fatjit.jit(func)
                compiled.append(func)
        return native, plain

    yield make
    for func in compiled:
        fatjit.unspecialize(func)


@pytest.fixture
def spec(no_leaked_specializations):
    """spec(func, code, guards): fatjit.specialize, undone at teardown (before the leak check)."""
    specialized = []

    def specialize(func, code, guards):
        specialized.append(func)
        return fatjit.specialize(func, code, guards)

    yield specialize
    for func in specialized:
        fatjit.unspecialize(func)
