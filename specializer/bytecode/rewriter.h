// Rewriter: replaces instructions of a code object in place, keeping every other instruction at
// its offset, and builds the new code object.
//
// Assumes the code object's co_code (base opcodes, zeroed caches) as decoded by Decode().
// Produces a new code object through code.replace(co_code=..., co_consts=..., co_stacksize=...):
// the original is never mutated (invariant 1).
// Why offsets are preserved (invariant 4): a replacement must fit in the code units of the one
// instruction it replaces (prefixes and caches included) and is padded with NOPs up to that size,
// as CPython pads removed instructions; so every instruction start outside the replaced slot
// keeps its offset, the exception table and line table (both indexed by code unit) stay valid
// unchanged, and jumps into the slot still land on its first unit. BuildCode() recomputes the
// stack depths of the result and refuses it (FailedPrecondition) unless every instruction start
// the original and the result share has the same depth in both: that is the value-stack layout
// a deopt from the new code to the original at that offset relies on.
#ifndef FATJIT_SPECIALIZER_BYTECODE_REWRITER_H_
#define FATJIT_SPECIALIZER_BYTECODE_REWRITER_H_

#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "base/python.h"
#include "base/ref.h"
#include "specializer/bytecode/decode.h"
#include "specializer/bytecode/line_table.h"
#include "specializer/bytecode/opcode_tables.h"
#include "specializer/bytecode/stack_depth.h"

namespace fatjit::bytecode {

// One instruction of a replacement, in base form. For a jump, give the target offset: the oparg
// (and the direction's sign) is computed from where the instruction lands.
struct NewInstruction {
  int opcode = NOP;
  int oparg = 0;
  int jump_target = kNoTarget;
};

class BytecodeRewriter {
 public:
  // Decodes `code` (borrowed; the rewriter keeps a reference). Needs the GIL.
  static absl::StatusOr<BytecodeRewriter> Create(PyObject* code);

  // The instructions as rewritten so far (NOP padding included).
  absl::Span<const Instruction> instructions() const { return instructions_; }
  const DecodedCode& original() const { return original_; }
  const StackDepths& original_depths() const { return original_depths_; }

  // Replaces the instruction starting at `offset` with `replacement` followed by NOP padding.
  // InvalidArgument if `offset` starts no instruction, an opcode is not a base opcode (or is
  // EXTENDED_ARG/CACHE), a jump target is not an instruction start outside the slot (the slot's
  // own start is allowed), or the replacement does not fit in the slot.
  absl::Status Replace(int offset, absl::Span<const NewInstruction> replacement);
  // Replaces the instruction starting at `offset` with NOPs.
  absl::Status RemoveInstruction(int offset) { return Replace(offset, {}); }

  // The index of `value` (borrowed) in the new co_consts: an identical object already there,
  // or a new slot at the end.
  int AddConst(PyObject* value);

  // The constant at `index` of the new co_consts (borrowed), or null if out of range.
  PyObject* const_at(int index) const {
    return index >= 0 && index < static_cast<int>(consts_.size()) ? consts_[index].obj() : nullptr;
  }
  // The instructions as rewritten so far, checked as a DecodedCode (with the original
  // exception table), for analyses of the result.
  absl::StatusOr<DecodedCode> Rewritten() const;
  // The rewritten bytecode, caches zeroed.
  absl::StatusOr<std::vector<_Py_CODEUNIT>> EncodeUnits() const;
  // The new code object (see the file comment for the depth check). co_stacksize is the
  // original's unless the rewritten code needs more. FailedPrecondition if the rewritten code
  // is not valid bytecode (inconsistent or negative depths, control falling off the end) or
  // changes the stack depth at a shared instruction start.
  absl::StatusOr<Ref<>> BuildCode() const;

 private:
  BytecodeRewriter() = default;

  Ref<> code_;
  DecodedCode original_;
  StackDepths original_depths_;
  LineTable lines_;
  std::vector<Instruction> instructions_;
  std::vector<Ref<>> consts_;  // the original co_consts, then added ones
};

}  // namespace fatjit::bytecode

#endif  // FATJIT_SPECIALIZER_BYTECODE_REWRITER_H_
