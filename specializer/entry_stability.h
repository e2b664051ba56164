// Entry stability: which instructions run before anything could have invalidated a guard
// checked at function entry.
//
// Assumes a DecodedCode with its ControlFlowGraph, the effect model of effects.h, and that the
// frame starts with the first `nparams` local slots bound (the parameters) and every other
// local slot empty (3.11 clears them; COPY_FREE_VARS and MAKE_CELL come from the code itself).
// Produces stable[i] for every instruction index: true iff on every path from entry to i no
// instruction that may run arbitrary code has run. Unreachable instructions are stable
// (vacuously: they never run). STORE_FAST/DELETE_FAST count as effects only when the slot may
// already hold a value (dropping it could run a __del__), and POP_TOP and the forward
// POP_JUMP_IF_NONE/NOT_NONE jumps only when the value they pop may not be a constant loaded
// earlier in the same block (counted through SWAP and COPY; a constant is also held by co_consts,
// so dropping it never frees it, and those jumps only compare identities). Exceptional edges
// carry "effect" (raising allocates an exception object, and a handler may be entered from
// anywhere). Given the code's constants, a forward POP_JUMP_IF_NONE/NOT_NONE on a constant
// loaded in its block follows only the edge it takes (dead_branches makes always-taken jumps of
// that form), so the code it skips neither reaches nor taints anything.
// Sound as a forward "may" analysis: the state is (tainted, may-be-bound slots), both joined by
// OR over predecessors, and the transfer functions only ever add taint or bindings, so the
// fixpoint over-approximates every path.
#ifndef FATJIT_SPECIALIZER_ENTRY_STABILITY_H_
#define FATJIT_SPECIALIZER_ENTRY_STABILITY_H_

#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "base/python.h"
#include "specializer/bytecode/cfg.h"
#include "specializer/bytecode/decode.h"

namespace fatjit::specializer {

// `consts` (borrowed) are the code's co_consts; empty: every conditional jump may go both ways.
absl::StatusOr<std::vector<bool>> ComputeEntryStability(const bytecode::DecodedCode& code,
                                                        const bytecode::ControlFlowGraph& cfg,
                                                        int nparams, int nlocalsplus,
                                                        absl::Span<PyObject* const> consts = {});

}  // namespace fatjit::specializer

#endif  // FATJIT_SPECIALIZER_ENTRY_STABILITY_H_
