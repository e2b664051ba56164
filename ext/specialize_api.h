// fatjit.specialize(func, code, guards), get_specialized, unspecialize, explain: the PEP 510 API.
#ifndef FATJIT_EXT_SPECIALIZE_API_H_
#define FATJIT_EXT_SPECIALIZE_API_H_

#include "base/python.h"
#include "base/ref.h"

namespace fatjit {

PyObject* Specialize(PyObject* module, PyObject* args, PyObject* kwargs);
// fatjit.specialize(func, assume=...) without code: the automatic specializer, at first call.
PyObject* SpecializeAuto(PyObject* module, PyObject* args, PyObject* kwargs);
// specialize_at_first_call(func, register): `register(func)` runs at func's next call, before
// the call's own code (Dispatch), and may call fatjit.specialize(func, ...); its errors are
// reported as unraisable. Replaces func's earlier pending one. For the AST import hook.
PyObject* SpecializeAtFirstCall(PyObject* module, PyObject* const* args, Py_ssize_t nargs);
PyObject* GetSpecialized(PyObject* module, PyObject* func);
PyObject* Unspecialize(PyObject* module, PyObject* func);
// explain(func, *, ir=False)
PyObject* Explain(PyObject* module, PyObject* args, PyObject* kwargs);

// Shared by the PEP 510 and automatic paths.
// `func` as a Python function, or null with a TypeError naming `api` and what `func` is.
PyFunctionObject* FunctionArgument(PyObject* func, const char* api);
// The frame pushed for `func` can run `code` in place of its own code object.
bool FitsFrame(PyFunctionObject* func, PyCodeObject* code);
// A function running `code` with func's globals, builtins and closure (the call path).
Ref<> WrapCode(PyFunctionObject* func, PyCodeObject* code);

}  // namespace fatjit

#endif  // FATJIT_EXT_SPECIALIZE_API_H_
