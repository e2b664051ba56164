// Exception table: parsing a compiled try/except/finally, the chunk encoding, the refusals.
#include <gtest/gtest.h>

#include "specializer/bytecode/exception_table.h"
#include "tests/specializer/bytecode_test_util.h"

namespace fatjit::bytecode {
namespace {

using testing::FunctionCode;
using testing::MustDecode;

constexpr char kTryExceptFinally[] = R"py(def f(x):
    try:
        y = 1 / x
    except ZeroDivisionError:
        y = 0
    finally:
        x = None
    return y
)py";

TEST(ExceptionTableTest, ParsesTryExceptFinallyInCodeUnits) {
  Ref<> code = FunctionCode(kTryExceptFinally);
  DecodedCode decoded = MustDecode(code.obj());
  // dis: "4 to 12 -> 16 [0]" etc., in bytes with an inclusive end.
  std::vector<ExceptionTableEntry> expected = {
      {.start = 2, .end = 7, .target = 8, .depth = 0, .lasti = false},
      {.start = 7, .end = 8, .target = 29, .depth = 0, .lasti = false},
      {.start = 8, .end = 20, .target = 23, .depth = 1, .lasti = true},
      {.start = 20, .end = 22, .target = 29, .depth = 0, .lasti = false},
      {.start = 22, .end = 23, .target = 23, .depth = 1, .lasti = true},
      {.start = 23, .end = 26, .target = 29, .depth = 0, .lasti = false},
      {.start = 29, .end = 33, .target = 33, .depth = 1, .lasti = true},
  };
  EXPECT_EQ(std::vector<ExceptionTableEntry>(decoded.exception_table().begin(),
                                             decoded.exception_table().end()),
            expected);
  EXPECT_EQ(expected[2].handler_depth(), 3);  // depth 1, lasti, the exception
  EXPECT_EQ(FindHandler(expected, 4), &expected[0]);
  EXPECT_EQ(FindHandler(expected, 22), &expected[4]);
  EXPECT_EQ(FindHandler(expected, 0), nullptr);
  EXPECT_EQ(FindHandler(expected, 33), nullptr);
}

TEST(ExceptionTableTest, EncodesBigEndianSixBitChunksWithAnEntryStartBit) {
  std::vector<ExceptionTableEntry> entries = {
      {.start = 64, .end = 65, .target = 4096, .depth = 2, .lasti = true}};
  absl::StatusOr<std::string> bytes = EncodeExceptionTable(entries);
  ASSERT_TRUE(bytes.ok());
  // start 64 = chunks 1,0 (first byte flagged 0x80); size 1; target 4096 = 1,0,0; 2<<1|1 = 5.
  EXPECT_EQ(*bytes, std::string("\xc1\x00\x01\x41\x40\x00\x05", 7));
  absl::StatusOr<std::vector<ExceptionTableEntry>> parsed = ParseExceptionTable(*bytes);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, entries);
}

TEST(ExceptionTableTest, RoundTripsLargeValuesUpToTheCompilersLimit) {
  std::vector<ExceptionTableEntry> entries = {
      {.start = 0, .end = 63, .target = 64, .depth = 0, .lasti = false},
      {.start = 4095, .end = 262144, .target = (1 << 30) - 1, .depth = 4000, .lasti = true}};
  absl::StatusOr<std::string> bytes = EncodeExceptionTable(entries);
  ASSERT_TRUE(bytes.ok());
  absl::StatusOr<std::vector<ExceptionTableEntry>> parsed = ParseExceptionTable(*bytes);
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_EQ(*parsed, entries);
  EXPECT_TRUE(absl::IsInvalidArgument(
      EncodeExceptionTable({{.start = 0, .end = 1, .target = 1 << 30}}).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(
      EncodeExceptionTable({{.start = 3, .end = 3, .target = 0}}).status()));
}

TEST(ExceptionTableTest, RefusesMalformedTables) {
  // Truncated: three values only.
  EXPECT_TRUE(absl::IsInvalidArgument(
      ParseExceptionTable(std::string("\x81\x01\x02", 3)).status()));
  // The first byte of an entry lacks the start bit.
  EXPECT_TRUE(absl::IsInvalidArgument(
      ParseExceptionTable(std::string("\x01\x01\x02\x00", 4)).status()));
  // A start bit in the middle of an entry.
  EXPECT_TRUE(absl::IsInvalidArgument(
      ParseExceptionTable(std::string("\x81\x81\x02\x00", 4)).status()));
  // An empty range.
  EXPECT_TRUE(absl::IsInvalidArgument(
      ParseExceptionTable(std::string("\x81\x00\x02\x00", 4)).status()));
  EXPECT_TRUE(ParseExceptionTable("").ok());
}

}  // namespace
}  // namespace fatjit::bytecode
