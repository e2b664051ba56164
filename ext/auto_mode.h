// Automatic mode: the hot functions of an unchanged program get the automatic specializer.
//
// While it is on (fatjit.enable(), FATJIT=auto, python -m fatjit) the dispatcher hook stays
// installed and counts the fresh calls of each code object that has no specialization yet, in
// its CodeState (created at its first counted call: one allocation per code object, none per
// call). The call that reaches the threshold gives the frame's function a pending automatic
// specialization (assume="stable"), which the dispatcher materializes at that same call: the
// path fatjit.specialize(func) takes at a first call.
//
// Assumes: the GIL is held; the main interpreter (enable() and disable() refuse
// sub-interpreters: the hook and the co_extra slot are per interpreter, fatjit's state is per
// process; a sub-interpreter's frames never reach the hook, which is the main interpreter's).
// Counts: calls of function code (CO_OPTIMIZED) whose frame starts fresh, owned by the thread.
// Not counted: resumed generators and coroutines, throw(), module and class bodies, exec of
// module code (their code has no CO_OPTIMIZED; 3.11 gives such frames a throwaway function).
// Retries: an attempt, refused or made and later dropped (a guard failed for good, the
// function died), is followed by another only after kRetryBackoff times as many calls as the
// previous wait, and after kMaxAttempts none (tuning.h).
// Why sound: it adds exactly what fatjit.specialize(func) adds, whose guards are checked at
// every call; the specializer runs no user code, so counting and specializing never change
// what the program computes.
#ifndef FATJIT_EXT_AUTO_MODE_H_
#define FATJIT_EXT_AUTO_MODE_H_

#include <string>

#include "base/cpython_compat.h"
#include "base/python.h"
#include "ext/code_state.h"
#include "ext/stats.h"

namespace fatjit {

namespace internal {
inline bool g_auto_mode_on = false;
// The out-of-line part of CountCall: a code object without a CodeState, a counter not started
// or run out, an attempt.
bool CountCallSlow(CodeState* state, _PyInterpreterFrame* frame);
}  // namespace internal

inline bool AutoModeOn() { return internal::g_auto_mode_on; }

// Counts a call that reached the dispatcher while automatic mode is on, for a code object with
// no specialization (`state` may be null: none yet). True when this call made the function
// hot and a pending automatic specialization was added to the code's state, for the
// dispatcher to materialize now. Never raises.
inline bool CountCall(CodeState* state, _PyInterpreterFrame* frame, int throwflag) {
  if (throwflag || !compat::FrameOwnedByThread(frame) || !compat::FrameAtStart(frame)) {
    return false;  // a resumed generator or coroutine: not a call
  }
  if (state != nullptr && state->calls_until_attempt > 1) {
    --state->calls_until_attempt;
    ++GlobalStats().calls_counted;
    return false;
  }
  return internal::CountCallSlow(state, frame);
}

// Caller-supplied code (a PEP 510 specialization swapping in the caller's code object, the AST
// hook's) is counted per specialization instead, and compiled once hot (auto_specialize.h,
// CompileGivenCode).
//
// Loop time counts as calls. Automatic mode's counter only sees calls, so a function called a
// few times whose loops run long would never get hot (there is no on-stack replacement: README
// "Automatic mode"). For a code object with a backward jump, still counting, the dispatcher
// times each interpreted call and takes one call off the counter per tuning::kLoopTimePerCall
// of it (inclusive of its callees), down to 1: the next call then makes the attempt. So a
// function whose calls ran long enough is specialized and compiled for its next call.
// Reads the clock twice per such call (~40 ns), only until the attempt.
bool TimesItsCalls(CodeState* state, PyCodeObject* code);  // false once no longer counting
void CreditLoopTime(CodeState* state, int64_t elapsed_ns);
// The same for a caller-supplied specialization's runs before its compile (CompileGivenCode),
// which waits JitThreshold() runs, scaled with the size of its code as attempts are.
int32_t RunsBeforeCompile(PyCodeObject* code);
bool TimesItsRuns(Specialization* spec);
void CreditLoopTime(Specialization* spec, int64_t elapsed_ns);

// The threshold in force: FATJIT_SPECIALIZE_THRESHOLD or enable()'s argument, read at enable().
int32_t SpecializeThreshold();
// The JIT threshold: FATJIT_JIT_THRESHOLD or enable(jit_threshold=), read at enable()
// (tuning::kDefaultJitThreshold when neither is given); -1 when automatic mode does not compile
// ("off").
int32_t JitThreshold();
// Automatic mode compiles what it specializes: a JIT threshold is set, and no higher than the
// specialize threshold. A function is attempted at min(specialize threshold, JIT threshold)
// calls; an attempt that comes earlier than the JIT threshold (FATJIT_SPECIALIZE_THRESHOLD=0
// with the default JIT threshold) only specializes, so that a low specialize threshold never
// makes every function a compile.
inline bool JitRequested() {
  return JitThreshold() >= 0 && JitThreshold() <= SpecializeThreshold();
}
// Automatic mode's compiles run on the background thread: FATJIT_JIT_BACKGROUND or
// enable(jit_background=), read at enable(); on unless set to 0/False.
bool JitBackground();

// FATJIT_CODE_LIMIT (bytes, with an optional K/M/G; unset: tuning::kDefaultCodeLimitBytes)
// into jit::SetCodeLimit. At module init; false with ValueError for a malformed value.
bool CodeLimitFromEnvironment();

// What automatic mode did and will do with this code object, for explain(); empty if it
// never counted it.
std::string DescribeHotness(const CodeState& state);

// fatjit.enable(*, specialize_threshold=None, jit_threshold=None, jit_background=None), fatjit.disable(), fatjit.is_enabled().
// enable() and disable() raise RuntimeError in a sub-interpreter.
PyObject* EnableAutoMode(PyObject* module, PyObject* args, PyObject* kwargs);
PyObject* DisableAutoMode(PyObject* module, PyObject* unused);
PyObject* AutoModeEnabled(PyObject* module, PyObject* unused);
// fatjit._fatjit._in_main_interpreter() -> bool: for FATJIT=auto and the exit handler, which
// leave sub-interpreters alone instead of raising.
PyObject* InMainInterpreterPy(PyObject* module, PyObject* unused);

}  // namespace fatjit

#endif  // FATJIT_EXT_AUTO_MODE_H_
