// Automatic mode: the switch, the threshold, the counting and the retry policy (auto_mode.h).
#include "ext/auto_mode.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "absl/strings/str_format.h"
#include "ext/auto_specialize.h"
#include "ext/boot.h"
#include "ext/dispatch.h"
#include "ext/tuning.h"
#include "jit/compile_function.h"
#include "specializer/bytecode/opcode_tables.h"

namespace fatjit {
namespace {

int32_t g_threshold = tuning::kDefaultSpecializeThreshold;  // in force: min(specialize, jit)
int32_t g_specialize_threshold = tuning::kDefaultSpecializeThreshold;
int32_t g_jit_threshold = -1;
bool g_jit_background = true;

// The start-up counter's capsule (ext/boot.c) when FATJIT=auto started with it: found at
// enable(), read at each code object's first counted call.
const FatjitBootCounts* g_boot_counts = nullptr;

void FindBootCounts() {
  PyObject* boot = PyDict_GetItemString(PyImport_GetModuleDict(), "_fatjit_boot");  // borrowed
  Ref<> capsule = boot ? Ref<>::Steal(PyObject_GetAttrString(boot, "_counts")) : Ref<>();
  g_boot_counts = capsule ? static_cast<const FatjitBootCounts*>(PyCapsule_GetPointer(
                                capsule.obj(), FATJIT_BOOT_COUNTS_CAPSULE))
                          : nullptr;
  PyErr_Clear();  // no module, or a stranger's module of that name: counting starts at 0
}

// `threshold` calls, one more per tuning::kCodeUnitsPerThreshold code units of `code` (what an
// attempt costs grows with the code); a threshold of 0 means the first call whatever the size
// (the stress setting).
int64_t ScaledThreshold(PyCodeObject* code, int32_t threshold) {
  if (threshold <= 0) return 1;
  const int64_t size_scale = 1 + Py_SIZE(code) / tuning::kCodeUnitsPerThreshold;
  return std::min<int64_t>(threshold * size_scale, INT32_MAX);
}

// Calls to wait before the attempt after `attempts` attempts, or 0 for none.
int32_t CallsBeforeNextAttempt(PyCodeObject* code, int32_t attempts) {
  if (attempts >= tuning::kMaxAttempts) return 0;
  int64_t wait = ScaledThreshold(code, g_threshold);
  for (int32_t i = 0; i < attempts; ++i) {
    wait = std::min<int64_t>(wait * tuning::kRetryBackoff, INT32_MAX);
  }
  return static_cast<int32_t>(wait);
}

// Function code. Module and class bodies, and module code run by exec(), lack CO_OPTIMIZED:
// they run once (or as often as the program execs them), with a function made for the run.
bool Countable(PyCodeObject* code) { return (code->co_flags & CO_OPTIMIZED) != 0; }

// fatjit's own Python code (the fatjit package: stats(), explain's report, the AST passes) is
// never specialized by automatic mode: its counters would count their own reading, and what it
// runs is bookkeeping, not the program.
bool OwnPackage(_PyInterpreterFrame* frame) {
  // Once per code object (the answer is kept in its CodeState); errors are suppressed.
  PyObject* name = PyDict_GetItemString(frame->f_globals, "__name__");  // borrowed
  if (name == nullptr || !PyUnicode_Check(name)) return false;
  Py_ssize_t size = 0;
  const char* text = PyUnicode_AsUTF8AndSize(name, &size);
  if (text == nullptr) {
    PyErr_Clear();
    return false;
  }
  const std::string_view module(text, static_cast<size_t>(size));
  return module == "fatjit" || module.substr(0, 7) == "fatjit.";
}

// Starts the next attempt for `func`: a pending automatic specialization the dispatcher
// materializes at this call. The wait before the following attempt is set now, so a refusal,
// or a specialization dropped later, is retried only after it.
bool Attempt(CodeState* state, PyFunctionObject* func) {
  ++state->attempts;
  state->calls_until_attempt =
      CallsBeforeNextAttempt(reinterpret_cast<PyCodeObject*>(func->func_code), state->attempts);
  if (!AddPendingAutomatic(state, reinterpret_cast<PyObject*>(func),
                           specializer::Assume::kStable, JitRequested(), g_jit_background,
                           /*code_level_if_unchanged=*/true)) {
    PyErr_Clear();  // out of memory: the original code runs
    return false;
  }
  return true;
}

// FATJIT_SPECIALIZE_THRESHOLD, or the default. False with ValueError for anything but a
// non-negative decimal integer that fits an int32.
// With `allow_off`, "off" gives -1 (FATJIT_JIT_THRESHOLD=off: automatic mode does not compile).
bool ThresholdFromEnvironment(int32_t* threshold, const char* variable = "FATJIT_SPECIALIZE_THRESHOLD",
                              int32_t unset = tuning::kDefaultSpecializeThreshold,
                              bool allow_off = false) {
  const char* text = std::getenv(variable);
  if (text == nullptr || *text == '\0') {
    *threshold = unset;
    return true;
  }
  if (allow_off && std::strcmp(text, "off") == 0) {
    *threshold = -1;
    return true;
  }
  char* end = nullptr;
  errno = 0;
  long long value = std::strtoll(text, &end, 10);
  // strtoll alone would also take leading blanks and a sign.
  if (!std::isdigit(static_cast<unsigned char>(*text)) || errno != 0 || *end != '\0' ||
      value > INT32_MAX) {
    PyErr_Format(PyExc_ValueError,
                 "fatjit: %s must be a number of calls from 0 (the first call) to %d%s, not '%s'",
                 variable, INT32_MAX, allow_off ? ", or off" : "", text);
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
    state->calls_until_attempt =
        Countable(code) && !OwnPackage(frame) ? CallsBeforeNextAttempt(code, state->attempts)
                                               : 0;
    // The first wait goes on from where the start-up counter stopped.
    if (state->calls_until_attempt > 0 && state->attempts == 0 && g_boot_counts != nullptr) {
      const int64_t counted = g_boot_counts->calls_counted(reinterpret_cast<PyObject*>(code));
      state->calls_until_attempt =
          static_cast<int32_t>(std::max<int64_t>(1, state->calls_until_attempt - counted));
    }
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

namespace {

// A backward jump in the code's (unquickened) bytecode: JUMP_BACKWARD (`for`), or a
// POP_JUMP_BACKWARD_IF_* (the test at the bottom of a `while` loop).
bool HasBackwardJump(PyCodeObject* code) {
  Ref<> bytes = Ref<>::Steal(PyCode_GetCode(code));
  if (!bytes) {
    PyErr_Clear();
    return false;
  }
  const auto* units = reinterpret_cast<const uint8_t*>(PyBytes_AS_STRING(bytes.obj()));
  const Py_ssize_t size = PyBytes_GET_SIZE(bytes.obj());
  for (Py_ssize_t i = 0; i + 1 < size; i += 2) {
    if (bytecode::IsBackwardJump(units[i])) return true;
  }
  return false;
}

}  // namespace

bool TimesItsCalls(CodeState* state, PyCodeObject* code) {
  if (state->calls_until_attempt <= 1) return false;  // not counting, gave up, or attempting
  if (state->has_loop < 0) state->has_loop = HasBackwardJump(code) ? 1 : 0;
  return state->has_loop == 1;
}

namespace {

// A wait of `calls` less the calls `elapsed_ns` of loop time is worth, down to 1.
int32_t CreditedWait(int32_t calls, int64_t elapsed_ns) {
  const int64_t credit = elapsed_ns / tuning::kLoopTimePerCallNs;
  if (credit <= 0 || calls <= 1) return calls;
  const int64_t left = std::max<int64_t>(1, calls - credit);
  GlobalStats().loop_time_credit += calls - left;
  return static_cast<int32_t>(left);
}

}  // namespace

void CreditLoopTime(CodeState* state, int64_t elapsed_ns) {
  state->calls_until_attempt = CreditedWait(state->calls_until_attempt, elapsed_ns);
}

int32_t RunsBeforeCompile(PyCodeObject* code) {
  return static_cast<int32_t>(ScaledThreshold(code, JitThreshold()));
}

bool TimesItsRuns(Specialization* spec) {
  if (spec->runs_until_compile <= 1 || !spec->code) return false;
  if (spec->has_loop < 0) spec->has_loop = HasBackwardJump(spec->code.get()) ? 1 : 0;
  return spec->has_loop == 1;
}

void CreditLoopTime(Specialization* spec, int64_t elapsed_ns) {
  spec->runs_until_compile = CreditedWait(spec->runs_until_compile, elapsed_ns);
}

int32_t SpecializeThreshold() { return g_specialize_threshold; }
int32_t JitThreshold() { return g_jit_threshold; }
bool JitBackground() { return g_jit_background; }

std::string DescribeHotness(const CodeState& state) {
  if (state.attempts == 0 && state.calls_until_attempt == kNotCounted) return "";
  if (state.attempts == 0) {
    return state.calls_until_attempt == 0
               ? "automatic mode: not function code (or fatjit's own), never specialized"
               : absl::StrFormat("automatic mode: specialized %d calls from now",
                                 state.calls_until_attempt);
  }
  std::string text = absl::StrFormat("automatic mode: attempt %d of %d made", state.attempts,
                                     tuning::kMaxAttempts);
  if (state.native) {
    return text + "; the code object runs code-level native code: no more attempts";
  }
  if (state.native_in_flight) {
    return text + "; code-level native code compiling on the background thread";
  }
  if (state.calls_until_attempt == 0) return text + "; no more";
  if (!state.specializations.empty()) {
    return text + absl::StrFormat("; if its specialization is dropped, the next %d calls later",
                                  state.calls_until_attempt);
  }
  return text + absl::StrFormat("; the next %d calls from now", state.calls_until_attempt);
}

// A threshold argument of enable(): None -> from `variable` in the environment (or `unset`).
// With `allow_off`, the string "off" gives -1 (no compiles).
bool ThresholdArgument(PyObject* arg, const char* keyword, const char* variable, int32_t unset,
                       int32_t* threshold, bool allow_off = false) {
  if (arg == Py_None) return ThresholdFromEnvironment(threshold, variable, unset, allow_off);
  if (allow_off && PyUnicode_Check(arg) && PyUnicode_CompareWithASCIIString(arg, "off") == 0) {
    *threshold = -1;
    return true;
  }
  if (!PyLong_Check(arg) || PyBool_Check(arg)) {
    PyErr_Format(PyExc_TypeError, "fatjit.enable: %s must be an int%s or None, not %s", keyword,
                 allow_off ? ", 'off'" : "", Py_TYPE(arg)->tp_name);
    return false;
  }
  int overflow = 0;
  long long value = PyLong_AsLongLongAndOverflow(arg, &overflow);
  if (value == -1 && PyErr_Occurred()) return false;
  if (overflow != 0 || value < 0 || value > INT32_MAX) {
    PyErr_Format(PyExc_ValueError,
                 "fatjit.enable: %s must be from 0 (the first call) to %d, not %R", keyword,
                 INT32_MAX, arg);
    return false;
  }
  *threshold = static_cast<int32_t>(value);
  return true;
}

// enable(jit_background=): a bool, or None for FATJIT_JIT_BACKGROUND ("0" or "1"; unset = 1).
bool BackgroundArgument(PyObject* arg, bool* background) {
  if (arg == Py_None) {
    const char* text = std::getenv("FATJIT_JIT_BACKGROUND");
    if (text == nullptr || *text == '\0' || std::strcmp(text, "1") == 0) {
      *background = true;
      return true;
    }
    if (std::strcmp(text, "0") == 0) {
      *background = false;
      return true;
    }
    PyErr_Format(PyExc_ValueError, "fatjit: FATJIT_JIT_BACKGROUND must be 0 or 1, not '%s'",
                 text);
    return false;
  }
  if (!PyBool_Check(arg)) {
    PyErr_Format(PyExc_TypeError, "fatjit.enable: jit_background must be a bool or None, not %s",
                 Py_TYPE(arg)->tp_name);
    return false;
  }
  *background = arg == Py_True;
  return true;
}

bool CodeLimitFromEnvironment() {
  const char* text = std::getenv("FATJIT_CODE_LIMIT");
  if (text == nullptr || *text == '\0') {
    jit::SetCodeLimit(tuning::kDefaultCodeLimitBytes);
    return true;
  }
  char* end = nullptr;
  errno = 0;
  unsigned long long value = std::strtoull(text, &end, 10);
  uint64_t scale = 1;
  if (end != text && *end != '\0' && end[1] == '\0') {
    switch (*end) {
      case 'K': case 'k': scale = 1ull << 10; ++end; break;
      case 'M': case 'm': scale = 1ull << 20; ++end; break;
      case 'G': case 'g': scale = 1ull << 30; ++end; break;
      default: break;
    }
  }
  if (!std::isdigit(static_cast<unsigned char>(*text)) || errno != 0 || *end != '\0' ||
      value > (UINT64_MAX >> 30)) {
    PyErr_Format(PyExc_ValueError,
                 "fatjit: FATJIT_CODE_LIMIT must be a number of bytes of native code, optionally "
                 "with K, M or G (0 = no limit), not '%s'",
                 text);
    return false;
  }
  jit::SetCodeLimit(value * scale);
  return true;
}

PyObject* EnableAutoMode(PyObject*, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"specialize_threshold", "jit_threshold", "jit_background",
                                 nullptr};
  PyObject* specialize_obj = Py_None;
  PyObject* jit_obj = Py_None;
  PyObject* background_obj = Py_None;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "|$OOO:enable", const_cast<char**>(kwlist),
                                   &specialize_obj, &jit_obj, &background_obj)) {
    return nullptr;
  }
  if (!InMainInterpreter("fatjit.enable")) return nullptr;
  int32_t specialize_threshold;
  int32_t jit_threshold;
  if (!ThresholdArgument(specialize_obj, "specialize_threshold", "FATJIT_SPECIALIZE_THRESHOLD",
                         tuning::kDefaultSpecializeThreshold, &specialize_threshold) ||
      !ThresholdArgument(jit_obj, "jit_threshold", "FATJIT_JIT_THRESHOLD",
                         tuning::kDefaultJitThreshold, &jit_threshold, /*allow_off=*/true)) {
    return nullptr;
  }
  bool jit_background;
  if (!BackgroundArgument(background_obj, &jit_background)) return nullptr;
  g_specialize_threshold = specialize_threshold;
  g_jit_threshold = jit_threshold;
  g_jit_background = jit_background;
  g_threshold = jit_threshold >= 0 ? std::min(specialize_threshold, jit_threshold)
                                   : specialize_threshold;
  internal::g_auto_mode_on = true;
  FindBootCounts();
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
