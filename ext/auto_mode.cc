// Automatic mode: the switch, the threshold, the counting and the retry policy (auto_mode.h).
#include "ext/auto_mode.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>

#include "absl/strings/str_format.h"
#include "ext/auto_specialize.h"
#include "ext/dispatch.h"
#include "ext/tuning.h"

namespace fatjit {
namespace {

int32_t g_threshold = tuning::kDefaultSpecializeThreshold;

// Calls to wait before the attempt after `attempts` attempts, or 0 for none.
int32_t CallsBeforeNextAttempt(int32_t attempts) {
  if (attempts >= tuning::kMaxAttempts) return 0;
  int64_t wait = std::max<int32_t>(g_threshold, 1);
  for (int32_t i = 0; i < attempts; ++i) {
    wait = std::min<int64_t>(wait * tuning::kRetryBackoff, INT32_MAX);
  }
  return static_cast<int32_t>(wait);
}

// Function code. Module and class bodies, and module code run by exec(), lack CO_OPTIMIZED:
// they run once (or as often as the program execs them), with a function made for the run.
bool Countable(PyCodeObject* code) { return (code->co_flags & CO_OPTIMIZED) != 0; }

// Starts the next attempt for `func`: a pending automatic specialization the dispatcher
// materializes at this call. The wait before the following attempt is set now, so a refusal,
// or a specialization dropped later, is retried only after it.
bool Attempt(CodeState* state, PyFunctionObject* func) {
  ++state->attempts;
  state->calls_until_attempt = CallsBeforeNextAttempt(state->attempts);
  if (!AddPendingAutomatic(state, reinterpret_cast<PyObject*>(func),
                           specializer::Assume::kStable)) {
    PyErr_Clear();  // out of memory: the original code runs
    return false;
  }
  return true;
}

// FATJIT_SPECIALIZE_THRESHOLD, or the default. False with ValueError for anything but a
// non-negative decimal integer that fits an int32.
bool ThresholdFromEnvironment(int32_t* threshold) {
  const char* text = std::getenv("FATJIT_SPECIALIZE_THRESHOLD");
  if (text == nullptr || *text == '\0') {
    *threshold = tuning::kDefaultSpecializeThreshold;
    return true;
  }
  char* end = nullptr;
  errno = 0;
  long long value = std::strtoll(text, &end, 10);
  // strtoll alone would also take leading blanks and a sign.
  if (!std::isdigit(static_cast<unsigned char>(*text)) || errno != 0 || *end != '\0' ||
      value > INT32_MAX) {
    PyErr_Format(PyExc_ValueError,
                 "fatjit: FATJIT_SPECIALIZE_THRESHOLD must be a number of calls from 0 (the "
                 "first call) to %d, not '%s'",
                 INT32_MAX, text);
    return false;
  }
  *threshold = static_cast<int32_t>(value);
  return true;
}

// False with RuntimeError in a sub-interpreter: the hook is installed on the main interpreter,
// and a sub-interpreter's code objects have no co_extra slot of fatjit's.
bool InMainInterpreter(const char* api) {
  if (PyInterpreterState_Get() == PyInterpreterState_Main()) return true;
  PyErr_Format(PyExc_RuntimeError,
               "%s: automatic mode belongs to the main interpreter; sub-interpreters run "
               "without it",
               api);
  return false;
}

}  // namespace

namespace internal {

bool CountCallSlow(CodeState* state, _PyInterpreterFrame* frame) {
  PyCodeObject* code = compat::FrameCode(frame);
  if (state == nullptr) {
    if (!Countable(code)) return false;
    state = GetOrCreateCodeState(code);
    if (state == nullptr) {
      PyErr_Clear();  // out of memory: not counted
      return false;
    }
  }
  if (state->calls_until_attempt == kNotCounted) {
    state->calls_until_attempt = Countable(code) ? CallsBeforeNextAttempt(state->attempts) : 0;
  }
  if (state->calls_until_attempt == 0) return false;  // gave up on this code object
  ++GlobalStats().calls_counted;
  if (state->calls_until_attempt > 1) {
    --state->calls_until_attempt;
    return false;
  }
  PyFunctionObject* func = compat::FrameFunction(frame);
  // A call made with an exception set would be a bug elsewhere; never clear it: wait.
  if (func == nullptr || PyErr_Occurred()) return false;
  return Attempt(state, func);
}

}  // namespace internal

int32_t SpecializeThreshold() { return g_threshold; }

std::string DescribeHotness(const CodeState& state) {
  if (state.attempts == 0 && state.calls_until_attempt == kNotCounted) return "";
  if (state.attempts == 0) {
    return state.calls_until_attempt == 0
               ? "automatic mode: not function code, never specialized"
               : absl::StrFormat("automatic mode: specialized %d calls from now",
                                 state.calls_until_attempt);
  }
  std::string text = absl::StrFormat("automatic mode: attempt %d of %d made", state.attempts,
                                     tuning::kMaxAttempts);
  if (state.calls_until_attempt == 0) return text + "; no more";
  if (!state.specializations.empty()) {
    return text + absl::StrFormat("; if its specialization is dropped, the next %d calls later",
                                  state.calls_until_attempt);
  }
  return text + absl::StrFormat("; the next %d calls from now", state.calls_until_attempt);
}

PyObject* EnableAutoMode(PyObject*, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"specialize_threshold", nullptr};
  PyObject* threshold_obj = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|$O:enable", const_cast<char**>(kwlist),
                                   &threshold_obj)) {
    return nullptr;
  }
  if (!InMainInterpreter("fatjit.enable")) return nullptr;
  int32_t threshold;
  if (threshold_obj == Py_None) {
    if (!ThresholdFromEnvironment(&threshold)) return nullptr;
  } else {
    if (!PyLong_Check(threshold_obj)) {
      PyErr_Format(PyExc_TypeError,
                   "fatjit.enable: specialize_threshold must be an int or None, not %s",
                   Py_TYPE(threshold_obj)->tp_name);
      return nullptr;
    }
    int overflow = 0;
    long long value = PyLong_AsLongLongAndOverflow(threshold_obj, &overflow);
    if (value == -1 && PyErr_Occurred()) return nullptr;
    if (overflow != 0 || value < 0 || value > INT32_MAX) {
      PyErr_Format(PyExc_ValueError,
                   "fatjit.enable: specialize_threshold must be from 0 (the first call) to %d, "
                   "not %R",
                   INT32_MAX, threshold_obj);
      return nullptr;
    }
    threshold = static_cast<int32_t>(value);
  }
  g_threshold = threshold;
  internal::g_auto_mode_on = true;
  InstallOrRemoveHook();
  Py_RETURN_NONE;
}

PyObject* DisableAutoMode(PyObject*, PyObject*) {
  if (!InMainInterpreter("fatjit.disable")) return nullptr;
  internal::g_auto_mode_on = false;
  InstallOrRemoveHook();
  Py_RETURN_NONE;
}

PyObject* AutoModeEnabled(PyObject*, PyObject*) { return PyBool_FromLong(AutoModeOn()); }

PyObject* InMainInterpreterPy(PyObject*, PyObject*) {
  return PyBool_FromLong(PyInterpreterState_Get() == PyInterpreterState_Main());
}

}  // namespace fatjit
