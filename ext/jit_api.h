// fatjit._fatjit._jit_report(func): compile func's own code now, attach nothing, and report
// (for the stdlib coverage sweep and the compile-time figures).
#ifndef FATJIT_EXT_JIT_API_H_
#define FATJIT_EXT_JIT_API_H_

#include "base/python.h"

namespace fatjit {

// -> {"compiled": bool, "reason": str, "detail": str, "code_bytes": int, "compile_s": float,
//     "deopt_sites": int}
PyObject* JitReport(PyObject* module, PyObject* func);

}  // namespace fatjit

#endif  // FATJIT_EXT_JIT_API_H_
