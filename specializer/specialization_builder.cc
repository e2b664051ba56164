// SpecializationBuilder: see specialization_builder.h.
#include "specializer/specialization_builder.h"

#include <algorithm>

#include "absl/strings/str_format.h"
#include "specializer/bytecode/code_object.h"
#include "specializer/bytecode/opcode_tables.h"

namespace fatjit::specializer {

std::string Assumption::Describe() const {
  const char* name = PyUnicode_AsUTF8(key.obj());
  switch (kind) {
    case Kind::kGlobal:
      return absl::StrFormat("global %s", name);
    case Kind::kBuiltin:
      return absl::StrFormat("builtin %s", name);
    case Kind::kDictKey:
      return absl::StrFormat("attribute %s of a module", name);
    case Kind::kTypeAttribute:
      return absl::StrFormat("attribute %s of class %s", name,
                             reinterpret_cast<PyTypeObject*>(dict.obj())->tp_name);
  }
  return name;
}

absl::StatusOr<SpecializationBuilder> SpecializationBuilder::Create(PyFunctionObject* func) {
  absl::StatusOr<bytecode::BytecodeRewriter> rewriter =
      bytecode::BytecodeRewriter::Create(func->func_code);
  if (!rewriter.ok()) return rewriter.status();
  SpecializationBuilder builder(*std::move(rewriter));
  builder.func_ = func;
  absl::StatusOr<Ref<>> names = bytecode::CodeAttribute(func->func_code, "co_names");
  if (!names.ok()) return names.status();
  builder.names_ = *std::move(names);
  builder.producer_.assign(builder.rewriter_.original().code_units(), -1);
  return builder;
}

PyObject* SpecializationBuilder::Name(int index) const {
  if (index < 0 || index >= PyTuple_GET_SIZE(names_.obj())) return nullptr;
  return PyTuple_GET_ITEM(names_.obj(), index);
}

int SpecializationBuilder::ProducerOf(int offset) const {
  if (offset < 0 || offset >= static_cast<int>(producer_.size())) return -1;
  return producer_[offset];
}

int SpecializationBuilder::Assume(Assumption::Kind kind, PyObject* dict, PyObject* key,
                                  PyObject* value) {
  for (size_t i = 0; i < assumptions_.size(); ++i) {
    const Assumption& a = assumptions_[i];
    if (a.kind == kind && a.dict.obj() == dict && PyUnicode_Compare(a.key.obj(), key) == 0) {
      return static_cast<int>(i);
    }
  }
  assumptions_.push_back(
      {kind, Ref<>::Create(dict), Ref<>::Create(key), Ref<>::Create(value)});
  return static_cast<int>(assumptions_.size() - 1);
}

absl::Status SpecializationBuilder::ApplyEdit(bytecode::BytecodeRewriter& rewriter,
                                              const SlotEdit& edit) {
  std::vector<bytecode::NewInstruction> code = edit.code;
  size_t next_const = 0;
  for (bytecode::NewInstruction& inst : code) {
    if (inst.opcode != LOAD_CONST) continue;
    if (next_const >= edit.consts.size()) {
      return absl::InternalError("SlotEdit: a LOAD_CONST without its object");
    }
    inst.oparg = rewriter.AddConst(edit.consts[next_const++].obj());
  }
  return rewriter.Replace(edit.offset, code);
}

absl::Status SpecializationBuilder::Propose(Rewrite rewrite) {
  if (rewrite.edits.empty()) return absl::InternalError("a rewrite without edits");
  bytecode::BytecodeRewriter trial = rewriter_;
  std::vector<int> builds_on;
  std::vector<std::pair<int, int>> slots;  // [start, end) code units of each edited slot
  for (const SlotEdit& edit : rewrite.edits) {
    const bytecode::Instruction* inst = nullptr;
    for (const bytecode::Instruction& i : trial.instructions()) {
      if (i.offset == edit.offset) inst = &i;
    }
    if (inst == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s: no instruction at offset %d", rewrite.pass, edit.offset));
    }
    slots.emplace_back(inst->offset, inst->next_offset());
    for (int unit = inst->offset; unit < inst->next_offset(); ++unit) {
      int producer = producer_[unit];
      if (producer >= 0 &&
          std::find(builds_on.begin(), builds_on.end(), producer) == builds_on.end()) {
        builds_on.push_back(producer);
      }
    }
    absl::Status applied = ApplyEdit(trial, edit);
    if (!applied.ok()) return applied;
  }
  // Committed: the slots now belong to this rewrite.
  const int index = static_cast<int>(rewrites_.size());
  for (size_t e = 0; e < slots.size(); ++e) rewrite.edits[e].end = slots[e].second;
  for (const auto& [start, end] : slots) {
    for (int unit = start; unit < end; ++unit) producer_[unit] = index;
  }
  rewriter_ = std::move(trial);
  rewrite.builds_on = std::move(builds_on);
  rewrite.offset = rewrite.edits.front().offset;
  auto it = std::find_if(by_pass_.begin(), by_pass_.end(),
                         [&](const auto& entry) { return entry.first == rewrite.pass; });
  if (it == by_pass_.end()) {
    by_pass_.emplace_back(rewrite.pass, 1);
  } else {
    ++it->second;
  }
  rewrites_.push_back(std::move(rewrite));
  return absl::OkStatus();
}

absl::StatusOr<bytecode::BytecodeRewriter> SpecializationBuilder::Replay(
    const std::vector<bool>& use, const std::vector<SlotEdit>& extra) const {
  absl::StatusOr<bytecode::BytecodeRewriter> rewriter =
      bytecode::BytecodeRewriter::Create(func_->func_code);
  if (!rewriter.ok()) return rewriter.status();
  for (const SlotEdit& edit : extra) {
    absl::Status applied = ApplyEdit(*rewriter, edit);
    if (!applied.ok()) return applied;
  }
  for (size_t i = 0; i < rewrites_.size(); ++i) {
    if (!use[i]) continue;
    for (const SlotEdit& edit : rewrites_[i].edits) {
      absl::Status applied = ApplyEdit(*rewriter, edit);
      if (!applied.ok()) return applied;
    }
  }
  return rewriter;
}

}  // namespace fatjit::specializer
