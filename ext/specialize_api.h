// fatjit.specialize(func, code, guards), get_specialized, unspecialize, explain: the PEP 510 API.
#ifndef FATJIT_EXT_SPECIALIZE_API_H_
#define FATJIT_EXT_SPECIALIZE_API_H_

#include "base/python.h"

namespace fatjit {

PyObject* Specialize(PyObject* module, PyObject* args, PyObject* kwargs);
PyObject* GetSpecialized(PyObject* module, PyObject* func);
PyObject* Unspecialize(PyObject* module, PyObject* func);
PyObject* Explain(PyObject* module, PyObject* func);

}  // namespace fatjit

#endif  // FATJIT_EXT_SPECIALIZE_API_H_
