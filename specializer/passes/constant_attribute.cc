// Shared by module_attributes and class_attributes: see constant_attribute.h.
#include "specializer/passes/constant_attribute.h"

#include "absl/strings/str_cat.h"
#include "specializer/bytecode/opcode_tables.h"
#include "specializer/passes/lookup.h"

namespace fatjit::specializer {

std::optional<AttributeSite> NextConstantAttribute(const SpecializationBuilder& builder,
                                                   size_t from, bool (*accept)(PyObject*)) {
  absl::Span<const bytecode::Instruction> insts = builder.instructions();
  for (size_t i = from; i < insts.size(); ++i) {
    if (insts[i].base_opcode != LOAD_CONST) continue;
    PyObject* object = builder.ConstOf(insts[i]);
    if (object == nullptr || !accept(object)) continue;
    size_t j = i + 1;
    while (j < insts.size() && insts[j].base_opcode == NOP) ++j;
    if (j >= insts.size()) break;
    const bytecode::Instruction& access = insts[j];
    if (access.base_opcode != LOAD_ATTR && access.base_opcode != LOAD_METHOD) continue;
    PyObject* name = builder.Name(access.oparg);
    if (name == nullptr || !PyUnicode_CheckExact(name)) continue;
    return AttributeSite{j, access.offset, access.base_opcode, access.line, object, name};
  }
  return std::nullopt;
}

absl::Status ProposeAttributeConstant(SpecializationBuilder& builder, const AttributeSite& site,
                                      const char* pass, std::string before, PyObject* value,
                                      int assumption) {
  Rewrite rewrite;
  rewrite.pass = pass;
  rewrite.line = site.line;
  rewrite.before = absl::StrCat(before, " (", bytecode::OpcodeName(site.access_opcode), ")");
  rewrite.after = absl::StrCat("LOAD_CONST ", DescribeValue(value));
  rewrite.assumptions.push_back(assumption);
  SlotEdit edit;
  edit.offset = site.access_offset;
  edit.code.push_back({POP_TOP, 0});
  if (site.access_opcode == LOAD_METHOD) edit.code.push_back({PUSH_NULL, 0});
  edit.code.push_back({LOAD_CONST, 0});
  edit.consts.push_back(Ref<>::Create(value));
  rewrite.edits.push_back(std::move(edit));
  return builder.Propose(std::move(rewrite));
}

}  // namespace fatjit::specializer
