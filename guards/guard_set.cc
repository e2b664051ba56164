// GuardSet: see guard_set.h for the fast path and why it is sound.
#include "guards/guard_set.h"

#include <algorithm>

namespace fatjit {

void GuardSet::Add(Guard* guard) {
  guards_.push_back(guard);
  absl::Span<VersionWatch* const> watches = guard->watches();
  if (watches.empty()) {
    unwatched_.push_back(guard);
    std::stable_sort(unwatched_.begin(), unwatched_.end(),
                     [](Guard* a, Guard* b) { return a->cost() < b->cost(); });
    return;
  }
  for (const VersionWatch* watch : watches) {
    size_t i = 0;
    while (i < cells_.size() && cells_[i].dict != watch->dict) ++i;
    if (i == cells_.size()) {
      cells_.push_back({watch->dict, 0});
      watchers_.emplace_back();
    }
    std::vector<Guard*>& watchers = watchers_[i];
    if (std::find(watchers.begin(), watchers.end(), guard) == watchers.end()) {
      watchers.push_back(guard);
    }
  }
}

GuardSet::Outcome GuardSet::RecheckDict(size_t i, const CallArgs& args) {
  DictVersion::Tag now = DictVersion::Of(cells_[i].dict);
  for (Guard* guard : watchers_[i]) {
    GuardResult r = guard->Check(args);
    if (r != GuardResult::kPass) return {r, guard};
  }
  cells_[i].expected = now;
  return {};
}

}  // namespace fatjit
