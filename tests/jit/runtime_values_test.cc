// The value-group runtime helpers (jit/runtime/values.cc), called on a real frame: each helper's
// result, the depth and the refcounts it leaves, and its errors, whose type and message must be
// what the interpreter gives for the same Python code. After an error, every input slot must
// still hold its object and reference, or be null with the reference released.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <opcode.h>

#include "base/cpython_compat.h"
#include "jit/runtime/runtime.h"
#include "tests/jit/runtime_test_util.h"
#include "tests/support/python_env.h"

namespace fatjit::jit {
namespace {

using fatjit::testing::Eval;
using fatjit::testing::Exec;
using fatjit::testing::NewGlobals;
using fatjit::testing::TestFrame;

// A function whose frame has room for a value stack 20 deep.
constexpr char kWideFunction[] =
    "def wide():\n"
    "    return (x0, x1, x2, x3, x4, x5, x6, x7, x8, x9,\n"
    "            x10, x11, x12, x13, x14, x15, x16, x17, x18, x19)\n";

// "TypeName: message" of the pending exception, which it clears; "" if none is set.
std::string TakeError() {
  if (!PyErr_Occurred()) return "";
  PyObject *type, *value, *traceback;
  PyErr_Fetch(&type, &value, &traceback);
  PyErr_NormalizeException(&type, &value, &traceback);
  Ref<> owned_type = Ref<>::Steal(type);
  Ref<> owned_value = Ref<>::Steal(value);
  Ref<> owned_traceback = Ref<>::Steal(traceback);
  std::string text = reinterpret_cast<PyTypeObject*>(type)->tp_name;
  Ref<> message = Ref<>::Steal(PyObject_Str(value));
  if (message) {
    text += ": ";
    text += PyUnicode_AsUTF8(message.get());
  }
  PyErr_Clear();
  return text;
}

class ValuesTest : public ::testing::Test {
 protected:
  ValuesTest() : globals_(NewGlobals()) {
    Exec(kWideFunction, globals_.obj());
    Ref<> wide = Eval("wide", globals_.obj());
    frame_ = std::make_unique<TestFrame>(wide.obj());
  }
  void SetUp() override {
    auto* code = reinterpret_cast<PyCodeObject*>(PyFunction_GET_CODE(frame_->frame()->f_func));
    ASSERT_GE(code->co_stacksize, 20);
  }
  void TearDown() override {
    frame_.reset();
    EXPECT_EQ(TakeError(), "");
  }

  // Evaluates an expression, or runs statements, in this test's globals.
  Ref<> Py(const std::string& expr) { return Eval(expr, globals_.obj()); }
  void Run(const std::string& code) { Exec(code, globals_.obj()); }

  // Pushes a new reference to `obj`, remembering the references it has off the stack (at its
  // first push since the last ClearStack).
  void Push(const Ref<>& obj) {
    outside_.try_emplace(obj.obj(), Py_REFCNT(obj.obj()));
    pushed_.resize(depth());
    pushed_.push_back(obj.obj());
    frame_->Push(Py_NewRef(obj.obj()));
  }
  void PushNull() {
    pushed_.resize(depth());
    pushed_.push_back(nullptr);
    frame_->Push(nullptr);
  }
  // Releases every slot and forgets what was pushed: the next case starts afresh.
  void ClearStack() {
    for (int i = 0; i < depth(); ++i) Py_CLEAR(*frame_->Sp(i));
    SetDepth(0);
    outside_.clear();
    pushed_.clear();
  }

  // Calls `helper` on the current stack; the depth stays as it was (tests set the new one).
  int64_t Call(OpHelper helper, int64_t oparg = 0, PyObject* aux = nullptr) {
    depth_before_ = frame_->depth();
    return helper(frame_->tstate(), frame_->frame(), frame_->Sp(depth_before_), oparg, aux);
  }
  void SetDepth(int depth) { frame_->SetDepth(depth); }
  int depth() const { return frame_->depth(); }
  PyObject* Slot(int index) const { return *frame_->Sp(index); }
  PyObject* Top() const { return Slot(depth() - 1); }

  // Slots below the current depth that hold `obj`.
  int OnStack(PyObject* obj) const {
    int count = 0;
    for (int i = 0; i < depth(); ++i) count += Slot(i) == obj;
    return count;
  }
  // Expects `obj` (pushed before) to have exactly its outside references, its stack slots',
  // and `held` more (by outputs that contain it).
  void ExpectRefs(const Ref<>& obj, Py_ssize_t held = 0) const {
    ASSERT_TRUE(outside_.count(obj.obj()));
    EXPECT_EQ(Py_REFCNT(obj.obj()), outside_.at(obj.obj()) + OnStack(obj.obj()) + held);
  }
  // After an error: the depth is what it was, every slot holds what was pushed there or null,
  // and every pushed object has exactly its outside and stack references (nothing leaked or
  // dropped). Use after a ClearStack() when earlier helpers left outputs on the stack.
  // Takes the exception first (its traceback may hold inputs); Error() returns it.
  void ExpectErrorSlotRule() {
    error_ = TakeError();
    EXPECT_NE(error_, "") << "no exception set";
    ASSERT_EQ(depth(), depth_before_);
    for (int i = 0; i < depth(); ++i) {
      PyObject* pushed = i < static_cast<int>(pushed_.size()) ? pushed_[i] : nullptr;
      EXPECT_TRUE(Slot(i) == nullptr || Slot(i) == pushed) << "slot " << i;
    }
    for (const auto& [obj, outside] : outside_) {
      EXPECT_EQ(Py_REFCNT(obj), outside + OnStack(obj)) << Repr(obj);
    }
  }
  // Expects the pending exception (which it clears) to be the one `code` raises when the
  // interpreter runs it in this test's globals.
  void ExpectErrorAsInPython(const std::string& code) {
    const std::string error = Error();
    EXPECT_EQ(error, PythonError(code)) << code;
  }
  // The helper's exception, as TakeError() spells it: pending, or taken by ExpectErrorSlotRule.
  std::string Error() { return PyErr_Occurred() ? TakeError() : std::exchange(error_, ""); }
  static std::string Repr(PyObject* obj) {
    Ref<> repr = Ref<>::Steal(PyObject_Repr(obj));
    return repr ? PyUnicode_AsUTF8(repr.get()) : "?";
  }
  // The exception `code` raises in the interpreter, as TakeError() spells it.
  std::string PythonError(const std::string& code) {
    Ref<> result =
        Ref<>::Steal(PyRun_String(code.c_str(), Py_file_input, globals_.obj(), globals_.obj()));
    EXPECT_FALSE(result) << code << " did not raise";
    return TakeError();
  }

