// SpecializationBuilder: the workspace the specializer passes share for one function.
//
// Holds the function's code being rewritten (a BytecodeRewriter with every rewrite proposed so
// far applied), the assumptions rewrites make (a global, a builtin or a dict key bound to the
// object seen), and the table of rewrites. A pass reads instructions(), decides, and calls
// Propose() with the slot edits of one rewrite and the assumptions it relies on.
//
// Contract for a pass (see passes/passes.h for the list): it may only replace instructions
// through Propose(); a replacement must compute the same values as the original whenever the
// rewrite's assumptions hold; it must keep every instruction boundary that is not inside the
// replaced slots (the rewriter enforces offsets and stack depths). A pass never decides whether
// its rewrite is safe to use in interpreted code: Finish() does that for all of them (entry
// stability), so passes stay simple and the rule lives in one place.
#ifndef FATJIT_SPECIALIZER_SPECIALIZATION_BUILDER_H_
#define FATJIT_SPECIALIZER_SPECIALIZATION_BUILDER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/python.h"
#include "base/ref.h"
#include "guards/guard.h"
#include "specializer/bytecode/rewriter.h"

namespace fatjit::specializer {

// What a rewrite relies on: `key` of a dict is bound to `value` (or absent if value is null);
// for kTypeAttribute, that attribute `key` of the type `dict` (its version) did not change.
struct Assumption {
  enum class Kind { kGlobal, kBuiltin, kDictKey, kTypeAttribute };
  Kind kind;
  Ref<> dict;   // the dict read (globals, builtins, a module's __dict__), or the type
  Ref<> key;    // an exact str
  Ref<> value;  // the object seen
  std::string Describe() const;
};

// A replacement of one instruction slot: a LOAD_CONST in `code` takes its oparg from `consts`.
struct SlotEdit {
  int offset = 0;
  int end = 0;  // one past the slot's last code unit; filled in by Propose()
  std::vector<bytecode::NewInstruction> code;
  std::vector<Ref<>> consts;  // for each LOAD_CONST in `code`, in order: the object to load
};

struct Rewrite {
  const char* pass = "";
  int offset = 0;  // where it starts (the first edit)
  int line = -1;
  std::string before;
  std::string after;
  std::vector<SlotEdit> edits;
  std::vector<int> assumptions;  // indices into SpecializationBuilder::assumptions()
  std::vector<int> builds_on;    // rewrites whose slots this one edits again
  bool entry_stable = false;     // every edited slot runs before anything may invalidate a guard
  bool active = false;           // used in the interpreted code object
};

class SpecializationBuilder {
 public:
  static absl::StatusOr<SpecializationBuilder> Create(PyFunctionObject* func);

  PyFunctionObject* func() const { return func_; }
  PyCodeObject* code() const { return reinterpret_cast<PyCodeObject*>(func_->func_code); }
  PyObject* globals() const { return func_->func_globals; }
  PyObject* builtins() const { return func_->func_builtins; }
  // co_names[i] (borrowed).
  PyObject* Name(int index) const;

  absl::Span<const bytecode::Instruction> instructions() const {
    return rewriter_.instructions();
  }
  // The object a LOAD_CONST instruction of the current code loads (borrowed).
  PyObject* ConstOf(const bytecode::Instruction& load_const) const {
    return rewriter_.const_at(load_const.oparg);
  }
  // The rewrite that produced the instruction at `offset`, or -1 for original code.
  int ProducerOf(int offset) const;

  // Records an assumption (deduplicated) and returns its index.
  int Assume(Assumption::Kind kind, PyObject* dict, PyObject* key, PyObject* value);
  const std::vector<Assumption>& assumptions() const { return assumptions_; }

  // Applies a rewrite's edits to the current code and records it. The rewrite's builds_on and
  // its edits' slot ends are filled in here. On error nothing is recorded.
  absl::Status Propose(Rewrite rewrite);
  const std::vector<Rewrite>& rewrites() const { return rewrites_; }
  std::vector<Rewrite>& mutable_rewrites() { return rewrites_; }
  // Counts proposals per pass name, for stats.
  const std::vector<std::pair<std::string, int>>& proposals_by_pass() const { return by_pass_; }

  // Rebuilds the code from the original with only the rewrites for which `use[i]` is true (in
  // proposal order), plus `extra` edits (applied first). Does not change the builder.
  absl::StatusOr<bytecode::BytecodeRewriter> Replay(const std::vector<bool>& use,
                                                    const std::vector<SlotEdit>& extra) const;

 private:
  explicit SpecializationBuilder(bytecode::BytecodeRewriter rewriter)
      : rewriter_(std::move(rewriter)) {}
  static absl::Status ApplyEdit(bytecode::BytecodeRewriter& rewriter, const SlotEdit& edit);

  PyFunctionObject* func_ = nullptr;  // borrowed; the caller keeps it alive
  Ref<> names_;                       // co_names
  bytecode::BytecodeRewriter rewriter_;
  std::vector<int> producer_;  // per code unit: the rewrite that last edited it, or -1
  std::vector<Assumption> assumptions_;
  std::vector<Rewrite> rewrites_;
  std::vector<std::pair<std::string, int>> by_pass_;
};

}  // namespace fatjit::specializer

#endif  // FATJIT_SPECIALIZER_SPECIALIZATION_BUILDER_H_
