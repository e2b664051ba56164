// The objects group of runtime helpers (runtime.h: names, cells, attributes, calls, functions,
// imports, with, raise), called directly on frames of real functions. Each test checks the
// result, the stack depth and refcounts afterwards, and for errors the exception CPython itself
// raises for the equivalent Python code, plus runtime.h's rule for the input slots on error.
#include <gtest/gtest.h>

#include <string>

#include "jit/native_code.h"
#include "jit/runtime/attr_cache.h"
#include "jit/runtime/runtime.h"
#include "tests/jit/runtime_test_util.h"
#include "tests/support/python_env.h"

namespace fatjit::jit {
namespace {

using testing::Eval;
using testing::Exec;
using testing::NewGlobals;
using testing::Str;
using testing::TestFrame;

// A function whose frame has room for 12 stack slots (and no locals): for helpers that only
// touch the stack and the frame's globals/builtins.
constexpr char kStackFunction[] =
    "def stack(): return [x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11]\n";

// An exception, fetched (normalized) and cleared.
struct Error {
  Ref<> type;
  Ref<> value;
  std::string message;  // str(value)
};

Error FetchError() {
  PyObject *type, *value, *traceback;
  PyErr_Fetch(&type, &value, &traceback);
  PyErr_NormalizeException(&type, &value, &traceback);
  Py_XDECREF(traceback);
  Error error{Ref<>::Steal(type), Ref<>::Steal(value), ""};
  if (error.value) {
    Ref<> str = Ref<>::Steal(PyObject_Str(error.value.get()));
    if (str) error.message = PyUnicode_AsUTF8(str.get());
  }
  PyErr_Clear();
  return error;
}

// The exception CPython raises running `code` in `globals`.
Error ErrorOf(const std::string& code, PyObject* globals) {
  EXPECT_FALSE(PyErr_Occurred()) << "an exception is pending before running " << code;
  Ref<> result = Ref<>::Steal(PyRun_String(code.c_str(), Py_file_input, globals, globals));
  EXPECT_FALSE(result) << code << " did not raise";
  EXPECT_TRUE(PyErr_Occurred()) << code;
  return FetchError();
}

// Fetches the pending exception and checks its exact type and message.
Error ExpectError(PyObject* type, const std::string& message) {
  EXPECT_TRUE(PyErr_Occurred()) << "no exception set";
  Error error = FetchError();
  EXPECT_EQ(error.type.get(), type) << "got " << (error.type ? reinterpret_cast<PyTypeObject*>(
                                                                   error.type.get())->tp_name
                                                             : "nothing");
  EXPECT_EQ(error.message, message);
  return error;
}

// Fetches the pending exception, then checks it is what CPython raises running `code`.
Error ExpectSameError(const std::string& code, PyObject* globals) {
  EXPECT_TRUE(PyErr_Occurred()) << "no exception set";
  Error actual = FetchError();
  Error expected = ErrorOf(code, globals);
  EXPECT_EQ(actual.type.get(), expected.type.get()) << code;
  EXPECT_EQ(actual.message, expected.message) << code;
  return actual;
}

// Defines `src` in `globals` and returns the object it binds to `name`.
Ref<> Define(PyObject* globals, const std::string& src, const char* name) {
  Exec(src, globals);
  return Eval(name, globals);
}

// The localsplus index of `name` in a function's code.
int LocalIndex(PyObject* function, const char* name) {
  auto* code = reinterpret_cast<PyCodeObject*>(PyFunction_GET_CODE(function));
  for (int i = 0; i < code->co_nlocalsplus; ++i) {
    if (PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(code->co_localsplusnames, i), name) ==
        0) {
      return i;
    }
  }
  ADD_FAILURE() << "no local " << name;
  return 0;
}

bool IsTrue(const std::string& expr, PyObject* globals) {
  Ref<> result = Eval(expr, globals);
  return result && PyObject_IsTrue(result.get()) == 1;
}

// Calls helper `op` on `frame` with the stack at `depth`.
int64_t RunOp(OpHelper op, TestFrame& frame, int depth, int64_t oparg, PyObject* aux = nullptr) {
  return op(frame.tstate(), frame.frame(), frame.Sp(depth), oparg, aux);
}

// A fixture with fresh globals holding the stack function.
class ObjectsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    globals_ = NewGlobals();
    stack_function_ = Define(g(), kStackFunction, "stack");
  }
  PyObject* g() const { return globals_.get(); }
  // An object of `expr` (evaluated in the globals) with a reference to push.
  PyObject* New(const std::string& expr) { return Eval(expr, g()).Release(); }

  Ref<> globals_;
  Ref<> stack_function_;
};

// --- names ------------------------------------------------------------------------------------

TEST_F(ObjectsTest, LoadGlobalPushesAGlobalOrABuiltin) {
  Exec("v = object()", g());
  Ref<> v = Eval("v", g());
  Ref<> name_v = Str("v");
  Ref<> name_len = Str("len");
  TestFrame frame(stack_function_.get());
  const Py_ssize_t rc = Py_REFCNT(v.get());
  ASSERT_EQ(RunOp(fatjit_rt_LOAD_GLOBAL, frame, 0, 0, name_v.get()), 0);
  frame.SetDepth(1);
  EXPECT_EQ(*frame.Sp(0), v.get());
  EXPECT_EQ(Py_REFCNT(v.get()), rc + 1);
  ASSERT_EQ(RunOp(fatjit_rt_LOAD_GLOBAL, frame, 1, 0, name_len.get()), 0);
  frame.SetDepth(2);
  Ref<> len = Eval("len");
  EXPECT_EQ(*frame.Sp(1), len.get());
}

TEST_F(ObjectsTest, LoadGlobalWithOddOpargPushesNullFirst) {
  Exec("v = object()", g());
  Ref<> v = Eval("v", g());
  Ref<> name = Str("v");
  TestFrame frame(stack_function_.get());
  const Py_ssize_t rc = Py_REFCNT(v.get());
  ASSERT_EQ(RunOp(fatjit_rt_LOAD_GLOBAL, frame, 0, 1, name.get()), 0);
  frame.SetDepth(2);
  EXPECT_EQ(*frame.Sp(0), nullptr);
  EXPECT_EQ(*frame.Sp(1), v.get());
  EXPECT_EQ(Py_REFCNT(v.get()), rc + 1);
}

TEST_F(ObjectsTest, LoadGlobalOfAMissingNameRaisesNameErrorWithItsName) {
  Ref<> name = Str("nope_xyz");
  TestFrame frame(stack_function_.get());
  EXPECT_EQ(RunOp(fatjit_rt_LOAD_GLOBAL, frame, 0, 1, name.get()), -1);
  Error error = ExpectSameError("def f(): return nope_xyz\nf()", g());
  EXPECT_EQ(error.message, "name 'nope_xyz' is not defined");
  Ref<> attr = Ref<>::Steal(PyObject_GetAttrString(error.value.get(), "name"));
  ASSERT_TRUE(attr);
  EXPECT_EQ(PyUnicode_CompareWithASCIIString(attr.get(), "nope_xyz"), 0);
}

