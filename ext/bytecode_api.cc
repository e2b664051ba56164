// fatjit._fatjit._round_trip(code) -> bool: the bytecode model's decode/re-encode check, for
// the Python tests (tests/python/test_bytecode_round_trip.py) that walk the standard library.
#include "ext/bytecode_api.h"

#include "specializer/bytecode/code_object.h"
#include "specializer/bytecode/decode.h"
#include "specializer/bytecode/encode.h"
#include "specializer/bytecode/exception_table.h"

namespace fatjit {

PyObject* RoundTrip(PyObject*, PyObject* code) {
  if (!PyCode_Check(code)) {
    PyErr_Format(PyExc_TypeError, "_round_trip: expected a code object, not %s",
                 Py_TYPE(code)->tp_name);
    return nullptr;
  }
  absl::StatusOr<bytecode::DecodedCode> decoded =
      bytecode::Decode(code, bytecode::CodeForm::kDeoptimized);
  if (!decoded.ok()) {
    PyErr_Format(PyExc_ValueError, "_round_trip: %s", std::string(decoded.status().message()).c_str());
    return nullptr;
  }
  absl::StatusOr<std::vector<_Py_CODEUNIT>> units = bytecode::Encode(decoded->instructions());
  absl::StatusOr<std::string> table = bytecode::EncodeExceptionTable(decoded->exception_table());
  if (!units.ok() || !table.ok()) {
    PyErr_SetString(PyExc_ValueError, "_round_trip: re-encoding failed");
    return nullptr;
  }
  absl::StatusOr<Ref<>> co_code = bytecode::CodeBytesAttribute(code, "co_code");
  absl::StatusOr<Ref<>> co_table = bytecode::CodeBytesAttribute(code, "co_exceptiontable");
  if (!co_code.ok() || !co_table.ok()) {
    PyErr_SetString(PyExc_ValueError, "_round_trip: cannot read co_code/co_exceptiontable");
    return nullptr;
  }
  bool same = bytecode::CodeUnitsToBytes(*units) == bytecode::BytesView(*co_code) &&
              *table == bytecode::BytesView(*co_table);
  return Py_NewRef(same ? Py_True : Py_False);
}

}  // namespace fatjit
