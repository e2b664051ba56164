// Reading code objects for the bytecode model (see code_object.h).
#include "specializer/bytecode/code_object.h"

#include "absl/strings/str_cat.h"

namespace fatjit::bytecode {

static_assert(sizeof(_Py_CODEUNIT) == 2, "3.11 code units are 2 bytes: opcode and oparg");

absl::Status StatusFromPythonError(const std::string& what) {
  if (!PyErr_Occurred()) return absl::InternalError(absl::StrCat(what, ": no exception set"));
  PyObject *type, *value, *traceback;
  PyErr_Fetch(&type, &value, &traceback);
  PyErr_NormalizeException(&type, &value, &traceback);
  Ref<> type_ref = Ref<>::Steal(type);
  Ref<> value_ref = Ref<>::Steal(value);
  Ref<> traceback_ref = Ref<>::Steal(traceback);
  std::string message = absl::StrCat(what, ": ");
  if (type != nullptr) absl::StrAppend(&message, reinterpret_cast<PyTypeObject*>(type)->tp_name);
  if (value != nullptr) {
    Ref<> text = Ref<>::Steal(PyObject_Str(value));
    const char* utf8 = text ? PyUnicode_AsUTF8(text.obj()) : nullptr;
    if (utf8 != nullptr) absl::StrAppend(&message, ": ", utf8);
    PyErr_Clear();
  }
  return absl::InternalError(message);
}

absl::StatusOr<Ref<>> CodeAttribute(PyObject* code, const char* name) {
  if (code == nullptr || !PyCode_Check(code)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "expected a code object, got ", code ? Py_TYPE(code)->tp_name : "NULL"));
  }
  Ref<> value = Ref<>::Steal(PyObject_GetAttrString(code, name));
  if (!value) return StatusFromPythonError(absl::StrCat("code.", name));
  return value;
}

absl::StatusOr<Ref<>> CodeBytesAttribute(PyObject* code, const char* name) {
  absl::StatusOr<Ref<>> value = CodeAttribute(code, name);
  if (value.ok() && !PyBytes_Check(value->obj())) {
    return absl::InvalidArgumentError(absl::StrCat("code.", name, " is not bytes"));
  }
  return value;
}

absl::StatusOr<int> CodeIntAttribute(PyObject* code, const char* name) {
  absl::StatusOr<Ref<>> value = CodeAttribute(code, name);
  if (!value.ok()) return value.status();
  int result = _PyLong_AsInt(value->obj());
  if (result == -1 && PyErr_Occurred()) {
    return StatusFromPythonError(absl::StrCat("code.", name));
  }
  return result;
}

std::string_view BytesView(const Ref<>& bytes) {
  return std::string_view(PyBytes_AS_STRING(bytes.obj()), PyBytes_GET_SIZE(bytes.obj()));
}

absl::Span<const _Py_CODEUNIT> LiveCodeUnits(PyCodeObject* code) {
  return absl::Span<const _Py_CODEUNIT>(_PyCode_CODE(code),
                                        static_cast<size_t>(Py_SIZE(code)));
}

}  // namespace fatjit::bytecode
