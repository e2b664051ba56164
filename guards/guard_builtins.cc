// GuardBuiltins: see guard_builtins.h for the soundness argument.
#include "guards/guard_builtins.h"

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"

namespace fatjit {

absl::StatusOr<std::unique_ptr<GuardBuiltins>> GuardBuiltins::Create(
    absl::Span<PyObject* const> names) {
  std::unique_ptr<GuardBuiltins> guard(new GuardBuiltins());
  for (PyObject* name : names) {
    if (!PyUnicode_CheckExact(name)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "GuardBuiltins: names must be str, got %s", Py_TYPE(name)->tp_name));
    }
    guard->names_.push_back(Ref<>::Create(name));
  }
  return guard;
}

absl::Status GuardBuiltins::Bind(PyFunctionObject* func) {
  PyObject* builtins = func->func_builtins;
  PyObject* globals = func->func_globals;
  if (builtins_.dict() != nullptr) {
    if (builtins_.dict() == builtins && not_in_globals_.dict() == globals) {
      return absl::OkStatus();
    }
    return absl::FailedPreconditionError(
        "GuardBuiltins is already bound to another module's globals and builtins; create one "
        "guard per function");
  }
  // LOAD_GLOBAL reads through PyObject_GetItem unless both are exact dicts: a mapping or a dict
  // subclass can compute lookups (__getitem__, __missing__) that no version tag covers.
  if (!PyDict_CheckExact(globals) || !PyDict_CheckExact(builtins)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "GuardBuiltins: %s() has %s globals and %s builtins; only plain dicts can be watched "
        "(a mapping or dict subclass can compute its lookups)",
        PyUnicode_AsUTF8(func->func_qualname), Py_TYPE(globals)->tp_name,
        Py_TYPE(builtins)->tp_name));
  }
  std::vector<PyObject*> raw;
  for (const Ref<>& name : names_) {
    int present = PyDict_Contains(builtins, name.obj());
    if (present < 0) PyErr_Clear();
    if (present != 1) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "GuardBuiltins: %s is not a builtin", PyUnicode_AsUTF8(name.obj())));
    }
    raw.push_back(name.obj());
  }
  FATJIT_ASSIGN_OR_RETURN(builtins_, WatchedKeys::Snapshot(builtins, raw));
  FATJIT_ASSIGN_OR_RETURN(not_in_globals_, WatchedKeys::ExpectAbsent(globals, raw));
  return absl::OkStatus();
}

GuardResult GuardBuiltins::Check(const CallArgs&) {
  if (builtins_.dict() == nullptr) return GuardResult::kFail;  // unbound or cleared
  if (!builtins_.Unchanged() && !builtins_.Revalidate()) return GuardResult::kFail;
  if (!not_in_globals_.Unchanged() && !not_in_globals_.Revalidate()) return GuardResult::kFail;
  return GuardResult::kPass;
}

absl::Span<VersionWatch* const> GuardBuiltins::watches() {
  if (builtins_.dict() == nullptr) return {};
  watch_cells_ = {builtins_.watch(), not_in_globals_.watch()};
  return absl::Span<VersionWatch* const>(watch_cells_.data(), watch_cells_.size());
}

int GuardBuiltins::Traverse(visitproc visit, void* arg) {
  if (int r = builtins_.Traverse(visit, arg)) return r;
  return not_in_globals_.Traverse(visit, arg);
}

void GuardBuiltins::Clear() {
  builtins_.Clear();
  not_in_globals_.Clear();
}

std::string GuardBuiltins::Describe() const {
  return absl::StrFormat(
      "GuardBuiltins(%s)%s",
      absl::StrJoin(names_, ", ",
                    [](std::string* out, const Ref<>& n) { out->append(PyUnicode_AsUTF8(n.obj())); }),
      builtins_.dict() ? "" : " [unbound]");
}

}  // namespace fatjit
