// DictVersion: "has this dict changed since?" in one load and compare.
//
// Assumes: CPython 3.11, where every dict carries ma_version_tag (PEP 509), drawn from one
// process-wide counter, so a tag is unique across dicts and changes on every mutation except
// re-setting a key to the very same object and no-op operations (clear of an empty dict...).
// Produces: a Tag to remember and a Changed() test. Sound because equal tags mean no mutation
// happened in between; the converse does not hold (a tag may change while the watched values did
// not), so users re-validate on a mismatch (see guards/guard_dict_keys.h).
//
// Backend point: 3.12 removed the tag from the public struct and added dict watchers. A watcher
// backend keeps a per-dict counter bumped by the watcher callback and implements the same three
// functions; nothing above this layer reads ma_version_tag directly.
#ifndef FATJIT_DICTVERSION_DICT_VERSION_H_
#define FATJIT_DICTVERSION_DICT_VERSION_H_

#include <cstdint>

#include "absl/status/status.h"
#include "base/cpython_compat.h"
#include "base/python.h"

namespace fatjit {

class DictVersion {
 public:
  using Tag = uint64_t;

  // The current version of `dict` (must be a dict or a dict subclass instance).
  static Tag Of(const PyObject* dict) { return compat::DictVersionTag(dict); }

  // True if `dict` may have been mutated since `seen` was read.
  static bool Changed(const PyObject* dict, Tag seen) { return Of(dict) != seen; }

  // Prepares `dict` to be watched. Always succeeds on 3.11 (every dict is versioned); a watcher
  // backend registers its callback here. Fails with InvalidArgument for a non-dict.
  static absl::Status Watch(PyObject* dict);

  // Name of the active backend, for stats and explain().
  static const char* BackendName();
};

}  // namespace fatjit

#endif  // FATJIT_DICTVERSION_DICT_VERSION_H_
