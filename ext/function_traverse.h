// Shows the cycle collector what fatjit keeps for a function.
//
// fatjit's state for a code object lives in its co_extra slot (code_state.h), and the collector
// does not track code objects, so every reference that state holds looked external to it: a
// specialized code object's constants (the module's globals, made constants), guards holding
// the globals dict, native code's embedded objects. A namespace dropped after its functions were
// specialized (an exec'd module, a reloaded one, a test's module) formed the cycle
// globals -> function -> code -> co_extra -> constants/guards -> globals and was never freed;
// objects only a specialization kept alive were freed one collection late.
//
// InstallFunctionTraverse wraps the function type's tp_traverse: after the function's own
// references it visits those of its code object's fatjit state, when that state belongs to the
// function alone. See function_traverse.cc for why the collector's accounting stays exact.
#ifndef FATJIT_EXT_FUNCTION_TRAVERSE_H_
#define FATJIT_EXT_FUNCTION_TRAVERSE_H_

namespace fatjit {

// Once, at module init. Never fails.
void InstallFunctionTraverse();

}  // namespace fatjit

#endif  // FATJIT_EXT_FUNCTION_TRAVERSE_H_
