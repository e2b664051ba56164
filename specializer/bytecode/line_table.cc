// Location table parsing: see line_table.h for the format and its source.
#include "specializer/bytecode/line_table.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/str_format.h"
#include "specializer/bytecode/code_object.h"

namespace fatjit::bytecode {
namespace {

enum LocationCode : int {
  kShortFormLast = 9,
  kOneLine0 = 10,
  kOneLine2 = 12,
  kNoColumns = 13,
  kLongForm = 14,
  kNoLocation = 15,
};

// Reads the payload bytes of one entry; a byte with bit 7 set would start the next entry.
class EntryReader {
 public:
  EntryReader(std::string_view table, size_t pos) : table_(table), pos_(pos) {}

  absl::StatusOr<int> Byte() {
    if (pos_ >= table_.size() || (static_cast<uint8_t>(table_[pos_]) & 0x80) != 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("line table: entry truncated at byte %d", pos_));
    }
    return static_cast<uint8_t>(table_[pos_++]);
  }
  absl::StatusOr<int> Varint() {
    unsigned value = 0;
    for (int shift = 0;; shift += 6) {
      if (shift > 30) return absl::InvalidArgumentError("line table: varint too long");
      absl::StatusOr<int> byte = Byte();
      if (!byte.ok()) return byte.status();
      value |= static_cast<unsigned>(*byte & 0x3f) << shift;
      if ((*byte & 0x40) == 0) return static_cast<int>(value);
    }
  }
  absl::StatusOr<int> SignedVarint() {
    absl::StatusOr<int> raw = Varint();
    if (!raw.ok()) return raw.status();
    int magnitude = static_cast<int>(static_cast<unsigned>(*raw) >> 1);
    return (*raw & 1) ? -magnitude : magnitude;
  }
  size_t pos() const { return pos_; }

 private:
  std::string_view table_;
  size_t pos_;
};

// Decodes the payload of an entry with `code`; `line` is the running line, updated in place.
absl::StatusOr<SourceLocation> ReadLocation(int code, EntryReader& in, int* line) {
  SourceLocation loc;
  if (code == kNoLocation) return loc;
  if (code <= kShortFormLast) {
    absl::StatusOr<int> second = in.Byte();
    if (!second.ok()) return second.status();
    loc.line = loc.end_line = *line;
    loc.column = (code << 3) | (*second >> 4);
    loc.end_column = loc.column + (*second & 15);
    return loc;
  }
  if (code <= kOneLine2) {
    *line += code - kOneLine0;
    absl::StatusOr<int> column = in.Byte();
    if (!column.ok()) return column.status();
    absl::StatusOr<int> end_column = in.Byte();
    if (!end_column.ok()) return end_column.status();
    loc.line = loc.end_line = *line;
    loc.column = *column;
    loc.end_column = *end_column;
    return loc;
  }
  absl::StatusOr<int> delta = in.SignedVarint();
  if (!delta.ok()) return delta.status();
  *line += *delta;
  loc.line = loc.end_line = *line;
  if (code == kNoColumns) return loc;
  // kLongForm
  absl::StatusOr<int> end_line_delta = in.Varint();
  if (!end_line_delta.ok()) return end_line_delta.status();
  absl::StatusOr<int> column = in.Varint();
  if (!column.ok()) return column.status();
  absl::StatusOr<int> end_column = in.Varint();
  if (!end_column.ok()) return end_column.status();
  loc.end_line = *line + *end_line_delta;
  loc.column = *column - 1;
  loc.end_column = *end_column - 1;
  return loc;
}

}  // namespace

absl::StatusOr<LineTable> LineTable::Parse(std::string_view table, int first_line) {
  LineTable result;
  int line = first_line;
  int offset = 0;
  size_t pos = 0;
  while (pos < table.size()) {
    uint8_t first = static_cast<uint8_t>(table[pos]);
    if ((first & 0x80) == 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("line table: byte %d does not start an entry", pos));
    }
    int code = (first >> 3) & 15;
    int length = (first & 7) + 1;
    EntryReader in(table, pos + 1);
    absl::StatusOr<SourceLocation> loc = ReadLocation(code, in, &line);
    if (!loc.ok()) return loc.status();
    result.entries_.push_back({.start = offset, .end = offset + length, .location = *loc});
    offset += length;
    pos = in.pos();
  }
  return result;
}

absl::StatusOr<LineTable> LineTable::ForCode(PyObject* code) {
  absl::StatusOr<Ref<>> table = CodeBytesAttribute(code, "co_linetable");
  if (!table.ok()) return table.status();
  absl::StatusOr<int> first_line = CodeIntAttribute(code, "co_firstlineno");
  if (!first_line.ok()) return first_line.status();
  return Parse(BytesView(*table), *first_line);
}

SourceLocation LineTable::LocationAt(int offset) const {
  auto it = std::upper_bound(entries_.begin(), entries_.end(), offset,
                             [](int off, const LineTableEntry& e) { return off < e.end; });
  if (it == entries_.end() || offset < it->start) return SourceLocation();
  return it->location;
}

}  // namespace fatjit::bytecode
