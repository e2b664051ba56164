// Line table: every entry form of the 3.11 location table, decoded by hand, and a real
// function checked against code.co_positions().
#include <gtest/gtest.h>

#include "specializer/bytecode/line_table.h"
#include "tests/specializer/bytecode_test_util.h"

namespace fatjit::bytecode {
namespace {

using testing::FunctionCode;

TEST(LineTableTest, DecodesEveryEntryForm) {
  const std::string table(
      "\x80\x35"              // short form 0, 1 unit: columns 3..8, line 10
      "\xd9\x04\x14"          // one-line form +1, 2 units: line 11, columns 4..20
      "\xe8\x05"              // no columns, line delta -2 (svarint 5), 1 unit: line 9
      "\xf2\x48\x03\x02\x47\x01\x05"  // long form, 3 units: +100, end +2, columns 70..4
      "\xf8"                  // no location, 1 unit: the running line stays 109
      "\xd0\x01\x02",         // one-line form +0, 1 unit: line 109, columns 1..2
      18);
  absl::StatusOr<LineTable> lines = LineTable::Parse(table, 10);
  ASSERT_TRUE(lines.ok()) << lines.status();
  EXPECT_EQ(lines->code_units(), 9);
  EXPECT_EQ(lines->LocationAt(0), (SourceLocation{10, 10, 3, 8}));
  EXPECT_EQ(lines->LocationAt(1), (SourceLocation{11, 11, 4, 20}));
  EXPECT_EQ(lines->LocationAt(2), (SourceLocation{11, 11, 4, 20}));
  EXPECT_EQ(lines->LocationAt(3), (SourceLocation{9, 9, -1, -1}));
  EXPECT_EQ(lines->LocationAt(4), (SourceLocation{109, 111, 70, 4}));
  EXPECT_EQ(lines->LocationAt(6), (SourceLocation{109, 111, 70, 4}));
  EXPECT_EQ(lines->LocationAt(7), SourceLocation());
  EXPECT_EQ(lines->LineAt(7), kNoLine);
  EXPECT_EQ(lines->LocationAt(8), (SourceLocation{109, 109, 1, 2}));
  EXPECT_EQ(lines->LocationAt(9), SourceLocation());  // past the end

  // CPython reads the same table the same way.
  Ref<> g = fatjit::testing::NewGlobals();
  PyDict_SetItemString(g.obj(), "table",
                       Ref<>::Steal(PyBytes_FromStringAndSize(table.data(), 18)).obj());
  Ref<> positions = fatjit::testing::Eval(
      "[tuple(-1 if v is None else v for v in p) for p in (lambda: None).__code__.replace("
      "co_code=bytes([9, 0]) * 9, co_firstlineno=10, co_linetable=table).co_positions()]",
      g.obj());
  ASSERT_TRUE(positions);
  ASSERT_EQ(PyList_GET_SIZE(positions.obj()), 9);
  for (int unit = 0; unit < 9; ++unit) {
    PyObject* p = PyList_GET_ITEM(positions.obj(), unit);
    SourceLocation cpython{static_cast<int>(PyLong_AsLong(PyTuple_GET_ITEM(p, 0))),
                           static_cast<int>(PyLong_AsLong(PyTuple_GET_ITEM(p, 1))),
                           static_cast<int>(PyLong_AsLong(PyTuple_GET_ITEM(p, 2))),
                           static_cast<int>(PyLong_AsLong(PyTuple_GET_ITEM(p, 3)))};
    EXPECT_EQ(lines->LocationAt(unit), cpython) << "unit " << unit;
  }
}

TEST(LineTableTest, RefusesTruncatedEntriesAndStrayBytes) {
  EXPECT_TRUE(absl::IsInvalidArgument(LineTable::Parse(std::string("\xd9\x04", 2), 1).status()));
  EXPECT_TRUE(absl::IsInvalidArgument(LineTable::Parse(std::string("\x04", 1), 1).status()));
  // A varint whose continuation runs into the next entry.
  EXPECT_TRUE(absl::IsInvalidArgument(
      LineTable::Parse(std::string("\xe8\x45\xf8", 3), 1).status()));
}

TEST(LineTableTest, MatchesCoPositionsOfAMultiLineFunction) {
  Ref<> code = FunctionCode(
      "def f(a,\n      b):\n    x = (a +\n         b)\n    if x:\n        return [\n"
      "            x, a]\n    return None\n");
  absl::StatusOr<LineTable> lines = LineTable::ForCode(code.obj());
  ASSERT_TRUE(lines.ok()) << lines.status();
  Ref<> positions = fatjit::testing::Eval("lambda c: list(c.co_positions())");
  Ref<> list = Ref<>::Steal(PyObject_CallOneArg(positions.obj(), code.obj()));
  ASSERT_TRUE(list);
  ASSERT_EQ(PyList_GET_SIZE(list.obj()), lines->code_units());
  for (int unit = 0; unit < lines->code_units(); ++unit) {
    PyObject* item = PyList_GET_ITEM(list.obj(), unit);
    auto at = [&](int i) {
      PyObject* v = PyTuple_GET_ITEM(item, i);
      return v == Py_None ? -1 : static_cast<int>(PyLong_AsLong(v));
    };
    EXPECT_EQ(lines->LocationAt(unit), (SourceLocation{at(0), at(1), at(2), at(3)}))
        << "unit " << unit;
  }
  EXPECT_EQ(lines->LineAt(0), 1);  // RESUME is on the def line
}

}  // namespace
}  // namespace fatjit::bytecode