TEST_F(ObjectsTest, LoadGlobalWithNonDictBuiltinsGoesThroughGetItem) {
  Ref<> g2 = Define(g(),
                    "class Builtins:\n"
                    "    def __getitem__(self, key):\n"
                    "        if key == 'magic': return 42\n"
                    "        raise KeyError(key)\n"
                    "g2 = {'__builtins__': Builtins()}\n",
                    "g2");
  Ref<> f = Define(g2.get(), std::string(kStackFunction) + "def get_nope(): return nope\n",
                   "stack");
  Ref<> magic = Str("magic");
  Ref<> nope = Str("nope");
  TestFrame frame(f.get());
  ASSERT_EQ(RunOp(fatjit_rt_LOAD_GLOBAL, frame, 0, 0, magic.get()), 0);
  frame.SetDepth(1);
  EXPECT_EQ(PyLong_AsLong(*frame.Sp(0)), 42);
  EXPECT_EQ(RunOp(fatjit_rt_LOAD_GLOBAL, frame, 1, 0, nope.get()), -1);
  ExpectSameError("get_nope()", g2.get());
}

TEST_F(ObjectsTest, StoreGlobalMovesTheValueIntoGlobals) {
  PyObject* v = New("object()");
  Ref<> name = Str("stored");
  TestFrame frame(stack_function_.get());
  frame.Push(Py_NewRef(v));
  const Py_ssize_t rc = Py_REFCNT(v);
  ASSERT_EQ(RunOp(fatjit_rt_STORE_GLOBAL, frame, 1, 0, name.get()), 0);
  frame.SetDepth(0);
  EXPECT_EQ(*frame.Sp(0), nullptr);
  EXPECT_EQ(PyDict_GetItemString(g(), "stored"), v);
  EXPECT_EQ(Py_REFCNT(v), rc);  // the stack's reference went to the dict
  Py_DECREF(v);
}

TEST_F(ObjectsTest, DeleteGlobalRemovesTheNameOrRaisesNameError) {
  Exec("doomed = 1", g());
  Ref<> doomed = Str("doomed");
  Ref<> nope = Str("nope_q");
  TestFrame frame(stack_function_.get());
  ASSERT_EQ(RunOp(fatjit_rt_DELETE_GLOBAL, frame, 0, 0, doomed.get()), 0);
  EXPECT_EQ(PyDict_GetItemString(g(), "doomed"), nullptr);
  EXPECT_EQ(RunOp(fatjit_rt_DELETE_GLOBAL, frame, 0, 0, nope.get()), -1);
  Error error = ExpectSameError("def d():\n  global nope_q\n  del nope_q\nd()", g());
  EXPECT_EQ(error.message, "name 'nope_q' is not defined");
}

TEST_F(ObjectsTest, DeleteFastClearsTheLocalOrRaisesUnboundLocalError) {
  Ref<> f = Define(g(), "def f(a):\n  del a\n  del a\n", "f");
  PyObject* v = New("object()");
  const Py_ssize_t rc = Py_REFCNT(v);
  TestFrame frame(f.get());
  frame.locals()[0] = Py_NewRef(v);
  ASSERT_EQ(RunOp(fatjit_rt_DELETE_FAST, frame, 0, 0), 0);
  EXPECT_EQ(frame.locals()[0], nullptr);
  EXPECT_EQ(Py_REFCNT(v), rc);
  EXPECT_EQ(RunOp(fatjit_rt_DELETE_FAST, frame, 0, 0), -1);
  Error error = ExpectSameError("f(1)", g());
  EXPECT_EQ(error.message,
            "cannot access local variable 'a' where it is not associated with a value");
  Py_DECREF(v);
}

// --- cells ------------------------------------------------------------------------------------

constexpr char kCells[] =
    "def outer(x):\n"
    "    def inner():\n"
    "        return x\n"
    "    return inner\n"
    "def unbound_local():\n"
    "    def inner():\n"
    "        return y\n"
    "    return y\n"
    "    y = 1\n"
    "def unbound_free():\n"
    "    def inner():\n"
    "        return y\n"
    "    return inner\n"
    "    y = 1\n"
    "def delete_twice(x):\n"
    "    def inner():\n"
    "        return x\n"
    "    del x\n"
    "    del x\n"
    "def delete_free():\n"
    "    def inner():\n"
    "        nonlocal y\n"
    "        del y\n"
    "    return inner\n"
    "    y = 1\n";

TEST_F(ObjectsTest, MakeCellWrapsAnArgumentInACell) {
  Ref<> outer = Define(g(), kCells, "outer");
  PyObject* v = New("object()");
  const int x = LocalIndex(outer.get(), "x");
  TestFrame frame(outer.get());
  frame.locals()[x] = Py_NewRef(v);
  const Py_ssize_t rc = Py_REFCNT(v);
  ASSERT_EQ(RunOp(fatjit_rt_MAKE_CELL, frame, 0, x), 0);
  PyObject* cell = frame.locals()[x];
  ASSERT_TRUE(PyCell_Check(cell));
  EXPECT_EQ(PyCell_GET(cell), v);
  EXPECT_EQ(Py_REFCNT(v), rc);  // the local's reference moved into the cell
  EXPECT_EQ(Py_REFCNT(cell), 1);
  Py_DECREF(v);
}

TEST_F(ObjectsTest, CopyFreeVarsCopiesTheClosureIntoTheLastSlots) {
  Exec(kCells, g());
  Ref<> inner = Eval("outer(object())", g());
  PyObject* closure = PyFunction_GET_CLOSURE(inner.get());
  PyObject* cell = PyTuple_GET_ITEM(closure, 0);
  const Py_ssize_t rc = Py_REFCNT(cell);
  TestFrame frame(inner.get());
  const int nlocalsplus = reinterpret_cast<PyCodeObject*>(PyFunction_GET_CODE(inner.get()))
                              ->co_nlocalsplus;
  ASSERT_EQ(RunOp(fatjit_rt_COPY_FREE_VARS, frame, 0, 1), 0);
  EXPECT_EQ(frame.locals()[nlocalsplus - 1], cell);
  EXPECT_EQ(Py_REFCNT(cell), rc + 1);
}

TEST_F(ObjectsTest, LoadDerefPushesTheCellContents) {
  Exec(kCells + std::string("v = object()\ninner = outer(v)\n"), g());
  Ref<> inner = Eval("inner", g());
  Ref<> v = Eval("v", g());
  TestFrame frame(inner.get());
  ASSERT_EQ(RunOp(fatjit_rt_COPY_FREE_VARS, frame, 0, 1), 0);
  const Py_ssize_t rc = Py_REFCNT(v.get());
  ASSERT_EQ(RunOp(fatjit_rt_LOAD_DEREF, frame, 0, LocalIndex(inner.get(), "x")), 0);
  frame.SetDepth(1);
  EXPECT_EQ(*frame.Sp(0), v.get());
  EXPECT_EQ(Py_REFCNT(v.get()), rc + 1);
}

TEST_F(ObjectsTest, LoadDerefOfAnEmptyCellVariableRaisesUnboundLocalError) {
  Ref<> f = Define(g(), kCells, "unbound_local");
  const int y = LocalIndex(f.get(), "y");
  TestFrame frame(f.get());
  ASSERT_EQ(RunOp(fatjit_rt_MAKE_CELL, frame, 0, y), 0);
  EXPECT_EQ(RunOp(fatjit_rt_LOAD_DEREF, frame, 0, y), -1);
  Error error = ExpectSameError("unbound_local()", g());
  EXPECT_EQ(error.type.get(), PyExc_UnboundLocalError);
}

