// WatchedKeys: the objects some str keys of one dict were bound to, and a version cell.
//
// Assumes: keys are exact str objects. Lookups never run Python code: a dict with only str keys
// compares str objects; in a dict with other keys, a key that might compare equal through its
// own __eq__ makes the answer "unknown", which fails the check (DictVersion's note explains why
// a tag mismatch alone proves nothing, hence the re-lookups).
// Produces: StillSame(), true iff every key is bound to the very object it was bound to at
// Snapshot() time, or is still absent if it was absent. Sound because the snapshot holds strong
// references to the values, so an identity match cannot be an address reused by a new object.
// The cell is re-armed only after StillSame() succeeded, so a matching tag implies the values.
#ifndef FATJIT_GUARDS_WATCHED_KEYS_H_
#define FATJIT_GUARDS_WATCHED_KEYS_H_

#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "base/python.h"
#include "base/ref.h"
#include "guards/guard.h"

namespace fatjit {

class WatchedKeys {
 public:
  WatchedKeys() = default;

  // Records what each key of `dict` is bound to now. InvalidArgument if `dict` is not a dict or
  // a key is not an exact str.
  static absl::StatusOr<WatchedKeys> Snapshot(PyObject* dict, absl::Span<PyObject* const> keys);
  // Expects every key to be absent from `dict`, whatever it holds now. The cell starts disarmed
  // (tag 0 is never a dict's version), so the first check verifies absence.
  static absl::StatusOr<WatchedKeys> ExpectAbsent(PyObject* dict,
                                                  absl::Span<PyObject* const> keys);

  // Fast path: the dict has not changed since everything was last verified.
  bool Unchanged() const { return !DictVersion::Changed(watch_.dict, watch_.expected); }
  // Slow path: look every key up again; re-arms the cell if all are the same objects.
  bool Revalidate();

  PyObject* dict() const { return dict_.obj(); }
  const std::vector<Ref<>>& keys() const { return keys_; }
  // The value seen for keys()[i], or null if the key was absent.
  PyObject* seen_value(size_t i) const { return values_[i].obj(); }
  VersionWatch* watch() { return &watch_; }

  int Traverse(visitproc visit, void* arg) const;
  void Clear();

 private:
  Ref<> dict_;
  std::vector<Ref<>> keys_;
  std::vector<Py_hash_t> hashes_;
  std::vector<Ref<>> values_;
  VersionWatch watch_;
};

}  // namespace fatjit

#endif  // FATJIT_GUARDS_WATCHED_KEYS_H_
