// GuardType: a type's attributes did not change since the guard was made (its version tag).
//
// Assumes: the specialization relied on attributes found on `tp` or its bases (a method, a class
// constant). CPython 3.11 invalidates tp_version_tag of a type and all its subclasses whenever an
// attribute of it or of a base is set or deleted, and never gives an old tag back. Produces:
// kPass while the type has a valid tag equal to the one seen at creation; kFailForever after.
// Sound because the guard holds a reference to the type (no reused address), and tags are
// never reused by the same process (3.11's counter only grows).
#ifndef FATJIT_GUARDS_GUARD_TYPE_VERSION_H_
#define FATJIT_GUARDS_GUARD_TYPE_VERSION_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "base/ref.h"
#include "guards/guard.h"

namespace fatjit {

class GuardTypeVersion : public Guard {
 public:
  // InvalidArgument for a non-type; FailedPrecondition if the type cannot get a version tag.
  static absl::StatusOr<std::unique_ptr<GuardTypeVersion>> Create(PyObject* tp);

  GuardResult Check(const CallArgs& args) override;
  int cost() const override { return 1; }
  int Traverse(visitproc visit, void* arg) override;
  void Clear() override;
  std::string Describe() const override;

  PyObject* type() const { return type_.obj(); }
  uint32_t version() const { return version_; }

 private:
  GuardTypeVersion() : Guard(GuardKind::kType) {}
  Ref<> type_;
  uint32_t version_ = 0;
};

}  // namespace fatjit

#endif  // FATJIT_GUARDS_GUARD_TYPE_VERSION_H_
