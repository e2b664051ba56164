// The automatic specializer from Python: fatjit.specialize(func) marks func; its first call
// runs specializer::SpecializeFunction (its module's globals are complete by then) and attaches
// the result as an ordinary specialization, so dispatch, explain and stats treat it like any
// other. A refusal is counted by reason and shown by explain().
#ifndef FATJIT_EXT_AUTO_SPECIALIZE_H_
#define FATJIT_EXT_AUTO_SPECIALIZE_H_

#include "base/python.h"
#include "ext/code_state.h"

namespace fatjit {

// Gives `func` (a Python function whose code has `state`) a pending automatic specialization,
// replacing its earlier automatic one. Dropping that one can run arbitrary code (__del__).
// False with an exception set on failure (out of memory).
// With `jit_background`, MaterializePending hands codegen to the background compiler thread.
// With `code_level_if_unchanged` (automatic mode), a function whose bytecode the specializer
// leaves unchanged gets no specialization: its code object is compiled as code-level native
// code (code_state.h), shared by every function on that code object.
bool AddPendingAutomatic(CodeState* state, PyObject* func, specializer::Assume assume,
                         bool jit, bool jit_background = false,
                         bool code_level_if_unchanged = false);

// Turns the pending automatic specialization state->specializations[*index] of `func` into a
// real one, or drops it if the specializer refuses (then, if the JIT was requested, the code is
// compiled: per function, or at code level for automatic mode's attempts). Returns whether it
// is still there, at *index. Runs no user code of its own (the specializer's contract), but allocating can run the
// garbage collector, and with it finalizers and other threads: meanwhile the specialization is
// marked `materializing` (the dispatcher runs the original code instead of waiting for it), and
// the vector may change; *index is where it is found afterwards. May raise only MemoryError,
// which it clears and counts as a refusal (the original code then runs). The time the
// specializer takes is added to stats()["specialize_time_s"]; FATJIT_LOG's specialize and refuse
// events report here.
// `args`: the calling frame's arguments (hints for the JIT, see CompileRequest), or null.
bool MaterializePending(CodeState* state, size_t* index, PyFunctionObject* func,
                        PyObject* const* args = nullptr);

// Automatic mode compiles caller-supplied code too (fatjit.specialize(func, code, guards), the
// AST import hook's registrations): a specialization that swaps in a code object of the
// caller's, once it has run JitThreshold() times (loop time counting as runs, auto_mode.h), is
// compiled as automatic mode compiles (on the background thread unless JitBackground() is off;
// then tiered up). Its native code swaps the frame's code itself and exits and deopts into that
// code (jit::CompileRequest::entered_with): exactly what the interpreter ran before. Its guards
// are the caller's, checked at entry as before; nothing is re-checked mid-function, as nothing
// is when the interpreter runs it. `spec` is state->specializations[index], with code and
// without native code; `args` the frame's arguments (hints). Compiling allocates, so the
// collector may drop the specialization: returns it as found afterwards, or null.
Specialization* CompileGivenCode(CodeState* state, size_t index, PyFunctionObject* func,
                                 PyObject* const* args);

// Kind feedback (jit/kind_feedback.h): native code whose numeric loops kept failing their entry
// with parameters of other kinds than its compile's hints asks (NativeCode::recompile_wanted)
// to be compiled again with the kinds seen. The dispatcher calls these at the next call, which
// then runs the code it has (the new code replaces it when the background thread is done).
// They clear the request, and queue the compile unless the function (or code object) was
// recompiled for kinds kMaxKindRecompiles times already: a function called with ints and floats
// in turn would otherwise be compiled for ever. Lowering allocates, so the garbage collector may
// run and drop `spec`: the caller must find it again.
inline constexpr int kMaxKindRecompiles = 2;
void RecompileForKinds(PyFunctionObject* func, Specialization* spec);
// `globals`: those of the function whose call asks (borrowed), for the compile's hints.
void RecompileCodeLevelForKinds(PyCodeObject* code, CodeState* state, PyObject* globals);

// fatjit._fatjit._specialize_report(func, *, assume="stable") -> dict: runs the specializer on
// func now and reports (refused, reason, detail, rewrites, active, guards, by_pass, code)
// without attaching anything. For tests, the stdlib sweep and benchmarks of the specializer.
PyObject* SpecializeReport(PyObject* module, PyObject* args, PyObject* kwargs);

}  // namespace fatjit

#endif  // FATJIT_EXT_AUTO_SPECIALIZE_H_
