// Type feedback from inline caches: see type_feedback.h.
#include "specializer/type_feedback.h"

#include <internal/pycore_code.h>

#include "absl/strings/str_format.h"
#include "specializer/bytecode/code_object.h"
#include "specializer/bytecode/decode.h"
#include "specializer/bytecode/opcode_tables.h"

namespace fatjit::specializer {

std::string AttributeFeedback::Describe() const {
  return absl::StrFormat("offset %d %s type_version=%u index=%u", offset * 2, form, type_version,
                         index);
}

absl::StatusOr<std::vector<AttributeFeedback>> ReadAttributeFeedback(PyCodeObject* code) {
  absl::Span<const _Py_CODEUNIT> units = bytecode::LiveCodeUnits(code);
  absl::StatusOr<std::vector<bytecode::Instruction>> insts = bytecode::DecodeInstructions(units);
  if (!insts.ok()) return insts.status();
  std::vector<AttributeFeedback> feedback;
  for (const bytecode::Instruction& inst : *insts) {
    if (inst.opcode == inst.base_opcode) continue;  // not specialized (or adaptive is distinct)
    const int base = inst.base_opcode;
    if (base != LOAD_ATTR && base != STORE_ATTR && base != LOAD_METHOD) continue;
    const char* name = bytecode::OpcodeName(inst.opcode);
    if (std::string_view(name).ends_with("_ADAPTIVE")) continue;
    // The cache starts right after the opcode unit; the struct casts follow pycore_code.h.
    auto* cache = const_cast<_Py_CODEUNIT*>(&units[inst.opcode_offset() + 1]);
    AttributeFeedback site;
    site.offset = inst.offset;
    site.form = name;
    if (base == LOAD_METHOD) {
      auto* c = reinterpret_cast<_PyLoadMethodCache*>(cache);
      site.type_version = read_u32(c->type_version);
      site.index = read_u32(c->keys_version);
    } else {
      auto* c = reinterpret_cast<_PyAttrCache*>(cache);
      site.type_version = read_u32(c->version);
      site.index = c->index;
    }
    feedback.push_back(std::move(site));
  }
  return feedback;
}

}  // namespace fatjit::specializer
