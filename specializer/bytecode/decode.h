// Decode: code units -> Instructions, and a code object -> DecodedCode (its instructions, lines
// and exception table, checked against each other).
//
// Assumes CPython 3.11 bytecode: 2-byte code units, EXTENDED_ARG (or EXTENDED_ARG_QUICK in live
// code) prefixes folding 8 bits each into the next oparg, _PyOpcode_Caches[base] CACHE units
// after each instruction, and relative jumps counted from the end of the jumping instruction's
// caches. Quickened code keeps every oparg and only swaps opcodes and fills caches (that is how
// CPython's deopt_code recovers co_code), so decoding live code yields the same offsets, opargs
// and jump targets as decoding co_code, with `opcode` showing the form found.
// Produces instructions in offset order covering every code unit exactly once, or
// InvalidArgument naming the first offset that breaks the format. DecodedCode::Create (and so
// Decode) also checks that jump targets, exception table boundaries and handlers land on
// instruction starts, and that table ranges are sorted and disjoint (the interpreter's handler
// lookup assumes both).
#ifndef FATJIT_SPECIALIZER_BYTECODE_DECODE_H_
#define FATJIT_SPECIALIZER_BYTECODE_DECODE_H_

#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "base/python.h"
#include "specializer/bytecode/exception_table.h"
#include "specializer/bytecode/instruction.h"
#include "specializer/bytecode/line_table.h"

namespace fatjit::bytecode {

// Which bytes of a code object to decode.
enum class CodeForm {
  kDeoptimized,  // co_code: base opcodes, zeroed caches (what the compiler produced)
  kLive,         // _PyCode_CODE: what the interpreter runs (quickened once warm)
};

// A code object's instructions and exception table, consistent with each other.
class DecodedCode {
 public:
  DecodedCode() = default;

  // Checks the invariants above. Instructions must be contiguous from offset 0.
  static absl::StatusOr<DecodedCode> Create(std::vector<Instruction> instructions,
                                            std::vector<ExceptionTableEntry> exception_table);

  absl::Span<const Instruction> instructions() const { return instructions_; }
  absl::Span<const ExceptionTableEntry> exception_table() const { return exception_table_; }
  int code_units() const { return static_cast<int>(index_at_.size()); }

  // Index of the instruction starting at `offset` (its first prefix), or -1.
  int IndexAt(int offset) const {
    return offset >= 0 && offset < code_units() ? index_at_[offset] : -1;
  }
  // The instruction starting at `offset`, or null.
  const Instruction* At(int offset) const {
    int index = IndexAt(offset);
    return index < 0 ? nullptr : &instructions_[index];
  }

 private:
  std::vector<Instruction> instructions_;
  std::vector<ExceptionTableEntry> exception_table_;
  std::vector<int> index_at_;  // per code unit: instruction index, or -1 inside an instruction
};

// Decodes raw code units. Lines are left kNoLine unless `lines` is given.
absl::StatusOr<std::vector<Instruction>> DecodeInstructions(
    absl::Span<const _Py_CODEUNIT> units, const LineTable* lines = nullptr);

// Decodes `code` (borrowed) in the given form, with lines and exception table. Needs the GIL.
absl::StatusOr<DecodedCode> Decode(PyObject* code, CodeForm form = CodeForm::kDeoptimized);

// The code units of a bytes object holding bytecode (co_code). InvalidArgument for odd sizes.
absl::StatusOr<std::vector<_Py_CODEUNIT>> CodeUnitsFromBytes(std::string_view bytes);

}  // namespace fatjit::bytecode

#endif  // FATJIT_SPECIALIZER_BYTECODE_DECODE_H_
