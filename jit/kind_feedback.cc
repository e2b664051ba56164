// Kind feedback: see kind_feedback.h.
#include "jit/kind_feedback.h"

#include <algorithm>

#include "jit/function_compiler.h"  // ParameterCount
#include "jit/runtime/call_cache.h"

namespace fatjit::jit {

std::vector<ParameterKind> ParameterKinds(PyCodeObject* code, PyObject* const* args) {
  std::vector<ParameterKind> kinds;
  if (args == nullptr) return kinds;
  const int n = std::min(ParameterCount(code), code->co_nlocalsplus);
  for (int i = 0; i < n; ++i) {
    PyObject* arg = args[i];
    ParameterKind kind = ParameterKind::kUnknown;
    if (arg == nullptr) {
    } else if (PyLong_CheckExact(arg)) {
      kind = ParameterKind::kInt;
    } else if (PyFloat_CheckExact(arg)) {
      kind = ParameterKind::kFloat;
    } else if (PyList_CheckExact(arg) && PyList_GET_SIZE(arg) > 0) {
      PyObject* first = PyList_GET_ITEM(arg, 0);
      kind = PyFloat_CheckExact(first)  ? ParameterKind::kFloatList
             : PyLong_CheckExact(first) ? ParameterKind::kIntList
                                        : ParameterKind::kUnknown;
    }
    kinds.push_back(kind);
  }
  return kinds;
}

bool KindsWorthRecompiling(const std::vector<ParameterKind>& compiled,
                           const std::vector<ParameterKind>& seen) {
  for (size_t i = 0; i < seen.size(); ++i) {
    const ParameterKind before = i < compiled.size() ? compiled[i] : ParameterKind::kUnknown;
    if (seen[i] != ParameterKind::kUnknown && seen[i] != before) return true;
  }
  return false;
}

extern "C" void fatjit_rt_numeric_loop_missed(_PyInterpreterFrame* frame, NativeCode* code) {
  if (!code->kinds_seen.empty()) return;  // already reported; the owner acts at its next call
  std::vector<ParameterKind> seen = ParameterKinds(frame->f_code, frame->localsplus);
  if (!KindsWorthRecompiling(code->parameter_kinds, seen)) return;
  code->kinds_seen = std::move(seen);
  code->recompile_wanted = true;
  InvalidateDirectCalls();  // their next call goes through the dispatcher, which recompiles
}

}  // namespace fatjit::jit