TEST_F(ObjectsTest, LoadDerefOfAnEmptyFreeVariableRaisesNameError) {
  Exec(kCells, g());
  Ref<> inner = Eval("unbound_free()", g());
  TestFrame frame(inner.get());
  ASSERT_EQ(RunOp(fatjit_rt_COPY_FREE_VARS, frame, 0, 1), 0);
  EXPECT_EQ(RunOp(fatjit_rt_LOAD_DEREF, frame, 0, LocalIndex(inner.get(), "y")), -1);
  Error error = ExpectSameError("unbound_free()()", g());
  EXPECT_EQ(error.message,
            "cannot access free variable 'y' where it is not associated with a value in "
            "enclosing scope");
}

TEST_F(ObjectsTest, StoreDerefMovesTheValueIntoTheCellAndReleasesTheOld) {
  Ref<> outer = Define(g(), kCells, "outer");
  PyObject* old = New("object()");
  PyObject* v = New("object()");
  const int x = LocalIndex(outer.get(), "x");
  TestFrame frame(outer.get());
  frame.locals()[x] = Py_NewRef(old);
  ASSERT_EQ(RunOp(fatjit_rt_MAKE_CELL, frame, 0, x), 0);
  const Py_ssize_t rc_old = Py_REFCNT(old);
  frame.Push(Py_NewRef(v));
  const Py_ssize_t rc_v = Py_REFCNT(v);
  ASSERT_EQ(RunOp(fatjit_rt_STORE_DEREF, frame, 1, x), 0);
  frame.SetDepth(0);
  EXPECT_EQ(*frame.Sp(0), nullptr);
  EXPECT_EQ(PyCell_GET(frame.locals()[x]), v);
  EXPECT_EQ(Py_REFCNT(v), rc_v);
  EXPECT_EQ(Py_REFCNT(old), rc_old - 1);
  Py_DECREF(old);
  Py_DECREF(v);
}

TEST_F(ObjectsTest, DeleteDerefEmptiesTheCellOrRaises) {
  Ref<> outer = Define(g(), kCells, "outer");
  PyObject* v = New("object()");
  const int x = LocalIndex(outer.get(), "x");
  TestFrame frame(outer.get());
  frame.locals()[x] = Py_NewRef(v);
  ASSERT_EQ(RunOp(fatjit_rt_MAKE_CELL, frame, 0, x), 0);
  const Py_ssize_t rc = Py_REFCNT(v);
  ASSERT_EQ(RunOp(fatjit_rt_DELETE_DEREF, frame, 0, x), 0);
  EXPECT_EQ(PyCell_GET(frame.locals()[x]), nullptr);
  EXPECT_EQ(Py_REFCNT(v), rc - 1);
  // A cell variable of this frame: UnboundLocalError, as CPython's second `del x`.
  EXPECT_EQ(RunOp(fatjit_rt_DELETE_DEREF, frame, 0, x), -1);
  Error local = ExpectSameError("delete_twice(1)", g());
  EXPECT_EQ(local.type.get(), PyExc_UnboundLocalError);
  Py_DECREF(v);
}

TEST_F(ObjectsTest, DeleteDerefOfAnEmptyFreeVariableRaisesNameError) {
  Exec(kCells, g());
  Ref<> inner = Eval("delete_free()", g());
  TestFrame frame(inner.get());
  ASSERT_EQ(RunOp(fatjit_rt_COPY_FREE_VARS, frame, 0, 1), 0);
  EXPECT_EQ(RunOp(fatjit_rt_DELETE_DEREF, frame, 0, LocalIndex(inner.get(), "y")), -1);
  Error error = ExpectSameError("delete_free()()", g());
  EXPECT_EQ(error.type.get(), PyExc_NameError);
}

// --- attributes -------------------------------------------------------------------------------

constexpr char kClasses[] =
    "class C:\n"
    "    def method(self): return 'm'\n"
    "c = C()\n"
    "c.attr = object()\n"
    "c.fn = lambda: 'f'\n";

TEST_F(ObjectsTest, LoadAttrReplacesTheOwnerByTheAttribute) {
  Exec(kClasses, g());
  PyObject* c = New("c");
  Ref<> attr = Eval("c.attr", g());
  Ref<> name = Str("attr");
  TestFrame frame(stack_function_.get());
  const Py_ssize_t rc_c = Py_REFCNT(c);
  const Py_ssize_t rc_attr = Py_REFCNT(attr.get());
  frame.Push(Py_NewRef(c));
  ASSERT_EQ(RunOp(fatjit_rt_LOAD_ATTR, frame, 1, 0, name.get()), 0);
  EXPECT_EQ(*frame.Sp(0), attr.get());
  EXPECT_EQ(Py_REFCNT(c), rc_c);
  EXPECT_EQ(Py_REFCNT(attr.get()), rc_attr + 1);
  Py_DECREF(c);
}

TEST_F(ObjectsTest, LoadAttrErrorLeavesTheOwner) {
  PyObject* owner = New("[]");
  Ref<> name = Str("nope");
  TestFrame frame(stack_function_.get());
  frame.Push(owner);
  EXPECT_EQ(RunOp(fatjit_rt_LOAD_ATTR, frame, 1, 0, name.get()), -1);
  ExpectSameError("[].nope", g());
  EXPECT_EQ(*frame.Sp(0), owner);
  EXPECT_EQ(Py_REFCNT(owner), 1);
}

TEST_F(ObjectsTest, StoreAttrSetsTheAttributeAndReleasesBothSlots) {
  Exec(kClasses, g());
  PyObject* c = New("c");
  PyObject* v = New("object()");
  Ref<> name = Str("stored");
  TestFrame frame(stack_function_.get());
  const Py_ssize_t rc_c = Py_REFCNT(c);
  const Py_ssize_t rc_v = Py_REFCNT(v);
  frame.Push(Py_NewRef(v));
  frame.Push(Py_NewRef(c));
  ASSERT_EQ(RunOp(fatjit_rt_STORE_ATTR, frame, 2, 0, name.get()), 0);
  frame.SetDepth(0);
  EXPECT_TRUE(IsTrue("c.stored is not None", g()));
  EXPECT_EQ(Py_REFCNT(c), rc_c);
  EXPECT_EQ(Py_REFCNT(v), rc_v + 1);  // held by c's __dict__
  Py_DECREF(c);
  Py_DECREF(v);
}

TEST_F(ObjectsTest, StoreAttrErrorNullsBothSlots) {
  PyObject* owner = New("[]");
  PyObject* v = New("object()");
  Ref<> name = Str("x");
  TestFrame frame(stack_function_.get());
  frame.Push(Py_NewRef(v));
  frame.Push(Py_NewRef(owner));
  EXPECT_EQ(RunOp(fatjit_rt_STORE_ATTR, frame, 2, 0, name.get()), -1);
  ExpectSameError("[].x = 1", g());
  EXPECT_EQ(*frame.Sp(0), nullptr);
  EXPECT_EQ(*frame.Sp(1), nullptr);
  EXPECT_EQ(Py_REFCNT(owner), 1);
  EXPECT_EQ(Py_REFCNT(v), 1);
  Py_DECREF(owner);
  Py_DECREF(v);
}

