"""The AST specializer's options: validated once, and one stable key for the import cache.

assume             "stable" (guarded rewrites only where entry-stable) or "entry" (FAT Python's)
unroll_iterations  the most iterations unroll_loops writes out (16)
unroll_statements  the most statements it writes out, body size times iterations (128)
disable            pass names not to run
"""

PASS_NAMES = ("simplify_iterables", "fold_constants", "propagate_constants", "unroll_loops",
              "remove_dead_code", "globals_to_constants", "pure_builtin_calls",
              "inline_functions")
DEFAULT_OPTIONS = {"assume": "stable", "unroll_iterations": 16,
                   "unroll_statements": 128, "disable": ()}


def normalize_options(options):
    merged = dict(DEFAULT_OPTIONS)
    merged.update(options or {})
    if merged["assume"] not in ("stable", "entry"):
        raise ValueError(f"assume must be 'stable' or 'entry', not {merged['assume']!r}")
    for key in ("unroll_iterations", "unroll_statements"):
        if type(merged[key]) is not int or merged[key] < 0:
            raise ValueError(f"{key} must be an int >= 0, not {merged[key]!r}")
    unknown = set(merged["disable"]) - set(PASS_NAMES)
    if unknown:
        raise ValueError(f"unknown pass name(s) in disable: {sorted(unknown)}")
    merged["disable"] = tuple(sorted(merged["disable"]))
    unknown = set(merged) - set(DEFAULT_OPTIONS)
    if unknown:
        raise ValueError(f"unknown option(s): {sorted(unknown)}")
    return merged


def options_key(options):
    return repr(sorted(normalize_options(options).items()))
