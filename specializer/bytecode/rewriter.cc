// In-place bytecode rewriting and code object construction: see rewriter.h for why offsets and
// stack layouts are preserved.
#include "specializer/bytecode/rewriter.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/cpython_compat.h"
#include "absl/strings/str_format.h"
#include "specializer/bytecode/cfg.h"
#include "specializer/bytecode/code_object.h"
#include "specializer/bytecode/encode.h"
#include "specializer/bytecode/opcode_tables.h"

namespace fatjit::bytecode {
namespace {

absl::Status Invalid(int offset, const std::string& what) {
  return absl::InvalidArgumentError(absl::StrFormat("bytecode offset %d: %s", offset, what));
}

// Lays out `spec` at `pos`: prefixes, opcode, caches; computes a jump's oparg for its placement.
absl::StatusOr<Instruction> Place(const NewInstruction& spec, int pos) {
  if (!IsBaseOpcode(spec.opcode) || spec.opcode == EXTENDED_ARG) {
    return Invalid(pos, absl::StrFormat("%s is not a base opcode a replacement may use",
                                        OpcodeName(spec.opcode)));
  }
  if (IsJump(spec.opcode) != (spec.jump_target != kNoTarget)) {
    return Invalid(pos, absl::StrFormat("%s: a jump target is required exactly for jumps",
                                        OpcodeName(spec.opcode)));
  }
  if (spec.opcode < HAVE_ARGUMENT && spec.oparg != 0) {
    return Invalid(pos, absl::StrFormat("%s takes no argument", OpcodeName(spec.opcode)));
  }
  Instruction inst;
  inst.offset = pos;
  inst.opcode = inst.base_opcode = static_cast<uint8_t>(spec.opcode);
  inst.cache_entries = static_cast<uint8_t>(CacheEntries(spec.opcode));
  inst.oparg = spec.oparg;
  if (spec.jump_target != kNoTarget) {
    inst.jump_target = spec.jump_target;
    // The distance depends on the prefix count, which depends on the distance: take the fewest
    // prefixes that hold it.
    for (int prefixes = 0;; ++prefixes) {
      if (prefixes > 3) return Invalid(pos, "jump distance too large");
      inst.extended_args = static_cast<uint8_t>(prefixes);
      int from = inst.next_offset();
      int distance = IsBackwardJump(spec.opcode) ? from - spec.jump_target
                                                 : spec.jump_target - from;
      if (distance < 0) {
        return Invalid(pos, absl::StrFormat("%s cannot reach offset %d in its direction",
                                            OpcodeName(spec.opcode), spec.jump_target));
      }
      inst.oparg = distance;
      if (ExtendedArgsFor(distance) <= prefixes) break;
    }
  } else {
    inst.extended_args = static_cast<uint8_t>(ExtendedArgsFor(spec.oparg));
  }
  if (inst.extended_args > 0) inst.prefix_opcode = EXTENDED_ARG;
  return inst;
}

Instruction Nop(int pos) {
  Instruction nop;
  nop.offset = pos;
  nop.opcode = nop.base_opcode = NOP;
  return nop;
}

}  // namespace

absl::StatusOr<BytecodeRewriter> BytecodeRewriter::Create(PyObject* code) {
  BytecodeRewriter rewriter;
  absl::StatusOr<DecodedCode> decoded = Decode(code, CodeForm::kDeoptimized);
  if (!decoded.ok()) return decoded.status();
  absl::StatusOr<ControlFlowGraph> cfg = ControlFlowGraph::Build(*decoded);
  if (!cfg.ok()) return cfg.status();
  absl::StatusOr<StackDepths> depths = ComputeStackDepths(*decoded, *cfg);
  if (!depths.ok()) return depths.status();
  absl::StatusOr<LineTable> lines = LineTable::ForCode(code);
  if (!lines.ok()) return lines.status();
  absl::StatusOr<Ref<>> consts = CodeAttribute(code, "co_consts");
  if (!consts.ok()) return consts.status();
  if (!PyTuple_Check(consts->obj())) return absl::InvalidArgumentError("co_consts is not a tuple");

  rewriter.code_ = Ref<>::Create(code);
  rewriter.original_ = *std::move(decoded);
  rewriter.original_depths_ = *std::move(depths);
  rewriter.lines_ = *std::move(lines);
  rewriter.instructions_.assign(rewriter.original_.instructions().begin(),
                                rewriter.original_.instructions().end());
  for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(consts->obj()); ++i) {
    rewriter.consts_.push_back(Ref<>::Create(PyTuple_GET_ITEM(consts->obj(), i)));
  }
  return rewriter;
}

