// fatjit._fatjit._jit_report(func): compile func's own code now, attach nothing, and report
// (for the stdlib coverage sweep and the compile-time figures).
#ifndef FATJIT_EXT_JIT_API_H_
#define FATJIT_EXT_JIT_API_H_

#include "base/python.h"

namespace fatjit {

// -> {"compiled": bool, "reason": str, "detail": str, "code_bytes": int, "compile_s": float,
//     "deopt_sites": int}
PyObject* JitReport(PyObject* module, PyObject* func);

// The background compiler thread (jit/compile_queue.h) seen from Python. fatjit/__init__.py
// registers _jit_shutdown with atexit and the fork functions with os.register_at_fork.
// fatjit.wait_for_compiles(): returns once no compile is queued or under way (tests,
// benchmarks that want native code before they time).
PyObject* JitShutdown(PyObject* module, PyObject* unused);
PyObject* JitBeforeFork(PyObject* module, PyObject* unused);
PyObject* JitAfterForkInParent(PyObject* module, PyObject* unused);
PyObject* JitAfterForkInChild(PyObject* module, PyObject* unused);
PyObject* WaitForCompiles(PyObject* module, PyObject* unused);

}  // namespace fatjit

#endif  // FATJIT_EXT_JIT_API_H_
