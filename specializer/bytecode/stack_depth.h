// Stack depth: the value-stack depth before every instruction, by forward dataflow over the CFG.
//
// Assumes a ControlFlowGraph of a DecodedCode, and CPython 3.11's stack effects as the compiler
// computes them (PyCompile_OpcodeStackEffectWithJump on the base opcode), with one exception:
// RETURN_GENERATOR counts +1, because the frame resumes after it holding the value sent by the
// first send() (the compiler instead starts generator code at depth 1; the maximum is the same).
// Produces depth_before[i] for every reachable instruction (kUnreachable otherwise) and the
// maximum depth reached, counted the way compile.c's stackdepth() counts it: after each
// instruction, on each jump edge, and at each handler entry (table depth + lasti + exception).
// Sound because 3.11 bytecode has a unique depth per instruction (the compiler asserts it and
// the exception table stores handler depths), so one pass that checks every merge suffices;
// InvalidArgument names the first offset where depths disagree, go negative, fall below the
// depth its handler unwinds to, or an opcode has no known effect.
#ifndef FATJIT_SPECIALIZER_BYTECODE_STACK_DEPTH_H_
#define FATJIT_SPECIALIZER_BYTECODE_STACK_DEPTH_H_

#include <vector>

#include "absl/status/statusor.h"
#include "specializer/bytecode/cfg.h"
#include "specializer/bytecode/decode.h"

namespace fatjit::bytecode {

inline constexpr int kUnreachable = -1;

struct StackDepths {
  std::vector<int> depth_before;  // per instruction index; kUnreachable if never reached
  int max_depth = 0;
};

// The effect of `inst` on the stack depth along its jump edge (`jump`) or fallthrough edge.
absl::StatusOr<int> StackEffect(const Instruction& inst, bool jump);

absl::StatusOr<StackDepths> ComputeStackDepths(const DecodedCode& code,
                                               const ControlFlowGraph& cfg);

}  // namespace fatjit::bytecode

#endif  // FATJIT_SPECIALIZER_BYTECODE_STACK_DEPTH_H_
