// Entry stability: forward dataflow over the CFG. See entry_stability.h.
#include "specializer/entry_stability.h"

#include <deque>

#include "specializer/bytecode/opcode_tables.h"
#include "specializer/effects.h"

namespace fatjit::specializer {
namespace {

struct State {
  bool reached = false;
  bool tainted = false;
  bool top_is_const = false;  // the top of the stack was pushed by LOAD_CONST in this block
  std::vector<bool> bound;  // per local slot: may hold a value

  // Joins `other` into this state; true if this state changed.
  bool Join(const State& other) {
    bool changed = false;
    if (!reached) {
      *this = other;
      return true;
    }
    if (other.tainted && !tainted) {
      tainted = true;
      changed = true;
    }
    for (size_t i = 0; i < bound.size(); ++i) {
      if (other.bound[i] && !bound[i]) {
        bound[i] = true;
        changed = true;
      }
    }
    return changed;
  }
};

// Applies one instruction to `state`.
void Transfer(const bytecode::Instruction& inst, State& state) {
  if (state.tainted) return;
  const bool top_was_const = state.top_is_const;
  if (inst.base_opcode != NOP) state.top_is_const = inst.base_opcode == LOAD_CONST;
  if (inst.base_opcode == POP_TOP && top_was_const) return;
  int slot = LocalSlotWritten(inst);
  if (slot >= 0) {
    if (slot >= static_cast<int>(state.bound.size()) || state.bound[slot]) {
      state.tainted = true;  // may drop the last reference to the old value
    } else if (inst.base_opcode == STORE_FAST) {
      state.bound[slot] = true;
    }
    return;
  }
  if (MayRunArbitraryCode(inst)) state.tainted = true;
}

}  // namespace

absl::StatusOr<std::vector<bool>> ComputeEntryStability(const bytecode::DecodedCode& code,
                                                        const bytecode::ControlFlowGraph& cfg,
                                                        int nparams, int nlocalsplus) {
  absl::Span<const bytecode::Instruction> insts = code.instructions();
  absl::Span<const bytecode::BasicBlock> blocks = cfg.blocks();
  std::vector<State> entry(blocks.size());
  if (blocks.empty()) return std::vector<bool>(insts.size(), true);

  State start;
  start.reached = true;
  start.bound.assign(nlocalsplus, false);
  for (int i = 0; i < nparams && i < nlocalsplus; ++i) start.bound[i] = true;
  entry[0] = start;

  std::deque<int> work = {0};
  std::vector<bool> queued(blocks.size(), false);
  queued[0] = true;
  while (!work.empty()) {
    int id = work.front();
    work.pop_front();
    queued[id] = false;
    const bytecode::BasicBlock& block = blocks[id];
    State state = entry[id];
    state.top_is_const = false;  // a block may be entered from anywhere
    for (int i = block.first; i <= block.last; ++i) Transfer(insts[i], state);
    for (const bytecode::Edge& edge : block.successors) {
      State out = state;
      if (edge.kind == bytecode::EdgeKind::kException) out.tainted = true;
      if (entry[edge.block].Join(out) && !queued[edge.block]) {
        queued[edge.block] = true;
        work.push_back(edge.block);
      }
    }
  }

  std::vector<bool> stable(insts.size(), true);
  for (const bytecode::BasicBlock& block : blocks) {
    if (!entry[block.id].reached) continue;  // unreachable: vacuously stable
    State state = entry[block.id];
    state.top_is_const = false;
    for (int i = block.first; i <= block.last; ++i) {
      stable[i] = !state.tainted;
      Transfer(insts[i], state);
    }
  }
  return stable;
}

}  // namespace fatjit::specializer
