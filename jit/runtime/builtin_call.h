// Calls of C functions and C methods from native code without the vectorcall detour: the same
// shapes CPython 3.11's specialized PRECALL instructions call directly (ceval.c,
// PRECALL_NO_KW_BUILTIN_O/_FAST, PRECALL_BUILTIN_FAST_WITH_KEYWORDS,
// PRECALL_NO_KW_METHOD_DESCRIPTOR_O/_NOARGS/_FAST, PRECALL_METHOD_DESCRIPTOR_FAST_WITH_KEYWORDS).
//
// Assumes: the GIL held, tracing off (native code deoptimizes when it is switched on, so CALL
// never runs under a profiler), and CALL's operands as runtime.h lays them out.
// Produces: for an exact builtin_function_or_method, and for a method_descriptor whose self
// (the first argument) is exactly of the descriptor's type, whose ml_flags are exactly METH_O
// (one argument after self), METH_NOARGS (none), METH_FASTCALL or METH_FASTCALL|METH_KEYWORDS,
// the C function's result. Every other callable, and those shapes with other argument counts or
// keywords where the shape takes none, are left to the caller (PyObject_Vectorcall).
// Why it is sound: these are the calls cfunction_vectorcall_* and method_vectorcall_* make once
// their argument checks pass, and the checks above are stricter than theirs (exact types,
// exact counts), so any call that could raise in those checks takes the ordinary path. The
// recursion depth is counted as the specialized instructions count it: one level for METH_O and
// METH_NOARGS, none for the FASTCALL shapes (the generic vectorcall counts one there too; native
// code runs hot functions, whose calls the interpreter has specialized, and counting one more
// made recursion through such a call, e.g. getattr() into __getattr__, fail at half the depth).
// The result is checked as PyObject_Vectorcall checks it (_Py_CheckFunctionResult: NULL without
// an exception, or a result with one set, is a SystemError naming the function).
#ifndef FATJIT_JIT_RUNTIME_BUILTIN_CALL_H_
#define FATJIT_JIT_RUNTIME_BUILTIN_CALL_H_

#include "base/python.h"

namespace fatjit::jit {

// args[0..total_args) are the positional arguments (self first for a method descriptor) and
// then the keyword values named by kwnames (a tuple, or null). If `callable` has one of the
// shapes above, calls it, stores its result in *result (null with an exception set on error)
// and returns true; references are neither taken nor released. Otherwise returns false.
bool CallBuiltinDirectly(PyThreadState* tstate, PyObject* callable, PyObject* const* args,
                         int64_t total_args, PyObject* kwnames, PyObject** result);

}  // namespace fatjit::jit

#endif  // FATJIT_JIT_RUNTIME_BUILTIN_CALL_H_
