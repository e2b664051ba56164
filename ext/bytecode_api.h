// Python access to the bytecode model, for tests: see bytecode_api.cc.
#ifndef FATJIT_EXT_BYTECODE_API_H_
#define FATJIT_EXT_BYTECODE_API_H_

#include "base/python.h"

namespace fatjit {

// _round_trip(code) -> True if decoding co_code and co_exceptiontable and encoding them again
// gives the same bytes. TypeError for a non-code object, ValueError if decoding fails.
PyObject* RoundTrip(PyObject* module, PyObject* code);

}  // namespace fatjit

#endif  // FATJIT_EXT_BYTECODE_API_H_