absl::Status BytecodeRewriter::Replace(int offset, absl::Span<const NewInstruction> replacement) {
  auto it = std::lower_bound(instructions_.begin(), instructions_.end(), offset,
                             [](const Instruction& inst, int off) { return inst.offset < off; });
  if (it == instructions_.end() || it->offset != offset) {
    return Invalid(offset, "no instruction starts here");
  }
  const int slot_end = it->next_offset();
  std::vector<Instruction> placed;
  int pos = offset;
  for (const NewInstruction& spec : replacement) {
    if (spec.jump_target != kNoTarget && spec.jump_target != offset) {
      bool outside = spec.jump_target < offset || spec.jump_target >= slot_end;
      auto target = std::lower_bound(
          instructions_.begin(), instructions_.end(), spec.jump_target,
          [](const Instruction& inst, int off) { return inst.offset < off; });
      if (!outside || target == instructions_.end() || target->offset != spec.jump_target) {
        return Invalid(pos, absl::StrFormat("jump target %d is not an instruction start outside "
                                            "the replaced slot", spec.jump_target));
      }
    }
    absl::StatusOr<Instruction> inst = Place(spec, pos);
    if (!inst.ok()) return inst.status();
    pos = inst->next_offset();
    if (pos > slot_end) {
      return Invalid(offset, absl::StrFormat("replacement needs %d code units, the slot has %d",
                                             pos - offset, slot_end - offset));
    }
    placed.push_back(*inst);
  }
  for (; pos < slot_end; ++pos) placed.push_back(Nop(pos));
  for (Instruction& inst : placed) inst.line = lines_.LineAt(inst.opcode_offset());
  it = instructions_.erase(it);
  instructions_.insert(it, placed.begin(), placed.end());
  return absl::OkStatus();
}

int BytecodeRewriter::AddConst(PyObject* value) {
  for (size_t i = 0; i < consts_.size(); ++i) {
    if (consts_[i].obj() == value) return static_cast<int>(i);
  }
  consts_.push_back(Ref<>::Create(value));
  return static_cast<int>(consts_.size() - 1);
}

absl::StatusOr<std::vector<_Py_CODEUNIT>> BytecodeRewriter::EncodeUnits() const {
  return Encode(instructions_);
}

absl::StatusOr<DecodedCode> BytecodeRewriter::Rewritten() const {
  return DecodedCode::Create(instructions_, std::vector<ExceptionTableEntry>(
                                                original_.exception_table().begin(),
                                                original_.exception_table().end()));
}

absl::StatusOr<Ref<>> BytecodeRewriter::BuildCode() const {
  absl::StatusOr<DecodedCode> rewritten = Rewritten();
  absl::StatusOr<ControlFlowGraph> cfg =
      rewritten.ok() ? ControlFlowGraph::Build(*rewritten) : rewritten.status();
  absl::StatusOr<StackDepths> depths =
      cfg.ok() ? ComputeStackDepths(*rewritten, *cfg) : cfg.status();
  if (!depths.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the rewritten code is not valid bytecode: ", depths.status().message()));
  }
  absl::Span<const Instruction> old_insts = original_.instructions();
  for (size_t i = 0; i < old_insts.size(); ++i) {
    int index = rewritten->IndexAt(old_insts[i].offset);
    if (index < 0) continue;  // inside a replaced slot's padding
    int before = original_depths_.depth_before[i];
    int after = depths->depth_before[index];
    if (before != kUnreachable && after != kUnreachable && before != after) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "bytecode offset %d: stack depth %d in the rewritten code, %d in the original",
          old_insts[i].offset, after, before));
    }
  }

  absl::StatusOr<std::vector<_Py_CODEUNIT>> units = Encode(instructions_);
  if (!units.ok()) return units.status();
  absl::StatusOr<int> stacksize = CodeIntAttribute(code_.obj(), "co_stacksize");
  if (!stacksize.ok()) return stacksize.status();
  std::string bytes = CodeUnitsToBytes(*units);

  Ref<> consts = Ref<>::Steal(PyTuple_New(static_cast<Py_ssize_t>(consts_.size())));
  if (!consts) return StatusFromPythonError("BuildCode: co_consts");
  for (size_t i = 0; i < consts_.size(); ++i) {
    PyTuple_SET_ITEM(consts.obj(), i, Ref<>(consts_[i]).Release());
  }
  Ref<> code_bytes = Ref<>::Steal(
      PyBytes_FromStringAndSize(bytes.data(), static_cast<Py_ssize_t>(bytes.size())));
  if (!code_bytes) return StatusFromPythonError("BuildCode: co_code");
  Ref<> result = Ref<>::Steal(compat::CodeWith(reinterpret_cast<PyCodeObject*>(code_.obj()),
                                               code_bytes.obj(), consts.obj(),
                                               std::max(*stacksize, depths->max_depth)));
  if (!result) return StatusFromPythonError("BuildCode: new code object");
  return result;
}

}  // namespace fatjit::bytecode
