// Stack depths: the depth before every instruction of loops, try/except/finally, with,
// comprehensions and generators (derived by hand from CPython's stack effects; each maximum is
// co_stacksize), and the refusals for inconsistent bytecode.
#include <gtest/gtest.h>

#include "absl/strings/str_format.h"
#include "specializer/bytecode/code_object.h"
#include "specializer/bytecode/stack_depth.h"
#include "tests/specializer/bytecode_test_util.h"

namespace fatjit::bytecode {
namespace {

using testing::FunctionCode;
using testing::MustDecode;
using testing::Units;

// "offset:depth ..." for every instruction, then "max N".
std::string Depths(const DecodedCode& code) {
  absl::StatusOr<ControlFlowGraph> cfg = ControlFlowGraph::Build(code);
  if (!cfg.ok()) return std::string(cfg.status().message());
  absl::StatusOr<StackDepths> depths = ComputeStackDepths(code, *cfg);
  if (!depths.ok()) return std::string(depths.status().message());
  std::string out;
  for (size_t i = 0; i < code.instructions().size(); ++i) {
    absl::StrAppendFormat(&out, "%d:%d ", code.instructions()[i].offset, depths->depth_before[i]);
  }
  return out + absl::StrFormat("max %d", depths->max_depth);
}

std::string DepthsOf(const std::string& source) {
  Ref<> code = FunctionCode(source);
  return Depths(MustDecode(code.obj()));
}

absl::Status DepthStatus(std::vector<_Py_CODEUNIT> units,
                         std::vector<ExceptionTableEntry> table = {}) {
  absl::StatusOr<std::vector<Instruction>> insts = DecodeInstructions(units);
  if (!insts.ok()) return insts.status();
  absl::StatusOr<DecodedCode> code = DecodedCode::Create(*insts, table);
  if (!code.ok()) return code.status();
  absl::StatusOr<ControlFlowGraph> cfg = ControlFlowGraph::Build(*code);
  if (!cfg.ok()) return cfg.status();
  return ComputeStackDepths(*code, *cfg).status();
}

// FOR_ITER pushes the next item, and pops the iterator on its exit edge.
TEST(StackDepthTest, Loop) {
  EXPECT_EQ(DepthsOf(R"py(def f(n):
    total = 0
    for i in range(n):
        if i % 2:
            continue
        total += i
    return total
)py"),
            "0:0 1:0 2:1 3:0 9:2 10:3 12:2 17:1 18:1 19:2 20:1 21:2 22:3 24:2 25:1 26:1 27:2 "
            "28:3 30:2 31:1 32:0 33:1 max 3");
}

// Handlers start at table depth + lasti + 1: 8 and 29 at 1, 23 and 33 at 3 (COPY 3 reaches 4).
TEST(StackDepthTest, TryExceptFinally) {
  EXPECT_EQ(DepthsOf(R"py(def f(x):
    try:
        y = 1 / x
    except ZeroDivisionError:
        y = 0
    finally:
        x = None
    return y
)py"),
            "0:0 1:0 2:0 3:1 4:2 6:1 7:0 8:1 9:2 15:3 16:3 17:2 18:1 19:2 20:1 21:0 22:2 23:3 "
            "24:4 25:3 26:0 27:1 28:0 29:1 30:2 31:3 32:2 33:3 34:4 35:3 36:0 37:1 max 4");
}

// The handler at 18 unwinds to below __enter__'s result (depth 1) and pushes lasti and the
// exception; the cleanup handler at 22 starts at 3 + 2.
TEST(StackDepthTest, With) {
  EXPECT_EQ(DepthsOf(R"py(def f(cm):
    with cm as v:
        return v
)py"),
            "0:0 1:0 2:1 3:2 4:1 5:2 6:2 7:3 8:4 9:5 11:3 16:2 17:1 18:3 19:4 20:5 21:4 22:5 "
            "23:6 24:5 25:4 26:3 27:2 28:1 29:0 30:1 max 6");
}

TEST(StackDepthTest, ComprehensionBody) {
  Ref<> code = FunctionCode("def f(xs):\n    return [x * 2 for x in xs if x]\n");
  Ref<> consts = *CodeAttribute(code.obj(), "co_consts");
  EXPECT_EQ(Depths(MustDecode(PyTuple_GET_ITEM(consts.obj(), 1))),
            "0:0 1:0 2:1 3:2 4:3 5:2 6:3 7:2 8:3 9:4 11:3 12:2 13:1 max 4");
}

// RETURN_GENERATOR leaves the value of the first send() on the resumed frame's stack.
TEST(StackDepthTest, Generator) {
  EXPECT_EQ(DepthsOf("def f(n):\n    for i in range(n):\n        yield i\n"),
            "0:0 1:1 2:0 3:0 9:2 10:3 12:2 17:1 18:1 19:2 20:1 21:2 22:2 23:2 24:1 25:0 26:1 "
            "max 3");
}

TEST(StackDepthTest, UnreachableInstructionsHaveNoDepth) {
  absl::StatusOr<std::vector<Instruction>> insts = DecodeInstructions(
      Units({{JUMP_FORWARD, 1}, {NOP, 0}, {LOAD_CONST, 0}, {RETURN_VALUE, 0}}));
  ASSERT_TRUE(insts.ok());
  absl::StatusOr<DecodedCode> code = DecodedCode::Create(*insts, {});
  ASSERT_TRUE(code.ok());
  EXPECT_EQ(Depths(*code), "0:0 1:-1 2:0 3:1 max 1");
}

// The one known difference from co_stacksize (25 stdlib code objects): the compiler counts the
// depth of a handler whose protected range ended up empty. `try: pass` leaves no table entry, so
// the handler code at 5..12 stays in co_code unreachable; compile.c counted COPY 3 at depth 4.
TEST(StackDepthTest, HandlerOfAnEmptyTryIsUnreachableAndBelowCoStacksize) {
  Ref<> code = FunctionCode("def f():\n    try:\n        pass\n    finally:\n        return 1\n");
  EXPECT_EQ(Depths(MustDecode(code.obj())),
            "0:0 1:0 2:0 3:0 4:1 5:-1 6:-1 7:-1 8:-1 9:-1 10:-1 11:-1 12:-1 max 1");
  EXPECT_EQ(*CodeIntAttribute(code.obj(), "co_stacksize"), 4);
}

TEST(StackDepthTest, RefusesInconsistentDepths) {
  // Offset 3 is reached with depth 0 by the jump and 1 by the fallthrough.
  EXPECT_TRUE(absl::IsInvalidArgument(DepthStatus(Units(
      {{LOAD_CONST, 0}, {POP_JUMP_FORWARD_IF_TRUE, 1}, {LOAD_CONST, 0}, {RETURN_VALUE, 0}}))));
  // Popping an empty stack.
  EXPECT_TRUE(absl::IsInvalidArgument(DepthStatus(Units({{POP_TOP, 0}, {RETURN_VALUE, 0}}))));
  // The protected range runs at depth 0 but its handler claims to unwind to depth 1.
  EXPECT_TRUE(absl::IsInvalidArgument(DepthStatus(
      Units({{LOAD_CONST, 0}, {RETURN_VALUE, 0}, {RERAISE, 0}}),
      {{.start = 0, .end = 2, .target = 2, .depth = 1}})));
  // The same with depth 0 is fine.
  EXPECT_TRUE(DepthStatus(Units({{LOAD_CONST, 0}, {RETURN_VALUE, 0}, {RERAISE, 0}}),
                          {{.start = 0, .end = 2, .target = 2, .depth = 0}})
                  .ok());
}

TEST(StackDepthTest, EffectsComeFromTheCompilerExceptReturnGenerator) {
  Instruction for_iter{.opcode = FOR_ITER, .base_opcode = FOR_ITER, .oparg = 3};
  EXPECT_EQ(*StackEffect(for_iter, /*jump=*/false), 1);
  EXPECT_EQ(*StackEffect(for_iter, /*jump=*/true), -1);
  Instruction gen{.opcode = RETURN_GENERATOR, .base_opcode = RETURN_GENERATOR};
  EXPECT_EQ(*StackEffect(gen, false), 1);
  Instruction unknown{.opcode = BINARY_OP_ADD_INT, .base_opcode = BINARY_OP_ADD_INT};
  EXPECT_TRUE(absl::IsInvalidArgument(StackEffect(unknown, false).status()));
}

}  // namespace
}  // namespace fatjit::bytecode
