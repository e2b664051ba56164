// fatjit.replace_consts(code, mapping): FAT Python's helper, in C++ so that neither automatic
// mode's AST hook (which calls it for every specialized function of a cached module) nor a user
// pays for loading a Python module to get it.
#ifndef FATJIT_EXT_REPLACE_CONSTS_H_
#define FATJIT_EXT_REPLACE_CONSTS_H_

#include "base/python.h"

namespace fatjit {

// replace_consts(code, mapping) -> a copy of `code` (as code.replace(co_consts=...)) whose
// constants found in `mapping` are replaced by their values, which may be any object. A constant
// matches a key of the same exact type that compares equal (1, 1.0 and True are distinct keys).
// Nested code objects are left alone. TypeError for a non-code `code` or a non-dict `mapping`;
// an unhashable constant simply matches nothing.
PyObject* ReplaceConsts(PyObject* module, PyObject* const* args, Py_ssize_t nargs);

}  // namespace fatjit

#endif  // FATJIT_EXT_REPLACE_CONSTS_H_
