// What the passes share: looking a name up in a dict without running Python code (saying when
// the answer cannot be known: a non-str key that might compare equal), and describing a value
// for explain() without calling its __repr__.
#ifndef FATJIT_SPECIALIZER_PASSES_LOOKUP_H_
#define FATJIT_SPECIALIZER_PASSES_LOOKUP_H_

#include <string>

#include "absl/strings/str_cat.h"
#include "base/python.h"
#include "guards/watched_keys.h"

namespace fatjit::specializer {

struct Found {
  bool known = false;        // false: cannot tell without running code; do not rewrite
  PyObject* value = nullptr;  // borrowed; null if absent
};

// `name` (an exact str) in the exact dict `dict`, as WatchedKeys (and so the guard) sees it.
inline Found LookUpName(PyObject* dict, PyObject* name) {
  PyObject* keys[] = {name};
  absl::StatusOr<WatchedKeys> watched = WatchedKeys::Snapshot(dict, keys);
  if (!watched.ok()) return {};
  return {true, watched->seen_value(0)};
}

// A short description of `value` that runs no user code: repr() of small builtin scalars, the
// name of modules, functions and classes, else "<TypeName object>".
std::string DescribeValue(PyObject* value);

}  // namespace fatjit::specializer

#endif  // FATJIT_SPECIALIZER_PASSES_LOOKUP_H_
