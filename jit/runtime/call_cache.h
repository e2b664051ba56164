// The per-site cache of native-to-native calls (native_call.h): what the direct-call resolver
// answered for a CALL site's last callee, and the epoch that says when such answers may have
// changed.
//
// Assumes: the resolver's answer for a frame depends only on the callee's code object and its
// fatjit state, the callee function (a specialization's owner), the arguments (its guards), the
// installed hook and tracing; ext/ invalidates the epoch whenever the state part changes.
// Produces: a cache that native_call.cc reuses while every other part is re-checked per call.
// Sound because a reused answer is the one the resolver would give now: see DirectCallCache.
#ifndef FATJIT_JIT_RUNTIME_CALL_CACHE_H_
#define FATJIT_JIT_RUNTIME_CALL_CACHE_H_

#include <cstddef>
#include <cstdint>

#include "base/python.h"
#include "guards/guard_set.h"

namespace fatjit::jit {

class NativeCode;

// What the resolver found for a fresh frame: the native code the PEP 523 hook would run on it,
// and how a call site may run that code again without asking (DirectCallCache below).
struct DirectCallTarget {
  NativeCode* native = nullptr;
  // A weak reference whose referent must be the callee for the answer to hold (a
  // specialization belongs to one function), or null when any function of the code object
  // qualifies (code-level native code).
  PyObject* owner = nullptr;
  // Guards the arguments must pass at each reuse, or null when there are none.
  GuardSet* guards = nullptr;
  // What the hook counts per run besides the JIT's own counters (null entries: nothing).
  uint64_t* counts[3] = {};
};

// The direct-call epoch: whoever changes what the resolver would answer for some code object
// (a specialization added or dropped, native code attached, replaced or retired, a code object's
// state freed, the hook installed or removed) calls InvalidateDirectCalls, which empties every
// DirectCallCache at once. Never 0.
namespace internal {
inline uint64_t g_direct_call_epoch = 1;
}  // namespace internal
inline uint64_t DirectCallEpoch() { return internal::g_direct_call_epoch; }
inline void InvalidateDirectCalls() { ++internal::g_direct_call_epoch; }

// One CALL site's last direct call with positional arguments only: the callee's code object
// and what the resolver answered for it. Reused while the epoch is the one it was filled at,
// the callee is a function of that code (the code cannot be another at the same address: its
// state's destruction bumps the epoch), the call passes exactly co_argcount arguments, the hook
// is still installed, tracing is off, the owner (if any) is the callee and the guards (if any)
// pass on the arguments. The frame it pushes then is the one TryDirectCall would push, and the
// code it runs the one the resolver would return: the resolver's answer depends on nothing else.
struct DirectCallCache {
  PyCodeObject* code = nullptr;  // borrowed: compared, never dereferenced unless the epoch holds
  uint64_t epoch = 0;            // 0: empty
  int64_t argcount = 0;
  int64_t nlocalsplus = 0;
  size_t frame_size = 0;
  DirectCallTarget target;
};

}  // namespace fatjit::jit

#endif  // FATJIT_JIT_RUNTIME_CALL_CACHE_H_
