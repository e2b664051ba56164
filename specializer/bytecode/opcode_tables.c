/* Opcode tables: fatjit's own copy of CPython 3.11's generated per-opcode tables.
 *
 * Assumes: the installed internal header pycore_opcode.h matches the interpreter we run on
 * (both are 3.11; the tables did not change across 3.11.x patch releases).
 * Produces: fatjit_opcode_deopt, fatjit_opcode_caches, fatjit_opcode_jump_bits and
 * fatjit_opcode_names, declared for C++ in opcode_tables.h.
 * Why this is a .c file: the header defines the tables with C99 array designators, which g++
 * rejects (DESIGN.md, "Build and linking"). The tables are renamed so our copy never interposes
 * libpython's own _PyOpcode_Deopt/_PyOpcode_Caches (same contents, but a second definition of an
 * exported name is an accident waiting for a static-libpython build). The name table exists only
 * under Py_DEBUG; defining Py_DEBUG for this one header changes nothing else (it holds only
 * tables), and Python.h was included before it with the real configuration.
 */
#include "base/python.h"

#define NEED_OPCODE_TABLES
#define _PyOpcode_Caches fatjit_opcode_caches
#define _PyOpcode_Deopt fatjit_opcode_deopt
#ifndef Py_DEBUG
#define Py_DEBUG
#define FATJIT_DEFINED_PY_DEBUG
#endif
#include <internal/pycore_opcode.h>
#ifdef FATJIT_DEFINED_PY_DEBUG
#undef Py_DEBUG
#undef FATJIT_DEFINED_PY_DEBUG
#endif
#undef _PyOpcode_Caches
#undef _PyOpcode_Deopt

/* Every jump in 3.11 is relative, so the two bit tables are equal; keep the one that says
 * "is a jump" and check the claim below. */
const uint32_t* const fatjit_opcode_jump_bits = _PyOpcode_Jump;
const char* const* const fatjit_opcode_names = _PyOpcode_OpName;

_Static_assert(sizeof(_PyOpcode_Jump) == sizeof(_PyOpcode_RelativeJump), "jump tables");

int fatjit_opcode_all_jumps_relative(void) {
  for (int i = 0; i < 8; i++) {
    if (_PyOpcode_Jump[i] != _PyOpcode_RelativeJump[i]) return 0;
  }
  return 1;
}
