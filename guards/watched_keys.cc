// WatchedKeys: snapshot and re-validation of str keys in one dict.
#include "guards/watched_keys.h"

#include "absl/strings/str_format.h"

namespace fatjit {
namespace {

// Borrowed value of `key` in `dict`, or null if absent. Never raises: keys are exact str, so
// the lookup compares str objects only (a non-str key of equal hash makes
// _PyDict_GetItem_KnownHash call its __eq__; such a comparison error counts as "absent").
PyObject* LookUp(PyObject* dict, PyObject* key, Py_hash_t hash) {
  PyObject* value = _PyDict_GetItem_KnownHash(dict, key, hash);
  if (value == nullptr && PyErr_Occurred()) PyErr_Clear();
  return value;
}

}  // namespace

absl::StatusOr<WatchedKeys> WatchedKeys::Snapshot(PyObject* dict,
                                                  absl::Span<PyObject* const> keys) {
  if (dict == nullptr || !PyDict_Check(dict)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "expected a dict, got %s", dict ? Py_TYPE(dict)->tp_name : "NULL"));
  }
  WatchedKeys watched;
  watched.dict_ = Ref<>::Create(dict);
  for (PyObject* key : keys) {
    if (!PyUnicode_CheckExact(key)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("watched keys must be str, got %s", Py_TYPE(key)->tp_name));
    }
    Py_hash_t hash = PyObject_Hash(key);
    if (hash == -1) {
      PyErr_Clear();
      return absl::InvalidArgumentError("cannot hash a watched key");
    }
    watched.keys_.push_back(Ref<>::Create(key));
    watched.hashes_.push_back(hash);
    watched.values_.push_back(Ref<>::Create(LookUp(dict, key, hash)));
  }
  watched.watch_ = {dict, DictVersion::Of(dict)};
  return watched;
}

absl::StatusOr<WatchedKeys> WatchedKeys::ExpectAbsent(PyObject* dict,
                                                      absl::Span<PyObject* const> keys) {
  absl::StatusOr<WatchedKeys> watched = Snapshot(dict, keys);
  if (!watched.ok()) return watched;
  for (Ref<>& value : watched->values_) value.Reset();
  watched->watch_.expected = 0;
  return watched;
}

bool WatchedKeys::Revalidate() {
  if (!dict_) return false;
  DictVersion::Tag now = DictVersion::Of(dict_.obj());
  for (size_t i = 0; i < keys_.size(); ++i) {
    if (LookUp(dict_.obj(), keys_[i].obj(), hashes_[i]) != values_[i].obj()) return false;
  }
  // Nothing above ran Python code, so `now` still describes the dict we just verified.
  watch_.expected = now;
  return true;
}

int WatchedKeys::Traverse(visitproc visit, void* arg) const {
  Py_VISIT(dict_.obj());
  for (const Ref<>& v : values_) Py_VISIT(v.obj());
  return 0;
}

void WatchedKeys::Clear() {
  dict_.Reset();
  values_.clear();
  keys_.clear();
  hashes_.clear();
  watch_ = {};
}

}  // namespace fatjit
