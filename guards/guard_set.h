// GuardSet: all the guards of one specialization, checked cheapest first.
//
// Assumes: the guards outlive the set (the owner of a specialization keeps them alive), are bound
// before Add(), and follow guard.h's contract (Check() runs no Python code; a guard's result
// depends only on the dicts it lists in watches() plus, for guards that list none, state it
// reads itself).
// Produces: Check() = the first non-pass result of the guards' own Check(), or kPass.
// Fast path: the set keeps one version cell per distinct watched dict (a module's globals are
// watched once even if several guards read them). A cell is armed with the dict's version only
// right after every guard watching that dict passed. If every cell matches, the watching guards
// are skipped: only unwatched guards (types, functions, argument types) run.
// Why that is sound: let G watch dicts D and E, whose cells were armed at times tD <= tE, when G
// passed. D did not change since tD, so at tE G saw the current D and the current E: G holds now.
// Arming reads the version before the checks; they run no Python code, so it still holds after.
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

  // Adds a bound guard (borrowed; see above).
  void Add(Guard* guard);

  Outcome Check(const CallArgs& args) {
    for (size_t i = 0; i < cells_.size(); ++i) {
      if (DictVersion::Changed(cells_[i].dict, cells_[i].expected)) {
        Outcome outcome = RecheckDict(i, args);
        if (outcome.result != GuardResult::kPass) return outcome;
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
  // Distinct dicts the fast path compares.
  size_t watched_dicts() const { return cells_.size(); }

 private:
  // Runs every guard watching cells_[i].dict; arms the cell if all pass.
  Outcome RecheckDict(size_t i, const CallArgs& args);

  struct Cell {
    const PyObject* dict;          // borrowed from the guards that watch it
    DictVersion::Tag expected = 0;  // 0 is never a dict's version: starts disarmed
  };
  std::vector<Guard*> guards_;                  // all, in Add() order
  std::vector<Cell> cells_;                     // one per distinct watched dict
  std::vector<std::vector<Guard*>> watchers_;   // watchers_[i]: guards watching cells_[i].dict
  std::vector<Guard*> unwatched_;               // guards without cells, cheapest first
};

}  // namespace fatjit

#endif  // FATJIT_GUARDS_GUARD_SET_H_
