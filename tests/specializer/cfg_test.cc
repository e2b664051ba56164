// CFG: block boundaries and edges (fallthrough, jump, exception) of loops, try/except/finally,
// with, comprehensions and generators, as text; and the refusal for code that falls off the end.
#include <gtest/gtest.h>

#include "specializer/bytecode/cfg.h"
#include "specializer/bytecode/code_object.h"
#include "tests/specializer/bytecode_test_util.h"

namespace fatjit::bytecode {
namespace {

using testing::FunctionCode;
using testing::MustDecode;
using testing::Units;

std::string CfgOf(const std::string& source, const char* name = "f") {
  Ref<> code = FunctionCode(source, name);
  DecodedCode decoded = MustDecode(code.obj());
  absl::StatusOr<ControlFlowGraph> cfg = ControlFlowGraph::Build(decoded);
  EXPECT_TRUE(cfg.ok()) << cfg.status();
  return cfg.ok() ? cfg->ToString() : "";
}

// Blocks start at jump targets and after jumps; FOR_ITER's exit is its jump edge.
TEST(CfgTest, LoopWithContinue) {
  // 18 FOR_ITER -> 32; 24 POP_JUMP_FORWARD_IF_FALSE -> 26; 25 and 31 JUMP_BACKWARD -> 18.
  EXPECT_EQ(CfgOf(R"py(def f(n):
    total = 0
    for i in range(n):
        if i % 2:
            continue
        total += i
    return total
)py"),
            "B0 [0, 18) -> B1 fallthrough\n"
            "B1 [18, 19) -> B5 jump, B2 fallthrough\n"
            "B2 [19, 25) -> B4 jump, B3 fallthrough\n"
            "B3 [25, 26) -> B1 jump\n"
            "B4 [26, 32) -> B1 jump\n"
            "B5 [32, 34)\n");
}

// Table (code units): #0 [2,7)->8, #1 [7,8)->29, #2 [8,20)->23 lasti, #3 [20,22)->29,
// #4 [22,23)->23 lasti, #5 [23,26)->29, #6 [29,33)->33 lasti.
TEST(CfgTest, TryExceptFinallySplitsAtRangesAndHasExceptionEdges) {
  EXPECT_EQ(CfgOf(R"py(def f(x):
    try:
        y = 1 / x
    except ZeroDivisionError:
        y = 0
    finally:
        x = None
    return y
)py"),
            "B0 [0, 2) -> B1 fallthrough\n"
            "B1 [2, 7) in #0 -> B2 fallthrough, B3 exception\n"
            "B2 [7, 8) in #1 -> B8 jump, B9 exception\n"
            "B3 [8, 17) handler in #2 -> B6 jump, B4 fallthrough, B7 exception\n"
            "B4 [17, 20) in #2 -> B5 fallthrough, B7 exception\n"
            "B5 [20, 22) in #3 -> B8 jump, B9 exception\n"
            "B6 [22, 23) in #4 -> B7 exception\n"
            "B7 [23, 26) handler in #5 -> B9 exception\n"
            "B8 [26, 29) -> B11 jump\n"
            "B9 [29, 33) handler in #6 -> B10 exception\n"
            "B10 [33, 36) handler\n"
            "B11 [36, 38)\n");
}

// The __exit__ call path and the handler that calls __exit__ with the exception.
TEST(CfgTest, WithStatement) {
  EXPECT_EQ(CfgOf(R"py(def f(cm):
    with cm as v:
        return v
)py"),
            "B0 [0, 3) -> B1 fallthrough\n"
            "B1 [3, 5) in #0 -> B2 fallthrough, B3 exception\n"
            "B2 [5, 18)\n"
            "B3 [18, 21) handler in #1 -> B6 jump, B4 fallthrough, B5 exception\n"
            "B4 [21, 22) in #1 -> B5 exception\n"
            "B5 [22, 25) handler\n"
            "B6 [25, 26) in #2 -> B7 fallthrough, B5 exception\n"
            "B7 [26, 31)\n");
}

// The <listcomp> code object: a filtered loop with a backward conditional jump.
TEST(CfgTest, ComprehensionBody) {
  Ref<> code = FunctionCode("def f(xs):\n    return [x * 2 for x in xs if x]\n");
  Ref<> listcomp = *CodeAttribute(code.obj(), "co_consts");
  DecodedCode decoded = MustDecode(PyTuple_GET_ITEM(listcomp.obj(), 1));
  absl::StatusOr<ControlFlowGraph> cfg = ControlFlowGraph::Build(decoded);
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  EXPECT_EQ(cfg->ToString(),
            "B0 [0, 3) -> B1 fallthrough\n"
            "B1 [3, 4) -> B4 jump, B2 fallthrough\n"
            "B2 [4, 7) -> B1 jump, B3 fallthrough\n"
            "B3 [7, 13) -> B1 jump\n"
            "B4 [13, 14)\n");
}

TEST(CfgTest, GeneratorYieldDoesNotEndABlock) {
  // 21 YIELD_VALUE, 22 RESUME: the frame suspends and resumes in the same block.
  EXPECT_EQ(CfgOf("def f(n):\n    for i in range(n):\n        yield i\n"),
            "B0 [0, 18) -> B1 fallthrough\n"
            "B1 [18, 19) -> B3 jump, B2 fallthrough\n"
            "B2 [19, 25) -> B1 jump\n"
            "B3 [25, 27)\n");
}

// The interpreter would run past the last code unit.
TEST(CfgTest, RefusesCodeThatFallsOffTheEnd) {
  absl::StatusOr<std::vector<Instruction>> insts = DecodeInstructions(Units({{NOP, 0}}));
  ASSERT_TRUE(insts.ok());
  absl::StatusOr<DecodedCode> code = DecodedCode::Create(*insts, {});
  ASSERT_TRUE(code.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(ControlFlowGraph::Build(*code).status()));
}

}  // namespace
}  // namespace fatjit::bytecode
