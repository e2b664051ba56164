// Instruction: one decoded CPython 3.11 instruction, with its EXTENDED_ARG prefixes and inline
// cache entries, as it sits in a code object's bytecode.
//
// An instruction occupies the code units [offset, next_offset()): `extended_args` EXTENDED_ARG
// prefixes, the opcode unit at opcode_offset(), then `cache_entries` CACHE units. `offset` is the
// first prefix (or the opcode unit when there is none) because that is where jumps and exception
// table ranges point; opcode_offset() is where the interpreter's prev_instr points while the
// instruction runs, so tracebacks, f_lineno and deopt resume points use it. All offsets are in
// code units (2 bytes), not bytes as in `dis`.
#ifndef FATJIT_SPECIALIZER_BYTECODE_INSTRUCTION_H_
#define FATJIT_SPECIALIZER_BYTECODE_INSTRUCTION_H_

#include <cstdint>
#include <string>

namespace fatjit::bytecode {

inline constexpr int kNoTarget = -1;
inline constexpr int kNoLine = -1;

struct Instruction {
  int offset = 0;            // first code unit (first EXTENDED_ARG prefix if any)
  uint8_t opcode = 0;        // as found: quickened, adaptive or specialized forms included
  uint8_t base_opcode = 0;   // _PyOpcode_Deopt[opcode]: what co_code holds
  uint8_t extended_args = 0; // number of EXTENDED_ARG prefixes folded into oparg (0..3)
  uint8_t prefix_opcode = 0; // EXTENDED_ARG or EXTENDED_ARG_QUICK as found; 0 without prefixes
  uint8_t cache_entries = 0; // inline CACHE units after the opcode unit
  int oparg = 0;             // with the prefixes folded in (the raw byte for no-argument opcodes)
  int jump_target = kNoTarget; // offset of the instruction a jump goes to, if this is a jump
  int line = kNoLine;        // source line of the opcode unit, kNoLine if it has none

  int opcode_offset() const { return offset + extended_args; }
  int size() const { return extended_args + 1 + cache_entries; }
  int next_offset() const { return offset + size(); }
  bool is_jump() const { return jump_target != kNoTarget; }

  friend bool operator==(const Instruction&, const Instruction&) = default;
};

// "12 LOAD_GLOBAL 3 (+5 caches) -> 40 line 7": one line of a listing, for tests and logs.
std::string FormatInstruction(const Instruction& instruction);

}  // namespace fatjit::bytecode

#endif  // FATJIT_SPECIALIZER_BYTECODE_INSTRUCTION_H_
