"""The AST specializer's counters: fatjit._ast.stats() (documented in README.md).

Every module the import hook sees and every function either source path tries ends in exactly
one counted outcome, by reason, so nothing is skipped silently.
"""

import threading

_LOCK = threading.Lock()
_COUNTS = {}


def count(key, reason=None, amount=1):
    with _LOCK:
        if reason is None:
            _COUNTS[key] = _COUNTS.get(key, 0) + amount
        else:
            table = _COUNTS.setdefault(key, {})
            table[reason] = table.get(reason, 0) + amount


def add_time(key, seconds):
    with _LOCK:
        _COUNTS[key] = _COUNTS.get(key, 0.0) + seconds


def stats():
    """A copy of the counters: modules_* (import hook), cache_*, functions_deferred (import
    hook: registered at the function's first call), functions_specialized,
    functions_refused (by reason), rewrites_by_pass, transform_time_s, register_time_s."""
    with _LOCK:
        return {k: dict(v) if isinstance(v, dict) else v for k, v in _COUNTS.items()}


def reset():
    with _LOCK:
        _COUNTS.clear()
