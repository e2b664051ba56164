// Kind feedback: see kind_feedback.h.
#include "jit/kind_feedback.h"

#include <algorithm>

#include "jit/function_compiler.h"  // ParameterCount
#include "jit/runtime/call_cache.h"

namespace fatjit::jit {

LocalKind LocalKindOf(PyObject* value) {
  if (value == nullptr) return LocalKind::kUnknown;
  if (PyLong_CheckExact(value)) return LocalKind::kInt;
  if (PyFloat_CheckExact(value)) return LocalKind::kFloat;
  if (PyList_CheckExact(value) && PyList_GET_SIZE(value) > 0) {
    PyObject* first = PyList_GET_ITEM(value, 0);
    if (PyFloat_CheckExact(first)) return LocalKind::kFloatList;
    if (PyLong_CheckExact(first)) return LocalKind::kIntList;
  }
  return LocalKind::kUnknown;
}

std::vector<LocalKind> ParameterKinds(PyCodeObject* code, PyObject* const* args) {
  std::vector<LocalKind> kinds;
  if (args == nullptr) return kinds;
  const int n = std::min(ParameterCount(code), code->co_nlocalsplus);
  for (int i = 0; i < n; ++i) kinds.push_back(LocalKindOf(args[i]));
  return kinds;
}

extern "C" void fatjit_rt_numeric_loop_missed(_PyInterpreterFrame* frame, NativeCode* code,
                                              NativeCode::LoopGuesses* loop) {
  for (const auto& [local, guessed] : loop->locals) {
    if (guessed != LocalKind::kIntList && guessed != LocalKind::kFloatList) continue;
    PyObject* value = frame->localsplus[local];
    if (value != nullptr && (!PyList_CheckExact(value) ||
                             (PyList_GET_SIZE(value) > 0 &&
                              LocalKindOf(value) == LocalKind::kUnknown))) {
      loop->given_up = 1;
      return;
    }
  }

  std::vector<LocalKind> hints = code->local_kinds;
  bool differs = false;
  for (const auto& [local, guessed] : loop->locals) {
    const LocalKind seen = LocalKindOf(frame->localsplus[local]);
    if (seen == LocalKind::kUnknown) continue;
    if (hints.size() <= static_cast<size_t>(local)) hints.resize(local + 1, LocalKind::kUnknown);
    hints[local] = seen;
    differs = differs || seen != guessed;
  }
  if (!differs) return;
  // The entry would go on failing: the generic code runs without its cost until a recompile
  // (or for good, past the recompiles' limit).
  loop->given_up = 1;
  if (!code->kinds_seen.empty()) return;  // already reported; the owner acts at its next call
  code->kinds_seen = std::move(hints);
  code->recompile_wanted = true;
  InvalidateDirectCalls();  // their next call goes through the dispatcher, which recompiles
}

}  // namespace fatjit::jit
