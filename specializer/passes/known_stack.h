// KnownStack: which constants sit on top of the value stack at each instruction of a basic block,
// for the passes that compute with constants (fold_constants, pure_builtin_calls, dead_branches),
// and the helpers a rewrite built on them needs.
//
// Assumes the instructions of the code being rewritten (SpecializationBuilder::instructions()),
// scanned in offset order; a block may be entered at each of its BlockStarts() (a jump target, an
// exception-table range boundary, a handler) with any stack, so the scan forgets everything there.
// Produces, before each instruction, the known top of the stack: entries pushed in this block by
// LOAD_CONST (its object) or PUSH_NULL (NULL) and since then only moved by SWAP, duplicated by
// COPY, or left alone by NOP and by POP_TOP of an entry above them. Any other instruction
// empties the known top; entries below it are never described.
// Why sound: within a block control flows straight, those instructions move values exactly as
// modelled and nothing else runs between them, so a known entry holds its object on every run.
// They also cannot raise, call, or poll the eval breaker, which is what lets a fold load its
// result early (fold_constants.cc): no exit or deopt can happen between a push and its use.
#ifndef FATJIT_SPECIALIZER_PASSES_KNOWN_STACK_H_
#define FATJIT_SPECIALIZER_PASSES_KNOWN_STACK_H_

#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "base/python.h"
#include "specializer/bytecode/instruction.h"
#include "specializer/specialization_builder.h"

namespace fatjit::specializer {

struct KnownValue {
  PyObject* object = nullptr;  // borrowed (the code's constants hold it); null: PUSH_NULL's NULL
  int pushed_by = -1;          // offset of the LOAD_CONST or PUSH_NULL that pushed it
  bool copied = false;         // a COPY duplicated it, so its push also feeds another entry

  bool is_null() const { return object == nullptr; }
  // Its LOAD_CONST may load another constant without changing any other stack entry.
  bool retargetable() const { return !is_null() && !copied; }
};

class KnownStack {
 public:
  void Clear() { entries_.clear(); }
  // Steps over `inst`, an instruction of `builder`'s current code.
  void Apply(const bytecode::Instruction& inst, const SpecializationBuilder& builder);

  int size() const { return static_cast<int>(entries_.size()); }
  // The entry `depth` entries below the top (0: the top). Requires depth < size().
  const KnownValue& Peek(int depth) const { return entries_[entries_.size() - 1 - depth]; }

 private:
  std::vector<KnownValue> entries_;  // bottom to top
};

// The offsets of the builder's current code where a block may be entered other than by falling
// through: jump targets, and the starts, ends and handlers of exception-table ranges.
absl::StatusOr<absl::flat_hash_set<int>> BlockStarts(const SpecializationBuilder& builder);

// Scans the builder's current code, calling `visit(instructions, index, known)` with the known
// stack before each instruction. `visit` returns absl::StatusOr<bool>: true if it proposed a
// rewrite, after which the scan restarts at the start of the current block on the new code (the
// instructions before it keep their indices). Returns whether anything was proposed.
template <typename Visit>
absl::StatusOr<bool> ScanKnownStack(SpecializationBuilder& builder, Visit visit) {
  absl::StatusOr<absl::flat_hash_set<int>> starts = BlockStarts(builder);
  if (!starts.ok()) return starts.status();
  bool changed = false;
  KnownStack known;
  int block_start = 0;  // offset 0 is always in `starts`
  for (int i = 0; i < static_cast<int>(builder.instructions().size()); ++i) {
    absl::Span<const bytecode::Instruction> insts = builder.instructions();
    if (starts->contains(insts[i].offset)) {
      known.Clear();
      block_start = i;
    }
    absl::StatusOr<bool> proposed = visit(insts, i, known);
    if (!proposed.ok()) return proposed.status();
    if (*proposed) {
      changed = true;
      i = block_start - 1;  // the loop's ++i re-enters the block at its start
      continue;
    }
    known.Apply(insts[i], builder);
  }
  return changed;
}

// Completes a rewrite whose operands are `operands` (entries of a KnownStack): adds an edit that
// re-emits, unchanged, the slot of each operand an earlier rewrite pushed (unless the rewrite
// already edits that slot), so that the rewrite builds on it (Propose) and is used only together
// with it; copies the assumptions of every rewrite whose slots it edits; and sorts the edits by
// offset, so the rewrite starts at its first edit. Under that rewrite's assumptions, the stack at
// its first edit is the original's.
void BuildOnOperands(const SpecializationBuilder& builder, absl::Span<const KnownValue> operands,
                     Rewrite& rewrite);

// True if each edit of `rewrite` fits the slot it replaces, with the co_consts indices its
// LOAD_CONSTs will get (an index past 255 takes an EXTENDED_ARG prefix).
bool EditsFit(const SpecializationBuilder& builder, const Rewrite& rewrite);

// The current instruction starting at `offset`, or null.
const bytecode::Instruction* InstructionAt(const SpecializationBuilder& builder, int offset);

}  // namespace fatjit::specializer

#endif  // FATJIT_SPECIALIZER_PASSES_KNOWN_STACK_H_
