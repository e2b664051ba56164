// Line table: CPython 3.11's location table (co_linetable) parsed into source positions per
// range of code units, enough to give every instruction its line.
//
// Assumes the format of Objects/locations.md: a sequence of entries, each a first byte
// 1 CCCC LLL (code C, length L+1 code units) followed by bytes with bit 7 clear. Codes 0-9: short
// form (same line, columns in one byte); 10-12: one-line form (line delta code-10, column and end
// column bytes); 13: line delta as a signed varint, no columns; 14: long form (signed line delta,
// end-line delta, column+1, end column+1 as varints); 15: no location. Varints here are
// little-endian 6-bit chunks with bit 6 as continuation (unlike the exception table). Line deltas
// accumulate from co_firstlineno, and a no-location entry does not move the current line.
// Produces entries covering [0, code units) contiguously, with kNoLine/-1 for absent values, the
// same values code.co_positions() yields per code unit.
#ifndef FATJIT_SPECIALIZER_BYTECODE_LINE_TABLE_H_
#define FATJIT_SPECIALIZER_BYTECODE_LINE_TABLE_H_

#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "base/python.h"
#include "specializer/bytecode/instruction.h"

namespace fatjit::bytecode {

struct SourceLocation {
  int line = kNoLine;
  int end_line = kNoLine;
  int column = -1;
  int end_column = -1;
  friend bool operator==(const SourceLocation&, const SourceLocation&) = default;
};

struct LineTableEntry {
  int start = 0;  // first code unit
  int end = 0;    // one past the last code unit
  SourceLocation location;
};

class LineTable {
 public:
  LineTable() = default;

  // InvalidArgument for a truncated entry or a stray continuation byte.
  static absl::StatusOr<LineTable> Parse(std::string_view table, int first_line);
  // Parses co_linetable of `code` (borrowed) from co_firstlineno.
  static absl::StatusOr<LineTable> ForCode(PyObject* code);

  // The location of code unit `offset`; all fields absent past the end of the table.
  SourceLocation LocationAt(int offset) const;
  int LineAt(int offset) const { return LocationAt(offset).line; }

  absl::Span<const LineTableEntry> entries() const { return entries_; }
  // Code units the table covers.
  int code_units() const { return entries_.empty() ? 0 : entries_.back().end; }

 private:
  std::vector<LineTableEntry> entries_;
};

}  // namespace fatjit::bytecode

#endif  // FATJIT_SPECIALIZER_BYTECODE_LINE_TABLE_H_
