// The folding passes called one by one on a SpecializationBuilder: the changed flag, the slots
// they edit, what they build on, and the references they hold.
#include <gtest/gtest.h>

#include "specializer/bytecode/opcode_tables.h"
#include "specializer/passes/passes.h"
#include "specializer/specialize_function.h"
#include "tests/support/python_env.h"

namespace fatjit::specializer {
namespace {

// A fresh module running `source`; its function f (borrowed from `globals`).
PyFunctionObject* Define(const std::string& source, Ref<>& globals) {
  globals = fatjit::testing::NewGlobals();
  fatjit::testing::Exec(source, globals.obj());
  PyObject* f = PyDict_GetItemString(globals.obj(), "f");
  EXPECT_TRUE(f != nullptr && PyFunction_Check(f));
  return reinterpret_cast<PyFunctionObject*>(f);
}

std::vector<int> Offsets(const SpecializationBuilder& builder) {
  std::vector<int> offsets;
  for (const bytecode::Instruction& inst : builder.instructions()) offsets.push_back(inst.offset);
  return offsets;
}

int OpcodeAt(const SpecializationBuilder& builder, int offset) {
  for (const bytecode::Instruction& inst : builder.instructions()) {
    if (inst.offset == offset) return inst.base_opcode;
  }
  return -1;
}

// `return K * 2`: 0 RESUME, 1 LOAD_GLOBAL K (+5), 7 LOAD_CONST 2, 8 BINARY_OP (+1), 10 RETURN.
constexpr char kTimesTwo[] = "K = 20\ndef f():\n    return K * 2\n";

// The fold edits the operand's load and the operation's slot, re-emits the global's slot, and so
// builds on globals_to_constants' rewrite and carries its assumption.
TEST(FoldingPassesTest, FoldConstantsBuildsOnTheGlobalItFolds) {
  Ref<> globals;
  absl::StatusOr<SpecializationBuilder> builder =
      SpecializationBuilder::Create(Define(kTimesTwo, globals));
  ASSERT_TRUE(builder.ok()) << builder.status();
  ASSERT_TRUE(*GlobalsToConstants(*builder));
  std::vector<int> before = Offsets(*builder);
  absl::StatusOr<bool> changed = FoldConstants(*builder);
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_TRUE(*changed);
  ASSERT_EQ(builder->rewrites().size(), 2u);
  const Rewrite& fold = builder->rewrites()[1];
  EXPECT_STREQ(fold.pass, "fold_constants");
  EXPECT_EQ(fold.before, "20 * 2");
  EXPECT_EQ(fold.after, "LOAD_CONST 40");
  ASSERT_EQ(fold.edits.size(), 3u);
  EXPECT_EQ(fold.edits[0].offset, 1);  // K's load, re-emitted
  EXPECT_EQ(fold.edits[1].offset, 7);  // the operand's load, now loading 40
  EXPECT_EQ(fold.edits[2].offset, 8);  // BINARY_OP -> SWAP 2; POP_TOP
  EXPECT_EQ(fold.offset, 1);
  EXPECT_EQ(fold.builds_on, std::vector<int>{0});
  EXPECT_EQ(fold.assumptions, builder->rewrites()[0].assumptions);
  EXPECT_EQ(OpcodeAt(*builder, 8), SWAP);
  EXPECT_EQ(OpcodeAt(*builder, 9), POP_TOP);
  before.insert(before.end() - 1, 9);  // BINARY_OP's cache unit now holds POP_TOP
  EXPECT_EQ(Offsets(*builder), before);
}

TEST(FoldingPassesTest, FoldConstantsReportsNoChangeWithoutConstants) {
  Ref<> globals;
  absl::StatusOr<SpecializationBuilder> builder =
      SpecializationBuilder::Create(Define("def f(x):\n    return x * 2\n", globals));
  ASSERT_TRUE(builder.ok());
  absl::StatusOr<bool> changed = FoldConstants(*builder);
  ASSERT_TRUE(changed.ok());
  EXPECT_FALSE(*changed);
  EXPECT_TRUE(builder->rewrites().empty());
}

// The call's three slots are edited, and the PUSH_NULL that globals_to_constants produced.
TEST(FoldingPassesTest, PureBuiltinCallsEditsPlaceholderPrecallAndCall) {
  Ref<> globals;
  absl::StatusOr<SpecializationBuilder> builder =
      SpecializationBuilder::Create(Define("def f():\n    return len('abc')\n", globals));
  ASSERT_TRUE(builder.ok());
  ASSERT_TRUE(*GlobalsToConstants(*builder));
  absl::StatusOr<bool> changed = PureBuiltinCalls(*builder);
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_TRUE(*changed);
  const Rewrite& call = builder->rewrites().back();
  EXPECT_EQ(call.before, "len('abc')");
  ASSERT_EQ(call.edits.size(), 4u);  // placeholder, len re-emitted, PRECALL, CALL
  EXPECT_EQ(OpcodeAt(*builder, call.edits[0].offset), LOAD_CONST);
  EXPECT_EQ(call.builds_on, std::vector<int>{0});
}

TEST(FoldingPassesTest, DeadBranchesDecidesAConstantCondition) {
  Ref<> globals;
  absl::StatusOr<SpecializationBuilder> builder = SpecializationBuilder::Create(
      Define("D = 0\ndef f():\n    if D:\n        return 1\n    return 2\n", globals));
  ASSERT_TRUE(builder.ok());
  ASSERT_TRUE(*GlobalsToConstants(*builder));
  absl::StatusOr<bool> changed = DeadBranches(*builder);
  ASSERT_TRUE(changed.ok()) << changed.status();
  EXPECT_TRUE(*changed);
  const Rewrite& branch = builder->rewrites().back();
  EXPECT_EQ(OpcodeAt(*builder, branch.edits.back().offset), POP_JUMP_FORWARD_IF_NOT_NONE);
  // Run again: an always-taken identity test is left alone.
  absl::StatusOr<bool> again = DeadBranches(*builder);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
}

// Folding keeps no reference to the objects it computed with once the result is dropped, and
// a fold that raises leaves no error set.
TEST(FoldingPassesTest, NoReferencesLeakedAndNoErrorLeft) {
  Ref<> globals;
  PyFunctionObject* f = Define(
      "K = 10 ** 20\nZ = 0\ndef f():\n    return (K + 1, -K, K == 3, len(str(K)), 1 / Z)\n",
      globals);
  PyObject* k = PyDict_GetItemString(globals.obj(), "K");
  const Py_ssize_t refs = Py_REFCNT(k);
  for (int i = 0; i < 3; ++i) {
    for (Assume assume : {Assume::kStable, Assume::kEntry}) {
      SpecializeResult result = SpecializeFunction(f, assume);
      EXPECT_FALSE(result.refused) << RefusalName(result.refusal) << " " << result.detail;
      EXPECT_FALSE(PyErr_Occurred());
    }
  }
  EXPECT_EQ(Py_REFCNT(k), refs);
}

}  // namespace
}  // namespace fatjit::specializer