TEST_F(ObjectsTest, DeleteAttrRemovesTheAttributeOrRaises) {
  Exec(kClasses, g());
  PyObject* c = New("c");
  Ref<> name = Str("attr");
  TestFrame frame(stack_function_.get());
  const Py_ssize_t rc = Py_REFCNT(c);
  frame.Push(Py_NewRef(c));
  ASSERT_EQ(RunOp(fatjit_rt_DELETE_ATTR, frame, 1, 0, name.get()), 0);
  EXPECT_EQ(*frame.Sp(0), nullptr);
  EXPECT_FALSE(IsTrue("hasattr(c, 'attr')", g()));
  frame.SetDepth(0);
  frame.Push(Py_NewRef(c));
  EXPECT_EQ(RunOp(fatjit_rt_DELETE_ATTR, frame, 1, 0, name.get()), -1);
  frame.SetDepth(0);
  ExpectSameError("del c.attr", g());
  EXPECT_EQ(*frame.Sp(0), nullptr);
  EXPECT_EQ(Py_REFCNT(c), rc);
  Py_DECREF(c);
}

TEST_F(ObjectsTest, LoadMethodPushesTheUnboundMethodAndSelf) {
  Exec(kClasses, g());
  PyObject* c = New("c");
  Ref<> function = Eval("C.method", g());
  Ref<> name = Str("method");
  TestFrame frame(stack_function_.get());
  const Py_ssize_t rc = Py_REFCNT(c);
  frame.Push(Py_NewRef(c));
  ASSERT_EQ(RunOp(fatjit_rt_LOAD_METHOD, frame, 1, 0, name.get()), 0);
  frame.SetDepth(2);
  EXPECT_EQ(*frame.Sp(0), function.get());
  EXPECT_EQ(*frame.Sp(1), c);
  EXPECT_EQ(Py_REFCNT(c), rc + 1);
  Py_DECREF(c);
}

TEST_F(ObjectsTest, LoadMethodOfAnInstanceAttributePushesNullAndTheAttribute) {
  Exec(kClasses, g());
  PyObject* c = New("c");
  Ref<> fn = Eval("c.fn", g());
  Ref<> name = Str("fn");
  TestFrame frame(stack_function_.get());
  const Py_ssize_t rc = Py_REFCNT(c);
  frame.Push(Py_NewRef(c));
  ASSERT_EQ(RunOp(fatjit_rt_LOAD_METHOD, frame, 1, 0, name.get()), 0);
  frame.SetDepth(2);
  EXPECT_EQ(*frame.Sp(0), nullptr);
  EXPECT_EQ(*frame.Sp(1), fn.get());
  EXPECT_EQ(Py_REFCNT(c), rc);
  Py_DECREF(c);
}

TEST_F(ObjectsTest, LoadMethodErrorLeavesTheObject) {
  PyObject* owner = New("[]");
  Ref<> name = Str("nope");
  TestFrame frame(stack_function_.get());
  frame.Push(owner);
  EXPECT_EQ(RunOp(fatjit_rt_LOAD_METHOD, frame, 1, 0, name.get()), -1);
  ExpectSameError("[].nope()", g());
  EXPECT_EQ(*frame.Sp(0), owner);
  EXPECT_EQ(Py_REFCNT(owner), 1);
}

// --- attribute caches (attr_cache.h) ----------------------------------------------------------

// The cached helpers answer the second execution from the cache, with the same stack effect and
// references as the generic ones, and fall back to the generic lookup (and its error) on a hole.
TEST_F(ObjectsTest, CachedLoadAttrHitsAndFallsBackOnAHole) {
  Exec("class S:\n    __slots__ = ('x',)\ns = S()\ns.x = object()\n", g());
  PyObject* s = New("s");
  Ref<> x = Eval("s.x", g());
  AttrCache cache;
  Ref<> name = Str("x");
  cache.name = name.get();
  const Py_ssize_t rc_s = Py_REFCNT(s);
  const Py_ssize_t rc_x = Py_REFCNT(x.get());
  for (int i = 0; i < 2; ++i) {
    TestFrame frame(stack_function_.get());
    frame.Push(Py_NewRef(s));
    const uint64_t hits = GlobalJitCounters().attr_cache_hits;
    ASSERT_EQ(RunOp(fatjit_rt_LOAD_ATTR_CACHED, frame, 1, 0, reinterpret_cast<PyObject*>(&cache)),
              0);
    EXPECT_EQ(*frame.Sp(0), x.get());
    EXPECT_EQ(Py_REFCNT(x.get()), rc_x + 1);
    EXPECT_EQ(GlobalJitCounters().attr_cache_hits, hits + (i == 0 ? 0 : 1));
  }
  EXPECT_EQ(cache.entries[0].kind, AttrCacheKind::kSlot);
  Exec("del s.x\n", g());
  TestFrame frame(stack_function_.get());
  frame.Push(Py_NewRef(s));
  EXPECT_EQ(RunOp(fatjit_rt_LOAD_ATTR_CACHED, frame, 1, 0, reinterpret_cast<PyObject*>(&cache)),
            -1);
  ExpectSameError("s.x", g());
  EXPECT_EQ(*frame.Sp(0), s);  // the owner stays on error
  EXPECT_EQ(Py_REFCNT(s), rc_s + 1);
  Py_DECREF(s);
}

TEST_F(ObjectsTest, CachedStoreAttrStoresIntoTheInstanceValues) {
  Exec("class C:\n    def __init__(self): self.a = None\nc = C()\n", g());
  PyObject* c = New("c");
  AttrCache cache;
  Ref<> name = Str("a");
  cache.name = name.get();
  const Py_ssize_t rc_c = Py_REFCNT(c);
  for (int i = 0; i < 2; ++i) {
    PyObject* v = New("object()");
    TestFrame frame(stack_function_.get());
    frame.Push(Py_NewRef(v));
    frame.Push(Py_NewRef(c));
    ASSERT_EQ(
        RunOp(fatjit_rt_STORE_ATTR_CACHED, frame, 2, 0, reinterpret_cast<PyObject*>(&cache)), 0);
    frame.SetDepth(0);
    EXPECT_EQ(*frame.Sp(0), nullptr);
    EXPECT_EQ(*frame.Sp(1), nullptr);
    EXPECT_EQ(Py_REFCNT(v), 2);  // ours and c's
    EXPECT_EQ(Py_REFCNT(c), rc_c);
    Ref<> stored = Eval("c.a", g());
    EXPECT_EQ(stored.get(), v);
    Py_DECREF(v);
  }
  EXPECT_EQ(cache.entries[0].kind, AttrCacheKind::kInstanceValue);
  Py_DECREF(c);
}

TEST_F(ObjectsTest, CachedLoadMethodNoticesAShadowingInstanceAttribute) {
  Exec(kClasses, g());
  Exec("d = C()\n", g());
  PyObject* d = New("d");
  Ref<> function = Eval("C.method", g());
  AttrCache cache;
  Ref<> name = Str("method");
  cache.name = name.get();
  for (int i = 0; i < 2; ++i) {
    TestFrame frame(stack_function_.get());
    frame.Push(Py_NewRef(d));
    ASSERT_EQ(
        RunOp(fatjit_rt_LOAD_METHOD_CACHED, frame, 1, 0, reinterpret_cast<PyObject*>(&cache)), 0);
    frame.SetDepth(2);
    EXPECT_EQ(*frame.Sp(0), function.get());
    EXPECT_EQ(*frame.Sp(1), d);
  }
  EXPECT_EQ(cache.entries[0].kind, AttrCacheKind::kMethod);
  Exec("c.method = 'shadow'\n", g());  // another instance: the shared keys gain 'method'
  Exec("d.method = 'mine'\n", g());
  TestFrame frame(stack_function_.get());
  frame.Push(Py_NewRef(d));
  ASSERT_EQ(RunOp(fatjit_rt_LOAD_METHOD_CACHED, frame, 1, 0, reinterpret_cast<PyObject*>(&cache)),
            0);
  frame.SetDepth(2);
  EXPECT_EQ(*frame.Sp(0), nullptr);
  EXPECT_TRUE(PyUnicode_Check(*frame.Sp(1)));
  EXPECT_EQ(PyUnicode_CompareWithASCIIString(*frame.Sp(1), "mine"), 0);
  Py_DECREF(d);
}

