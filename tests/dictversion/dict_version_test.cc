// DictVersion: the tag changes on every kind of mutation and is distinct across dicts.
#include "dictversion/dict_version.h"

#include <gtest/gtest.h>

#include "tests/support/python_env.h"

namespace fatjit {
namespace {

using testing::Eval;
using testing::Exec;
using testing::NewGlobals;

// Runs `setup`, reads the version of `d`, runs `mutation`, and returns whether it changed.
bool MutationChangesVersion(const std::string& setup, const std::string& mutation,
                            const char* dict_expr = "d") {
  Ref<> globals = NewGlobals();
  Exec(setup, globals.obj());
  Ref<> dict = Eval(dict_expr, globals.obj());
  EXPECT_TRUE(PyDict_Check(dict.obj()));
  DictVersion::Tag before = DictVersion::Of(dict.obj());
  Exec(mutation, globals.obj());
  return DictVersion::Changed(dict.obj(), before);
}

TEST(DictVersionTest, EveryKindOfMutationChangesTheVersion) {
  const std::string setup = "d = {'a': 1, 'b': 2}";
  EXPECT_TRUE(MutationChangesVersion(setup, "d['c'] = 3"));             // new key
  EXPECT_TRUE(MutationChangesVersion(setup, "d['a'] = object()"));      // different value
  EXPECT_TRUE(MutationChangesVersion(setup, "del d['a']"));
  EXPECT_TRUE(MutationChangesVersion(setup, "d.update(x=1)"));
  EXPECT_TRUE(MutationChangesVersion(setup, "d.clear()"));
  EXPECT_TRUE(MutationChangesVersion(setup, "d.pop('a')"));
  EXPECT_TRUE(MutationChangesVersion(setup, "d.popitem()"));
  EXPECT_TRUE(MutationChangesVersion(setup, "d.setdefault('z', 0)"));
  EXPECT_TRUE(MutationChangesVersion(setup, "d |= {'q': 1}"));
}

TEST(DictVersionTest, AttributeWritesThroughModuleAndClassDictsChangeTheVersion) {
  EXPECT_TRUE(MutationChangesVersion("import types\nm = types.ModuleType('m')\nm.x = 1",
                                     "m.x = 2", "m.__dict__"));
  EXPECT_TRUE(MutationChangesVersion("import types\nm = types.ModuleType('m')\nm.x = 1",
                                     "del m.x", "m.__dict__"));
  // A class's namespace: type.__dict__ is a proxy; the dict behind it is versioned too.
  EXPECT_TRUE(MutationChangesVersion("class C:\n  x = 1\nimport gc\n"
                                     "d = [r for r in gc.get_referents(C.__dict__)][0]",
                                     "C.x = 2"));
}

TEST(DictVersionTest, NoOpsMayKeepTheVersion) {
  // 3.11 keeps the tag when the very same object is stored again (documented, not required).
  const std::string setup = "v = object()\nd = {'a': v}";
  EXPECT_FALSE(MutationChangesVersion(setup, "d['a'] = v"));
  EXPECT_FALSE(MutationChangesVersion(setup, "x = d.get('a')"));  // reads never change it
}

TEST(DictVersionTest, VersionsAreDistinctAcrossDicts) {
  Ref<> a = Eval("{'k': 1}");
  Ref<> b = Eval("{'k': 1}");
  EXPECT_NE(DictVersion::Of(a.obj()), DictVersion::Of(b.obj()));
}

TEST(DictVersionTest, WatchRejectsNonDicts) {
  Ref<> list = Eval("[1]");
  EXPECT_FALSE(DictVersion::Watch(list.obj()).ok());
  Ref<> dict = Eval("{}");
  EXPECT_TRUE(DictVersion::Watch(dict.obj()).ok());
}

}  // namespace
}  // namespace fatjit
