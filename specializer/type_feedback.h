// Type feedback: what CPython's own specializing interpreter learned about attribute accesses,
// read from a code object's quickened instructions and their inline caches.
//
// Assumes CPython 3.11's quickened forms and cache layouts (pycore_code.h's _PyAttrCache and
// _PyLoadMethodCache). Produces, per specialized LOAD_ATTR/STORE_ATTR/LOAD_METHOD site, the form
// the interpreter chose and the receiver type version (and index) it cached. These are hints,
// not facts: a cache may be stale, so a consumer (the JIT) must guard on the type version exactly
// as the interpreter does before relying on one. The interpreted specializer records them only,
// for explain() and for the JIT tier.
#ifndef FATJIT_SPECIALIZER_TYPE_FEEDBACK_H_
#define FATJIT_SPECIALIZER_TYPE_FEEDBACK_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/python.h"

namespace fatjit::specializer {

struct AttributeFeedback {
  int offset = 0;              // the instruction's offset, in code units
  std::string form;            // the specialized opcode's name, e.g. LOAD_ATTR_INSTANCE_VALUE
  uint32_t type_version = 0;   // receiver type's tp_version_tag when the cache was filled
  uint32_t index = 0;          // LOAD_ATTR/STORE_ATTR: value, slot or hint index;
                               // LOAD_METHOD: the cached keys version (0 if none)
  std::string Describe() const;
};

// The attribute sites of `code` that the interpreter has specialized (empty while cold).
absl::StatusOr<std::vector<AttributeFeedback>> ReadAttributeFeedback(PyCodeObject* code);

}  // namespace fatjit::specializer

#endif  // FATJIT_SPECIALIZER_TYPE_FEEDBACK_H_