// --- calls ------------------------------------------------------------------------------------

constexpr char kCallees[] =
    "def add(a, b): return a + b\n"
    "def kw(a, b=0, *, c=0): return (a, b, c)\n"
    "def boom(x): raise ValueError('boom')\n"
    "class C:\n"
    "    def method(self, x): return ('method', x)\n"
    "c = C()\n";

TEST_F(ObjectsTest, PrecallUnpacksABoundMethod) {
  Exec(kCallees, g());
  PyObject* bound = New("c.method");
  Ref<> function = Eval("C.method", g());
  Ref<> c = Eval("c", g());
  TestFrame frame(stack_function_.get());
  frame.Push(nullptr);
  frame.Push(bound);  // the stack owns the only reference
  frame.Push(New("1"));
  const Py_ssize_t rc_function = Py_REFCNT(function.get());
  const Py_ssize_t rc_c = Py_REFCNT(c.get());
  ASSERT_EQ(RunOp(fatjit_rt_PRECALL, frame, 3, 1), 0);
  EXPECT_EQ(*frame.Sp(0), function.get());
  EXPECT_EQ(*frame.Sp(1), c.get());
  // The bound method is gone, its references moved to the stack.
  EXPECT_EQ(Py_REFCNT(function.get()), rc_function);
  EXPECT_EQ(Py_REFCNT(c.get()), rc_c);
}

TEST_F(ObjectsTest, PrecallLeavesOtherCallablesAlone) {
  Exec(kCallees, g());
  PyObject* add = New("add");
  TestFrame frame(stack_function_.get());
  frame.Push(nullptr);
  frame.Push(add);
  frame.Push(New("1"));
  frame.Push(New("2"));
  ASSERT_EQ(RunOp(fatjit_rt_PRECALL, frame, 4, 2), 0);
  EXPECT_EQ(*frame.Sp(0), nullptr);
  EXPECT_EQ(*frame.Sp(1), add);
}

TEST_F(ObjectsTest, CallPositional) {
  Exec(kCallees, g());
  PyObject* add = New("add");
  PyObject* a = New("[1]");
  PyObject* b = New("[2]");
  TestFrame frame(stack_function_.get());
  frame.Push(nullptr);
  frame.Push(Py_NewRef(add));
  frame.Push(Py_NewRef(a));
  frame.Push(Py_NewRef(b));
  const Py_ssize_t rc_add = Py_REFCNT(add);
  ASSERT_EQ(RunOp(fatjit_rt_CALL, frame, 4, 2), 0);
  frame.SetDepth(1);
  Ref<> expected = Eval("[1, 2]");
  EXPECT_EQ(PyObject_RichCompareBool(*frame.Sp(0), expected.get(), Py_EQ), 1);
  for (int i = 1; i < 4; ++i) EXPECT_EQ(*frame.Sp(i), nullptr);
  EXPECT_EQ(Py_REFCNT(add), rc_add - 1);
  EXPECT_EQ(Py_REFCNT(a), 1);
  EXPECT_EQ(Py_REFCNT(b), 1);
  Py_DECREF(add);
  Py_DECREF(a);
  Py_DECREF(b);
}

TEST_F(ObjectsTest, CallWithKeywordNames) {
  Exec(kCallees, g());
  Ref<> kwnames = Eval("('c',)");
  TestFrame frame(stack_function_.get());
  frame.Push(nullptr);
  frame.Push(New("kw"));
  frame.Push(New("1"));
  frame.Push(New("5"));
  ASSERT_EQ(RunOp(fatjit_rt_CALL, frame, 4, 2, kwnames.get()), 0);
  frame.SetDepth(1);
  Ref<> expected = Eval("(1, 0, 5)");
  EXPECT_EQ(PyObject_RichCompareBool(*frame.Sp(0), expected.get(), Py_EQ), 1);
}

TEST_F(ObjectsTest, CallMethodFormPassesSelfFirst) {
  Exec(kCallees, g());
  PyObject* c = New("c");
  const Py_ssize_t rc = Py_REFCNT(c);
  TestFrame frame(stack_function_.get());
  frame.Push(New("C.method"));
  frame.Push(Py_NewRef(c));
  frame.Push(New("7"));
  ASSERT_EQ(RunOp(fatjit_rt_CALL, frame, 3, 1), 0);  // oparg counts the arguments after self
  frame.SetDepth(1);
  Ref<> expected = Eval("('method', 7)");
  EXPECT_EQ(PyObject_RichCompareBool(*frame.Sp(0), expected.get(), Py_EQ), 1);
  EXPECT_EQ(*frame.Sp(1), nullptr);
  EXPECT_EQ(*frame.Sp(2), nullptr);
  EXPECT_EQ(Py_REFCNT(c), rc);
  Py_DECREF(c);
}

TEST_F(ObjectsTest, CallBuiltin) {
  TestFrame frame(stack_function_.get());
  frame.Push(nullptr);
  frame.Push(New("len"));
  frame.Push(New("[1, 2, 3]"));
  ASSERT_EQ(RunOp(fatjit_rt_CALL, frame, 3, 1), 0);
  frame.SetDepth(1);
  EXPECT_EQ(PyLong_AsLong(*frame.Sp(0)), 3);
}

TEST_F(ObjectsTest, CallErrorReleasesEveryInput) {
  Exec(kCallees, g());
  PyObject* boom = New("boom");
  PyObject* arg = New("object()");
  const Py_ssize_t rc_boom = Py_REFCNT(boom);
  TestFrame frame(stack_function_.get());
  frame.Push(nullptr);
  frame.Push(Py_NewRef(boom));
  frame.Push(Py_NewRef(arg));
  EXPECT_EQ(RunOp(fatjit_rt_CALL, frame, 3, 1), -1);
  ExpectError(PyExc_ValueError, "boom");
  for (int i = 0; i < 3; ++i) EXPECT_EQ(*frame.Sp(i), nullptr);
  EXPECT_EQ(Py_REFCNT(boom), rc_boom);
  EXPECT_EQ(Py_REFCNT(arg), 1);
  Py_DECREF(boom);
  Py_DECREF(arg);
}

TEST_F(ObjectsTest, CallFunctionExWithArgsAndKwargs) {
  Exec(kCallees, g());
  PyObject* kw = New("kw");
  const Py_ssize_t rc = Py_REFCNT(kw);
  TestFrame frame(stack_function_.get());
  frame.Push(nullptr);
  frame.Push(Py_NewRef(kw));
  frame.Push(New("(1, 2)"));
  ASSERT_EQ(RunOp(fatjit_rt_CALL_FUNCTION_EX, frame, 3, 0), 0);
  frame.SetDepth(1);
  Ref<> expected = Eval("(1, 2, 0)");
  EXPECT_EQ(PyObject_RichCompareBool(*frame.Sp(0), expected.get(), Py_EQ), 1);
  EXPECT_EQ(*frame.Sp(1), nullptr);
  EXPECT_EQ(*frame.Sp(2), nullptr);
  // A list for *args and a dict for **kwargs.
  frame.Push(nullptr);
  frame.Push(Py_NewRef(kw));
  frame.Push(New("[1]"));
  frame.Push(New("{'c': 3}"));
  ASSERT_EQ(RunOp(fatjit_rt_CALL_FUNCTION_EX, frame, 5, 1), 0);
  frame.SetDepth(2);
  expected = Eval("(1, 0, 3)");
  EXPECT_EQ(PyObject_RichCompareBool(*frame.Sp(1), expected.get(), Py_EQ), 1);
  EXPECT_EQ(Py_REFCNT(kw), rc);
  Py_DECREF(kw);
}

