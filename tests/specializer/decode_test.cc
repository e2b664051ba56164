// Decode: offsets, opargs (EXTENDED_ARG folded), caches, jump targets and lines of real
// functions, the live quickened form, and the refusals for malformed bytecode.
#include <gtest/gtest.h>

#include "specializer/bytecode/code_object.h"
#include "specializer/bytecode/decode.h"
#include "specializer/bytecode/encode.h"
#include "specializer/bytecode/opcode_tables.h"
#include "tests/specializer/bytecode_test_util.h"

namespace fatjit::bytecode {
namespace {

using testing::FunctionCode;
using testing::Listing;
using testing::MustDecode;
using testing::Units;

constexpr char kLoop[] = R"py(def f(n):
    total = 0
    for i in range(n):
        if i % 2:
            continue
        total += i
    return total
)py";

// `count` assignments of distinct float constants to distinct locals, then a return of the
// last one, so constant and local indices pass 255 and need EXTENDED_ARG.
std::string Assignments(int count, const std::string& indent) {
  std::string source;
  for (int i = 0; i < count; ++i) {
    source += indent + "a" + std::to_string(i) + " = " + std::to_string(i) + ".5\n";
  }
  return source + indent + "return a" + std::to_string(count - 1) + "\n";
}

TEST(DecodeTest, LoopHasCodeUnitOffsetsCachesJumpTargetsAndLines) {
  Ref<> code = FunctionCode(kLoop);
  DecodedCode decoded = MustDecode(code.obj());
  // dis shows byte offsets: these are code units, half of them.
  EXPECT_EQ(Listing(decoded),
            "0 RESUME 0 line 1\n"
            "1 LOAD_CONST 1 line 2\n"
            "2 STORE_FAST 1 line 2\n"
            "3 LOAD_GLOBAL 1 (+5 caches) line 3\n"
            "9 LOAD_FAST 0 line 3\n"
            "10 PRECALL 1 (+1 caches) line 3\n"
            "12 CALL 1 (+4 caches) line 3\n"
            "17 GET_ITER line 3\n"
            "18 FOR_ITER 13 -> 32 line 3\n"
            "19 STORE_FAST 2 line 3\n"
            "20 LOAD_FAST 2 line 4\n"
            "21 LOAD_CONST 2 line 4\n"
            "22 BINARY_OP 6 (+1 caches) line 4\n"
            "24 POP_JUMP_FORWARD_IF_FALSE 1 -> 26 line 4\n"
            "25 JUMP_BACKWARD 8 -> 18 line 5\n"
            "26 LOAD_FAST 1 line 6\n"
            "27 LOAD_FAST 2 line 6\n"
            "28 BINARY_OP 13 (+1 caches) line 6\n"
            "30 STORE_FAST 1 line 6\n"
            "31 JUMP_BACKWARD 14 -> 18 line 6\n"
            "32 LOAD_FAST 1 line 7\n"
            "33 RETURN_VALUE line 7\n");
  EXPECT_EQ(decoded.code_units(), 34);
  EXPECT_EQ(decoded.IndexAt(18), 8);
  EXPECT_EQ(decoded.IndexAt(4), -1);  // a cache unit of LOAD_GLOBAL
  EXPECT_TRUE(decoded.exception_table().empty());
}

TEST(DecodeTest, MoreThan256ConstantsAndLocalsFoldExtendedArg) {
  Ref<> code = FunctionCode("def f():\n" + Assignments(300, "    "));
  DecodedCode decoded = MustDecode(code.obj());
  // Assignments 0..254 take 2 units each from offset 1; assignment 255 needs a prefix for its
  // constant (index 256; index 0 is None); from 256 on both instructions need one.
  const Instruction* load = decoded.At(686);
  ASSERT_NE(load, nullptr);
  EXPECT_EQ(load->base_opcode, LOAD_CONST);
  EXPECT_EQ(load->oparg, 300);
  EXPECT_EQ(load->extended_args, 1);
  EXPECT_EQ(load->prefix_opcode, EXTENDED_ARG);
  EXPECT_EQ(load->opcode_offset(), 687);
  EXPECT_EQ(load->line, 301);
  const Instruction* store = decoded.At(688);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->base_opcode, STORE_FAST);
  EXPECT_EQ(store->oparg, 299);
  const Instruction* first_prefixed = decoded.At(511);
  ASSERT_NE(first_prefixed, nullptr);
  EXPECT_EQ(first_prefixed->oparg, 256);
  EXPECT_EQ(first_prefixed->extended_args, 1);
  EXPECT_EQ(decoded.At(512), nullptr);  // the LOAD_CONST unit behind its prefix
  EXPECT_EQ(decoded.At(513)->base_opcode, STORE_FAST);
  EXPECT_EQ(decoded.At(513)->extended_args, 0);
  EXPECT_EQ(decoded.code_units(), 693);
}

