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
#include <algorithm>
#include <cstdint>
#include <memory>

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
  // What the hook counts per run besides the JIT's own counters (null entries: nothing). Two at
  // most: each is a load and an increment at every direct call, where they showed (fib ran 5%
  // faster without a third), so counters that always move together are one (Stats's
  // direct_specialized_runs).
  uint64_t* counts[2] = {};
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

// One CALL site's last direct calls with positional arguments only: the callees' code objects
// (one, or up to kEntries at a site that calls methods of several classes) and what the
// resolver answered for each. An entry is reused while the epoch is the one the cache was filled
// at, the callee is a function of that code (the code cannot be another at the same address: its
// state's destruction bumps the epoch), the call passes exactly co_argcount arguments, the hook
// is still installed, tracing is off, the owner (if any) is the callee and the guards (if any)
// pass on the arguments. The frame it pushes then is the one TryDirectCall would push, and the
// code it runs the one the resolver would return: the resolver's answer depends on nothing else.
struct DirectCallCache {
  static constexpr int kEntries = 8;
  struct Entry {
    PyCodeObject* code = nullptr;  // borrowed: compared, never dereferenced
    int32_t argcount = 0;
    int32_t nlocalsplus = 0;
    size_t frame_size = 0;
    DirectCallTarget target;
    // From target.native, for native code that makes the call itself (InlineDirectCall): its
    // entry point, its call count and its pin count (NativeCode::pin_count).
    const void* code_entry = nullptr;
    uint64_t* code_calls = nullptr;
    int64_t* pin = nullptr;
  };
  uint64_t epoch = 0;  // every entry was filled at this epoch (0: none was)
  Entry first;         // a monomorphic site needs no more
  std::unique_ptr<Entry[]> more;  // kEntries - 1 others, made when a second callee comes
  int next_fill = 0;   // the entry a new callee replaces (round robin over all kEntries)

  // The entry for `code` when the epoch holds, else null.
  const Entry* Find(PyObject* code) const {
    if (epoch != DirectCallEpoch()) return nullptr;
    const int i = IndexOf(code);
    return i < 0 ? nullptr : &At(i);
  }
  // Records the resolver's answer for `entry.code`, obtained at `answered_epoch`.
  void Fill(uint64_t answered_epoch, const Entry& entry) {
    if (epoch != answered_epoch) {  // every entry is stale
      first = Entry{};
      if (more != nullptr) std::fill_n(more.get(), kEntries - 1, Entry{});
      next_fill = 0;
      epoch = answered_epoch;
    }
    if (const int same = IndexOf(reinterpret_cast<PyObject*>(entry.code)); same >= 0) {
      At(same) = entry;  // the same code for another owner
      return;
    }
    if (next_fill > 0 && more == nullptr) more = std::make_unique<Entry[]>(kEntries - 1);
    At(next_fill) = entry;
    next_fill = (next_fill + 1) % kEntries;
  }

 private:
  // Entry i: `first`, then `more`'s.
  Entry& At(int i) { return i == 0 ? first : more[i - 1]; }
  const Entry& At(int i) const { return i == 0 ? first : more[i - 1]; }
  // The index of the entry whose code is `code`, or -1.
  int IndexOf(PyObject* code) const {
    const int filled = more == nullptr ? 1 : kEntries;
    for (int i = 0; i < filled; ++i) {
      if (reinterpret_cast<PyObject*>(At(i).code) == code) return i;
    }
    return -1;
  }
};

}  // namespace fatjit::jit

#endif  // FATJIT_JIT_RUNTIME_CALL_CACHE_H_
