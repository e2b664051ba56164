// GuardType: see guard_type_version.h for the soundness argument.
#include "guards/guard_type_version.h"

#include "absl/strings/str_format.h"
#include "base/cpython_compat.h"

namespace fatjit {

absl::StatusOr<std::unique_ptr<GuardTypeVersion>> GuardTypeVersion::Create(PyObject* tp) {
  if (tp == nullptr || !PyType_Check(tp)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "GuardType: expected a type, got %s", tp ? Py_TYPE(tp)->tp_name : "NULL"));
  }
  auto* type = reinterpret_cast<PyTypeObject*>(tp);
  uint32_t version = compat::EnsureTypeVersion(type);
  if (version == 0) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "GuardType: type %s cannot be given a version tag", type->tp_name));
  }
  std::unique_ptr<GuardTypeVersion> guard(new GuardTypeVersion());
  guard->type_ = Ref<>::Create(tp);
  guard->version_ = version;
  return guard;
}

GuardResult GuardTypeVersion::Check(const CallArgs&) {
  if (!type_) return GuardResult::kFailForever;
  auto* type = reinterpret_cast<PyTypeObject*>(type_.obj());
  if (compat::TypeHasValidVersion(type) && type->tp_version_tag == version_) {
    return GuardResult::kPass;
  }
  return GuardResult::kFailForever;
}

int GuardTypeVersion::Traverse(visitproc visit, void* arg) {
  Py_VISIT(type_.obj());
  return 0;
}

void GuardTypeVersion::Clear() { type_.Reset(); }

std::string GuardTypeVersion::Describe() const {
  if (!type_) return "GuardType(<cleared>)";
  return absl::StrFormat("GuardType(%s, version=%u)",
                         reinterpret_cast<PyTypeObject*>(type_.obj())->tp_name, version_);
}

}  // namespace fatjit