TEST(DecodeTest, LongForwardJumpHasExtendedArgAndLandsAfterTheBody) {
  Ref<> code = FunctionCode("def f(x):\n    if x:\n" + Assignments(200, "        ") +
                            "    return 0\n");
  DecodedCode decoded = MustDecode(code.obj());
  const Instruction* jump = decoded.At(2);  // RESUME, LOAD_FAST x, then the jump
  ASSERT_NE(jump, nullptr);
  EXPECT_EQ(jump->base_opcode, POP_JUMP_FORWARD_IF_FALSE);
  EXPECT_EQ(jump->extended_args, 1);
  const Instruction* target = decoded.At(jump->jump_target);
  ASSERT_NE(target, nullptr);
  // The body: 200 assignments + LOAD_FAST + RETURN_VALUE, then `return 0`.
  EXPECT_EQ(jump->jump_target, 4 + 200 * 2 + 2);
  EXPECT_EQ(target->base_opcode, LOAD_CONST);
  EXPECT_EQ(target->line, 204);
}

TEST(DecodeTest, LiveQuickenedCodeHasTheSameStructureAndReencodesExactly) {
  Ref<> globals = fatjit::testing::NewGlobals();
  fatjit::testing::Exec(std::string(kLoop) + "for _ in range(20): f(100)\n", globals.obj());
  PyObject* func = PyDict_GetItemString(globals.obj(), "f");
  ASSERT_NE(func, nullptr);
  PyObject* code = PyFunction_GET_CODE(func);
  DecodedCode base = MustDecode(code, CodeForm::kDeoptimized);
  DecodedCode live = MustDecode(code, CodeForm::kLive);
  ASSERT_EQ(base.instructions().size(), live.instructions().size());
  int quickened = 0;
  for (size_t i = 0; i < base.instructions().size(); ++i) {
    Instruction expected = base.instructions()[i];
    const Instruction& found = live.instructions()[i];
    if (found.opcode != found.base_opcode) ++quickened;
    expected.opcode = found.opcode;  // the only field quickening may change
    EXPECT_EQ(found, expected) << FormatInstruction(found);
  }
  EXPECT_GT(quickened, 5);  // RESUME_QUICK, JUMP_BACKWARD_QUICK, BINARY_OP_*, FOR_ITER ...
  absl::Span<const _Py_CODEUNIT> units = LiveCodeUnits(reinterpret_cast<PyCodeObject*>(code));
  absl::StatusOr<std::vector<_Py_CODEUNIT>> encoded = Encode(live.instructions(), units);
  ASSERT_TRUE(encoded.ok()) << encoded.status();
  EXPECT_TRUE(std::equal(encoded->begin(), encoded->end(), units.begin(), units.end()));
}

TEST(DecodeTest, RefusesMalformedBytecode) {
  auto status = [](std::vector<_Py_CODEUNIT> units) {
    return DecodeInstructions(units).status();
  };
  EXPECT_TRUE(absl::IsInvalidArgument(status(Units({{EXTENDED_ARG, 1}}))));
  EXPECT_TRUE(absl::IsInvalidArgument(status(Units({{CACHE, 0}}))));
  EXPECT_TRUE(absl::IsInvalidArgument(status(Units({{BINARY_OP, 0}}))));  // its cache is missing
  EXPECT_TRUE(absl::IsInvalidArgument(status(Units({{JUMP_FORWARD, 5}, {NOP, 0}}))));
  EXPECT_TRUE(absl::IsInvalidArgument(status(
      Units({{EXTENDED_ARG, 0}, {EXTENDED_ARG, 0}, {EXTENDED_ARG, 0}, {EXTENDED_ARG, 0},
             {NOP, 0}}))));
  EXPECT_TRUE(absl::IsInvalidArgument(status(Units({{EXTENDED_ARG, 1}, {EXTENDED_ARG_QUICK, 0},
                                                    {LOAD_CONST, 0}}))));
  EXPECT_TRUE(DecodeInstructions(Units({{NOP, 0}, {RETURN_VALUE, 0}})).ok());
}

TEST(DecodeTest, JumpsAndHandlersMustLandOnInstructionStarts) {
  // LOAD_GLOBAL 0 (5 caches); JUMP_BACKWARD 6 from offset 6 lands on offset 1, a cache unit.
  absl::StatusOr<std::vector<Instruction>> insts = DecodeInstructions(
      Units({{LOAD_GLOBAL, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0}, {0, 0}, {JUMP_BACKWARD, 6}}));
  ASSERT_TRUE(insts.ok()) << insts.status();
  EXPECT_TRUE(absl::IsInvalidArgument(DecodedCode::Create(*insts, {}).status()));

  absl::StatusOr<std::vector<Instruction>> ok = DecodeInstructions(
      Units({{NOP, 0}, {LOAD_CONST, 0}, {RETURN_VALUE, 0}, {POP_TOP, 0}, {RERAISE, 0}}));
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(DecodedCode::Create(*ok, {{.start = 0, .end = 3, .target = 3}}).ok());
  EXPECT_TRUE(absl::IsInvalidArgument(
      DecodedCode::Create(*ok, {{.start = 0, .end = 3, .target = 9}}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      DecodedCode::Create(*ok, {{.start = 1, .end = 3, .target = 3},
                                {.start = 0, .end = 1, .target = 3}}).status()));
}

}  // namespace
}  // namespace fatjit::bytecode
