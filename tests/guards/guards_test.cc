// Each guard kind: passes while its assumption holds, fails (temporarily or for good) when not.
#include <gtest/gtest.h>

#include "guards/guard_arg_type.h"
#include "guards/guard_builtins.h"
#include "guards/guard_dict.h"
#include "guards/guard_func.h"
#include "guards/guard_type_version.h"
#include "tests/support/python_env.h"

namespace fatjit {
namespace {

using testing::Eval;
using testing::Exec;
using testing::NewGlobals;
using testing::Str;

constexpr GuardResult kPass = GuardResult::kPass;
constexpr GuardResult kFail = GuardResult::kFail;
constexpr GuardResult kFailForever = GuardResult::kFailForever;

TEST(GuardDictTest, FailsWhileAWatchedKeyIsReboundAndPassesOnceRestored) {
  Ref<> g = NewGlobals();
  Exec("v = object()\nd = {'x': v, 'y': 2}", g.obj());
  Ref<> d = Eval("d", g.obj());
  Ref<> x = Str("x");
  PyObject* keys[] = {x.obj()};
  auto guard = GuardDict::Create(d.obj(), keys);
  ASSERT_TRUE(guard.ok());
  EXPECT_EQ((*guard)->Check({}), kPass);
  Exec("d['y'] = 3", g.obj());  // an unwatched key: still passes, and re-arms
  EXPECT_EQ((*guard)->Check({}), kPass);
  EXPECT_EQ((*guard)->watches()[0]->expected, DictVersion::Of(d.obj()));
  Exec("d['x'] = object()", g.obj());
  EXPECT_EQ((*guard)->Check({}), kFail);
  Exec("d['x'] = v", g.obj());
  EXPECT_EQ((*guard)->Check({}), kPass);
  Exec("del d['x']", g.obj());
  EXPECT_EQ((*guard)->Check({}), kFail);
}

TEST(GuardDictTest, RejectsNonStrKeysAndNonDicts) {
  Ref<> d = Eval("{1: 2}");
  Ref<> one = Eval("1");
  PyObject* keys[] = {one.obj()};
  EXPECT_TRUE(absl::IsInvalidArgument(GuardDict::Create(d.obj(), keys).status()));
  Ref<> list = Eval("[]");
  Ref<> x = Str("x");
  PyObject* str_keys[] = {x.obj()};
  EXPECT_TRUE(absl::IsInvalidArgument(GuardDict::Create(list.obj(), str_keys).status()));
}

TEST(GuardGlobalsTest, BindsToTheFunctionsGlobals) {
  Ref<> g = NewGlobals();
  Exec("K = 1\ndef f(): return K", g.obj());
  Ref<> f = Eval("f", g.obj());
  Ref<> k = Str("K");
  PyObject* names[] = {k.obj()};
  auto guard = GuardDict::CreateForGlobals(names);
  ASSERT_TRUE(guard.ok());
  EXPECT_FALSE((*guard)->bound());
  ASSERT_TRUE((*guard)->Bind(reinterpret_cast<PyFunctionObject*>(f.obj())).ok());
  EXPECT_EQ((*guard)->Check({}), kPass);
  Exec("K = 2", g.obj());
  EXPECT_EQ((*guard)->Check({}), kFail);
  // Another module's function cannot share the guard.
  Ref<> other = NewGlobals();
  Exec("def h(): pass", other.obj());
  Ref<> h = Eval("h", other.obj());
  EXPECT_TRUE(absl::IsFailedPrecondition(
      (*guard)->Bind(reinterpret_cast<PyFunctionObject*>(h.obj()))));
}

TEST(GuardBuiltinsTest, FailsWhenShadowedOrReplacedAndRecovers) {
  Ref<> g = NewGlobals();
  Exec("import builtins\ndef f(s): return len(s)", g.obj());
  Ref<> f = Eval("f", g.obj());
  Ref<> len = Str("len");
  PyObject* names[] = {len.obj()};
  auto guard = GuardBuiltins::Create(names);
  ASSERT_TRUE(guard.ok());
  ASSERT_TRUE((*guard)->Bind(reinterpret_cast<PyFunctionObject*>(f.obj())).ok());
  EXPECT_EQ((*guard)->Check({}), kPass);
  Exec("len = lambda s: 0", g.obj());  // a global shadows the builtin
  EXPECT_EQ((*guard)->Check({}), kFail);
  Exec("del len", g.obj());
  EXPECT_EQ((*guard)->Check({}), kPass);
  Exec("real = builtins.len\nbuiltins.len = lambda s: 0", g.obj());
  EXPECT_EQ((*guard)->Check({}), kFail);
  Exec("builtins.len = real", g.obj());
  EXPECT_EQ((*guard)->Check({}), kPass);
}

TEST(GuardBuiltinsTest, RejectsAnUnknownBuiltin) {
  Ref<> g = NewGlobals();
  Exec("def f(): pass", g.obj());
  Ref<> f = Eval("f", g.obj());
  Ref<> name = Str("no_such_builtin_xyz");
  PyObject* names[] = {name.obj()};
  auto guard = GuardBuiltins::Create(names);
  ASSERT_TRUE(guard.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(
      (*guard)->Bind(reinterpret_cast<PyFunctionObject*>(f.obj()))));
}

TEST(GuardFuncTest, FailsForeverWhenTheCodeIsReplacedOrTheFunctionDies) {
  Ref<> g = NewGlobals();
  Exec("def f(): return 1\ndef other(): return 2", g.obj());
  Ref<> f = Eval("f", g.obj());
  auto guard = GuardFunc::Create(f.obj());
  ASSERT_TRUE(guard.ok());
  EXPECT_EQ((*guard)->Check({}), kPass);
  Exec("saved = f.__code__\nf.__code__ = other.__code__", g.obj());
  EXPECT_EQ((*guard)->Check({}), kFailForever);

  Exec("def tmp(): pass", g.obj());
  Ref<> tmp = Eval("tmp", g.obj());
  auto dying = GuardFunc::Create(tmp.obj());
  ASSERT_TRUE(dying.ok());
  tmp.Reset();
  Exec("del tmp", g.obj());
  EXPECT_EQ((*dying)->Check({}), kFailForever);
}

TEST(GuardArgTypeTest, ChecksTheExactTypeOfTheBoundParameter) {
  Ref<> int_type = Eval("int");
  Ref<> str_type = Eval("str");
  PyObject* types[] = {int_type.obj(), str_type.obj()};
  auto guard = GuardArgType::Create(1, types);
  ASSERT_TRUE(guard.ok());
  Ref<> a = Eval("1.5"), b = Eval("7"), c = Eval("True");
  PyObject* params[] = {a.obj(), b.obj()};
  EXPECT_EQ((*guard)->Check({params, 2}), kPass);
  params[1] = c.obj();  // bool is a subclass of int: not an exact match
  EXPECT_EQ((*guard)->Check({params, 2}), kFail);
  EXPECT_EQ((*guard)->Check({params, 1}), kFail);  // no such parameter
}

TEST(GuardTypeTest, FailsForeverOnceAnAttributeChanges) {
  Ref<> g = NewGlobals();
  Exec("class Base:\n  x = 1\nclass C(Base): pass", g.obj());
  Ref<> c = Eval("C", g.obj());
  auto guard = GuardTypeVersion::Create(c.obj());
  ASSERT_TRUE(guard.ok());
  EXPECT_EQ((*guard)->Check({}), kPass);
  Exec("Base.x = 2", g.obj());  // a base's change invalidates the subclass too
  EXPECT_EQ((*guard)->Check({}), kFailForever);
  Ref<> not_a_type = Eval("1");
  EXPECT_TRUE(absl::IsInvalidArgument(GuardTypeVersion::Create(not_a_type.obj()).status()));
}

}  // namespace
}  // namespace fatjit
