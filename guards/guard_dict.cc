// GuardDict / GuardGlobals: see guard_dict.h for the soundness argument.
#include "guards/guard_dict.h"

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"

namespace fatjit {
namespace {

absl::Status CheckNames(absl::Span<PyObject* const> names, const char* guard) {
  for (PyObject* name : names) {
    if (!PyUnicode_CheckExact(name)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: keys must be str, got %s", guard, Py_TYPE(name)->tp_name));
    }
  }
  return absl::OkStatus();
}

std::string JoinNames(const std::vector<Ref<>>& names) {
  return absl::StrJoin(names, ", ", [](std::string* out, const Ref<>& name) {
    out->append(PyUnicode_AsUTF8(name.obj()));
  });
}

}  // namespace

absl::StatusOr<std::unique_ptr<GuardDict>> GuardDict::Create(PyObject* dict,
                                                            absl::Span<PyObject* const> keys) {
  FATJIT_RETURN_IF_ERROR(CheckNames(keys, "GuardDict"));
  std::unique_ptr<GuardDict> guard(new GuardDict(GuardKind::kDict));
  FATJIT_ASSIGN_OR_RETURN(guard->keys_, WatchedKeys::Snapshot(dict, keys));
  for (PyObject* key : keys) guard->names_.push_back(Ref<>::Create(key));
  return guard;
}

absl::StatusOr<std::unique_ptr<GuardDict>> GuardDict::CreateForGlobals(
    absl::Span<PyObject* const> names) {
  FATJIT_RETURN_IF_ERROR(CheckNames(names, "GuardGlobals"));
  std::unique_ptr<GuardDict> guard(new GuardDict(GuardKind::kGlobals));
  for (PyObject* name : names) guard->names_.push_back(Ref<>::Create(name));
  return guard;
}

absl::Status GuardDict::Bind(PyFunctionObject* func) {
  if (kind() != GuardKind::kGlobals) return absl::OkStatus();
  if (keys_.dict() != nullptr) {
    if (keys_.dict() == func->func_globals) return absl::OkStatus();
    return absl::FailedPreconditionError(
        "GuardGlobals is already bound to the globals of another module; create one guard "
        "per function");
  }
  // A dict subclass can compute lookups (__getitem__, __missing__) that no version tag covers.
  if (!PyDict_CheckExact(func->func_globals)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "GuardGlobals: %s() has %s globals; only a plain dict can be watched (a dict subclass "
        "can compute its lookups)",
        PyUnicode_AsUTF8(func->func_qualname), Py_TYPE(func->func_globals)->tp_name));
  }
  std::vector<PyObject*> raw;
  for (const Ref<>& name : names_) raw.push_back(name.obj());
  FATJIT_ASSIGN_OR_RETURN(keys_, WatchedKeys::Snapshot(func->func_globals, raw));
  return absl::OkStatus();
}

GuardResult GuardDict::Check(const CallArgs&) {
  if (keys_.dict() == nullptr) return GuardResult::kFail;  // unbound or cleared
  if (keys_.Unchanged() || keys_.Revalidate()) return GuardResult::kPass;
  return GuardResult::kFail;
}

absl::Span<VersionWatch* const> GuardDict::watches() {
  if (keys_.dict() == nullptr) return {};
  watch_cell_ = keys_.watch();
  return absl::Span<VersionWatch* const>(&watch_cell_, 1);
}

int GuardDict::Traverse(visitproc visit, void* arg) { return keys_.Traverse(visit, arg); }
void GuardDict::Clear() { keys_.Clear(); }

std::string GuardDict::Describe() const {
  if (kind() == GuardKind::kGlobals) {
    return absl::StrFormat("GuardGlobals(%s)%s", JoinNames(names_),
                           keys_.dict() ? "" : " [unbound]");
  }
  return absl::StrFormat("GuardDict(<dict at %p>, %s)", static_cast<void*>(keys_.dict()),
                         JoinNames(names_));
}

}  // namespace fatjit