TEST_F(ObjectsTest, CallFunctionExConvertsAMappingToADict) {
  Exec(std::string(kCallees) +
           "import collections.abc\n"
           "class M(collections.abc.Mapping):\n"
           "    def __getitem__(self, k): return {'b': 2, 'c': 3}[k]\n"
           "    def __iter__(self): return iter(['b', 'c'])\n"
           "    def __len__(self): return 2\n",
       g());
  TestFrame frame(stack_function_.get());
  frame.Push(nullptr);
  frame.Push(New("kw"));
  frame.Push(New("(1,)"));
  frame.Push(New("M()"));
  ASSERT_EQ(RunOp(fatjit_rt_CALL_FUNCTION_EX, frame, 4, 1), 0);
  frame.SetDepth(1);
  Ref<> expected = Eval("(1, 2, 3)");
  EXPECT_EQ(PyObject_RichCompareBool(*frame.Sp(0), expected.get(), Py_EQ), 1);
}

TEST_F(ObjectsTest, CallFunctionExNonMappingKwargs) {
  Exec(kCallees, g());
  PyObject* callargs = New("()");
  PyObject* kwargs = New("[1]");
  TestFrame frame(stack_function_.get());
  frame.Push(nullptr);
  frame.Push(New("kw"));
  frame.Push(callargs);
  frame.Push(Py_NewRef(kwargs));
  EXPECT_EQ(RunOp(fatjit_rt_CALL_FUNCTION_EX, frame, 4, 1), -1);
  ExpectError(PyExc_TypeError, "kw() argument after ** must be a mapping, not list");
  EXPECT_EQ(*frame.Sp(3), nullptr);   // kwargs released
  EXPECT_EQ(*frame.Sp(2), callargs);  // the rest untouched
  EXPECT_NE(*frame.Sp(1), nullptr);
  EXPECT_EQ(Py_REFCNT(kwargs), 1);
  Py_DECREF(kwargs);
}

TEST_F(ObjectsTest, CallFunctionExDuplicateKeyword) {
  Exec(std::string(kCallees) +
           "class Dup:\n"
           "    def keys(self): return ['c', 'c']\n"
           "    def __getitem__(self, k): return 1\n",
       g());
  TestFrame frame(stack_function_.get());
  frame.Push(nullptr);
  frame.Push(New("kw"));
  frame.Push(New("()"));
  frame.Push(New("Dup()"));
  EXPECT_EQ(RunOp(fatjit_rt_CALL_FUNCTION_EX, frame, 4, 1), -1);
  ExpectError(PyExc_TypeError, "kw() got multiple values for keyword argument 'c'");
  EXPECT_EQ(*frame.Sp(3), nullptr);
}

TEST_F(ObjectsTest, CallFunctionExNonIterableArgs) {
  Exec(kCallees, g());
  PyObject* callargs = New("5");
  TestFrame frame(stack_function_.get());
  frame.Push(nullptr);
  frame.Push(New("kw"));
  frame.Push(Py_NewRef(callargs));
  EXPECT_EQ(RunOp(fatjit_rt_CALL_FUNCTION_EX, frame, 3, 0), -1);
  Error error = ExpectSameError("kw(*5)", g());
  EXPECT_EQ(error.message, "kw() argument after * must be an iterable, not int");
  EXPECT_EQ(*frame.Sp(2), nullptr);
  EXPECT_NE(*frame.Sp(1), nullptr);
  Py_DECREF(callargs);
}

TEST_F(ObjectsTest, CallFunctionExErrorFromTheCallee) {
  Exec(kCallees, g());
  PyObject* boom = New("boom");
  const Py_ssize_t rc = Py_REFCNT(boom);
  TestFrame frame(stack_function_.get());
  frame.Push(nullptr);
  frame.Push(Py_NewRef(boom));
  frame.Push(New("(1,)"));
  frame.Push(New("{}"));
  EXPECT_EQ(RunOp(fatjit_rt_CALL_FUNCTION_EX, frame, 4, 1), -1);
  ExpectError(PyExc_ValueError, "boom");
  for (int i = 0; i < 4; ++i) EXPECT_EQ(*frame.Sp(i), nullptr);
  EXPECT_EQ(Py_REFCNT(boom), rc);
  Py_DECREF(boom);
}

// --- functions and classes --------------------------------------------------------------------

TEST_F(ObjectsTest, MakeFunctionWithDefaultsKwdefaultsAndAnnotations) {
  Exec("template = lambda a, b=2, *, c=3: (a, b, c)", g());
  PyObject* defaults = New("(20,)");
  PyObject* kwdefaults = New("{'c': 30}");
  TestFrame frame(stack_function_.get());
  frame.Push(Py_NewRef(defaults));
  frame.Push(Py_NewRef(kwdefaults));
  frame.Push(New("('a', int)"));
  frame.Push(New("template.__code__"));
  ASSERT_EQ(RunOp(fatjit_rt_MAKE_FUNCTION, frame, 4, 0x07), 0);
  frame.SetDepth(1);
  for (int i = 1; i < 4; ++i) EXPECT_EQ(*frame.Sp(i), nullptr);
  PyObject* func = *frame.Sp(0);
  ASSERT_TRUE(PyFunction_Check(func));
  EXPECT_EQ(PyFunction_GET_GLOBALS(func), frame.frame()->f_globals);
  EXPECT_EQ(PyFunction_GET_DEFAULTS(func), defaults);
  EXPECT_EQ(PyFunction_GET_KW_DEFAULTS(func), kwdefaults);
  EXPECT_EQ(Py_REFCNT(defaults), 2);
  EXPECT_EQ(Py_REFCNT(kwdefaults), 2);
  PyDict_SetItemString(g(), "made", func);
  EXPECT_TRUE(IsTrue("made(1) == (1, 20, 30)", g()));
  EXPECT_TRUE(IsTrue("made.__annotations__ == {'a': int}", g()));
  EXPECT_TRUE(IsTrue("made.__name__ == '<lambda>'", g()));
  Py_DECREF(defaults);
  Py_DECREF(kwdefaults);
}

TEST_F(ObjectsTest, MakeFunctionWithClosure) {
  Exec(kCells + std::string("inner = outer('captured')\n"), g());
  TestFrame frame(stack_function_.get());
  frame.Push(New("inner.__closure__"));
  frame.Push(New("inner.__code__"));
  ASSERT_EQ(RunOp(fatjit_rt_MAKE_FUNCTION, frame, 2, 0x08), 0);
  frame.SetDepth(1);
  EXPECT_EQ(*frame.Sp(1), nullptr);
  PyDict_SetItemString(g(), "made", *frame.Sp(0));
  EXPECT_TRUE(IsTrue("made() == 'captured'", g()));
  EXPECT_TRUE(IsTrue("made.__closure__ is inner.__closure__", g()));
}

