// Code objects at the edge of the bytecode model: reading a code object's parts, and turning a
// Python exception into an absl::Status.
//
// Fields are read through the code object's Python attributes (co_code, co_exceptiontable,
// co_linetable, co_firstlineno, ...), which are stable across versions, so the bytecode model
// makes no struct access of its own. The single exception is the live, quickened bytecode,
// which has no attribute: LiveCodeUnits reads it with CPython's own _PyCode_CODE macro.
// Every function needs the GIL.
#ifndef FATJIT_SPECIALIZER_BYTECODE_CODE_OBJECT_H_
#define FATJIT_SPECIALIZER_BYTECODE_CODE_OBJECT_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "base/python.h"
#include "base/ref.h"

namespace fatjit::bytecode {

// Fetches and clears the pending Python exception; returns an Internal status naming `what`
// and the exception ("what: TypeError: ..."). Internal with "no exception set" if none is.
absl::Status StatusFromPythonError(const std::string& what);

// code.<name> (a new reference). InvalidArgument if `code` is not a code object.
absl::StatusOr<Ref<>> CodeAttribute(PyObject* code, const char* name);
// code.<name>, which must be a bytes object.
absl::StatusOr<Ref<>> CodeBytesAttribute(PyObject* code, const char* name);
// code.<name> as a C int.
absl::StatusOr<int> CodeIntAttribute(PyObject* code, const char* name);

// The bytes of a bytes object, valid while `bytes` lives.
std::string_view BytesView(const Ref<>& bytes);

// The code units the interpreter executes: quickened once the code warmed up, with inline
// caches filled in. Borrowed from `code`; valid while it lives. Other threads may rewrite
// them while the GIL is released.
absl::Span<const _Py_CODEUNIT> LiveCodeUnits(PyCodeObject* code);

}  // namespace fatjit::bytecode

#endif  // FATJIT_SPECIALIZER_BYTECODE_CODE_OBJECT_H_
