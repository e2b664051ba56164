// Basic blocks and edges: see cfg.h for where blocks start and which edges exist.
#include "specializer/bytecode/cfg.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "specializer/bytecode/opcode_tables.h"

namespace fatjit::bytecode {
namespace {

// Marks every instruction that starts a block.
std::vector<bool> FindLeaders(const DecodedCode& code) {
  absl::Span<const Instruction> insts = code.instructions();
  std::vector<bool> leader(insts.size(), false);
  auto mark = [&](int offset) {
    int index = code.IndexAt(offset);
    if (index >= 0) leader[index] = true;  // an end offset past the code marks nothing
  };
  if (!insts.empty()) leader[0] = true;
  for (const Instruction& inst : insts) {
    if (inst.is_jump()) mark(inst.jump_target);
    if (inst.is_jump() || IsScopeExit(inst.base_opcode)) mark(inst.next_offset());
  }
  for (const ExceptionTableEntry& e : code.exception_table()) {
    mark(e.start);
    mark(e.end);
    mark(e.target);
  }
  return leader;
}

void AddEdge(std::vector<BasicBlock>& blocks, int from, int to, EdgeKind kind) {
  Edge edge{to, kind};
  if (std::find(blocks[from].successors.begin(), blocks[from].successors.end(), edge) !=
      blocks[from].successors.end()) {
    return;  // a conditional jump to the next block: one edge per kind is enough
  }
  blocks[from].successors.push_back(edge);
  blocks[to].predecessors.push_back({from, kind});
}

}  // namespace

const char* EdgeKindName(EdgeKind kind) {
  switch (kind) {
    case EdgeKind::kFallthrough: return "fallthrough";
    case EdgeKind::kJump: return "jump";
    case EdgeKind::kException: return "exception";
  }
  return "?";
}

absl::StatusOr<ControlFlowGraph> ControlFlowGraph::Build(const DecodedCode& code) {
  absl::Span<const Instruction> insts = code.instructions();
  absl::Span<const ExceptionTableEntry> table = code.exception_table();
  std::vector<bool> leader = FindLeaders(code);

  ControlFlowGraph cfg;
  cfg.block_of_instruction_.resize(insts.size());
  for (int i = 0; i < static_cast<int>(insts.size()); ++i) {
    if (leader[i]) {
      BasicBlock block;
      block.id = static_cast<int>(cfg.blocks_.size());
      block.first = i;
      block.start_offset = insts[i].offset;
      cfg.blocks_.push_back(block);
    }
    BasicBlock& block = cfg.blocks_.back();
    block.last = i;
    block.end_offset = insts[i].next_offset();
    cfg.block_of_instruction_[i] = block.id;
  }

  // Handler coverage: ranges start and end at leaders, so a block's first instruction decides.
  for (BasicBlock& block : cfg.blocks_) {
    int opcode_offset = insts[block.first].opcode_offset();
    for (size_t e = 0; e < table.size(); ++e) {
      if (table[e].Covers(opcode_offset)) {
        block.handler_entry = static_cast<int>(e);
        break;
      }
    }
  }
  for (const ExceptionTableEntry& e : table) {
    cfg.blocks_[cfg.BlockAt(e.target)].is_handler = true;
  }

  for (BasicBlock& block : cfg.blocks_) {
    const Instruction& last = insts[block.last];
    if (last.is_jump()) {
      AddEdge(cfg.blocks_, block.id, cfg.BlockAt(last.jump_target), EdgeKind::kJump);
    }
    if (!EndsFlow(last.base_opcode)) {
      if (block.id + 1 == static_cast<int>(cfg.blocks_.size())) {
        return absl::InvalidArgumentError(absl::StrFormat(
            "bytecode offset %d: control falls off the end of the code", last.offset));
      }
      AddEdge(cfg.blocks_, block.id, block.id + 1, EdgeKind::kFallthrough);
    }
    if (block.handler_entry >= 0) {
      AddEdge(cfg.blocks_, block.id, cfg.BlockAt(table[block.handler_entry].target),
              EdgeKind::kException);
    }
  }
  return cfg;
}

int ControlFlowGraph::BlockAt(int offset) const {
  auto it = std::lower_bound(blocks_.begin(), blocks_.end(), offset,
                             [](const BasicBlock& b, int off) { return b.start_offset < off; });
  return it != blocks_.end() && it->start_offset == offset ? it->id : -1;
}

std::string ControlFlowGraph::ToString() const {
  std::string out;
  for (const BasicBlock& block : blocks_) {
    absl::StrAppendFormat(&out, "B%d [%d, %d)", block.id, block.start_offset, block.end_offset);
    if (block.is_handler) out += " handler";
    if (block.handler_entry >= 0) absl::StrAppendFormat(&out, " in #%d", block.handler_entry);
    const char* sep = " ->";
    for (const Edge& edge : block.successors) {
      absl::StrAppendFormat(&out, "%s B%d %s", sep, edge.block, EdgeKindName(edge.kind));
      sep = ",";
    }
    out += "\n";
  }
  return out;
}

}  // namespace fatjit::bytecode