TEST_F(ObjectsTest, LoadBuildClassPushesTheBuiltin) {
  Ref<> build_class = Eval("__build_class__");
  TestFrame frame(stack_function_.get());
  const Py_ssize_t rc = Py_REFCNT(build_class.get());
  ASSERT_EQ(RunOp(fatjit_rt_LOAD_BUILD_CLASS, frame, 0, 0), 0);
  frame.SetDepth(1);
  EXPECT_EQ(*frame.Sp(0), build_class.get());
  EXPECT_EQ(Py_REFCNT(build_class.get()), rc + 1);
}

TEST_F(ObjectsTest, LoadBuildClassWithoutItRaisesNameError) {
  Ref<> empty = Eval("{'__builtins__': {}}");
  Ref<> f = Define(empty.get(), kStackFunction, "stack");
  TestFrame frame(f.get());
  EXPECT_EQ(RunOp(fatjit_rt_LOAD_BUILD_CLASS, frame, 0, 0), -1);
  Error error = ExpectSameError("class A: pass", empty.get());
  EXPECT_EQ(error.message, "__build_class__ not found");
}

TEST_F(ObjectsTest, LoadAssertionErrorPushesTheClass) {
  TestFrame frame(stack_function_.get());
  const Py_ssize_t rc = Py_REFCNT(PyExc_AssertionError);
  ASSERT_EQ(RunOp(fatjit_rt_LOAD_ASSERTION_ERROR, frame, 0, 0), 0);
  frame.SetDepth(1);
  EXPECT_EQ(*frame.Sp(0), PyExc_AssertionError);
  EXPECT_EQ(Py_REFCNT(PyExc_AssertionError), rc + 1);
}

// --- imports ----------------------------------------------------------------------------------

TEST_F(ObjectsTest, ImportNameImportsAStdlibModule) {
  Ref<> os = Eval("__import__('os')");
  Ref<> name = Str("os");
  PyObject* level = New("0");
  PyObject* fromlist = New("('path',)");
  TestFrame frame(stack_function_.get());
  frame.Push(Py_NewRef(level));
  frame.Push(Py_NewRef(fromlist));
  const Py_ssize_t rc = Py_REFCNT(fromlist);
  ASSERT_EQ(RunOp(fatjit_rt_IMPORT_NAME, frame, 2, 0, name.get()), 0);
  frame.SetDepth(1);
  EXPECT_EQ(*frame.Sp(0), os.get());
  EXPECT_EQ(*frame.Sp(1), nullptr);
  EXPECT_EQ(Py_REFCNT(fromlist), rc - 1);
  Py_DECREF(level);
  Py_DECREF(fromlist);
}

TEST_F(ObjectsTest, ImportNameOfAMissingModuleReleasesBothInputs) {
  Ref<> name = Str("no_such_module_xyz");
  PyObject* fromlist = New("('a',)");
  TestFrame frame(stack_function_.get());
  frame.Push(New("0"));
  frame.Push(Py_NewRef(fromlist));
  EXPECT_EQ(RunOp(fatjit_rt_IMPORT_NAME, frame, 2, 0, name.get()), -1);
  Error error = ExpectSameError("import no_such_module_xyz", g());
  EXPECT_EQ(error.message, "No module named 'no_such_module_xyz'");
  EXPECT_EQ(*frame.Sp(0), nullptr);
  EXPECT_EQ(*frame.Sp(1), nullptr);
  EXPECT_EQ(Py_REFCNT(fromlist), 1);
  Py_DECREF(fromlist);
}

TEST_F(ObjectsTest, ImportNameCallsAnOverriddenImport) {
  Ref<> g2 = Define(g(),
                    "calls = []\n"
                    "def recorder(*args):\n"
                    "    calls.append(args)\n"
                    "    return 'imported'\n"
                    "g2 = {'__builtins__': {'__import__': recorder}}\n",
                    "g2");
  Ref<> f = Define(g2.get(), kStackFunction, "stack");
  Ref<> name = Str("pkg");
  TestFrame frame(f.get());
  frame.Push(New("1"));
  frame.Push(New("('x',)"));
  ASSERT_EQ(RunOp(fatjit_rt_IMPORT_NAME, frame, 2, 0, name.get()), 0);
  frame.SetDepth(1);
  EXPECT_EQ(PyUnicode_CompareWithASCIIString(*frame.Sp(0), "imported"), 0);
  EXPECT_TRUE(IsTrue("calls == [('pkg', g2, None, ('x',), 1)] and calls[0][1] is g2", g()));
}

TEST_F(ObjectsTest, ImportFromPushesTheAttribute) {
  PyObject* os = New("__import__('os')");
  Ref<> path = Eval("__import__('os').path");
  Ref<> name = Str("path");
  TestFrame frame(stack_function_.get());
  frame.Push(os);
  const Py_ssize_t rc = Py_REFCNT(os);
  ASSERT_EQ(RunOp(fatjit_rt_IMPORT_FROM, frame, 1, 0, name.get()), 0);
  frame.SetDepth(2);
  EXPECT_EQ(*frame.Sp(0), os);
  EXPECT_EQ(*frame.Sp(1), path.get());
  EXPECT_EQ(Py_REFCNT(os), rc);
}

TEST_F(ObjectsTest, ImportFromOfAMissingNameRaisesImportError) {
  PyObject* os = New("__import__('os')");
  Ref<> name = Str("nope");
  TestFrame frame(stack_function_.get());
  frame.Push(os);
  EXPECT_EQ(RunOp(fatjit_rt_IMPORT_FROM, frame, 1, 0, name.get()), -1);
  Error error = ExpectSameError("from os import nope", g());
  EXPECT_EQ(error.message.rfind("cannot import name 'nope' from 'os' (/", 0), 0u)
      << error.message;
  EXPECT_TRUE(PyErr_GivenExceptionMatches(error.value.get(), PyExc_ImportError));
  Ref<> module_name = Ref<>::Steal(PyObject_GetAttrString(error.value.get(), "name"));
  EXPECT_EQ(PyUnicode_CompareWithASCIIString(module_name.get(), "os"), 0);
  EXPECT_EQ(*frame.Sp(0), os);
}

TEST_F(ObjectsTest, ImportFromAModuleWithoutAFile) {
  TestFrame frame(stack_function_.get());
  Ref<> name = Str("nope");
  frame.Push(New("__import__('sys')"));
  EXPECT_EQ(RunOp(fatjit_rt_IMPORT_FROM, frame, 1, 0, name.get()), -1);
  Error error = ExpectSameError("from sys import nope", g());
  EXPECT_EQ(error.message, "cannot import name 'nope' from 'sys' (unknown location)");
}

// --- with and raise ---------------------------------------------------------------------------

constexpr char kManagers[] =
    "class CM:\n"
    "    def __enter__(self): return 'entered'\n"
    "    def __exit__(self, *args): return False\n"
    "class OnlyEnter:\n"
    "    def __enter__(self): return self\n"
    "class EnterRaises:\n"
    "    def __enter__(self): raise RuntimeError('no entry')\n"
    "    def __exit__(self, *args): return False\n";

