// WatchedKeys: snapshot and re-validation of str keys in one dict.
#include "guards/watched_keys.h"

#include "absl/strings/str_format.h"
#include "base/cpython_compat.h"

namespace fatjit {
namespace {

// The result of looking a key up without running any Python code.
struct Lookup {
  PyObject* value;  // borrowed; null if absent
  bool known;       // false: a non-str key of equal hash might compare equal; cannot tell
};

// Looks `key` (an exact str of hash `hash`) up in `dict` without running Python code. With only
// str keys in the dict, the dict's own lookup compares str objects only. Otherwise scan: an
// exact-str key is compared as str; any other key of equal hash could be equal through its
// __eq__, which we must not call, so the answer is "unknown" and the caller fails the guard.
Lookup LookUp(PyObject* dict, PyObject* key, Py_hash_t hash) {
  if (compat::DictHasOnlyStrKeys(dict)) {
    PyObject* value = _PyDict_GetItem_KnownHash(dict, key, hash);
    if (value == nullptr && PyErr_Occurred()) {  // cannot happen for str keys; be safe
      PyErr_Clear();
      return {nullptr, false};
    }
    return {value, true};
  }
  Py_ssize_t pos = 0;
  PyObject *k, *v;
  Py_hash_t h;
  while (_PyDict_Next(dict, &pos, &k, &v, &h)) {
    if (h != hash) continue;
    if (k == key) return {v, true};
    if (!PyUnicode_CheckExact(k)) return {nullptr, false};
    if (PyUnicode_Compare(k, key) == 0) return {v, true};
  }
  return {nullptr, true};
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
    Lookup found = LookUp(dict, key, hash);
    if (!found.known) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "cannot watch key '%s': the dict has a non-str key that may compare equal to it",
          PyUnicode_AsUTF8(key)));
    }
    watched.values_.push_back(Ref<>::Create(found.value));
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
    Lookup found = LookUp(dict_.obj(), keys_[i].obj(), hashes_[i]);
    if (!found.known || found.value != values_[i].obj()) return false;
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
