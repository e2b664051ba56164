// The automatic specializer from Python: fatjit.specialize(func) marks func; its first call
// runs specializer::SpecializeFunction (its module's globals are complete by then) and attaches
// the result as an ordinary specialization, so dispatch, explain and stats treat it like any
// other. A refusal is counted by reason and shown by explain().
#ifndef FATJIT_EXT_AUTO_SPECIALIZE_H_
#define FATJIT_EXT_AUTO_SPECIALIZE_H_

#include "base/python.h"
#include "ext/code_state.h"

namespace fatjit {

// Turns the pending automatic specialization state->specializations[index] of `func` into a
// real one, or drops it if the specializer refuses. Returns whether it is still there.
// Runs no user code (the specializer's contract); may raise only MemoryError, which it clears
// and counts as a refusal (the original code then runs).
bool MaterializePending(CodeState* state, size_t index, PyFunctionObject* func);

// fatjit._fatjit._specialize_report(func, *, assume="stable") -> dict: runs the specializer on
// func now and reports (refused, reason, detail, rewrites, active, guards, by_pass, code)
// without attaching anything. For tests, the stdlib sweep and benchmarks of the specializer.
PyObject* SpecializeReport(PyObject* module, PyObject* args, PyObject* kwargs);

}  // namespace fatjit

#endif  // FATJIT_EXT_AUTO_SPECIALIZE_H_
