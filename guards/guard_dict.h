// GuardDict and GuardGlobals: watched keys of one dict keep their values.
//
// Assumes: the specialization read the watched keys' values (or their absence) and relies on
// nothing else in the dict. Produces: kPass while every watched key is bound to the same object
// as at creation (GuardDict) or at binding (GuardGlobals: the function's globals); kFail while
// one differs, and kPass again once it is restored. Sound by WatchedKeys (identity on held
// references; the version tag is only a fast path).
#ifndef FATJIT_GUARDS_GUARD_DICT_H_
#define FATJIT_GUARDS_GUARD_DICT_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "guards/guard.h"
#include "guards/watched_keys.h"

namespace fatjit {

class GuardDict : public Guard {
 public:
  // GuardDict(d, *keys): watches `keys` of `dict` from now on.
  static absl::StatusOr<std::unique_ptr<GuardDict>> Create(PyObject* dict,
                                                           absl::Span<PyObject* const> keys);
  // GuardGlobals(*names): watches `names` of the globals of the function it gets bound to.
  static absl::StatusOr<std::unique_ptr<GuardDict>> CreateForGlobals(
      absl::Span<PyObject* const> names);

  GuardResult Check(const CallArgs& args) override;
  absl::Span<VersionWatch* const> watches() override;
  absl::Status Bind(PyFunctionObject* func) override;
  bool bound() const override { return keys_.dict() != nullptr; }
  int cost() const override { return 1; }
  int Traverse(visitproc visit, void* arg) override;
  void Clear() override;
  std::string Describe() const override;

  PyObject* dict() const { return keys_.dict(); }
  // The watched keys: the names given, whether or not the guard is bound yet.
  const std::vector<Ref<>>& names() const { return names_; }

 private:
  explicit GuardDict(GuardKind kind) : Guard(kind) {}
  std::vector<Ref<>> names_;
  WatchedKeys keys_;
  VersionWatch* watch_cell_ = nullptr;  // keys_'s cell once bound
};

}  // namespace fatjit

#endif  // FATJIT_GUARDS_GUARD_DICT_H_
