// Rewriter: in-place replacements keep every other offset, the tables and the stack layout, the
// built code object runs, and what breaks invariant 4 is refused.
#include <gtest/gtest.h>

#include "specializer/bytecode/code_object.h"
#include "specializer/bytecode/rewriter.h"
#include "tests/specializer/bytecode_test_util.h"

namespace fatjit::bytecode {
namespace {

using testing::FunctionCode;
using testing::MustDecode;
using testing::Offsets;

constexpr char kGlobalPlusArg[] = "def f(x):\n    return K + x\n";

// Calls `code` as a function of `args` in fresh globals (so no K is defined).
Ref<> Call(PyObject* code, const char* args) {
  Ref<> g = fatjit::testing::NewGlobals();
  PyDict_SetItemString(g.obj(), "code", code);
  return fatjit::testing::Eval(std::string("__import__('types').FunctionType(code, globals())") +
                                   args,
                               g.obj());
}

std::string Attr(PyObject* code, const char* name) {
  return std::string(BytesView(*CodeBytesAttribute(code, name)));
}

TEST(RewriterTest, ReplacesLoadGlobalWithLoadConstPaddedWithNops) {
  Ref<> code = FunctionCode(kGlobalPlusArg);
  std::string original_code = Attr(code.obj(), "co_code");
  Ref<> value = Ref<>::Steal(PyLong_FromLong(40000));
  Py_ssize_t refs = Py_REFCNT(value.obj());
  {
    absl::StatusOr<BytecodeRewriter> rewriter = BytecodeRewriter::Create(code.obj());
    ASSERT_TRUE(rewriter.ok()) << rewriter.status();
    // 0 RESUME, 1 LOAD_GLOBAL (+5 caches), 7 LOAD_FAST, 8 BINARY_OP (+1), 10 RETURN_VALUE
    ASSERT_EQ(Offsets(rewriter->original()), (std::vector<int>{0, 1, 7, 8, 10}));
    int index = rewriter->AddConst(value.obj());
    EXPECT_EQ(index, 1);
    ASSERT_TRUE(rewriter->Replace(1, {{.opcode = LOAD_CONST, .oparg = index}}).ok());
    absl::StatusOr<Ref<>> built = rewriter->BuildCode();
    ASSERT_TRUE(built.ok()) << built.status();

    DecodedCode rewritten = MustDecode(built->obj());
    EXPECT_EQ(Offsets(rewritten), (std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 10}));
    EXPECT_EQ(rewritten.At(1)->base_opcode, LOAD_CONST);
    EXPECT_EQ(rewritten.At(6)->base_opcode, NOP);
    EXPECT_EQ(rewritten.At(6)->line, 2);
    EXPECT_EQ(Attr(built->obj(), "co_linetable"), Attr(code.obj(), "co_linetable"));
    EXPECT_EQ(Attr(built->obj(), "co_exceptiontable"), Attr(code.obj(), "co_exceptiontable"));
    EXPECT_EQ(*CodeIntAttribute(built->obj(), "co_stacksize"), 2);

    Ref<> result = Call(built->obj(), "(2)");
    ASSERT_TRUE(result);
    EXPECT_EQ(PyLong_AsLong(result.obj()), 40002);
  }
  EXPECT_EQ(Attr(code.obj(), "co_code"), original_code);  // the original is never mutated
  EXPECT_EQ(Py_REFCNT(value.obj()), refs);
}

TEST(RewriterTest, ConstantIndexPast255TakesAPrefixInsideTheSlot) {
  Ref<> code = FunctionCode(kGlobalPlusArg);
  absl::StatusOr<BytecodeRewriter> rewriter = BytecodeRewriter::Create(code.obj());
  ASSERT_TRUE(rewriter.ok());
  std::vector<Ref<>> values;
  int index = 0;
  for (int i = 0; i < 300; ++i) {
    values.push_back(Ref<>::Steal(PyLong_FromLong(1000 + i)));
    index = rewriter->AddConst(values.back().obj());
  }
  EXPECT_EQ(index, 300);
  EXPECT_EQ(rewriter->AddConst(values.back().obj()), 300);  // the same object is reused
  EXPECT_EQ(rewriter->AddConst(Py_None), 0);
  ASSERT_TRUE(rewriter->Replace(1, {{.opcode = LOAD_CONST, .oparg = index}}).ok());
  EXPECT_EQ(rewriter->instructions()[1].extended_args, 1);
  EXPECT_EQ(rewriter->instructions()[1].opcode_offset(), 2);
  absl::StatusOr<Ref<>> built = rewriter->BuildCode();
  ASSERT_TRUE(built.ok()) << built.status();
  EXPECT_EQ(Offsets(MustDecode(built->obj())), (std::vector<int>{0, 1, 3, 4, 5, 6, 7, 8, 10}));
  Ref<> result = Call(built->obj(), "(1)");
  ASSERT_TRUE(result);
  EXPECT_EQ(PyLong_AsLong(result.obj()), 1300);
}

TEST(RewriterTest, FoldsABranchWithAJumpWhoseOpargIsComputedFromItsPlacement) {
  Ref<> code = FunctionCode("def f():\n    if DEBUG:\n        return 1\n    return 2\n");
  absl::StatusOr<BytecodeRewriter> rewriter = BytecodeRewriter::Create(code.obj());
  ASSERT_TRUE(rewriter.ok());
  // 1 LOAD_GLOBAL DEBUG, 7 POP_JUMP_FORWARD_IF_FALSE -> 10, 8 return 1, 10 return 2.
  const Instruction* branch = rewriter->original().At(7);
  ASSERT_NE(branch, nullptr);
  ASSERT_EQ(branch->base_opcode, POP_JUMP_FORWARD_IF_FALSE);
  ASSERT_TRUE(
      rewriter->Replace(1, {{.opcode = JUMP_FORWARD, .jump_target = branch->jump_target}}).ok());
  EXPECT_EQ(rewriter->instructions()[1].oparg, branch->jump_target - 2);
  absl::StatusOr<Ref<>> built = rewriter->BuildCode();
  ASSERT_TRUE(built.ok()) << built.status();
  Ref<> result = Call(built->obj(), "()");
  ASSERT_TRUE(result);
  EXPECT_EQ(PyLong_AsLong(result.obj()), 2);
}

TEST(RewriterTest, RefusesReplacementsThatWouldMoveOffsets) {
  Ref<> code = FunctionCode(kGlobalPlusArg);
  absl::StatusOr<BytecodeRewriter> rewriter = BytecodeRewriter::Create(code.obj());
  ASSERT_TRUE(rewriter.ok());
  // Does not fit: RETURN_VALUE has one code unit.
  EXPECT_TRUE(absl::IsInvalidArgument(
      rewriter->Replace(10, {{.opcode = LOAD_CONST}, {.opcode = RETURN_VALUE}})));
  // Not an instruction start: a cache unit of LOAD_GLOBAL.
  EXPECT_TRUE(absl::IsInvalidArgument(rewriter->Replace(2, {{.opcode = NOP}})));
  // Specialized forms never go into co_code.
  EXPECT_TRUE(absl::IsInvalidArgument(rewriter->Replace(8, {{.opcode = BINARY_OP_ADD_INT}})));
  // A jump into a cache unit, and one against its direction.
  EXPECT_TRUE(absl::IsInvalidArgument(
      rewriter->Replace(1, {{.opcode = JUMP_FORWARD, .jump_target = 9}})));
  EXPECT_TRUE(absl::IsInvalidArgument(
      rewriter->Replace(7, {{.opcode = JUMP_FORWARD, .jump_target = 0}})));
  // A jump without a target.
  EXPECT_TRUE(absl::IsInvalidArgument(rewriter->Replace(1, {{.opcode = JUMP_FORWARD}})));
}

TEST(RewriterTest, RefusesToBuildCodeWhoseStackLayoutMoved) {
  Ref<> code = FunctionCode(kGlobalPlusArg);
  // Two values where LOAD_GLOBAL pushed one: valid code, but offset 7 now runs at depth 2, so
  // a deopt from it to the original would resume with the wrong stack.
  absl::StatusOr<BytecodeRewriter> pushes_two = BytecodeRewriter::Create(code.obj());
  ASSERT_TRUE(pushes_two.ok());
  ASSERT_TRUE(pushes_two->Replace(1, {{.opcode = LOAD_CONST}, {.opcode = LOAD_CONST}}).ok());
  absl::Status moved = pushes_two->BuildCode().status();
  EXPECT_TRUE(absl::IsFailedPrecondition(moved));
  EXPECT_EQ(moved.message(),
            "bytecode offset 7: stack depth 2 in the rewritten code, 1 in the original");
  // Dropping LOAD_FAST pops an empty stack at RETURN_VALUE: not valid bytecode at all.
  absl::StatusOr<BytecodeRewriter> drops = BytecodeRewriter::Create(code.obj());
  ASSERT_TRUE(drops.ok());
  ASSERT_TRUE(drops->RemoveInstruction(7).ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(drops->BuildCode().status()));
}

}  // namespace
}  // namespace fatjit::bytecode
