// GuardArgType: the argument bound to one parameter has one of some exact types.
//
// Assumes: the specialization relies on type(arg) being exactly one of `types` (as FAT Python's
// guard: subclasses do not pass, since they may override what was specialized). Produces: kPass
// iff type(frame parameter `arg_index`) is one of them; kFail otherwise (the next call may pass
// other types). The parameter is read from the frame's bound locals, so it does not matter
// whether the caller passed it by position or by keyword. Sound because the guard holds
// references to the types, so an identity match is a match of the type itself.
#ifndef FATJIT_GUARDS_GUARD_ARG_TYPE_H_
#define FATJIT_GUARDS_GUARD_ARG_TYPE_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "base/ref.h"
#include "guards/guard.h"

namespace fatjit {

class GuardArgType : public Guard {
 public:
  // InvalidArgument for a negative index, an empty type list or a non-type.
  static absl::StatusOr<std::unique_ptr<GuardArgType>> Create(int arg_index,
                                                              absl::Span<PyObject* const> types);

  GuardResult Check(const CallArgs& args) override;
  // The type test alone, for a value resolved by the caller (guard(*args, **kw) from Python).
  GuardResult CheckValue(PyObject* value) const;
  // InvalidArgument if `func` has no parameter `arg_index` (positional, keyword-only, *args or
  // **kwargs, in co_varnames order).
  absl::Status Bind(PyFunctionObject* func) override;
  int cost() const override { return 1; }
  int Traverse(visitproc visit, void* arg) override;
  void Clear() override;
  std::string Describe() const override;

  int arg_index() const { return arg_index_; }
  // The parameter's name once bound (for guard(**kw) from Python), else null.
  PyObject* param_name() const { return param_name_.obj(); }
  const std::vector<Ref<>>& types() const { return types_; }

 private:
  GuardArgType() : Guard(GuardKind::kArgType) {}
  int arg_index_ = 0;
  Ref<> param_name_;
  std::vector<Ref<>> types_;
};

}  // namespace fatjit

#endif  // FATJIT_GUARDS_GUARD_ARG_TYPE_H_
