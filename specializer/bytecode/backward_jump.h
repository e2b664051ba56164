/* Which base opcodes of CPython 3.11 jump backwards: a `for` loop's JUMP_BACKWARD, the
 * conditional jump at the bottom of a `while` loop (3.11 splits every jump by direction), and
 * JUMP_BACKWARD_NO_INTERRUPT. C and C++ alike: the start-up counter (ext/boot.c, C) and the
 * bytecode layer (opcode_tables.h) share it. Needs <opcode.h>'s numbers. */
#ifndef FATJIT_SPECIALIZER_BYTECODE_BACKWARD_JUMP_H_
#define FATJIT_SPECIALIZER_BYTECODE_BACKWARD_JUMP_H_

#include <opcode.h>

static inline int fatjit_is_backward_jump(int base_opcode) {
  switch (base_opcode) {
    case JUMP_BACKWARD:
    case JUMP_BACKWARD_NO_INTERRUPT:
    case POP_JUMP_BACKWARD_IF_NOT_NONE:
    case POP_JUMP_BACKWARD_IF_NONE:
    case POP_JUMP_BACKWARD_IF_FALSE:
    case POP_JUMP_BACKWARD_IF_TRUE:
      return 1;
    default:
      return 0;
  }
}

#endif /* FATJIT_SPECIALIZER_BYTECODE_BACKWARD_JUMP_H_ */
