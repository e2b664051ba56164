// Effects: which instructions may run arbitrary Python code (or let another thread or a signal
// handler run), and so may invalidate any guard.
//
// Assumes CPython 3.11 base opcodes and that the eval breaker (signals, GIL drop requests, async exceptions) is only
// serviced by RESUME with oparg < 2, backward jumps and calls.
// Produces MayRunArbitraryCode(): false only for a short whitelist of instructions that read or
// shuffle values without calling into objects, allocating GC-tracked objects (an allocation can
// start a collection, which runs finalizers), dropping a reference that may be the last one (a
// __del__), or servicing the eval breaker. Everything else is "may run anything". STORE_FAST
// and DELETE_FAST are left to the caller, which knows whether the local can hold a value.
// Sound because the list only grows by instructions whose 3.11 implementation was read in
// ceval.c and calls no user code; an unknown opcode is effectful.
#ifndef FATJIT_SPECIALIZER_EFFECTS_H_
#define FATJIT_SPECIALIZER_EFFECTS_H_

#include "specializer/bytecode/instruction.h"

namespace fatjit::specializer {

// True unless `inst` is known never to run arbitrary code. STORE_FAST/DELETE_FAST: see above.
bool MayRunArbitraryCode(const bytecode::Instruction& inst);

// The local slot a STORE_FAST/DELETE_FAST writes, or -1 for any other instruction.
int LocalSlotWritten(const bytecode::Instruction& inst);

}  // namespace fatjit::specializer

#endif  // FATJIT_SPECIALIZER_EFFECTS_H_
