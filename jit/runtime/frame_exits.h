// Frame-level helpers of native code: entering and leaving a frame, and the two ways of handing
// it to the interpreter mid-function.
//
// Native code runs on a frame the caller pushed and the interpreter would have run. To keep
// every observer right (sys._getframe, tracebacks, f_lineno, the recursion limit), it does what
// _PyEval_EvalFrameDefault does on entry and exit, minus the _PyCFrame of its own: it links the
// frame as tstate->cframe->current_frame and counts one level of recursion.
//
// Handing over: fatjit_rt_deopt and fatjit_rt_raise first undo the entry (unlink, recursion
// level returned), then write the stack depth (the slots are already in the frame) and
// prev_instr, and call _PyEval_EvalFrameDefault, which re-enters the frame exactly as it enters
// a frame resumed mid-code and returns what the function returns. With throwflag = 1 it takes
// the pending exception as raised by the instruction at prev_instr: it adds the traceback entry,
// runs the frame's own handlers through the exception table, or unwinds (DESIGN.md, "Frames,
// native code and deopt").
#ifndef FATJIT_JIT_RUNTIME_FRAME_EXITS_H_
#define FATJIT_JIT_RUNTIME_FRAME_EXITS_H_

#include <cstdint>

#include "base/python.h"
#include "jit/native_code.h"

namespace fatjit {
class GuardSet;
}

extern "C" {

// Entry: counts the recursion level (RecursionError at the interpreter's depth) and links the
// frame. 0, or -1 with RecursionError set and nothing to undo.
int64_t fatjit_rt_enter(PyThreadState* tstate, _PyInterpreterFrame* frame);
// An exception is set, raised by the instruction whose opcode unit is at `opcode_offset`, with
// `depth` values on the stack: the interpreter unwinds from there. Returns its result.
PyObject* fatjit_rt_raise(PyThreadState* tstate, _PyInterpreterFrame* frame, int64_t depth,
                          int64_t opcode_offset);
// Resumes the interpreter at site->target with site->depth values on the stack.
PyObject* fatjit_rt_deopt(PyThreadState* tstate, _PyInterpreterFrame* frame,
                          fatjit::jit::DeoptSite* site);
// The shared exit of helper calls: with an exception set, fatjit_rt_raise at the site's
// instruction and error depth; otherwise fatjit_rt_deopt to the site (tracing went on), or,
// with tracing off, ceval's SystemError for a helper that failed without an exception.
PyObject* fatjit_rt_exit(PyThreadState* tstate, _PyInterpreterFrame* frame,
                         fatjit::jit::DeoptSite* site);
// Raises UnboundLocalError for localsplus[index] as LOAD_FAST does. Returns -1.
int64_t fatjit_rt_unbound_local(PyThreadState* tstate, _PyInterpreterFrame* frame, int64_t index);
// The eval breaker was set at a back-edge: runs pending signal handlers and calls, and lets
// another thread take the GIL if it asked. 0: continue; -1: an exception (a signal handler
// raised); 1: something only the interpreter handles is pending (an asynchronous exception):
// deopt to the back-edge.
int64_t fatjit_rt_eval_breaker(PyThreadState* tstate);
// 1 if every guard of `guards` holds for the frame's current parameter values, else 0. Runs no
// Python code.
int64_t fatjit_rt_guards_hold(fatjit::GuardSet* guards, _PyInterpreterFrame* frame,
                              int64_t nparams);

}  // extern "C"

#endif  // FATJIT_JIT_RUNTIME_FRAME_EXITS_H_
