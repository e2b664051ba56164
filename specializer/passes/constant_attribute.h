// What module_attributes and class_attributes share: finding `LOAD_CONST <object>; NOP...;
// LOAD_ATTR|LOAD_METHOD name` and turning the access into `POP_TOP; [PUSH_NULL;] LOAD_CONST
// <value>`. The object stays loaded, so the stack at the access's offset is the original's
// (invariant 4), and popping a constant runs no code (entry_stability.h). 3.11's LOAD_METHOD on
// a module or a class (neither uses the generic getattro) pushes NULL then the attribute.
#ifndef FATJIT_SPECIALIZER_PASSES_CONSTANT_ATTRIBUTE_H_
#define FATJIT_SPECIALIZER_PASSES_CONSTANT_ATTRIBUTE_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "specializer/specialization_builder.h"

namespace fatjit::specializer {

struct AttributeSite {
  size_t access_index = 0;  // of the LOAD_ATTR/LOAD_METHOD in builder.instructions()
  int access_offset = 0;
  int access_opcode = 0;
  int line = -1;
  PyObject* object = nullptr;  // borrowed: the constant
  PyObject* name = nullptr;    // borrowed: an exact str
};

// The first site at or after instruction `from` whose constant satisfies `accept`.
std::optional<AttributeSite> NextConstantAttribute(const SpecializationBuilder& builder,
                                                   size_t from, bool (*accept)(PyObject*));

// Proposes the rewrite of `site`'s access into a load of `value` under `assumption`.
absl::Status ProposeAttributeConstant(SpecializationBuilder& builder, const AttributeSite& site,
                                      const char* pass, std::string before, PyObject* value,
                                      int assumption);

}  // namespace fatjit::specializer

#endif  // FATJIT_SPECIALIZER_PASSES_CONSTANT_ATTRIBUTE_H_
