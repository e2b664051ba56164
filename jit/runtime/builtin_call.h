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

#include <internal/pycore_ceval.h>  // _Py_EnterRecursiveCallTstate
#include <internal/pycore_pyerrors.h>  // _PyErr_Occurred

namespace fatjit::jit {
namespace builtin_call_internal {

inline constexpr char kWhere[] = " while calling a Python object";

// A METH_O / METH_NOARGS call: (self, arg) with the recursion check every such call makes.
inline PyObject* CallWithOneArgument(PyThreadState* tstate, PyCFunction cfunc, PyObject* self,
                                     PyObject* arg) {
  if (_Py_EnterRecursiveCallTstate(tstate, kWhere)) return nullptr;
  PyObject* result = cfunc(self, arg);
  _Py_LeaveRecursiveCallTstate(tstate);
  return result;
}

// METH_FASTCALL calls without a recursion check, as ceval's specialized PRECALL_*_FAST*
// instructions make them (the unspecialized vectorcall counts one level more): a hot function's
// calls then reach RecursionError at the depth the warmed-up interpreter does.
inline PyObject* CallFast(PyCFunction cfunc, PyObject* self, PyObject* const* args,
                          int64_t nargs) {
  return reinterpret_cast<_PyCFunctionFast>(reinterpret_cast<void (*)(void)>(cfunc))(self, args,
                                                                                    nargs);
}

inline PyObject* CallFastWithKeywords(PyCFunction cfunc, PyObject* self, PyObject* const* args,
                                      int64_t nargs, PyObject* kwnames) {
  return reinterpret_cast<_PyCFunctionFastWithKeywords>(
      reinterpret_cast<void (*)(void)>(cfunc))(self, args, nargs, kwnames);
}

}  // namespace builtin_call_internal

// args[0..total_args) are the positional arguments (self first for a method descriptor) and
// then the keyword values named by kwnames (a tuple, or null). If `callable` has one of the
// shapes above, calls it, stores its result in *result (null with an exception set on error)
// and returns true; references are neither taken nor released. Otherwise returns false.
// Inline: it runs at every call of a C function or method from native code, where a call of its
// own (prologue, epilogue, a second type check) cost a third of the path.
[[gnu::always_inline]] inline bool CallBuiltinDirectly(PyThreadState* tstate, PyObject* callable,
                                                     PyObject* const* args,
                                                     int64_t total_args, PyObject* kwnames,
                                                     PyObject** result) {
  // The C function's self, its arguments after self, and their count (keywords included).
  PyMethodDef* def;
  PyObject* self;
  if (Py_IS_TYPE(callable, &PyCFunction_Type)) {
    def = reinterpret_cast<PyCFunctionObject*>(callable)->m_ml;
    self = PyCFunction_GET_SELF(callable);
  } else if (Py_IS_TYPE(callable, &PyMethodDescr_Type)) {
    auto* descr = reinterpret_cast<PyMethodDescrObject*>(callable);
    if (total_args < 1 || !Py_IS_TYPE(args[0], descr->d_common.d_type)) return false;
    def = descr->d_method;
    self = args[0];
    ++args;
    --total_args;
  } else {
    return false;
  }
  const int64_t kwcount = kwnames == nullptr ? 0 : PyTuple_GET_SIZE(kwnames);
  if (kwcount > total_args) return false;  // self passed by keyword: the generic call says so
  PyObject* res;
  switch (def->ml_flags) {
    case METH_O:
      if (total_args != 1 || kwcount != 0) return false;
      res = builtin_call_internal::CallWithOneArgument(tstate, def->ml_meth, self, args[0]);
      break;
    case METH_NOARGS:
      if (total_args != 0 || kwcount != 0) return false;
      res = builtin_call_internal::CallWithOneArgument(tstate, def->ml_meth, self, nullptr);
      break;
    case METH_FASTCALL:
      if (kwcount != 0) return false;
      res = builtin_call_internal::CallFast(def->ml_meth, self, args, total_args);
      break;
    case METH_FASTCALL | METH_KEYWORDS:
      res = builtin_call_internal::CallFastWithKeywords(def->ml_meth, self, args,
                                                        total_args - kwcount, kwnames);
      break;
    default:
      return false;
  }
  // What PyObject_Vectorcall does with every result: a C function that returned NULL without an
  // exception, or a result with one set, becomes the same SystemError. The usual result (one or
  // the other) is told apart inline; only the odd one pays for the call.
  const bool as_expected = (res == nullptr) == (_PyErr_Occurred(tstate) != nullptr);
  *result = as_expected ? res : _Py_CheckFunctionResult(tstate, callable, res, nullptr);
  return true;
}

}  // namespace fatjit::jit

#endif  // FATJIT_JIT_RUNTIME_BUILTIN_CALL_H_