TEST_F(ObjectsTest, BeforeWithPushesExitAndTheEnterResult) {
  Exec(kManagers, g());
  PyObject* mgr = New("CM()");
  const Py_ssize_t rc = Py_REFCNT(mgr);
  TestFrame frame(stack_function_.get());
  frame.Push(Py_NewRef(mgr));
  ASSERT_EQ(RunOp(fatjit_rt_BEFORE_WITH, frame, 1, 0), 0);
  frame.SetDepth(2);
  PyObject* exit = *frame.Sp(0);
  ASSERT_TRUE(PyMethod_Check(exit));
  EXPECT_EQ(PyMethod_GET_SELF(exit), mgr);
  EXPECT_EQ(PyUnicode_CompareWithASCIIString(*frame.Sp(1), "entered"), 0);
  EXPECT_EQ(Py_REFCNT(mgr), rc + 1);  // held by the bound __exit__
  Py_DECREF(mgr);
}

TEST_F(ObjectsTest, BeforeWithOnANonContextManager) {
  Exec(kManagers, g());
  PyObject* mgr = New("1");
  TestFrame frame(stack_function_.get());
  frame.Push(mgr);
  EXPECT_EQ(RunOp(fatjit_rt_BEFORE_WITH, frame, 1, 0), -1);
  Error error = ExpectSameError("with 1: pass", g());
  EXPECT_EQ(error.message, "'int' object does not support the context manager protocol");
  EXPECT_EQ(*frame.Sp(0), mgr);
  // Missing __exit__ only.
  frame.Push(New("OnlyEnter()"));
  EXPECT_EQ(RunOp(fatjit_rt_BEFORE_WITH, frame, 2, 0), -1);
  ExpectSameError("with OnlyEnter(): pass", g());
}

TEST_F(ObjectsTest, BeforeWithEnterRaisingReleasesTheManager) {
  Exec(kManagers, g());
  PyObject* mgr = New("EnterRaises()");
  const Py_ssize_t rc = Py_REFCNT(mgr);
  TestFrame frame(stack_function_.get());
  frame.Push(Py_NewRef(mgr));
  EXPECT_EQ(RunOp(fatjit_rt_BEFORE_WITH, frame, 1, 0), -1);
  ExpectError(PyExc_RuntimeError, "no entry");
  EXPECT_EQ(*frame.Sp(0), nullptr);
  EXPECT_EQ(Py_REFCNT(mgr), rc);
  Py_DECREF(mgr);
}

TEST_F(ObjectsTest, RaiseVarargsInstantiatesAClass) {
  TestFrame frame(stack_function_.get());
  const Py_ssize_t rc = Py_REFCNT(PyExc_ValueError);
  frame.Push(Py_NewRef(PyExc_ValueError));
  EXPECT_EQ(RunOp(fatjit_rt_RAISE_VARARGS, frame, 1, 1), -1);
  Error error = ExpectError(PyExc_ValueError, "");
  EXPECT_TRUE(PyObject_TypeCheck(error.value.get(),
                                 reinterpret_cast<PyTypeObject*>(PyExc_ValueError)));
  EXPECT_EQ(*frame.Sp(0), nullptr);
  error = Error{};
  EXPECT_EQ(Py_REFCNT(PyExc_ValueError), rc);
}

TEST_F(ObjectsTest, RaiseVarargsRaisesTheInstance) {
  PyObject* exc = New("KeyError('k')");
  TestFrame frame(stack_function_.get());
  frame.Push(Py_NewRef(exc));
  EXPECT_EQ(RunOp(fatjit_rt_RAISE_VARARGS, frame, 1, 1), -1);
  Error error = ExpectError(PyExc_KeyError, "'k'");
  EXPECT_EQ(error.value.get(), exc);
  EXPECT_EQ(*frame.Sp(0), nullptr);
  error = Error{};
  EXPECT_EQ(Py_REFCNT(exc), 1);
  Py_DECREF(exc);
}

TEST_F(ObjectsTest, RaiseVarargsWithACause) {
  PyObject* exc = New("KeyError('k')");
  TestFrame frame(stack_function_.get());
  frame.Push(Py_NewRef(exc));
  frame.Push(Py_NewRef(PyExc_ValueError));  // a class cause is instantiated
  EXPECT_EQ(RunOp(fatjit_rt_RAISE_VARARGS, frame, 2, 2), -1);
  Error error = ExpectError(PyExc_KeyError, "'k'");
  EXPECT_EQ(*frame.Sp(0), nullptr);
  EXPECT_EQ(*frame.Sp(1), nullptr);
  PyObject* cause = PyException_GetCause(error.value.get());
  ASSERT_NE(cause, nullptr);
  EXPECT_TRUE(Py_IS_TYPE(cause, reinterpret_cast<PyTypeObject*>(PyExc_ValueError)));
  EXPECT_TRUE(reinterpret_cast<PyBaseExceptionObject*>(error.value.get())->suppress_context);
  Py_DECREF(cause);

  // An instance cause is attached as is; None clears the cause and suppresses the context.
  PyObject* instance = New("OSError('why')");
  frame.SetDepth(0);
  frame.Push(New("TypeError('t')"));
  frame.Push(Py_NewRef(instance));
  EXPECT_EQ(RunOp(fatjit_rt_RAISE_VARARGS, frame, 2, 2), -1);
  error = ExpectError(PyExc_TypeError, "t");
  cause = PyException_GetCause(error.value.get());
  EXPECT_EQ(cause, instance);
  Py_XDECREF(cause);
  frame.SetDepth(0);
  frame.Push(New("TypeError('t')"));
  frame.Push(Py_NewRef(Py_None));
  EXPECT_EQ(RunOp(fatjit_rt_RAISE_VARARGS, frame, 2, 2), -1);
  error = ExpectError(PyExc_TypeError, "t");
  EXPECT_EQ(PyException_GetCause(error.value.get()), nullptr);
  EXPECT_TRUE(reinterpret_cast<PyBaseExceptionObject*>(error.value.get())->suppress_context);
  error = Error{};
  frame.SetDepth(0);
  EXPECT_EQ(Py_REFCNT(instance), 1);
  EXPECT_EQ(Py_REFCNT(exc), 1);
  Py_DECREF(instance);
  Py_DECREF(exc);
}

TEST_F(ObjectsTest, RaiseVarargsOfANonException) {
  Exec("class Weird(Exception):\n    def __new__(cls): return 5\n", g());
  PyObject* five = New("[5]");
  TestFrame frame(stack_function_.get());
  frame.Push(Py_NewRef(five));
  EXPECT_EQ(RunOp(fatjit_rt_RAISE_VARARGS, frame, 1, 1), -1);
  Error error = ExpectSameError("raise [5]", g());
  EXPECT_EQ(error.message, "exceptions must derive from BaseException");
  EXPECT_EQ(*frame.Sp(0), nullptr);
  EXPECT_EQ(Py_REFCNT(five), 1);
  Py_DECREF(five);

  frame.SetDepth(0);
  frame.Push(New("ValueError"));
  frame.Push(New("5"));
  EXPECT_EQ(RunOp(fatjit_rt_RAISE_VARARGS, frame, 2, 2), -1);
  error = ExpectSameError("raise ValueError from 5", g());
  EXPECT_EQ(error.message, "exception causes must derive from BaseException");
  EXPECT_EQ(*frame.Sp(0), nullptr);
  EXPECT_EQ(*frame.Sp(1), nullptr);

  frame.SetDepth(0);
  frame.Push(New("Weird"));
  EXPECT_EQ(RunOp(fatjit_rt_RAISE_VARARGS, frame, 1, 1), -1);
  ExpectSameError("raise Weird", g());
}

}  // namespace
}  // namespace fatjit::jit
