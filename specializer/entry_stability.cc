// Entry stability: forward dataflow over the CFG. See entry_stability.h.
#include "specializer/entry_stability.h"

#include <deque>
#include <optional>
#include <utility>

#include "specializer/bytecode/opcode_tables.h"
#include "specializer/effects.h"

namespace fatjit::specializer {
namespace {

struct State {
  bool reached = false;
  bool tainted = false;
  std::vector<int> consts;  // co_consts indices of the constants on top of the stack, top last
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

// The constants on top of the stack, loaded in this block: LOAD_CONST pushes one, SWAP and
// COPY move or copy them among themselves, POP_TOP and a forward IF_NONE/NOT_NONE jump pop one;
// any other instruction (or a block entry) leaves none known. Popping a constant never frees it
// (co_consts holds it too), and IF_NONE/NOT_NONE only compare identities, so those pops are
// effect-free. Returns true if `inst` was such an effect-free stack operation.
bool TrackConstants(const bytecode::Instruction& inst, std::vector<int>& consts) {
  const int known = static_cast<int>(consts.size());
  switch (inst.base_opcode) {
    case NOP:
      return true;
    case LOAD_CONST:
      consts.push_back(inst.oparg);
      return true;
    case SWAP:  // exchanges the top with the entry at depth oparg
      if (inst.oparg <= known) {
        std::swap(consts.back(), consts[known - inst.oparg]);
      } else {
        consts.clear();
      }
      return true;
    case COPY:  // pushes a copy of the entry at depth oparg
      if (inst.oparg <= known) {
        consts.push_back(consts[known - inst.oparg]);
      } else {
        consts.clear();
      }
      return true;
    case POP_TOP:
    case POP_JUMP_FORWARD_IF_NONE:
    case POP_JUMP_FORWARD_IF_NOT_NONE:
      if (known == 0) break;
      consts.pop_back();
      return true;
    default:
      break;
  }
  consts.clear();
  return false;
}

// The edge a block ending in `last` never takes, if any: a forward IF_NONE/NOT_NONE jump on a
// known constant goes one way only (its kFallthrough or its kJump edge; never kException).
std::optional<bytecode::EdgeKind> EdgeNeverTaken(const bytecode::Instruction& last,
                                                 const State& state,
                                                 absl::Span<PyObject* const> code_consts) {
  const bool if_none = last.base_opcode == POP_JUMP_FORWARD_IF_NONE;
  if ((!if_none && last.base_opcode != POP_JUMP_FORWARD_IF_NOT_NONE) || state.tainted ||
      state.consts.empty() || state.consts.back() < 0 ||
      state.consts.back() >= static_cast<int>(code_consts.size())) {
    return std::nullopt;
  }
  const bool is_none = code_consts[state.consts.back()] == Py_None;
  return is_none == if_none ? bytecode::EdgeKind::kFallthrough : bytecode::EdgeKind::kJump;
}

// Applies one instruction to `state`.
void Transfer(const bytecode::Instruction& inst, State& state) {
  if (state.tainted) return;
  if (TrackConstants(inst, state.consts)) return;
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
                                                        int nparams, int nlocalsplus,
                                                        absl::Span<PyObject* const> consts) {
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
    state.consts.clear();  // a block may be entered from anywhere
    for (int i = block.first; i < block.last; ++i) Transfer(insts[i], state);
    const std::optional<bytecode::EdgeKind> never =
        EdgeNeverTaken(insts[block.last], state, consts);
    Transfer(insts[block.last], state);
    for (const bytecode::Edge& edge : block.successors) {
      if (never.has_value() && edge.kind == *never) continue;
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
    state.consts.clear();
    for (int i = block.first; i <= block.last; ++i) {
      stable[i] = !state.tainted;
      Transfer(insts[i], state);
    }
  }
  return stable;
}

}  // namespace fatjit::specializer
