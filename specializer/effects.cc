// The effect whitelist: see effects.h. Each case says why it cannot run arbitrary code.
// Instructions that pop a value (POP_TOP, IS_OP, conditional jumps) are not listed: they drop a
// reference that may be the last one, and a deallocation can run a __del__. LOAD_GLOBAL is not
// listed either: a globals or builtins dict with a non-str key of equal hash makes the lookup
// call that key's __eq__ (the folded ones are LOAD_CONSTs by then).
#include "specializer/effects.h"

#include "base/python.h"
#include "specializer/bytecode/opcode_tables.h"

namespace fatjit::specializer {

bool MayRunArbitraryCode(const bytecode::Instruction& inst) {
  switch (inst.base_opcode) {
    case NOP:
    case LOAD_FAST:       // a local read; an unbound local raises (an exception edge)
    case LOAD_CONST:
    case LOAD_DEREF:      // a cell read
    case LOAD_CLOSURE:
    case COPY_FREE_VARS:  // copies the closure's cells into the frame, no allocation
    case PUSH_NULL:
    case COPY:            // a new reference to a stack value
    case SWAP:
    case KW_NAMES:        // records a constant tuple for the next CALL
    case JUMP_FORWARD:    // forward jumps do not service the eval breaker
    case STORE_FAST:      // the caller decides (effects.h)
    case DELETE_FAST:
      return false;
    case RESUME:
      // oparg 0/1 services the eval breaker (signal handlers, thread switches); >= 2 does not.
      return inst.oparg < 2;
    default:
      return true;
  }
}

int LocalSlotWritten(const bytecode::Instruction& inst) {
  if (inst.base_opcode == STORE_FAST || inst.base_opcode == DELETE_FAST) return inst.oparg;
  return -1;
}

}  // namespace fatjit::specializer
