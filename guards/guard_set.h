// GuardSet: all the guards of one specialization, checked cheapest first.
//
// Assumes: the guards outlive the set (the owner of a specialization keeps them alive) and are
// bound before Add(). Produces: Check() = the first non-pass result of the guards' own Check(),
// or kPass. Fast path: first compare the version cell of every watched dict (one load and one
// compare each); a guard whose cells all match is known to pass without calling it (that is the
// watch contract in guard.h). Only guards without cells, and guards with a mismatching cell, run
// their full Check(). Sound because each skipped guard's cells were armed by its own successful
// check and no dict it watches changed since.
#ifndef FATJIT_GUARDS_GUARD_SET_H_
#define FATJIT_GUARDS_GUARD_SET_H_

#include <vector>

#include "guards/guard.h"

namespace fatjit {

class GuardSet {
 public:
  struct Outcome {
    GuardResult result = GuardResult::kPass;
    Guard* failed = nullptr;  // the guard that did not pass, or null
  };

  GuardSet() = default;
  GuardSet(GuardSet&&) = default;
  GuardSet& operator=(GuardSet&&) = default;

  // Adds a bound guard (borrowed; see above) and keeps the set ordered by cost.
  void Add(Guard* guard);

  Outcome Check(const CallArgs& args) const {
    for (const WatchEntry& entry : watches_) {
      const VersionWatch* w = entry.watch;
      if (w->dict == nullptr || DictVersion::Changed(w->dict, w->expected)) {
        GuardResult r = entry.owner->Check(args);
        if (r != GuardResult::kPass) return {r, entry.owner};
      }
    }
    for (Guard* guard : unwatched_) {
      GuardResult r = guard->Check(args);
      if (r != GuardResult::kPass) return {r, guard};
    }
    return {};
  }

  const std::vector<Guard*>& guards() const { return guards_; }
  size_t size() const { return guards_.size(); }

 private:
  struct WatchEntry {
    const VersionWatch* watch;
    Guard* owner;
  };
  std::vector<Guard*> guards_;      // all, in Add() order then by cost
  std::vector<WatchEntry> watches_;  // cells of guards that watch dicts
  std::vector<Guard*> unwatched_;    // guards without cells, cheapest first
};

}  // namespace fatjit

#endif  // FATJIT_GUARDS_GUARD_SET_H_
