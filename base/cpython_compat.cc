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

}  // namespace fatjit::compat
