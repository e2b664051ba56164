// Out-of-line parts of the CPython 3.11 compatibility layer.
#include "base/cpython_compat.h"

namespace fatjit::compat {

uint32_t EnsureTypeVersion(PyTypeObject* tp) {
  if (!TypeHasValidVersion(tp)) {
    // 3.11 has no exported "assign version" call; _PyType_Lookup assigns one (as the
    // interpreter's method cache does) when the name is cacheable, as an interned str is.
    static PyObject* probe = PyUnicode_InternFromString("__fatjit_version_probe__");
    if (probe == nullptr) {
      PyErr_Clear();
      return 0;
    }
    (void)_PyType_Lookup(tp, probe);
  }
  return TypeHasValidVersion(tp) ? tp->tp_version_tag : 0;
}

PyObject* CodeWith(PyCodeObject* code, PyObject* co_code, PyObject* co_consts, int stacksize) {
  PyObject* own_code = nullptr;
  if (co_code == nullptr) {
    own_code = PyCode_GetCode(code);
    if (own_code == nullptr) return nullptr;
    co_code = own_code;
  }
  PyObject* varnames = PyCode_GetVarnames(code);
  PyObject* cellvars = PyCode_GetCellvars(code);
  PyObject* freevars = PyCode_GetFreevars(code);
  PyObject* result = nullptr;
  if (varnames != nullptr && cellvars != nullptr && freevars != nullptr) {
    result = reinterpret_cast<PyObject*>(PyCode_NewWithPosOnlyArgs(
        code->co_argcount, code->co_posonlyargcount, code->co_kwonlyargcount, code->co_nlocals,
        stacksize >= 0 ? stacksize : code->co_stacksize, code->co_flags, co_code,
        co_consts != nullptr ? co_consts : code->co_consts, code->co_names, varnames, freevars,
        cellvars, code->co_filename, code->co_name, code->co_qualname, code->co_firstlineno,
        code->co_linetable, code->co_exceptiontable));
  }
  Py_XDECREF(own_code);
  Py_XDECREF(varnames);
  Py_XDECREF(cellvars);
  Py_XDECREF(freevars);
  return result;
}

}  // namespace fatjit::compat
