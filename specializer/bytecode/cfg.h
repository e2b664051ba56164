// Control-flow graph: the basic blocks of a DecodedCode and the edges between them, including
// the exceptional edges from protected ranges to their handlers.
//
// Assumes a DecodedCode (jump targets and exception table boundaries are instruction starts).
// Produces blocks in offset order. A block starts at offset 0, at every jump target, at every
// handler, at every exception-range start and end, and after every jump, return or raise; so
// each block lies wholly inside one protected range or outside all of them, and its exceptional
// successor (at most one) is exact. Edges: kFallthrough to the next block unless the last
// instruction ends the flow (unconditional jump, RETURN_VALUE, RAISE_VARARGS, RERAISE); kJump to
// the target of a jump; kException to the handler of the block's range. Sound as an
// over-approximation of the interpreter's transfers: every transfer it can make is an edge
// (any instruction in a protected range may raise, so the whole block gets the handler edge).
// A block that is the target of an exception table entry is marked is_handler.
#ifndef FATJIT_SPECIALIZER_BYTECODE_CFG_H_
#define FATJIT_SPECIALIZER_BYTECODE_CFG_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "specializer/bytecode/decode.h"

namespace fatjit::bytecode {

enum class EdgeKind { kFallthrough, kJump, kException };
const char* EdgeKindName(EdgeKind kind);

struct Edge {
  int block = 0;  // the other end, a block id
  EdgeKind kind = EdgeKind::kFallthrough;
  friend bool operator==(const Edge&, const Edge&) = default;
};

struct BasicBlock {
  int id = 0;                 // index in ControlFlowGraph::blocks(), in offset order
  int first = 0;              // index of its first instruction
  int last = 0;               // index of its last instruction
  int start_offset = 0;       // offset of its first instruction
  int end_offset = 0;         // one past its last code unit
  int handler_entry = -1;     // index of the exception table entry covering it, or -1
  bool is_handler = false;    // the target of some exception table entry
  std::vector<Edge> successors;
  std::vector<Edge> predecessors;
};

class ControlFlowGraph {
 public:
  // InvalidArgument if control falls off the end of the code.
  static absl::StatusOr<ControlFlowGraph> Build(const DecodedCode& code);

  absl::Span<const BasicBlock> blocks() const { return blocks_; }
  const BasicBlock& block(int id) const { return blocks_[id]; }
  // The block containing instruction `index`.
  int BlockOfInstruction(int index) const { return block_of_instruction_[index]; }
  // The block starting at `offset`, or -1.
  int BlockAt(int offset) const;

  // One line per block: "B2 [10, 24) handler of #1 -> B3 jump, B5 exception", for tests.
  std::string ToString() const;

 private:
  std::vector<BasicBlock> blocks_;
  std::vector<int> block_of_instruction_;
};

}  // namespace fatjit::bytecode

#endif  // FATJIT_SPECIALIZER_BYTECODE_CFG_H_
