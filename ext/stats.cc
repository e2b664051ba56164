// fatjit.stats(): the counters as a dict of plain ints and dicts, names from the X-macro lists.
#include "ext/stats.h"

#include "ext/auto_mode.h"
#include "ext/code_state.h"
#include "ext/dispatch.h"
#include "jit/backend_loader.h"
#include "jit/compile_queue.h"
#include "jit/native_code.h"

namespace fatjit {
namespace {

bool SetInt(PyObject* dict, const char* key, long long value) {
  Ref<> v = Ref<>::Steal(PyLong_FromLongLong(value));
  return v && PyDict_SetItemString(dict, key, v.obj()) == 0;
}

bool SetFloat(PyObject* dict, const char* key, double value) {
  Ref<> v = Ref<>::Steal(PyFloat_FromDouble(value));
  return v && PyDict_SetItemString(dict, key, v.obj()) == 0;
}

bool SetKindCounts(PyObject* dict, const char* key, const uint64_t* counts) {
  Ref<> by_kind = Ref<>::Steal(PyDict_New());
  if (!by_kind) return false;
  for (int k = 0; k < kNumGuardKinds; ++k) {
    if (!SetInt(by_kind.obj(), GuardKindName(static_cast<GuardKind>(k)), counts[k])) return false;
  }
  return PyDict_SetItemString(dict, key, by_kind.obj()) == 0;
}

// The JIT's counters: compiles, their time, live code, native calls, deopts and refusals.
bool SetJit(PyObject* dict, const Stats& s) {
  const jit::JitCounters& c = jit::GlobalJitCounters();
  Ref<> j = Ref<>::Steal(PyDict_New());
  Ref<> deopts = Ref<>::Steal(PyDict_New());
  Ref<> refused = Ref<>::Steal(PyDict_New());
  if (!j || !deopts || !refused) return false;
  for (int r = 0; r < jit::kDeoptReasonCount; ++r) {
    if (!SetInt(deopts.obj(), jit::DeoptReasonName(static_cast<jit::DeoptReason>(r)),
                c.deopts[r])) {
      return false;
    }
  }
  for (int r = 0; r < jit::kJitRefusalCount; ++r) {
    if (!SetInt(refused.obj(), jit::JitRefusalName(static_cast<jit::JitRefusal>(r)),
                s.jit_refused[r])) {
      return false;
    }
  }
  return SetInt(j.obj(), "compiled", s.jit_compiled) && SetInt(j.obj(), "compiles", c.compiles) &&
         SetFloat(j.obj(), "compile_time_s", c.compile_ns * 1e-9) &&
         SetFloat(j.obj(), "compile_time_max_s", c.compile_ns_max * 1e-9) &&
         SetFloat(j.obj(), "backend_load_s", c.backend_load_ns * 1e-9) &&
         SetInt(j.obj(), "code_bytes", c.code_bytes) &&
         SetInt(j.obj(), "native_calls", c.native_calls + c.direct_calls) &&
         SetInt(j.obj(), "direct_calls", c.direct_calls) &&
         SetInt(j.obj(), "builtin_calls", c.builtin_calls) &&
         SetInt(j.obj(), "raises", c.raises) &&
         SetInt(j.obj(), "attr_cache_hits", c.attr_cache_hits) &&
         SetInt(j.obj(), "attr_cache_misses", c.attr_cache_misses) &&
         SetInt(j.obj(), "background_compiles", c.background_compiles) &&
         SetInt(j.obj(), "background_dropped", c.background_dropped) &&
         SetInt(j.obj(), "tier_ups", c.tier_ups) &&
         SetInt(j.obj(), "kind_recompiles", c.kind_recompiles) &&
         SetInt(j.obj(), "numeric_loops", c.numeric_loops) &&
         SetInt(j.obj(), "numeric_regions", c.numeric_regions) &&
         SetInt(j.obj(), "code_level_live", GlobalCodeLevelCounters().live) &&
         SetInt(j.obj(), "code_level_compiled", GlobalCodeLevelCounters().compiled) &&
         SetInt(j.obj(), "code_level_runs", GlobalCodeLevelCounters().runs) &&
         SetInt(j.obj(), "in_flight", jit::CompileQueue::Get().InFlight()) &&
         SetInt(j.obj(), "code_limit", jit::CodeLimit()) &&
         PyDict_SetItemString(j.obj(), "deopts", deopts.obj()) == 0 &&
         PyDict_SetItemString(j.obj(), "refused", refused.obj()) == 0 &&
         SetInt(j.obj(), "threshold", JitThreshold()) &&
         PyDict_SetItemString(j.obj(), "background", JitBackground() ? Py_True : Py_False) == 0 &&
         PyDict_SetItemString(j.obj(), "backend_loaded",
                              jit::BackendLoaded() ? Py_True : Py_False) == 0 &&
         PyDict_SetItemString(dict, "jit", j.obj()) == 0;
}

}  // namespace

Stats& GlobalStats() {
  static Stats stats;
  return stats;
}

PyObject* StatsAsDict(PyObject*, PyObject*) {
  const Stats& s = GlobalStats();
  Ref<> dict = Ref<>::Steal(PyDict_New());
  if (!dict) return nullptr;
  Ref<> fallbacks = Ref<>::Steal(PyDict_New());
  if (!fallbacks) return nullptr;
  int i = 0;
#define FATJIT_FALLBACK_SET(e, name, doc) \
  if (!SetInt(fallbacks.obj(), name, s.fallbacks[i++])) return nullptr;
  FATJIT_FALLBACK_REASONS(FATJIT_FALLBACK_SET)
#undef FATJIT_FALLBACK_SET
  Ref<> refused = Ref<>::Steal(PyDict_New());
  Ref<> by_pass = Ref<>::Steal(PyDict_New());
  if (!refused || !by_pass) return nullptr;
  for (int r = 0; r < static_cast<int>(specializer::Refusal::kCount); ++r) {
    if (!SetInt(refused.obj(), specializer::RefusalName(static_cast<specializer::Refusal>(r)),
                s.auto_refused[r])) {
      return nullptr;
    }
  }
  for (const auto& [pass, count] : s.rewrites_by_pass) {
    if (!SetInt(by_pass.obj(), pass.c_str(), count)) return nullptr;
  }
  if (!SetInt(dict.obj(), "specializations", LiveSpecializations()) ||
      !SetInt(dict.obj(), "auto_specialized", s.auto_specialized) ||
      PyDict_SetItemString(dict.obj(), "auto_mode", AutoModeOn() ? Py_True : Py_False) < 0 ||
      !SetInt(dict.obj(), "specialize_threshold", SpecializeThreshold()) ||
      !SetInt(dict.obj(), "calls_counted", s.calls_counted) ||
      !SetInt(dict.obj(), "loop_time_credit", s.loop_time_credit) ||
      !SetFloat(dict.obj(), "specialize_time_s", s.specialize_ns * 1e-9) ||
      PyDict_SetItemString(dict.obj(), "auto_refused", refused.obj()) < 0 ||
      PyDict_SetItemString(dict.obj(), "rewrites_by_pass", by_pass.obj()) < 0 ||
      !SetInt(dict.obj(), "specializations_added", s.specializations_added) ||
      !SetInt(dict.obj(), "specializations_dropped", s.specializations_dropped) ||
      !SetInt(dict.obj(), "specialized_runs", s.specialized_runs + s.direct_specialized_runs) ||
      !SetInt(dict.obj(), "guard_checks", s.guard_checks + s.direct_specialized_runs) ||
      !SetKindCounts(dict.obj(), "guard_failures", s.guard_failures) ||
      !SetKindCounts(dict.obj(), "guard_failures_forever", s.guard_failures_forever) ||
      PyDict_SetItemString(dict.obj(), "fallbacks", fallbacks.obj()) < 0 ||
      PyDict_SetItemString(dict.obj(), "hook_installed",
                           HookInstalled() ? Py_True : Py_False) < 0 ||
      !SetJit(dict.obj(), s)) {
    return nullptr;
  }
  return dict.Release();
}

PyObject* ResetStats(PyObject*, PyObject*) {
  GlobalStats() = Stats();
  jit::JitCounters& c = jit::GlobalJitCounters();
  const uint64_t live_code = c.code_bytes;
  const uint64_t load_ns = c.backend_load_ns;
  auto* observer = c.on_deopt;
  c = jit::JitCounters();
  c.code_bytes = live_code;
  c.backend_load_ns = load_ns;
  c.on_deopt = observer;
  Py_RETURN_NONE;
}

}  // namespace fatjit
