// C functions and C methods called directly: see builtin_call.h for what it assumes and why it
// is sound.
#include "jit/runtime/builtin_call.h"

#include <internal/pycore_ceval.h>  // _Py_EnterRecursiveCallTstate

namespace fatjit::jit {
namespace {

constexpr const char kWhere[] = " while calling a Python object";

// A METH_O / METH_NOARGS call: (self, arg) with the recursion check every such call makes.
PyObject* CallWithOneArgument(PyThreadState* tstate, PyCFunction cfunc, PyObject* self,
                              PyObject* arg) {
  if (_Py_EnterRecursiveCallTstate(tstate, kWhere)) return nullptr;
  PyObject* result = cfunc(self, arg);
  _Py_LeaveRecursiveCallTstate(tstate);
  return result;
}

// METH_FASTCALL calls without a recursion check, as ceval's specialized PRECALL_*_FAST*
// instructions make them (the unspecialized vectorcall counts one level more): a hot function's
// calls then reach RecursionError at the depth the warmed-up interpreter does.
PyObject* CallFast(PyCFunction cfunc, PyObject* self, PyObject* const* args, int64_t nargs) {
  return reinterpret_cast<_PyCFunctionFast>(reinterpret_cast<void (*)(void)>(cfunc))(self, args,
                                                                                    nargs);
}

PyObject* CallFastWithKeywords(PyCFunction cfunc, PyObject* self, PyObject* const* args,
                               int64_t nargs, PyObject* kwnames) {
  return reinterpret_cast<_PyCFunctionFastWithKeywords>(
      reinterpret_cast<void (*)(void)>(cfunc))(self, args, nargs, kwnames);
}

}  // namespace

bool CallBuiltinDirectly(PyThreadState* tstate, PyObject* callable, PyObject* const* args,
                         int64_t total_args, PyObject* kwnames, PyObject** result) {
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
      res = CallWithOneArgument(tstate, def->ml_meth, self, args[0]);
      break;
    case METH_NOARGS:
      if (total_args != 0 || kwcount != 0) return false;
      res = CallWithOneArgument(tstate, def->ml_meth, self, nullptr);
      break;
    case METH_FASTCALL:
      if (kwcount != 0) return false;
      res = CallFast(def->ml_meth, self, args, total_args);
      break;
    case METH_FASTCALL | METH_KEYWORDS:
      res = CallFastWithKeywords(def->ml_meth, self, args, total_args - kwcount, kwnames);
      break;
    default:
      return false;
  }
  // What PyObject_Vectorcall does with every result: a C function that returned NULL without an
  // exception, or a result with one set, becomes the same SystemError.
  *result = _Py_CheckFunctionResult(tstate, callable, res, nullptr);
  return true;
}

}  // namespace fatjit::jit
