// Guard: one assumption a specialization makes, checkable in a few nanoseconds.
//
// Every guard kind is one subclass in its own file (guard_<kind>.{h,cc}). Contract for a kind:
// - Check() never runs Python code, never raises and never leaves an exception set: it may look
//   up exact-str keys in dicts, compare identities, types and version tags, and nothing else.
// - Check() returns kPass only if the assumption holds now. kFail means "not now, maybe later"
//   (a monkeypatched builtin that may be restored); kFailForever means it can never hold again
//   (the function's code was replaced, a watched object died, a type version moved on).
// - A guard that watches dicts exposes its VersionWatch cells through watches(): GuardSet
//   compares their tags first and calls Check() only on a mismatch, so Check() must re-arm a
//   cell (store the current tag) exactly when it verified that everything the cell covers holds.
//
// To add a kind: add it to FATJIT_GUARD_KINDS, write guards/guard_<kind>.{h,cc}, wrap it as a
// Python type in ext/guard_objects.cc, and add its invalidation test.
#ifndef FATJIT_GUARDS_GUARD_H_
#define FATJIT_GUARDS_GUARD_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "base/python.h"
#include "dictversion/dict_version.h"

namespace fatjit {

// X(enum, name, what it assumes)
#define FATJIT_GUARD_KINDS(X)                                                       \
  X(kDict, "dict", "watched keys of a dict are bound to the same objects")         \
  X(kGlobals, "globals", "watched globals of the function are the same objects")   \
  X(kBuiltins, "builtins", "watched builtins are the same and not shadowed")       \
  X(kFunc, "func", "the function's __code__ is the same code object")              \
  X(kArgType, "arg_type", "an argument has one of the expected exact types")       \
  X(kType, "type", "a type's attributes did not change (type version)")

enum class GuardKind : uint8_t {
#define FATJIT_GUARD_KIND_ENUM(e, name, doc) e,
  FATJIT_GUARD_KINDS(FATJIT_GUARD_KIND_ENUM)
#undef FATJIT_GUARD_KIND_ENUM
};
inline constexpr int kNumGuardKinds = 6;
const char* GuardKindName(GuardKind kind);

// Values match FAT Python's guard protocol: guard(...) -> 0, 1 or 2.
enum class GuardResult : int { kPass = 0, kFail = 1, kFailForever = 2 };

// The arguments of the call being dispatched, bound to parameters: the frame's localsplus
// (positional and keyword parameters, then *args, then **kwargs, as CPython lays them out).
struct CallArgs {
  PyObject* const* params = nullptr;
  int nparams = 0;
};

// A dict a guard watches, and the version it saw last time everything held.
struct VersionWatch {
  PyObject* dict = nullptr;  // borrowed: the owning guard holds the reference
  DictVersion::Tag expected = 0;
};

class Guard {
 public:
  explicit Guard(GuardKind kind) : kind_(kind) {}
  virtual ~Guard() = default;
  Guard(const Guard&) = delete;
  Guard& operator=(const Guard&) = delete;

  GuardKind kind() const { return kind_; }

  // The full check (see the contract above).
  virtual GuardResult Check(const CallArgs& args) = 0;

  // Dict version cells for GuardSet's fast path; empty for guards that watch no dict.
  // The cells live inside the guard and stay at the same address for the guard's lifetime.
  virtual absl::Span<VersionWatch* const> watches() { return {}; }

  // Binds a guard that refers to "the function's" state (its globals, builtins, parameters) to
  // `func`. Guards that need no binding accept any function. Binding twice to functions that
  // differ in what the guard reads fails with FailedPrecondition.
  virtual absl::Status Bind(PyFunctionObject* func) { return absl::OkStatus(); }
  virtual bool bound() const { return true; }

  // Relative cost of Check(), to order a GuardSet cheapest first.
  virtual int cost() const { return 1; }

  // Visits every Python object the guard owns (for the GC), and drops them (tp_clear).
  virtual int Traverse(visitproc visit, void* arg) = 0;
  virtual void Clear() = 0;

  // One line for explain() and repr().
  virtual std::string Describe() const = 0;

 private:
  GuardKind kind_;
};

}  // namespace fatjit

#endif  // FATJIT_GUARDS_GUARD_H_
