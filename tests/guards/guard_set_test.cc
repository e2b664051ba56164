// GuardSet: the first failing guard decides; the version fast path never hides a change.
#include "guards/guard_set.h"

#include <gtest/gtest.h>

#include "guards/guard_arg_type.h"
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

}  // namespace
}  // namespace fatjit
