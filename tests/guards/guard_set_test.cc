// GuardSet: the first failing guard decides; the version fast path never hides a change.
#include "guards/guard_set.h"

#include <gtest/gtest.h>

#include "guards/guard_arg_type.h"
#include "guards/guard_builtins.h"
#include "guards/guard_dict.h"
#include "tests/support/python_env.h"

namespace fatjit {
namespace {

using testing::Eval;
using testing::Exec;
using testing::NewGlobals;
using testing::Str;

TEST(GuardSetTest, PassesOnlyWhenEveryGuardPassesAndNamesTheFailingOne) {
  Ref<> g = NewGlobals();
  Exec("d = {'a': 1}\ne = {'b': 2}", g.obj());
  Ref<> d = Eval("d", g.obj()), e = Eval("e", g.obj());
  Ref<> a = Str("a"), b = Str("b");
  PyObject* ka[] = {a.obj()};
  PyObject* kb[] = {b.obj()};
  auto ga = GuardDict::Create(d.obj(), ka);
  auto gb = GuardDict::Create(e.obj(), kb);
  ASSERT_TRUE(ga.ok() && gb.ok());
  Ref<> int_type = Eval("int");
  PyObject* types[] = {int_type.obj()};
  auto gt = GuardArgType::Create(0, types);
  ASSERT_TRUE(gt.ok());

  GuardSet set;
  set.Add(ga->get());
  set.Add(gb->get());
  set.Add(gt->get());
  Ref<> one = Eval("1"), text = Eval("'s'");
  PyObject* params[] = {one.obj()};
  EXPECT_EQ(set.Check({params, 1}).result, GuardResult::kPass);

  Exec("e['b'] = 3", g.obj());
  GuardSet::Outcome outcome = set.Check({params, 1});
  EXPECT_EQ(outcome.result, GuardResult::kFail);
  EXPECT_EQ(outcome.failed, gb->get());

  Exec("e['b'] = 2", g.obj());
  params[0] = text.obj();
  outcome = set.Check({params, 1});
  EXPECT_EQ(outcome.result, GuardResult::kFail);
  EXPECT_EQ(outcome.failed, gt->get());
}

// A guard on one dict that counts its full checks and passes while `passing` is true.
class CountingGuard : public Guard {
 public:
  explicit CountingGuard(PyObject* dict) : Guard(GuardKind::kDict), watch_{dict, 0} {}
  GuardResult Check(const CallArgs&) override {
    ++checks;
    return passing ? GuardResult::kPass : GuardResult::kFail;
  }
  absl::Span<VersionWatch* const> watches() override { return {&cell_, 1}; }
  int Traverse(visitproc, void*) override { return 0; }
  void Clear() override {}
  std::string Describe() const override { return "CountingGuard"; }
  int checks = 0;
  bool passing = true;

 private:
  VersionWatch watch_;
  VersionWatch* cell_ = &watch_;
};

TEST(GuardSetTest, SkipsWatchingGuardsWhileTheirDictIsUnchanged) {
  Ref<> g = NewGlobals();
  Exec("d = {}", g.obj());
  Ref<> d = Eval("d", g.obj());
  CountingGuard guard(d.obj());
  GuardSet set;
  set.Add(&guard);
  EXPECT_EQ(set.Check({}).result, GuardResult::kPass);  // first check arms the cell
  EXPECT_EQ(set.Check({}).result, GuardResult::kPass);
  EXPECT_EQ(guard.checks, 1);
  Exec("d['x'] = 1", g.obj());
  guard.passing = false;
  EXPECT_EQ(set.Check({}).result, GuardResult::kFail);
  EXPECT_EQ(set.Check({}).result, GuardResult::kFail);  // a failure never arms the cell
  EXPECT_EQ(guard.checks, 3);
}

TEST(GuardSetTest, WatchesAModulesGlobalsOnceAndStillSeesShadowing) {
  Ref<> g = NewGlobals();
  Exec("K = 1\ndef f(s): return len(s) + K", g.obj());
  auto* f = reinterpret_cast<PyFunctionObject*>(Eval("f", g.obj()).Release());
  Ref<> func = Ref<>::Steal(reinterpret_cast<PyObject*>(f));
  Ref<> k = Str("K"), len = Str("len");
  PyObject* gnames[] = {k.obj()};
  PyObject* bnames[] = {len.obj()};
  auto globals_guard = GuardDict::CreateForGlobals(gnames);
  auto builtins_guard = GuardBuiltins::Create(bnames);
  ASSERT_TRUE(globals_guard.ok() && builtins_guard.ok());
  ASSERT_TRUE((*globals_guard)->Bind(f).ok() && (*builtins_guard)->Bind(f).ok());
  GuardSet set;
  set.Add(globals_guard->get());
  set.Add(builtins_guard->get());
  EXPECT_EQ(set.watched_dicts(), 2u);  // the globals once, the builtins once
  EXPECT_EQ(set.Check({}).result, GuardResult::kPass);
  Exec("len = 5", g.obj());  // K unchanged, but the builtin is now shadowed
  GuardSet::Outcome outcome = set.Check({});
  EXPECT_EQ(outcome.result, GuardResult::kFail);
  EXPECT_EQ(outcome.failed, builtins_guard->get());
  Exec("del len", g.obj());
  EXPECT_EQ(set.Check({}).result, GuardResult::kPass);
}

}  // namespace
}  // namespace fatjit
