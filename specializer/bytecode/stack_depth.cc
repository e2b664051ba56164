// Stack depths by dataflow: see stack_depth.h for the effects used and why one pass is exact.
#include "specializer/bytecode/stack_depth.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "base/python.h"
#include "specializer/bytecode/opcode_tables.h"

namespace fatjit::bytecode {
namespace {

absl::Status Invalid(int offset, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrFormat("bytecode offset %d: %s", offset, what));
}

// Records `depth` as the entry depth of `block`, queueing it the first time.
absl::Status Arrive(int block, int depth, int from_offset, const ControlFlowGraph& cfg,
                    std::vector<int>& entry_depth, std::vector<int>& worklist) {
  if (entry_depth[block] == kUnreachable) {
    entry_depth[block] = depth;
    worklist.push_back(block);
    return absl::OkStatus();
  }
  if (entry_depth[block] != depth) {
    return Invalid(cfg.block(block).start_offset,
                   absl::StrFormat("stack depth %d from offset %d, %d from another edge", depth,
                                   from_offset, entry_depth[block]));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<int> StackEffect(const Instruction& inst, bool jump) {
  if (inst.base_opcode == RETURN_GENERATOR) return 1;
  int effect = PyCompile_OpcodeStackEffectWithJump(inst.base_opcode, inst.oparg, jump ? 1 : 0);
  if (effect == PY_INVALID_STACK_EFFECT) {
    return Invalid(inst.offset, absl::StrFormat("no stack effect for %s %d",
                                                OpcodeName(inst.base_opcode), inst.oparg));
  }
  return effect;
}

absl::StatusOr<StackDepths> ComputeStackDepths(const DecodedCode& code,
                                               const ControlFlowGraph& cfg) {
  absl::Span<const Instruction> insts = code.instructions();
  absl::Span<const ExceptionTableEntry> table = code.exception_table();
  StackDepths result;
  result.depth_before.assign(insts.size(), kUnreachable);
  if (insts.empty()) return result;

  std::vector<int> entry_depth(cfg.blocks().size(), kUnreachable);
  std::vector<int> worklist;
  absl::Status status = Arrive(0, 0, 0, cfg, entry_depth, worklist);
  while (status.ok() && !worklist.empty()) {
    const BasicBlock& block = cfg.block(worklist.back());
    worklist.pop_back();
    int floor = block.handler_entry >= 0 ? table[block.handler_entry].depth : 0;
    int depth = entry_depth[block.id];
    for (int i = block.first; i <= block.last; ++i) {
      const Instruction& inst = insts[i];
      if (depth < floor) {
        return Invalid(inst.offset, absl::StrFormat("stack depth %d is below the depth %d its "
                                                    "handler unwinds to", depth, floor));
      }
      result.depth_before[i] = depth;
      if (inst.is_jump()) {
        absl::StatusOr<int> effect = StackEffect(inst, /*jump=*/true);
        if (!effect.ok()) return effect.status();
        int target_depth = depth + *effect;
        result.max_depth = std::max(result.max_depth, target_depth);
        status = Arrive(cfg.BlockAt(inst.jump_target), target_depth, inst.offset, cfg,
                        entry_depth, worklist);
        if (!status.ok()) return status;
      }
      absl::StatusOr<int> effect = StackEffect(inst, /*jump=*/false);
      if (!effect.ok()) return effect.status();
      depth += *effect;
      if (depth < 0) return Invalid(inst.offset, "stack depth goes negative");
      result.max_depth = std::max(result.max_depth, depth);
    }
    for (const Edge& edge : block.successors) {
      if (edge.kind == EdgeKind::kFallthrough) {
        status = Arrive(edge.block, depth, insts[block.last].offset, cfg, entry_depth, worklist);
      } else if (edge.kind == EdgeKind::kException) {
        int handler_depth = table[block.handler_entry].handler_depth();
        result.max_depth = std::max(result.max_depth, handler_depth);
        status = Arrive(edge.block, handler_depth, block.start_offset, cfg, entry_depth,
                        worklist);
      }
      if (!status.ok()) return status;
    }
  }
  if (!status.ok()) return status;
  return result;
}

}  // namespace fatjit::bytecode
