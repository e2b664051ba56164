"""Shared fixtures: every test starts and ends with no specialization of its own alive.

- `spec` wraps fatjit.specialize and remembers the function, so teardown can unspecialize it
  even when the test failed half-way.
- builtins are snapshotted and restored, so a test that monkeypatches `len` cannot leak it.
- teardown asserts stats()['specializations'] and the hook state are back where they were:
  a test that leaks a specialization fails, whatever it asserted itself.

Tests define the functions they specialize with support.new_module(source): a fresh module, so
shadowing a builtin or rebinding a global never touches this package's own globals.
"""

import builtins
import gc
import sys

import pytest

import fatjit


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
    assert after["specializations"] == before["specializations"], (
        "the test leaked specializations"
    )
    assert after["hook_installed"] == before["hook_installed"]


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
