// GuardBuiltins: watched builtins are the objects they were, and no global shadows them.
//
// Assumes: the specialization replaced a LOAD_GLOBAL of each name with the builtin it found,
// which is only right while (a) the function's globals do not define the name and (b) its
// builtins dict binds the name to the same object. The function's builtins dict itself cannot
// change (func_builtins is fixed when a function is created on 3.11). Produces: kPass iff (a)
// and (b) hold; kFail otherwise, and kPass again once the builtin is restored or the shadowing
// global deleted (monkeypatching in tests must not disable specialization for good). Sound by
// WatchedKeys on both dicts; the two version cells are the fast path.
#ifndef FATJIT_GUARDS_GUARD_BUILTINS_H_
#define FATJIT_GUARDS_GUARD_BUILTINS_H_

#include <array>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "guards/guard.h"
#include "guards/watched_keys.h"

namespace fatjit {

class GuardBuiltins : public Guard {
 public:
  // GuardBuiltins(*names). Unbound until Bind(): it needs a function's globals and builtins.
  static absl::StatusOr<std::unique_ptr<GuardBuiltins>> Create(absl::Span<PyObject* const> names);

  GuardResult Check(const CallArgs& args) override;
  absl::Span<VersionWatch* const> watches() override;
  // InvalidArgument if a name is not in the function's builtins or its globals or builtins are
  // not plain dicts; FailedPrecondition if the guard is already bound to another
  // globals/builtins pair.
  absl::Status Bind(PyFunctionObject* func) override;
  bool bound() const override { return builtins_.dict() != nullptr; }
  int cost() const override { return 2; }
  int Traverse(visitproc visit, void* arg) override;
  void Clear() override;
  std::string Describe() const override;

  const std::vector<Ref<>>& names() const { return names_; }
  PyObject* builtins() const { return builtins_.dict(); }
  PyObject* globals() const { return not_in_globals_.dict(); }

 private:
  GuardBuiltins() : Guard(GuardKind::kBuiltins) {}
  std::vector<Ref<>> names_;
  WatchedKeys builtins_;
  WatchedKeys not_in_globals_;
  std::array<VersionWatch*, 2> watch_cells_{};  // builtins_, not_in_globals_ cells once bound
};

}  // namespace fatjit

#endif  // FATJIT_GUARDS_GUARD_BUILTINS_H_
