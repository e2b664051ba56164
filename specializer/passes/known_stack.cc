// KnownStack and the helpers of rewrites built on known constants: see known_stack.h.
#include "specializer/passes/known_stack.h"

#include <algorithm>

#include "specializer/bytecode/code_object.h"
#include "specializer/bytecode/encode.h"
#include "specializer/bytecode/exception_table.h"
#include "specializer/bytecode/opcode_tables.h"

namespace fatjit::specializer {
namespace {

// The co_consts indices ApplyEdit will give the LOAD_CONSTs of a rewrite, in order: an identical
// object's index if there is one (original or added), else the next free one.
class ConstIndexPlan {
 public:
  explicit ConstIndexPlan(const SpecializationBuilder& builder) : builder_(builder) {
    while (ConstAt(count_) != nullptr) ++count_;
  }

  int IndexOf(PyObject* object) {
    for (int i = 0; i < count_; ++i) {
      if (ConstAt(i) == object) return i;
    }
    for (size_t i = 0; i < added_.size(); ++i) {
      if (added_[i] == object) return count_ + static_cast<int>(i);
    }
    added_.push_back(object);
    return count_ + static_cast<int>(added_.size()) - 1;
  }

 private:
  // The builder's constant `index` (borrowed), or null past the end. The builder answers for a
  // LOAD_CONST instruction; this asks it for one with that oparg.
  PyObject* ConstAt(int index) const {
    bytecode::Instruction load;
    load.opcode = load.base_opcode = LOAD_CONST;
    load.oparg = index;
    return builder_.ConstOf(load);
  }

  const SpecializationBuilder& builder_;
  int count_ = 0;
  std::vector<PyObject*> added_;
};

// Code units `inst` takes when placed at `pos` (prefixes, opcode, caches).
int PlacedSize(const bytecode::NewInstruction& inst, int oparg, int pos) {
  const int body = 1 + bytecode::CacheEntries(inst.opcode);
  if (inst.jump_target == bytecode::kNoTarget) return bytecode::ExtendedArgsFor(oparg) + body;
  for (int prefixes = 0; prefixes <= 3; ++prefixes) {
    int next = pos + prefixes + body;
    int distance = bytecode::IsBackwardJump(inst.opcode) ? next - inst.jump_target
                                                         : inst.jump_target - next;
    if (bytecode::ExtendedArgsFor(distance) <= prefixes) return prefixes + body;
  }
  return 1 << 20;  // does not fit anywhere
}

}  // namespace

void KnownStack::Apply(const bytecode::Instruction& inst, const SpecializationBuilder& builder) {
  switch (inst.base_opcode) {
    case NOP:
      return;
    case LOAD_CONST:
      entries_.push_back({builder.ConstOf(inst), inst.offset, false});
      if (entries_.back().object == nullptr) entries_.clear();  // a bad oparg: know nothing
      return;
    case PUSH_NULL:
      entries_.push_back({nullptr, inst.offset, false});
      return;
    case POP_TOP:
      if (!entries_.empty()) entries_.pop_back();
      return;
    case SWAP:
      if (inst.oparg <= size()) {
        std::swap(entries_.back(), entries_[entries_.size() - inst.oparg]);
      } else {
        entries_.clear();
      }
      return;
    case COPY:
      if (inst.oparg <= size()) {
        KnownValue& source = entries_[entries_.size() - inst.oparg];
        source.copied = true;
        entries_.push_back(source);
      } else {
        entries_.clear();
      }
      return;
    default:
      entries_.clear();
      return;
  }
}

absl::StatusOr<absl::flat_hash_set<int>> BlockStarts(const SpecializationBuilder& builder) {
  absl::flat_hash_set<int> starts = {0};
  for (const bytecode::Instruction& inst : builder.instructions()) {
    if (inst.is_jump()) starts.insert(inst.jump_target);
  }
  absl::StatusOr<Ref<>> table =
      bytecode::CodeBytesAttribute(builder.func()->func_code, "co_exceptiontable");
  if (!table.ok()) return table.status();
  absl::StatusOr<std::vector<bytecode::ExceptionTableEntry>> entries =
      bytecode::ParseExceptionTable(bytecode::BytesView(*table));
  if (!entries.ok()) return entries.status();
  for (const bytecode::ExceptionTableEntry& entry : *entries) {
    starts.insert(entry.start);
    starts.insert(entry.end);
    starts.insert(entry.target);
  }
  return starts;
}

const bytecode::Instruction* InstructionAt(const SpecializationBuilder& builder, int offset) {
  absl::Span<const bytecode::Instruction> insts = builder.instructions();
  auto it = std::lower_bound(insts.begin(), insts.end(), offset,
                             [](const bytecode::Instruction& i, int off) { return i.offset < off; });
  return it != insts.end() && it->offset == offset ? &*it : nullptr;
}

void BuildOnOperands(const SpecializationBuilder& builder, absl::Span<const KnownValue> operands,
                     Rewrite& rewrite) {
  auto edited = [&](int offset) {
    return std::any_of(rewrite.edits.begin(), rewrite.edits.end(),
                       [&](const SlotEdit& e) { return e.offset == offset; });
  };
  for (const KnownValue& operand : operands) {
    if (builder.ProducerOf(operand.pushed_by) < 0 || edited(operand.pushed_by)) continue;
    SlotEdit same;
    same.offset = operand.pushed_by;
    if (operand.is_null()) {
      same.code.push_back({PUSH_NULL, 0});
    } else {
      same.code.push_back({LOAD_CONST, 0});
      same.consts.push_back(Ref<>::Create(operand.object));
    }
    rewrite.edits.push_back(std::move(same));
  }
  std::sort(rewrite.edits.begin(), rewrite.edits.end(),
            [](const SlotEdit& a, const SlotEdit& b) { return a.offset < b.offset; });
  for (const SlotEdit& edit : rewrite.edits) {
    int producer = builder.ProducerOf(edit.offset);
    if (producer < 0) continue;
    for (int a : builder.rewrites()[producer].assumptions) {
      if (std::find(rewrite.assumptions.begin(), rewrite.assumptions.end(), a) ==
          rewrite.assumptions.end()) {
        rewrite.assumptions.push_back(a);
      }
    }
  }
}

bool EditsFit(const SpecializationBuilder& builder, const Rewrite& rewrite) {
  ConstIndexPlan plan(builder);
  for (const SlotEdit& edit : rewrite.edits) {
    const bytecode::Instruction* slot = InstructionAt(builder, edit.offset);
    if (slot == nullptr) return false;
    int pos = edit.offset;
    size_t next_const = 0;
    for (const bytecode::NewInstruction& inst : edit.code) {
      int oparg = inst.oparg;
      if (inst.opcode == LOAD_CONST) {
        if (next_const >= edit.consts.size()) return false;
        oparg = plan.IndexOf(edit.consts[next_const++].obj());
      }
      pos += PlacedSize(inst, oparg, pos);
    }
    if (pos > slot->next_offset()) return false;
  }
  return true;
}

}  // namespace fatjit::specializer
