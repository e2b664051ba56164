// The one place an absl::Status becomes a Python exception.
#ifndef FATJIT_EXT_STATUS_TO_PYTHON_H_
#define FATJIT_EXT_STATUS_TO_PYTHON_H_

#include "absl/status/status.h"
#include "base/python.h"

namespace fatjit {

// Sets a Python exception for a non-OK status (InvalidArgument and FailedPrecondition become
// ValueError, unless `type_error` asks for TypeError; anything else is a RuntimeError: a bug)
// and returns null.
inline PyObject* RaiseStatus(const absl::Status& status, bool type_error = false) {
  PyObject* exc = PyExc_RuntimeError;
  if (absl::IsInvalidArgument(status) || absl::IsFailedPrecondition(status)) {
    exc = type_error ? PyExc_TypeError : PyExc_ValueError;
  }
  std::string message(status.message());
  PyErr_SetString(exc, message.c_str());
  return nullptr;
}

}  // namespace fatjit

#endif  // FATJIT_EXT_STATUS_TO_PYTHON_H_
