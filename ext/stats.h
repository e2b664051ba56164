// Process-wide counters behind fatjit.stats(). Updated under the GIL, so plain integers.
#ifndef FATJIT_EXT_STATS_H_
#define FATJIT_EXT_STATS_H_

#include <cstdint>
#include <map>
#include <string>

#include "base/python.h"
#include "guards/guard.h"
#include "jit/compile_function.h"
#include "specializer/specialize_function.h"

namespace fatjit {

// X(enum, name, why the original code ran although the function has specializations)
#define FATJIT_FALLBACK_REASONS(X)                                                    \
  X(kTracing, "tracing", "sys.settrace/setprofile is active: the original code runs") \
  X(kThrow, "throw", "a generator or coroutine was resumed by throw()")               \
  X(kResumed, "resumed", "the frame resumes mid-code (generator, coroutine)")         \
  X(kNotOwner, "other_function", "another function object shares the code object")    \
  X(kNoGuardPassed, "no_guard_passed", "every specialization had a failing guard")    \
  X(kOwnerDead, "owner_dead", "the function a specialization was made for is gone")   \
  X(kBeingSpecialized, "being_specialized",                                           \
    "its automatic specialization is being made (an outer call, another thread)")

enum class FallbackReason : uint8_t {
#define FATJIT_FALLBACK_ENUM(e, name, doc) e,
  FATJIT_FALLBACK_REASONS(FATJIT_FALLBACK_ENUM)
#undef FATJIT_FALLBACK_ENUM
      kCount
};

struct Stats {
  uint64_t specializations_added = 0;
  uint64_t specializations_dropped = 0;  // unspecialize(), fail-forever guard, owner gone
  uint64_t specialized_runs = 0;         // calls that ran a specialization
  uint64_t guard_checks = 0;             // GuardSet checks at call time
  // Direct calls (jit/runtime/native_call.h) that ran a specialization: each is a guard check
  // and a specialized run too, which fatjit.stats() adds (one counter for both at every call).
  uint64_t direct_specialized_runs = 0;
  uint64_t guard_failures[kNumGuardKinds] = {};
  uint64_t guard_failures_forever[kNumGuardKinds] = {};
  uint64_t fallbacks[static_cast<int>(FallbackReason::kCount)] = {};
  // The automatic specializer, and automatic mode's counting (auto_mode.h).
  uint64_t calls_counted = 0;  // fresh calls counted toward a threshold
  uint64_t loop_time_credit = 0;  // calls credited for loop time (auto_mode.h, CreditLoopTime)
  uint64_t specialize_ns = 0;  // time inside the specializer (MaterializePending)
  uint64_t auto_specialized = 0;
  uint64_t auto_refused[static_cast<int>(specializer::Refusal::kCount)] = {};
  std::map<std::string, uint64_t> rewrites_by_pass;  // proposed, active or not
  // The JIT (the compile counters themselves are jit::GlobalJitCounters()).
  uint64_t jit_compiled = 0;
  uint64_t jit_refused[jit::kJitRefusalCount] = {};
};

Stats& GlobalStats();
inline void CountFallback(FallbackReason reason) {
  ++GlobalStats().fallbacks[static_cast<int>(reason)];
}

// fatjit.stats() and fatjit.reset_stats().
PyObject* StatsAsDict(PyObject* /*module*/, PyObject* /*unused*/);
PyObject* ResetStats(PyObject* /*module*/, PyObject* /*unused*/);

}  // namespace fatjit

#endif  // FATJIT_EXT_STATS_H_
