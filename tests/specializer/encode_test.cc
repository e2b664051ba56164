// Encode: re-encoding reproduces bytecode exactly (prefixes and caches as they were) and
// refuses instructions whose recorded layout cannot hold them.
#include <gtest/gtest.h>

#include "specializer/bytecode/code_object.h"
#include "specializer/bytecode/encode.h"
#include "tests/specializer/bytecode_test_util.h"

namespace fatjit::bytecode {
namespace {

using testing::FunctionCode;
using testing::MustDecode;
using testing::Units;

TEST(EncodeTest, ReencodesExtendedArgsByteForByte) {
  std::string source = "def f(x):\n    if x:\n";
  for (int i = 0; i < 300; ++i) {
    source += "        a" + std::to_string(i) + " = " + std::to_string(i) + ".5\n";
  }
  Ref<> code = FunctionCode(source + "    return x\n");
  DecodedCode decoded = MustDecode(code.obj());
  absl::StatusOr<std::vector<_Py_CODEUNIT>> units = Encode(decoded.instructions());
  ASSERT_TRUE(units.ok()) << units.status();
  EXPECT_EQ(CodeUnitsToBytes(*units), BytesView(*CodeBytesAttribute(code.obj(), "co_code")));
}

TEST(EncodeTest, KeepsQuickPrefixesAndCopiesCachesOnlyWhenAsked) {
  std::vector<_Py_CODEUNIT> live =
      Units({{EXTENDED_ARG_QUICK, 1}, {LOAD_CONST, 2}, {BINARY_OP_ADD_INT, 0}, {0x35, 0x12}});
  absl::StatusOr<std::vector<Instruction>> insts = DecodeInstructions(live);
  ASSERT_TRUE(insts.ok()) << insts.status();
  ASSERT_EQ(insts->size(), 2u);
  EXPECT_EQ((*insts)[0].oparg, 258);
  EXPECT_EQ((*insts)[1].base_opcode, BINARY_OP);
  EXPECT_EQ(*Encode(*insts, live), live);
  EXPECT_EQ(*Encode(*insts),
            Units({{EXTENDED_ARG_QUICK, 1}, {LOAD_CONST, 2}, {BINARY_OP_ADD_INT, 0}, {0, 0}}));
}

TEST(EncodeTest, RefusesOparsThatDoNotFitAndGaps) {
  Instruction load{.offset = 0, .opcode = LOAD_CONST, .base_opcode = LOAD_CONST, .oparg = 300};
  EXPECT_TRUE(absl::IsInvalidArgument(Encode({load}).status()));
  load.extended_args = 1;
  EXPECT_EQ(*Encode({load}), Units({{EXTENDED_ARG, 1}, {LOAD_CONST, 44}}));
  Instruction gap{.offset = 3, .opcode = NOP, .base_opcode = NOP};
  EXPECT_TRUE(absl::IsInvalidArgument(Encode({load, gap}).status()));
}

}  // namespace
}  // namespace fatjit::bytecode
