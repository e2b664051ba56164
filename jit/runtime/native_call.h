// Native-to-native calls: CALL of a plain Python function (and LOAD_ATTR of a property whose
// getter is one, attr_cache.h) pushes the callee's frame itself and, when the callee has native
// code whose guards pass, runs that code directly.
//
// Assumes: CPython 3.11's frame layout (pycore_frame.h), the GIL held, and a caller that is
// native code running on a thread-owned frame (prev_instr at the CALL, as runtime.h requires).
// Produces: for an exact PyFunction whose code has no *args, **kwargs, is not a generator or
// coroutine and is CO_OPTIMIZED, called with arguments that bind without error (positional ones
// up to co_argcount, keywords naming distinct parameters after the positional-only ones and not
// given positionally, every other parameter with a default in func_defaults or, matched by
// identity, func_kwdefaults), the call that PyObject_Vectorcall -> _PyFunction_Vectorcall ->
// _PyEval_Vector makes:
//   - the frame push of _PyEvalFramePushAndInit (_PyThreadState_BumpFramePointer, with
//     push_chunk's new chunk when the current one is full, _PyFrame_InitializeSpecials,
//     initialize_locals for such arguments); if no memory is left nothing is touched and the
//     caller takes the ordinary path;
//   - _PyEval_EvalFrame(tstate, frame, 0), except that when the installed resolver (ext/'s
//     dispatcher) says the PEP 523 hook would run a native entry on this fresh frame, the entry
//     is called directly (no hook, no dispatch loop);
//   - _PyEvalFrameClearAndPop: _PyFrame_Clear (with frame.c's take_ownership when a frame object
//     outlives the call) and _PyThreadState_PopFrame (which keeps a chunk the call pushed as
//     the thread's spare for the next one instead of freeing it).
// Why it is sound: the callee sees the frame _PyEval_Vector would have pushed, bit for bit, and
// the same eval function runs it unless the resolver returns exactly what the hook would pick;
// the resolver runs no Python code and leaves every case with a side effect (a dead owner, a
// pending specialization, a failing guard, tracing) to the hook. Recursion depth is counted by
// whoever runs the frame (the native entry's fatjit_rt_enter, or the interpreter), as before.
// Deopts and exceptions in the callee hand the frame to _PyEval_EvalFrameDefault as they would
// on a frame pushed by _PyEval_Vector (frame_exits.h); the clear and pop below run after it.
#ifndef FATJIT_JIT_RUNTIME_NATIVE_CALL_H_
#define FATJIT_JIT_RUNTIME_NATIVE_CALL_H_

#include <memory>

#include "base/python.h"
#include "jit/native_code.h"
#include "jit/runtime/call_cache.h"

namespace fatjit::jit {

// Given a fresh frame just pushed for a call (arguments bound in localsplus, prologue not run),
// fills *target and returns true when the PEP 523 hook would run native code on it right now;
// false when the hook must decide (or would run something else). Runs no Python code and raises
// nothing. When it returns true, it has counted the run as the hook would have (stats, the
// code's calls); the caller pins the code (NativeCode::Enter/Leave) around the call before
// anything else runs. What it answers may change only when the direct-call epoch changes.
using DirectCallResolver = bool (*)(PyThreadState* tstate, _PyInterpreterFrame* frame,
                                    DirectCallTarget* target);

// Installed by ext/ while `hook` is the PEP 523 hook; null turns direct calls off (the
// ordinary call path).
void SetDirectCallResolver(DirectCallResolver resolver, _PyFrameEvalFunction hook);

// slots[0] is the callable (an owned reference), slots[1..nargs] the arguments (owned), the
// last len(kwnames) of them keyword values when kwnames (a tuple of str) is not null. If the call
// qualifies (see the top of this file) it is made: every slot is consumed and nulled, *result is
// the call's result (null with an exception set on error), and the function returns true.
// Otherwise it returns false and touches nothing. `cache`, when given, is refilled when the
// resolver answers for a call with positional arguments only.
bool TryDirectCall(PyThreadState* tstate, PyObject** slots, int64_t nargs, PyObject* kwnames,
                   PyObject** result, DirectCallCache* cache = nullptr);

// TryDirectCall for a call with positional arguments only through `entry`, the cache's entry
// for the callee's code object, when it still holds for this call (call_cache.h): the same
// frame, the same native code, the same counts, without the resolver. False: nothing touched.
bool CallThroughCacheEntry(PyThreadState* tstate, const DirectCallCache::Entry& entry,
                           PyObject** slots, int64_t nargs, PyObject** result);
// The same, finding the entry first; inline so that a miss costs a few compares.
inline bool CallThroughCache(PyThreadState* tstate, const DirectCallCache& cache,
                             PyObject** slots, int64_t nargs, PyObject** result) {
  if (!Py_IS_TYPE(slots[0], &PyFunction_Type)) return false;
  const DirectCallCache::Entry* entry =
      cache.Find(reinterpret_cast<PyFunctionObject*>(slots[0])->func_code);
  return entry != nullptr && CallThroughCacheEntry(tstate, *entry, slots, nargs, result);
}

// The state native code reads to make a cached direct call inline (FunctionCompiler's
// InlineDirectCall, which checks in IR what CallThroughCacheEntry checks in C++): the hook the
// resolver answers for (null while direct calls are off).
const _PyFrameEvalFunction* DirectCallHookSlot();

// The inline direct call's helpers. Guards of `guards` on args[0..nargs): 1 when they all
// pass, else 0 (the call then takes the ordinary path). Runs no Python code.
extern "C" int64_t fatjit_rt_direct_call_guards(GuardSet* guards, PyObject** args, int64_t nargs);
// After native code pushed and filled the callee's frame as CallThroughCacheEntry does, ran the
// callee's code (pinned, counted) and unpinned it: NativeCode::Unpinned when the pin count it
// left is zero, then _PyEvalFrameClearAndPop of the callee's frame.
extern "C" void fatjit_rt_unpinned(NativeCode* native);
extern "C" void fatjit_rt_clear_and_pop_frame(PyThreadState* tstate, _PyInterpreterFrame* frame);

// CALL without KW_NAMES through the site's cache; otherwise exactly fatjit_rt_CALL (runtime.h).
extern "C" int64_t fatjit_rt_CALL_CACHED(PyThreadState* tstate, _PyInterpreterFrame* frame,
                                         PyObject** sp, int64_t oparg, DirectCallCache* cache);

}  // namespace fatjit::jit

#endif  // FATJIT_JIT_RUNTIME_NATIVE_CALL_H_
