// Per-opcode facts of CPython 3.11 bytecode: the base form of a quickened opcode, its inline
// cache size, whether it jumps and where, whether it ends the flow of control, and its name.
//
// The tables come from CPython's own generated header (opcode_tables.c), so they cannot drift
// from the interpreter's. Everything else here is a small classification over base opcodes, each
// with the CPython fact it rests on. Base opcodes are what `co_code` holds and what
// _PyOpcode_Deopt maps every adaptive, specialized and super-instruction form back to.
#ifndef FATJIT_SPECIALIZER_BYTECODE_OPCODE_TABLES_H_
#define FATJIT_SPECIALIZER_BYTECODE_OPCODE_TABLES_H_

#include <cstdint>

#include "base/python.h"
// opcode.h is not part of Python.h: the opcode numbers.
#include <opcode.h>

#include "specializer/bytecode/backward_jump.h"

extern "C" {
extern const uint8_t fatjit_opcode_deopt[256];
extern const uint8_t fatjit_opcode_caches[256];
extern const uint32_t* const fatjit_opcode_jump_bits;
extern const char* const* const fatjit_opcode_names;
int fatjit_opcode_all_jumps_relative(void);
}

namespace fatjit::bytecode {

// The base opcode of any opcode found in live bytecode; 0 (CACHE) for unknown opcodes.
inline int DeoptOpcode(int opcode) { return fatjit_opcode_deopt[opcode & 0xff]; }

// True if `opcode` is a known opcode in its base form (what a code object's co_code may hold).
inline bool IsBaseOpcode(int opcode) {
  return opcode > 0 && opcode < 256 && DeoptOpcode(opcode) == opcode;
}

// Inline cache entries (code units) following an instruction with this base opcode.
inline int CacheEntries(int base_opcode) { return fatjit_opcode_caches[base_opcode & 0xff]; }

// The interpreter's name of any opcode, specialized forms included ("<N>" for unused numbers).
inline const char* OpcodeName(int opcode) {
  const char* name = fatjit_opcode_names[opcode & 0xff];
  return name != nullptr ? name : "<unknown>";
}

// A jump: its oparg is a distance in code units from the instruction after its caches.
inline bool IsJump(int base_opcode) {
  return (fatjit_opcode_jump_bits[(base_opcode & 0xff) >> 5] >> (base_opcode & 31)) & 1;
}

// A jump whose distance counts backwards (3.11 splits every jump by direction).
inline bool IsBackwardJump(int base_opcode) { return fatjit_is_backward_jump(base_opcode) != 0; }

// A jump that is always taken: the instruction after it is reached only by other edges.
inline bool IsUnconditionalJump(int base_opcode) {
  return base_opcode == JUMP_FORWARD || base_opcode == JUMP_BACKWARD ||
         base_opcode == JUMP_BACKWARD_NO_INTERRUPT;
}

// Leaves the frame or unwinds to a handler; never falls through (compile.c's scope exits).
inline bool IsScopeExit(int base_opcode) {
  return base_opcode == RETURN_VALUE || base_opcode == RAISE_VARARGS || base_opcode == RERAISE;
}

// Control never reaches the next instruction from this one.
inline bool EndsFlow(int base_opcode) {
  return IsUnconditionalJump(base_opcode) || IsScopeExit(base_opcode);
}

}  // namespace fatjit::bytecode

#endif  // FATJIT_SPECIALIZER_BYTECODE_OPCODE_TABLES_H_
