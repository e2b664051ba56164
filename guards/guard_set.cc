// GuardSet: see guard_set.h.
#include "guards/guard_set.h"

#include <algorithm>

namespace fatjit {

void GuardSet::Add(Guard* guard) {
  guards_.push_back(guard);
  absl::Span<VersionWatch* const> cells = guard->watches();
  if (cells.empty()) {
    unwatched_.push_back(guard);
    std::stable_sort(unwatched_.begin(), unwatched_.end(),
                     [](Guard* a, Guard* b) { return a->cost() < b->cost(); });
    return;
  }
  for (VersionWatch* cell : cells) watches_.push_back({cell, guard});
}

}  // namespace fatjit
