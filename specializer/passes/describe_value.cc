// DescribeValue: see lookup.h. Only builtin types whose repr is computed by CPython itself.
#include "absl/strings/str_format.h"
#include "specializer/passes/lookup.h"

namespace fatjit::specializer {
namespace {

std::string Utf8(PyObject* str) {
  if (str == nullptr || !PyUnicode_Check(str)) return "?";
  const char* utf8 = PyUnicode_AsUTF8(str);
  if (utf8 == nullptr) {
    PyErr_Clear();
    return "?";
  }
  return utf8;
}

}  // namespace

std::string DescribeValue(PyObject* value) {
  bool scalar = value == Py_None || PyBool_Check(value) || PyLong_CheckExact(value) ||
                PyFloat_CheckExact(value) || PyComplex_CheckExact(value) ||
                (PyUnicode_CheckExact(value) && PyUnicode_GET_LENGTH(value) <= 40) ||
                (PyBytes_CheckExact(value) && PyBytes_GET_SIZE(value) <= 40);
  if (PyLong_CheckExact(value) && _PyLong_NumBits(value) > 128) scalar = false;
  if (scalar) {
    Ref<> repr = Ref<>::Steal(PyObject_Repr(value));
    if (repr) return Utf8(repr.obj());
    PyErr_Clear();
  }
  if (PyModule_CheckExact(value)) {
    Ref<> name = Ref<>::Steal(PyModule_GetNameObject(value));
    if (!name) PyErr_Clear();
    return absl::StrFormat("<module %s>", Utf8(name.obj()));
  }
  if (PyCFunction_Check(value)) {
    return absl::StrFormat("<built-in %s>", reinterpret_cast<PyCFunctionObject*>(value)->m_ml->ml_name);
  }
  if (PyFunction_Check(value)) {
    return absl::StrFormat("<function %s>",
                           Utf8(reinterpret_cast<PyFunctionObject*>(value)->func_qualname));
  }
  if (PyType_Check(value)) {
    return absl::StrFormat("<class %s>", reinterpret_cast<PyTypeObject*>(value)->tp_name);
  }
  return absl::StrFormat("<%s object>", Py_TYPE(value)->tp_name);
}

}  // namespace fatjit::specializer