  static bool Equal(PyObject* a, const Ref<>& b) {
    return PyObject_RichCompareBool(a, b.obj(), Py_EQ) == 1;
  }

  Ref<> globals_;
  std::unique_ptr<TestFrame> frame_;
  std::map<PyObject*, Py_ssize_t> outside_;
  std::vector<PyObject*> pushed_;
  int depth_before_ = 0;
  std::string error_;
};

using ValuesUnaryTest = ValuesTest;
using ValuesBinaryTest = ValuesTest;
using ValuesSubscrTest = ValuesTest;
using ValuesBuildTest = ValuesTest;
using ValuesComprehensionTest = ValuesTest;
using ValuesUnpackTest = ValuesTest;
using ValuesFormatTest = ValuesTest;
using ValuesMatchTest = ValuesTest;
using ValuesIterTest = ValuesTest;

// --- unary ------------------------------------------------------------------------------------

TEST_F(ValuesUnaryTest, PositiveNegativeInvertReplaceTheOperand) {
  struct Case {
    OpHelper helper;
    const char* expected;
  };
  for (Case c : {Case{fatjit_rt_UNARY_POSITIVE, "+(10**30)"},
                 Case{fatjit_rt_UNARY_NEGATIVE, "-(10**30)"},
                 Case{fatjit_rt_UNARY_INVERT, "~(10**30)"}}) {
    Ref<> x = Py("10**30");
    Push(x);
    ASSERT_EQ(Call(c.helper), 0) << c.expected;
    EXPECT_EQ(depth(), 1);
    EXPECT_TRUE(Equal(Top(), Py(c.expected))) << c.expected;
    ExpectRefs(x);  // released, unless the result is x itself (+x)
    ClearStack();
  }
}

TEST_F(ValuesUnaryTest, BadOperandIsTheInterpretersTypeErrorAndNullsTheSlot) {
  struct Case {
    OpHelper helper;
    const char* python;
  };
  for (Case c : {Case{fatjit_rt_UNARY_POSITIVE, "+s"}, Case{fatjit_rt_UNARY_NEGATIVE, "-s"},
                 Case{fatjit_rt_UNARY_INVERT, "~s"}}) {
    Run("s = 'text'");
    Ref<> s = Py("s");
    Push(s);
    ASSERT_EQ(Call(c.helper), -1);
    EXPECT_EQ(Slot(0), nullptr);
    ExpectErrorSlotRule();
    ExpectErrorAsInPython(c.python);
    ClearStack();
  }
}

TEST_F(ValuesUnaryTest, NotPushesTheNegatedTruth) {
  Ref<> empty = Py("[]");
  Ref<> full = Py("[1]");
  Push(empty);
  ASSERT_EQ(Call(fatjit_rt_UNARY_NOT), 0);
  EXPECT_EQ(Top(), Py_True);
  ExpectRefs(empty);
  Push(full);
  ASSERT_EQ(Call(fatjit_rt_UNARY_NOT), 0);
  EXPECT_EQ(Top(), Py_False);
  EXPECT_EQ(depth(), 2);
  ExpectRefs(full);
}

TEST_F(ValuesUnaryTest, NotPropagatesBoolErrors) {
  Run("class B:\n    def __bool__(self): raise ValueError('no truth')\n"
      "class I:\n    def __bool__(self): return 1\n"
      "b = B()\ni = I()\n");
  for (const char* name : {"b", "i"}) {
    Ref<> x = Py(name);
    Push(x);
    ASSERT_EQ(Call(fatjit_rt_UNARY_NOT), -1);
    ExpectErrorSlotRule();
    ExpectErrorAsInPython(std::string("not ") + name);
    ClearStack();
  }
}

// --- binary operators and comparisons ---------------------------------------------------------

TEST_F(ValuesBinaryTest, EveryOperatorMatchesPython) {
  Run("class M:\n"
      "    def __matmul__(self, o): return ('@', o)\n"
      "    def __imatmul__(self, o): return ('@=', o)\n");
  const char* ops[] = {"+", "&", "//", "<<", "@", "*", "%", "|", "**", ">>", "-", "/", "^"};
  for (int oparg = NB_ADD; oparg <= NB_INPLACE_XOR; ++oparg) {
    const bool inplace = oparg >= NB_INPLACE_ADD;
    const std::string op = ops[inplace ? oparg - NB_INPLACE_ADD : oparg];
    const std::string lhs_source = op == "@" ? "M()" : "10**20 + 7";
    const std::string rhs_source = op == "@" ? "10**25" : "5";
    Ref<> lhs = Py(lhs_source);
    Ref<> rhs = Py(rhs_source);
    Run(inplace ? "x = " + lhs_source + "\nx " + op + "= " + rhs_source + "\nexpected = x"
                : "expected = (" + lhs_source + ") " + op + " (" + rhs_source + ")");
    Push(lhs);
    Push(rhs);
    ASSERT_EQ(Call(fatjit_rt_BINARY_OP, oparg), 0) << op;
    SetDepth(1);
    EXPECT_TRUE(Equal(Top(), Py("expected"))) << "oparg " << oparg << " (" << op << ")";
    ExpectRefs(lhs);
    ExpectRefs(rhs, op == "@" ? 1 : 0);  // M's results hold the right operand
    ClearStack();
  }
}

TEST_F(ValuesBinaryTest, InPlaceAddMutatesAList) {
  Ref<> list = Py("[1]");
  Ref<> more = Py("[2, 3]");
  Push(list);
  Push(more);
  ASSERT_EQ(Call(fatjit_rt_BINARY_OP, NB_INPLACE_ADD), 0);
  SetDepth(1);
  EXPECT_EQ(Top(), list.obj());
  EXPECT_TRUE(Equal(list.obj(), Py("[1, 2, 3]")));
  ExpectRefs(list);
  ExpectRefs(more);
}

TEST_F(ValuesBinaryTest, UnsupportedOperandsNullBothSlots) {
  Run("a = 10**20\nb = 'text'");
  Ref<> a = Py("a");
  Ref<> b = Py("b");
  Push(a);
  Push(b);
  ASSERT_EQ(Call(fatjit_rt_BINARY_OP, NB_SUBTRACT), -1);
  EXPECT_EQ(Slot(0), nullptr);
  EXPECT_EQ(Slot(1), nullptr);
  ExpectErrorSlotRule();
  ExpectErrorAsInPython("a - b");
}

TEST_F(ValuesBinaryTest, CompareOpTakesTheRichComparisonDirectly) {
  const char* ops[] = {"<", "<=", "==", "!=", ">", ">="};
  for (int op = Py_LT; op <= Py_GE; ++op) {
    Ref<> a = Py("10**20");
    Ref<> b = Py("10**21");
    Push(a);
    Push(b);
    ASSERT_EQ(Call(fatjit_rt_COMPARE_OP, op), 0);
    SetDepth(1);
    EXPECT_EQ(Top(), Py(std::string("10**20 ") + ops[op] + " 10**21").obj()) << ops[op];
    ExpectRefs(a);
    ExpectRefs(b);
    ClearStack();
  }
}

TEST_F(ValuesBinaryTest, CompareOpErrorMatchesPython) {
  Run("a = 10**20\nb = 'text'");
  Ref<> a = Py("a");
  Ref<> b = Py("b");
  Push(a);
  Push(b);
  ASSERT_EQ(Call(fatjit_rt_COMPARE_OP, Py_LT), -1);
  ExpectErrorSlotRule();
  ExpectErrorAsInPython("a < b");
}

TEST_F(ValuesBinaryTest, ContainsOpAndItsNegation) {
  Ref<> item = Py("10**20");
  Ref<> list = Py("[1, 10**20]");
  for (int oparg : {0, 1}) {
    Push(item);
    Push(list);
    ASSERT_EQ(Call(fatjit_rt_CONTAINS_OP, oparg), 0);
    SetDepth(1);
    EXPECT_EQ(Top(), oparg == 0 ? Py_True : Py_False);
    ExpectRefs(item);
    ExpectRefs(list);
    ClearStack();
  }
}

TEST_F(ValuesBinaryTest, ContainsOpOnANonContainer) {
  Run("a = 10**20\nb = 10**21");
  Ref<> a = Py("a");
  Ref<> b = Py("b");
  Push(a);
  Push(b);
  ASSERT_EQ(Call(fatjit_rt_CONTAINS_OP, 0), -1);
  ExpectErrorSlotRule();
  ExpectErrorAsInPython("a in b");
}

// --- subscripts -------------------------------------------------------------------------------

TEST_F(ValuesSubscrTest, BinarySubscrReadsAnItem) {
  Ref<> list = Py("[10**20, 10**21]");
  Ref<> index = Py("1");
  Push(list);
  Push(index);
  ASSERT_EQ(Call(fatjit_rt_BINARY_SUBSCR), 0);
  SetDepth(1);
  EXPECT_EQ(Top(), PyList_GET_ITEM(list.obj(), 1));
  ExpectRefs(list);
  ExpectRefs(index);
}

TEST_F(ValuesSubscrTest, BinarySubscrErrorsMatchPython) {
  Run("l = []\nd = {}\nk = 'missing'\ni = 10**20");
  for (auto [container, key] : {std::pair{"l", "i"}, std::pair{"d", "k"}}) {
    Ref<> c = Py(container);
    Ref<> k = Py(key);
    Push(c);
    Push(k);
    ASSERT_EQ(Call(fatjit_rt_BINARY_SUBSCR), -1);
    ExpectErrorSlotRule();
    ExpectErrorAsInPython(std::string(container) + "[" + key + "]");
    ClearStack();
  }
}

TEST_F(ValuesSubscrTest, StoreSubscrPopsThreeAndStores) {
  Ref<> value = Py("object()");
  Ref<> dict = Py("{}");
  Ref<> key = Py("'key'");
  Push(value);
  Push(dict);
  Push(key);
  ASSERT_EQ(Call(fatjit_rt_STORE_SUBSCR), 0);
  SetDepth(0);
  EXPECT_EQ(PyDict_GetItem(dict.obj(), key.obj()), value.obj());
  ExpectRefs(value, 1);  // held by the dict
  ExpectRefs(dict);
  ExpectRefs(key, 1);
}

TEST_F(ValuesSubscrTest, StoreSubscrIntoATuple) {
  Run("t = (1,)\nv = 10**20\ni = 0");
  Ref<> t = Py("t");
  Ref<> v = Py("v");
  Ref<> i = Py("i");
  Push(v);
  Push(t);
  Push(i);
  ASSERT_EQ(Call(fatjit_rt_STORE_SUBSCR), -1);
  ExpectErrorSlotRule();
  ExpectErrorAsInPython("t[i] = v");
}

TEST_F(ValuesSubscrTest, DeleteSubscrRemovesAndReportsMissingKeys) {
  Run("d = {10**20: 1}\nk = int(str(10**20))");  // k: equal to the key, not the key
  Ref<> d = Py("d");
  Ref<> k = Py("k");
  Push(d);
  Push(k);
  ASSERT_EQ(Call(fatjit_rt_DELETE_SUBSCR), 0);
  SetDepth(0);
  EXPECT_EQ(PyDict_Size(d.obj()), 0);
  ExpectRefs(d);
  ExpectRefs(k);
  ClearStack();
  Push(d);
  Push(k);
  ASSERT_EQ(Call(fatjit_rt_DELETE_SUBSCR), -1);
  ExpectErrorSlotRule();
  ExpectErrorAsInPython("del d[k]");
}

// --- building ---------------------------------------------------------------------------------

TEST_F(ValuesBuildTest, BuildSliceWithAndWithoutStep) {
  Ref<> start = Py("10**20");
  Ref<> stop = Py("10**21");
  Ref<> step = Py("10**22");
  Push(start);
  Push(stop);
  ASSERT_EQ(Call(fatjit_rt_BUILD_SLICE, 2), 0);
  SetDepth(1);
  EXPECT_TRUE(Equal(Top(), Py("slice(10**20, 10**21)")));
  Push(start);
  Push(stop);
  Push(step);
  ASSERT_EQ(Call(fatjit_rt_BUILD_SLICE, 3), 0);
  SetDepth(2);
  EXPECT_TRUE(Equal(Top(), Py("slice(10**20, 10**21, 10**22)")));
  ExpectRefs(start, 2);
  ExpectRefs(stop, 2);
  ExpectRefs(step, 1);
}

TEST_F(ValuesBuildTest, BuildStringJoinsAndKeepsItsInputsOnError) {
  Ref<> a = Py("'ab' * 3");
  Ref<> b = Py("'c'.upper()");
  Push(a);
  Push(b);
  ASSERT_EQ(Call(fatjit_rt_BUILD_STRING, 2), 0);
  SetDepth(1);
  EXPECT_TRUE(Equal(Top(), Py("'abababC'")));
  ExpectRefs(a);
  ExpectRefs(b);
  ASSERT_EQ(Call(fatjit_rt_BUILD_STRING, 0), 0);
  SetDepth(2);
  EXPECT_TRUE(Equal(Top(), Py("''")));
  ClearStack();

  Ref<> number = Py("10**20");
  Push(a);
  Push(number);
  ASSERT_EQ(Call(fatjit_rt_BUILD_STRING, 2), -1);
  ExpectErrorSlotRule();
  EXPECT_EQ(Error(), "TypeError: sequence item 1: expected str instance, int found");
  EXPECT_EQ(PythonError("''.join(['x', 10**20])"),
            "TypeError: sequence item 1: expected str instance, int found");
}

TEST_F(ValuesBuildTest, BuildTupleAndListTakeTheItemsInOrder) {
  Ref<> a = Py("10**20");
  Ref<> b = Py("object()");
  for (OpHelper helper : {fatjit_rt_BUILD_TUPLE, fatjit_rt_BUILD_LIST}) {
    Push(a);
    Push(b);
    ASSERT_EQ(Call(helper, 2), 0);
    SetDepth(1);
    Ref<> as_tuple = Ref<>::Steal(PySequence_Tuple(Top()));
    EXPECT_EQ(PyTuple_GET_ITEM(as_tuple.obj(), 0), a.obj());
    EXPECT_EQ(PyTuple_GET_ITEM(as_tuple.obj(), 1), b.obj());
    EXPECT_EQ(helper == fatjit_rt_BUILD_TUPLE, PyTuple_CheckExact(Top()));
    as_tuple.Reset();
    ExpectRefs(a, 1);
    ExpectRefs(b, 1);
    ASSERT_EQ(Call(helper, 0), 0);
    SetDepth(2);
    EXPECT_EQ(PyObject_Length(Top()), 0);
    Py_CLEAR(*frame_->Sp(0));
    ExpectRefs(a);
    ExpectRefs(b);
    ClearStack();
  }
}

TEST_F(ValuesBuildTest, BuildSetAddsDeepestFirst) {
  Ref<> a = Py("10**20");
  Ref<> b = Py("10**20");  // equal to a: a is kept, b dropped
  Ref<> c = Py("'c'");
  Push(a);
  Push(b);
  Push(c);
  ASSERT_EQ(Call(fatjit_rt_BUILD_SET, 3), 0);
  SetDepth(1);
  EXPECT_EQ(PySet_GET_SIZE(Top()), 2);
  ExpectRefs(a, 1);
  ExpectRefs(b);
  ExpectRefs(c, 1);
}

TEST_F(ValuesBuildTest, BuildSetWithAnUnhashableReleasesEveryItem) {
  Run("a = 10**20\nb = []\nc = 'c'");
  Ref<> a = Py("a");
  Ref<> b = Py("b");
  Ref<> c = Py("c");
  Push(a);
  Push(b);
  Push(c);
  ASSERT_EQ(Call(fatjit_rt_BUILD_SET, 3), -1);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Slot(i), nullptr);
  ExpectErrorSlotRule();
  ExpectErrorAsInPython("{a, b, c}");
}

TEST_F(ValuesBuildTest, BuildMapInsertsInOrderAndKeepsStrKeysTables) {
  std::vector<Ref<>> items;
  for (int i = 0; i < 8; ++i) {
    items.push_back(Py("'key" + std::to_string(i % 7) + "'"));  // key0 twice: the last wins
    items.push_back(Py(std::to_string(i) + " + 10**20"));
  }
  for (const Ref<>& item : items) Push(item);
  ASSERT_EQ(Call(fatjit_rt_BUILD_MAP, 8), 0);
  SetDepth(1);
  EXPECT_TRUE(Equal(Top(), Py("{'key' + str(i % 7): i + 10**20 for i in range(8)}")));
  EXPECT_TRUE(compat::DictHasOnlyStrKeys(Top()));
  EXPECT_EQ(PyDict_GetItemString(Top(), "key0"), items[15].obj());
  ExpectRefs(items[1]);  // the value the repeated key replaced
  ExpectRefs(items[15], 1);
}

TEST_F(ValuesBuildTest, BuildMapWithAnUnhashableKeyLeavesTheStack) {
  Run("k1 = 'a'\nv1 = 10**20\nk2 = []\nv2 = 10**21");
  std::vector<Ref<>> items;
  for (const char* name : {"k1", "v1", "k2", "v2"}) items.push_back(Py(name));
  for (const Ref<>& item : items) Push(item);
  ASSERT_EQ(Call(fatjit_rt_BUILD_MAP, 2), -1);
  ExpectErrorSlotRule();
  for (int i = 0; i < 4; ++i) EXPECT_NE(Slot(i), nullptr);
  ExpectErrorAsInPython("{k1: v1, k2: v2}");
}

TEST_F(ValuesBuildTest, BuildConstKeyMap) {
  Ref<> v1 = Py("10**20");
  Ref<> v2 = Py("object()");
  Ref<> keys = Py("('a', 2)");
  Push(v1);
  Push(v2);
  Push(keys);
  ASSERT_EQ(Call(fatjit_rt_BUILD_CONST_KEY_MAP, 2), 0);
  SetDepth(1);
  EXPECT_EQ(PyDict_GetItemString(Top(), "a"), v1.obj());
  EXPECT_EQ(PyDict_Size(Top()), 2);
  ExpectRefs(v1, 1);
  ExpectRefs(v2, 1);
  ExpectRefs(keys);
}

TEST_F(ValuesBuildTest, BuildConstKeyMapErrorsLeaveTheStack) {
  Ref<> v = Py("10**20");
  Ref<> unhashable = Py("([],)");
  Push(v);
  Push(unhashable);
  ASSERT_EQ(Call(fatjit_rt_BUILD_CONST_KEY_MAP, 1), -1);
  ExpectErrorSlotRule();
  EXPECT_EQ(Error(), "TypeError: unhashable type: 'list'");
  // A keys operand of the wrong size is the interpreter's SystemError.
  ASSERT_EQ(Call(fatjit_rt_BUILD_CONST_KEY_MAP, 3), -1);
  ExpectErrorSlotRule();
  EXPECT_EQ(Error(), "SystemError: bad BUILD_CONST_KEY_MAP keys argument");
}

// --- comprehension and display helpers (the container deeper in the stack) ------------------

TEST_F(ValuesComprehensionTest, ListAppendSetAddMapAddReachPastOparg) {
  Ref<> list = Py("[]");
  Ref<> set = Py("set()");
  Ref<> dict = Py("{}");
  Ref<> iter = Py("iter(())");  // what a comprehension keeps between container and item
  Ref<> item = Py("10**20");
  Ref<> key = Py("'k'");
  const Py_ssize_t item_refs = Py_REFCNT(item.obj());
  const Py_ssize_t key_refs = Py_REFCNT(key.obj());
  const Py_ssize_t iter_refs = Py_REFCNT(iter.obj());
  struct Case {
    OpHelper helper;
    const Ref<>* container;
    int inputs;
  };
  for (Case c : {Case{fatjit_rt_LIST_APPEND, &list, 1}, Case{fatjit_rt_SET_ADD, &set, 1},
                 Case{fatjit_rt_MAP_ADD, &dict, 2}}) {
    Push(*c.container);
    Push(iter);
    if (c.inputs == 2) Push(key);
    Push(item);
    ASSERT_EQ(Call(c.helper, 2), 0);
    SetDepth(2);
    EXPECT_EQ(Slot(0), c.container->obj());
    EXPECT_EQ(Slot(1), iter.obj());
    ClearStack();
  }
  EXPECT_TRUE(Equal(list.obj(), Py("[10**20]")));
  EXPECT_TRUE(Equal(set.obj(), Py("{10**20}")));
  EXPECT_TRUE(Equal(dict.obj(), Py("{'k': 10**20}")));
  EXPECT_EQ(Py_REFCNT(item.obj()), item_refs + 3);  // one in each container
  EXPECT_EQ(Py_REFCNT(key.obj()), key_refs + 1);
  EXPECT_EQ(Py_REFCNT(iter.obj()), iter_refs);
}

TEST_F(ValuesComprehensionTest, SetAddAndMapAddWithAnUnhashable) {
  Run("x = []\nv = 10**20");
  Ref<> set = Py("set()");
  Ref<> dict = Py("{}");
  Ref<> x = Py("x");
  Ref<> v = Py("v");
  Push(set);
  Push(x);
  ASSERT_EQ(Call(fatjit_rt_SET_ADD, 1), -1);
  EXPECT_EQ(Slot(1), nullptr);
  ExpectErrorSlotRule();
  ExpectErrorAsInPython("{i for i in [x]}");
  ClearStack();

  Push(dict);
  Push(x);
  Push(v);
  ASSERT_EQ(Call(fatjit_rt_MAP_ADD, 1), -1);
  EXPECT_EQ(Slot(1), nullptr);
  EXPECT_EQ(Slot(2), nullptr);
  ExpectErrorSlotRule();
  ExpectErrorAsInPython("{k: v for k in [x]}");
}

TEST_F(ValuesComprehensionTest, ListToTuple) {
  Ref<> list = Py("[10**20]");
  Push(list);
  ASSERT_EQ(Call(fatjit_rt_LIST_TO_TUPLE), 0);
  EXPECT_TRUE(Equal(Top(), Py("(10**20,)")));
  ExpectRefs(list);
  ClearStack();
  // Not a list: PyList_AsTuple's SystemError, as in the interpreter; the operand is released.
  Ref<> tuple = Py("(1,)");
  Push(tuple);
  ASSERT_EQ(Call(fatjit_rt_LIST_TO_TUPLE), -1);
  ExpectErrorSlotRule();
  EXPECT_EQ(Error().rfind("SystemError", 0), 0u);
}

TEST_F(ValuesComprehensionTest, ListExtendSetUpdateDictUpdate) {
  Ref<> list = Py("[0]");
  Ref<> set = Py("{0}");
  Ref<> dict = Py("{'a': 0}");
  Ref<> items = Py("(1, 2)");
  Ref<> mapping = Py("{'b': 1}");
  struct Case {
    OpHelper helper;
    const Ref<>* container;
    const Ref<>* operand;
  };
  for (Case c : {Case{fatjit_rt_LIST_EXTEND, &list, &items},
                 Case{fatjit_rt_SET_UPDATE, &set, &items},
                 Case{fatjit_rt_DICT_UPDATE, &dict, &mapping}}) {
    Push(*c.container);
    Push(*c.operand);
    ASSERT_EQ(Call(c.helper, 1), 0);
    SetDepth(1);
    ExpectRefs(*c.operand);
    ClearStack();
  }
  EXPECT_TRUE(Equal(list.obj(), Py("[0, 1, 2]")));
  EXPECT_TRUE(Equal(set.obj(), Py("{0, 1, 2}")));
  EXPECT_TRUE(Equal(dict.obj(), Py("{'a': 0, 'b': 1}")));
}

TEST_F(ValuesComprehensionTest, ExtendAndUpdateErrorsMatchPython) {
  Run("n = 10**20\n"
      "class BadIter:\n    def __iter__(self): raise TypeError('own message')\n"
      "bad = BadIter()\n");
  struct Case {
    OpHelper helper;
    const char* container;
    const char* operand;
    const char* python;
  };
  for (Case c : {Case{fatjit_rt_LIST_EXTEND, "[]", "n", "[*n]"},
                 Case{fatjit_rt_LIST_EXTEND, "[]", "bad", "[*bad]"},
                 Case{fatjit_rt_SET_UPDATE, "set()", "n", "{*n}"},
                 Case{fatjit_rt_DICT_UPDATE, "{}", "n", "{**n}"}}) {
    Ref<> container = Py(c.container);
    Ref<> operand = Py(c.operand);
    Push(container);
    Push(operand);
    ASSERT_EQ(Call(c.helper, 1), -1) << c.python;
    EXPECT_EQ(Slot(1), nullptr);
    ExpectErrorSlotRule();
    ExpectErrorAsInPython(c.python);
    ClearStack();
  }
}

// The stack of f(*args, **kwargs) at DICT_MERGE: NULL, f, args, dict, kwargs.
TEST_F(ValuesComprehensionTest, DictMergeNamesTheCalleeInItsErrors) {
  Run("def f(*a, **k): pass\nargs = ()\nn = 10**20\nm = {'a': 2}\n");
  Ref<> f = Py("f");
  Ref<> args = Py("args");
  Ref<> good = Py("{'b': 1}");
  Ref<> dict = Py("{'a': 1}");
  Ref<> n = Py("n");
  Ref<> m = Py("m");
  PushNull();
  Push(f);
  Push(args);
  Push(dict);
  Push(good);
  ASSERT_EQ(Call(fatjit_rt_DICT_MERGE, 1), 0);
  SetDepth(4);
  EXPECT_TRUE(Equal(dict.obj(), Py("{'a': 1, 'b': 1}")));
  ExpectRefs(good);

  for (auto [bad, python] : {std::pair{&n, "f(**{'a': 1}, **n)"},
                             std::pair{&m, "f(**{'a': 1}, **m)"}}) {
    Push(*bad);
    ASSERT_EQ(Call(fatjit_rt_DICT_MERGE, 1), -1);
    EXPECT_EQ(Slot(4), nullptr);
    ExpectErrorSlotRule();
    ExpectErrorAsInPython(python);
    SetDepth(4);
  }
}

// --- unpacking --------------------------------------------------------------------------------

TEST_F(ValuesUnpackTest, UnpackSequenceLeavesTheFirstItemOnTop) {
  Run("a = 10**20\nb = object()\nc = 'c'\n");
  Ref<> a = Py("a");
  Ref<> b = Py("b");
  Ref<> c = Py("c");
  for (const char* seq : {"(a, b, c)", "[a, b, c]", "iter([a, b, c])", "(x for x in (a, b, c))"}) {
    Ref<> sequence = Py(seq);
    Push(sequence);
    ASSERT_EQ(Call(fatjit_rt_UNPACK_SEQUENCE, 3), 0) << seq;
    SetDepth(3);
    EXPECT_EQ(Slot(2), a.obj()) << seq;
    EXPECT_EQ(Slot(1), b.obj()) << seq;
    EXPECT_EQ(Slot(0), c.obj()) << seq;
    ExpectRefs(sequence);
    ClearStack();
  }
}

TEST_F(ValuesUnpackTest, UnpackSequenceErrorsMatchPythonAndReleaseWhatWasTaken) {
  Run("n = 10**20\nitems = [object(), object(), object()]\n");
  Ref<> items = Py("items");
  std::vector<Py_ssize_t> before;
  for (Py_ssize_t i = 0; i < 3; ++i) before.push_back(Py_REFCNT(PyList_GET_ITEM(items.obj(), i)));
  for (auto [seq, count, python] :
       {std::tuple{"n", 2, "x, y = n"}, std::tuple{"items", 4, "w, x, y, z = items"},
        std::tuple{"iter(items)", 2, "x, y = iter(items)"},
        std::tuple{"iter(items)", 4, "w, x, y, z = iter(items)"}}) {
    Ref<> sequence = Py(seq);
    Push(sequence);
    ASSERT_EQ(Call(fatjit_rt_UNPACK_SEQUENCE, count), -1) << python;
    EXPECT_EQ(Slot(0), nullptr);
    ExpectErrorSlotRule();
    ExpectErrorAsInPython(python);
    ClearStack();
  }
  for (Py_ssize_t i = 0; i < 3; ++i) {
    EXPECT_EQ(Py_REFCNT(PyList_GET_ITEM(items.obj(), i)), before[i]) << "item " << i;
  }
}

TEST_F(ValuesUnpackTest, UnpackSequencePropagatesIteratorErrors) {
  Run("def gen():\n    yield 1\n    raise KeyError('k')\n");
  Ref<> g = Py("gen()");
  Push(g);
  ASSERT_EQ(Call(fatjit_rt_UNPACK_SEQUENCE, 2), -1);
  ExpectErrorSlotRule();
  ExpectErrorAsInPython("x, y = gen()");
}

TEST_F(ValuesUnpackTest, UnpackExPutsTheStarredListBetween) {
  Run("items = [object() for _ in range(5)]\n");
  Ref<> items = Py("items");
  Ref<> it = Py("iter(items)");
  Push(it);
  // a, *rest, y, z = items: one before, two after.
  ASSERT_EQ(Call(fatjit_rt_UNPACK_EX, 1 | (2 << 8)), 0);
  SetDepth(4);
  EXPECT_EQ(Slot(3), PyList_GET_ITEM(items.obj(), 0));
  EXPECT_TRUE(Equal(Slot(2), Py("items[1:3]")));
  EXPECT_EQ(Slot(1), PyList_GET_ITEM(items.obj(), 3));
  EXPECT_EQ(Slot(0), PyList_GET_ITEM(items.obj(), 4));
  EXPECT_EQ(Py_REFCNT(Slot(2)), 1);
  for (Py_ssize_t i = 0; i < 5; ++i) {  // `items` and either the stack or the starred list
    EXPECT_EQ(Py_REFCNT(PyList_GET_ITEM(items.obj(), i)), 2) << i;
  }
  ExpectRefs(it);
}

TEST_F(ValuesUnpackTest, UnpackExErrorsMatchPython) {
  Run("short = [object(), object()]\n");
  for (auto [oparg, python] : {std::pair{3 | (0 << 8), "a, b, c, *d = short"},
                               std::pair{1 | (2 << 8), "a, *b, c, d = short"},
                               std::pair{0, "*a, = 10**20"}}) {
    Ref<> seq = Py(oparg == 0 ? "10**20" : "short");
    Push(seq);
    ASSERT_EQ(Call(fatjit_rt_UNPACK_EX, oparg), -1) << python;
    ExpectErrorSlotRule();
    ExpectErrorAsInPython(python);
    ClearStack();
  }
  Ref<> short_list = Py("short");
  for (Py_ssize_t i = 0; i < 2; ++i) {
    EXPECT_EQ(Py_REFCNT(PyList_GET_ITEM(short_list.obj(), i)), 1) << "item " << i << " leaked";
  }
}

// --- f-strings --------------------------------------------------------------------------------

TEST_F(ValuesFormatTest, ConversionsAndSpecs) {
  Run("s = 'text'\nn = 10**20\nspec = '>25'\n");
  Ref<> s = Py("s");
  Ref<> n = Py("n");
  Ref<> spec = Py("spec");
  // A str without conversion or spec is the result itself.
  Push(s);
  ASSERT_EQ(Call(fatjit_rt_FORMAT_VALUE, FVC_NONE), 0);
  EXPECT_EQ(Top(), s.obj());
  ExpectRefs(s);
  ClearStack();
  struct Case {
    const Ref<>* value;
    int oparg;
    const char* python;
  };
  for (Case c : {Case{&n, FVC_NONE, "f'{n}'"}, Case{&s, FVC_REPR, "f'{s!r}'"},
                 Case{&s, FVC_ASCII, "f'{s!a}'"}, Case{&n, FVC_STR, "f'{n!s}'"},
                 Case{&n, FVC_NONE | FVS_HAVE_SPEC, "f'{n:{spec}}'"},
                 Case{&s, FVC_REPR | FVS_HAVE_SPEC, "f'{s!r:{spec}}'"}}) {
    Push(*c.value);
    if (c.oparg & FVS_HAVE_SPEC) Push(spec);
    ASSERT_EQ(Call(fatjit_rt_FORMAT_VALUE, c.oparg), 0) << c.python;
    SetDepth(1);
    EXPECT_TRUE(Equal(Top(), Py(c.python))) << c.python;
    ExpectRefs(*c.value);
    if (c.oparg & FVS_HAVE_SPEC) ExpectRefs(spec);
    ClearStack();
  }
}

TEST_F(ValuesFormatTest, FormatAndConversionErrorsReleaseBothOperands) {
  Run("s = 'text'\nspec = 'd'\n"
      "class R:\n    def __repr__(self): raise RuntimeError('no repr')\n"
      "r = R()\n");
  Ref<> s = Py("s");
  Ref<> spec = Py("spec");
  Ref<> r = Py("r");
  Push(s);
  Push(spec);
  ASSERT_EQ(Call(fatjit_rt_FORMAT_VALUE, FVC_NONE | FVS_HAVE_SPEC), -1);
  EXPECT_EQ(Slot(0), nullptr);
  EXPECT_EQ(Slot(1), nullptr);
  ExpectErrorSlotRule();
  ExpectErrorAsInPython("f'{s:{spec}}'");
  ClearStack();
  Push(r);
  Push(spec);
  ASSERT_EQ(Call(fatjit_rt_FORMAT_VALUE, FVC_REPR | FVS_HAVE_SPEC), -1);
  ExpectErrorSlotRule();
  ExpectErrorAsInPython("f'{r!r:{spec}}'");
}

// --- pattern matching -------------------------------------------------------------------------

TEST_F(ValuesMatchTest, GetLenPushesAndKeepsTheSubject) {
  Run("n = 10**20\n");
  Ref<> list = Py("[1, 2, 3]");
  Push(list);
  ASSERT_EQ(Call(fatjit_rt_GET_LEN), 0);
  SetDepth(2);
  EXPECT_EQ(Slot(0), list.obj());
  EXPECT_EQ(PyLong_AsLong(Top()), 3);
  ExpectRefs(list);
  ClearStack();
  Ref<> n = Py("n");
  Push(n);
  ASSERT_EQ(Call(fatjit_rt_GET_LEN), -1);
  ExpectErrorSlotRule();
  EXPECT_EQ(Slot(0), n.obj());
  ExpectErrorAsInPython("len(n)");
}

TEST_F(ValuesMatchTest, MatchMappingAndSequenceReadTheTypeFlags) {
  struct Case {
    const char* subject;
    PyObject* mapping;
    PyObject* sequence;
  };
  for (Case c : {Case{"{}", Py_True, Py_False}, Case{"[]", Py_False, Py_True},
                 Case{"'str'", Py_False, Py_False}, Case{"(1,)", Py_False, Py_True}}) {
    Ref<> subject = Py(c.subject);
    Push(subject);
    ASSERT_EQ(Call(fatjit_rt_MATCH_MAPPING), 0);
    SetDepth(2);
    EXPECT_EQ(Top(), c.mapping) << c.subject;
    SetDepth(1);
    Py_CLEAR(*frame_->Sp(1));
    ASSERT_EQ(Call(fatjit_rt_MATCH_SEQUENCE), 0);
    SetDepth(2);
    EXPECT_EQ(Top(), c.sequence) << c.subject;
    EXPECT_EQ(Slot(0), subject.obj());
    ExpectRefs(subject);
    ClearStack();
  }
}

TEST_F(ValuesMatchTest, MatchKeysPushesValuesOrNone) {
  Run("import collections\n"
      "d = collections.defaultdict(list, a=1, b=2)\n");
  Ref<> d = Py("d");
  for (auto [keys_source, expected] :
       {std::pair{"('b', 'a')", "(2, 1)"}, std::pair{"('a', 'zz')", "None"},
        std::pair{"()", "()"}}) {
    Ref<> keys = Py(keys_source);
    Push(d);
    Push(keys);
    ASSERT_EQ(Call(fatjit_rt_MATCH_KEYS), 0) << keys_source;
    SetDepth(3);
    EXPECT_TRUE(Equal(Top(), Py(expected))) << keys_source;
    EXPECT_EQ(Slot(0), d.obj());
    EXPECT_EQ(Slot(1), keys.obj());
    ExpectRefs(d);
    ExpectRefs(keys);
    ClearStack();
  }
  EXPECT_EQ(PyDict_Size(d.obj()), 2) << "read with get(), never __missing__";
}

TEST_F(ValuesMatchTest, MatchKeysDuplicateAndGetErrorsMatchPython) {
  Run("class C:\n    a = 'k'\n    b = 'k'\n"
      "d = {'k': 1, 'j': 2}\n"
      "class M(dict):\n    def get(self, k, default): raise LookupError('get failed')\n"
      "m = M(k=1)\n");
  for (auto [subject, python] :
       {std::pair{"d", "match d:\n    case {C.a: 1, C.b: 1}: pass\n"},
        std::pair{"m", "match m:\n    case {'k': 1}: pass\n"}}) {
    Ref<> s = Py(subject);
    Ref<> keys = Py(std::string(subject) == "d" ? "('k', 'k')" : "('k',)");
    Push(s);
    Push(keys);
    ASSERT_EQ(Call(fatjit_rt_MATCH_KEYS), -1);
    ExpectErrorSlotRule();
    ExpectErrorAsInPython(python);
    ClearStack();
  }
}

TEST_F(ValuesMatchTest, MatchClassExtractsPositionalAndKeywordAttributes) {
  Run("class P:\n    __match_args__ = ('x', 'y')\n"
      "    def __init__(self, x, y, z): self.x, self.y, self.z = x, y, z\n"
      "p = P(10**20, object(), 'z')\n");
  Ref<> p = Py("p");
  Ref<> type = Py("P");
  Ref<> names = Py("('z',)");
  Push(p);
  Push(type);
  Push(names);
  ASSERT_EQ(Call(fatjit_rt_MATCH_CLASS, 2), 0);  // case P(a, b, z=c)
  SetDepth(1);
  EXPECT_TRUE(Equal(Top(), Py("(p.x, p.y, p.z)")));
  ExpectRefs(p);
  ExpectRefs(type);
  ExpectRefs(names);
  SetDepth(0);
  Py_CLEAR(*frame_->Sp(0));

  // int matches itself positionally (_Py_TPFLAGS_MATCH_SELF); a missing attribute is no match.
  Ref<> n = Py("10**20");
  Ref<> int_type = Py("int");
  Ref<> empty = Py("()");
  Ref<> missing = Py("('nope',)");
  for (auto [names_tuple, nargs] : {std::pair{&empty, 1}, std::pair{&missing, 0}}) {
    Push(n);
    Push(int_type);
    Push(*names_tuple);
    ASSERT_EQ(Call(fatjit_rt_MATCH_CLASS, nargs), 0);
    SetDepth(1);
    if (nargs == 1) {
      ASSERT_TRUE(PyTuple_CheckExact(Top()));
      EXPECT_EQ(PyTuple_GET_ITEM(Top(), 0), n.obj());
    } else {
      EXPECT_EQ(Top(), Py_None);
    }
    SetDepth(0);
    Py_CLEAR(*frame_->Sp(0));
    ExpectRefs(n);
  }
  // Not an instance: None.
  Push(p);
  Push(int_type);
  Push(empty);
  ASSERT_EQ(Call(fatjit_rt_MATCH_CLASS, 0), 0);
  SetDepth(1);
  EXPECT_EQ(Top(), Py_None);
  ExpectRefs(p);
}

TEST_F(ValuesMatchTest, MatchClassErrorsKeepTheSubject) {
  Run("class P:\n    __match_args__ = ('x', 'y')\n    x = 1\n    y = 2\n"
      "class BadArgs:\n    __match_args__ = ['x']\n"
      "class NotStr:\n    __match_args__ = (1,)\n"
      "p = P()\nb = BadArgs()\nq = NotStr()\nnot_a_type = 5\n");
  struct Case {
    const char* subject;
    const char* type;
    const char* names;
    int nargs;
    const char* python;
  };
  for (Case c : {Case{"p", "P", "()", 3, "match p:\n    case P(1, 2, 3): pass\n"},
                 Case{"p", "P", "('x',)", 1, "match p:\n    case P(1, x=1): pass\n"},
                 Case{"p", "not_a_type", "()", 0, "match p:\n    case not_a_type(): pass\n"},
                 Case{"b", "BadArgs", "()", 1, "match b:\n    case BadArgs(1): pass\n"},
                 Case{"q", "NotStr", "()", 1, "match q:\n    case NotStr(1): pass\n"}}) {
    Ref<> subject = Py(c.subject);
    Ref<> type = Py(c.type);
    Ref<> names = Py(c.names);
    Push(subject);
    Push(type);
    Push(names);
    ASSERT_EQ(Call(fatjit_rt_MATCH_CLASS, c.nargs), -1) << c.python;
    EXPECT_EQ(Slot(0), subject.obj());
    EXPECT_EQ(Slot(1), nullptr);
    EXPECT_EQ(Slot(2), nullptr);
    ExpectErrorSlotRule();
    ExpectErrorAsInPython(c.python);
    SetDepth(0);
    outside_.clear();
    pushed_.clear();
  }
}

// --- iteration --------------------------------------------------------------------------------

TEST_F(ValuesIterTest, GetIterReplacesTheIterable) {
  Run("n = 10**20\n");
  Ref<> list = Py("[1]");
  Push(list);
  ASSERT_EQ(Call(fatjit_rt_GET_ITER), 0);
  EXPECT_EQ(Py_TYPE(Top()), &PyListIter_Type);
  ExpectRefs(list, 1);  // the iterator holds the list
  ClearStack();
  Ref<> n = Py("n");
  Push(n);
  ASSERT_EQ(Call(fatjit_rt_GET_ITER), -1);
  EXPECT_EQ(Slot(0), nullptr);
  ExpectErrorSlotRule();
  ExpectErrorAsInPython("iter(n)");
}

TEST_F(ValuesIterTest, ForIterOverAListPushesEachItemThenPopsTheIterator) {
  Run("items = [10**20, object()]\nit = iter(items)\n");
  Ref<> items = Py("items");
  Ref<> it = Py("it");
  Run("del it");
  Push(it);
  for (Py_ssize_t i = 0; i < 2; ++i) {
    PyObject* item = PyList_GET_ITEM(items.obj(), i);
    const Py_ssize_t item_refs = Py_REFCNT(item);
    ASSERT_EQ(Call(fatjit_rt_FOR_ITER), 0);
    SetDepth(2);
    EXPECT_EQ(Top(), item);
    EXPECT_EQ(Py_REFCNT(item), item_refs + 1);
    SetDepth(1);
    Py_CLEAR(*frame_->Sp(1));
  }
  ASSERT_EQ(Call(fatjit_rt_FOR_ITER), 1);
  SetDepth(0);
  EXPECT_EQ(Slot(0), nullptr);
  ExpectRefs(it);
  EXPECT_FALSE(PyErr_Occurred());
}

TEST_F(ValuesIterTest, ForIterOverARange) {
  Ref<> it = Py("iter(range(10**20, 10**20 + 2))");
  Push(it);
  for (int i = 0; i < 2; ++i) {
    ASSERT_EQ(Call(fatjit_rt_FOR_ITER), 0);
    SetDepth(2);
    EXPECT_TRUE(Equal(Top(), Py("10**20 + " + std::to_string(i))));
    SetDepth(1);
    Py_CLEAR(*frame_->Sp(1));
  }
  ASSERT_EQ(Call(fatjit_rt_FOR_ITER), 1);
  SetDepth(0);
  ExpectRefs(it);
}

TEST_F(ValuesIterTest, ForIterClearsAGeneratorsStopIterationAndKeepsItOnError) {
  Run("def ends():\n    yield 1\n    return 'value'\n"
      "def fails():\n    yield 1\n    raise ValueError('generator failed')\n"
      "class Stops:\n    def __iter__(self): return self\n"
      "    def __next__(self): raise StopIteration('explicit')\n");
  for (const char* make : {"ends()", "iter(Stops())"}) {
    Ref<> gen = Py(make);
    Push(gen);
    int64_t status;
    while ((status = Call(fatjit_rt_FOR_ITER)) == 0) {
      SetDepth(1);
      Py_CLEAR(*frame_->Sp(1));
    }
    EXPECT_EQ(status, 1) << make;
    SetDepth(0);
    EXPECT_EQ(Error(), "") << make;
    ExpectRefs(gen);
    ClearStack();
  }
  Ref<> gen = Py("fails()");
  Push(gen);
  ASSERT_EQ(Call(fatjit_rt_FOR_ITER), 0);
  SetDepth(1);
  Py_CLEAR(*frame_->Sp(1));
  ASSERT_EQ(Call(fatjit_rt_FOR_ITER), -1);
  EXPECT_EQ(Slot(0), gen.obj());
  ExpectErrorSlotRule();
  ExpectErrorAsInPython("for x in fails(): pass");
}

}  // namespace
}  // namespace fatjit::jit
