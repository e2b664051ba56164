// Entry stability's constant tracking, which the folding passes' rewrites rely on: constants on
// top of the stack are counted through SWAP, COPY and NOP, popping one is effect-free, and a
// forward IF_NONE/NOT_NONE jump on a known constant follows only the edge it takes.
// (It tests specializer/entry_stability.cc; it sits here with the passes that need it.)
#include <gtest/gtest.h>

#include "specializer/bytecode/cfg.h"
#include "specializer/entry_stability.h"
#include "tests/specializer/bytecode_test_util.h"

namespace fatjit::specializer {
namespace {

using bytecode::testing::Units;

// Entry stability of hand-made bytecode with one parameter (local 0), as "1" and "0" per
// instruction; `consts` are co_consts.
std::string Stable(std::vector<_Py_CODEUNIT> units, std::vector<PyObject*> consts = {}) {
  absl::StatusOr<std::vector<bytecode::Instruction>> insts = bytecode::DecodeInstructions(units);
  if (!insts.ok()) return std::string(insts.status().message());
  absl::StatusOr<bytecode::DecodedCode> code = bytecode::DecodedCode::Create(*insts, {});
  if (!code.ok()) return std::string(code.status().message());
  absl::StatusOr<bytecode::ControlFlowGraph> cfg = bytecode::ControlFlowGraph::Build(*code);
  if (!cfg.ok()) return std::string(cfg.status().message());
  absl::StatusOr<std::vector<bool>> stable = ComputeEntryStability(*code, *cfg, 1, 1, consts);
  if (!stable.ok()) return std::string(stable.status().message());
  std::string out;
  for (bool s : *stable) out += s ? '1' : '0';
  return out;
}

// fold_constants' COMPARE_OP shape pops two constants in a row.
TEST(EntryStabilityConstantsTest, SecondPopOfAConstantIsEffectFree) {
  EXPECT_EQ(Stable(Units({{LOAD_CONST, 0}, {LOAD_CONST, 0}, {POP_TOP, 0}, {NOP, 0}, {POP_TOP, 0},
                          {LOAD_FAST, 0}, {RETURN_VALUE, 0}})),
            "1111111");
}

// fold_constants' BINARY_OP shape: SWAP 2 between two constants, then POP_TOP.
TEST(EntryStabilityConstantsTest, SwapAmongConstantsKeepsThemKnown) {
  EXPECT_EQ(Stable(Units({{LOAD_CONST, 0}, {LOAD_CONST, 0}, {SWAP, 2}, {POP_TOP, 0},
                          {RETURN_VALUE, 0}})),
            "11111");
}

// A SWAP that brings an unknown value up makes the next POP_TOP an effect.
TEST(EntryStabilityConstantsTest, PopOfASwappedInNonConstantTaints) {
  EXPECT_EQ(Stable(Units({{LOAD_FAST, 0}, {LOAD_CONST, 0}, {SWAP, 2}, {POP_TOP, 0},
                          {RETURN_VALUE, 0}})),
            "11110");
}

// COPY of a constant is a constant; COPY of an unknown value is not.
TEST(EntryStabilityConstantsTest, CopyOfAConstantIsAConstant) {
  EXPECT_EQ(Stable(Units({{LOAD_CONST, 0}, {COPY, 1}, {POP_TOP, 0}, {POP_TOP, 0},
                          {LOAD_FAST, 0}, {COPY, 1}, {POP_TOP, 0}, {RETURN_VALUE, 0}})),
            "11111110");
}

// Only as many pops as constants pushed are free.
TEST(EntryStabilityConstantsTest, PopsBeyondTheConstantsTaint) {
  EXPECT_EQ(Stable(Units({{LOAD_FAST, 0}, {LOAD_CONST, 0}, {POP_TOP, 0}, {POP_TOP, 0},
                          {LOAD_CONST, 0}, {RETURN_VALUE, 0}})),
            "111100");
}

// dead_branches' always-taken jump: the code it skips (an effect: popping a parameter) does not
// reach the target, given the constants; without them both edges count.
TEST(EntryStabilityConstantsTest, ForwardIfNotNoneOnAConstantFollowsOneEdge) {
  Ref<> one = Ref<>::Steal(PyLong_FromLong(1));
  auto units = Units({{LOAD_CONST, 0},
                      {POP_JUMP_FORWARD_IF_NOT_NONE, 2},
                      {LOAD_FAST, 0},
                      {POP_TOP, 0},
                      {LOAD_CONST, 0},
                      {RETURN_VALUE, 0}});
  EXPECT_EQ(Stable(units, {one.obj()}), "111111");  // 2 and 3 unreachable: vacuously stable
  EXPECT_EQ(Stable(units, {Py_None}), "111100");    // not taken: the pop taints the join
  EXPECT_EQ(Stable(units), "111100");               // constants unknown
}

// A forward IF_NONE on None jumps; on anything else it falls through.
TEST(EntryStabilityConstantsTest, ForwardIfNoneOnAConstant) {
  Ref<> one = Ref<>::Steal(PyLong_FromLong(1));
  auto units = Units({{LOAD_CONST, 0},
                      {POP_JUMP_FORWARD_IF_NONE, 2},
                      {LOAD_FAST, 0},
                      {POP_TOP, 0},
                      {LOAD_CONST, 0},
                      {RETURN_VALUE, 0}});
  EXPECT_EQ(Stable(units, {Py_None}), "111111");
  EXPECT_EQ(Stable(units, {one.obj()}), "111100");
}

// A conditional jump on a non-constant stays an effect (it may call __bool__ or drop the last
// reference), and backward jumps poll the eval breaker.
TEST(EntryStabilityConstantsTest, OtherConditionalJumpsStayEffects) {
  EXPECT_EQ(Stable(Units({{LOAD_FAST, 0},
                          {POP_JUMP_FORWARD_IF_NOT_NONE, 0},
                          {LOAD_CONST, 0},
                          {RETURN_VALUE, 0}}),
                   {Py_None}),
            "1100");
  EXPECT_EQ(Stable(Units({{LOAD_CONST, 0},
                          {POP_JUMP_FORWARD_IF_FALSE, 0},
                          {LOAD_CONST, 0},
                          {RETURN_VALUE, 0}}),
                   {Py_None}),
            "1100");
}

// Regression: deciding jump edges must never drop exception edges. A handler entered when a
// call raises runs after that call, so what it loads is not stable (the call may have rebound
// K); with the edge dropped the handler looked unreachable, hence vacuously stable.
TEST(EntryStabilityConstantsTest, HandlersStayReachableThroughExceptionEdges) {
  Ref<> code = bytecode::testing::FunctionCode(R"py(def f(g):
    try:
        g()
    except Exception:
        return K
    return 0
)py");
  bytecode::DecodedCode decoded = bytecode::testing::MustDecode(code.obj());
  absl::StatusOr<bytecode::ControlFlowGraph> cfg = bytecode::ControlFlowGraph::Build(decoded);
  ASSERT_TRUE(cfg.ok());
  absl::StatusOr<std::vector<bool>> stable =
      ComputeEntryStability(decoded, *cfg, 1, 1, std::vector<PyObject*>{Py_None});
  ASSERT_TRUE(stable.ok());
  // The only LOAD_GLOBALs (Exception, K) are in the handler, after the raising call.
  int loads = 0;
  for (size_t i = 0; i < decoded.instructions().size(); ++i) {
    if (decoded.instructions()[i].base_opcode != LOAD_GLOBAL) continue;
    ++loads;
    EXPECT_FALSE((*stable)[i]) << "offset " << decoded.instructions()[i].offset;
  }
  EXPECT_EQ(loads, 2);
}

}  // namespace
}  // namespace fatjit::specializer
