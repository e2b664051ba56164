// GuardFunc: a function's __code__ is still the code object it had.
//
// Assumes: the specialization inlined or relied on the body of `func` as it was at creation.
// Produces: kPass while func.__code__ is that code object; kFailForever once it was replaced or
// either object died (a replaced body might be restored, but FAT Python treated replacement as
// final and so do we: specializations are cheap to make again). Sound because the guard holds
// weak references to both, so an identity match cannot be a reused address; weak rather than
// strong so a guard stored in the code object's own co_extra does not keep it alive.
#ifndef FATJIT_GUARDS_GUARD_FUNC_H_
#define FATJIT_GUARDS_GUARD_FUNC_H_

#include <memory>

#include "absl/status/statusor.h"
#include "base/ref.h"
#include "guards/guard.h"

namespace fatjit {

class GuardFunc : public Guard {
 public:
  // InvalidArgument unless `func` is a Python function.
  static absl::StatusOr<std::unique_ptr<GuardFunc>> Create(PyObject* func);

  GuardResult Check(const CallArgs& args) override;
  int cost() const override { return 1; }
  int Traverse(visitproc visit, void* arg) override;
  void Clear() override;
  std::string Describe() const override;

  // Borrowed; null once dead.
  PyObject* func() const;

 private:
  GuardFunc() : Guard(GuardKind::kFunc) {}
  Ref<> func_ref_;  // weakref to the function
  Ref<> code_ref_;  // weakref to its code object at creation
  bool failed_ = false;  // once it failed, it fails forever, even if the code is put back
};

}  // namespace fatjit

#endif  // FATJIT_GUARDS_GUARD_FUNC_H_
