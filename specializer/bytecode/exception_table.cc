// Exception table parsing and encoding: see exception_table.h for the format and its source.
#include "specializer/bytecode/exception_table.h"

#include <cstdint>

#include "absl/strings/str_format.h"

namespace fatjit::bytecode {
namespace {

constexpr uint8_t kEntryStartBit = 0x80;
constexpr uint8_t kContinuationBit = 0x40;
constexpr uint8_t kChunkMask = 0x3f;
constexpr int kValueLimit = 1 << 30;

// Reads one value starting at table[*pos]. The entry-start bit must be set exactly on the first
// byte of the first value of an entry.
absl::StatusOr<int> ReadValue(std::string_view table, size_t* pos, bool entry_start) {
  int64_t value = 0;
  bool first = true;
  while (true) {
    if (*pos >= table.size()) {
      return absl::InvalidArgumentError(
          absl::StrFormat("exception table: entry truncated at byte %d", *pos));
    }
    uint8_t byte = static_cast<uint8_t>(table[*pos]);
    bool start_bit = (byte & kEntryStartBit) != 0;
    if (start_bit != (entry_start && first)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("exception table: entry-start bit %s at byte %d",
                          start_bit ? "unexpected" : "missing", *pos));
    }
    ++*pos;
    value = (value << 6) | (byte & kChunkMask);
    if (value >= kValueLimit) {
      return absl::InvalidArgumentError(
          absl::StrFormat("exception table: value too large at byte %d", *pos - 1));
    }
    first = false;
    if ((byte & kContinuationBit) == 0) return static_cast<int>(value);
  }
}

void WriteValue(int value, bool entry_start, std::string* out) {
  uint8_t start = entry_start ? kEntryStartBit : 0;
  int shift = 24;
  while (shift > 0 && (value >> shift) == 0) shift -= 6;
  for (; shift > 0; shift -= 6) {
    out->push_back(static_cast<char>(((value >> shift) & kChunkMask) | kContinuationBit | start));
    start = 0;
  }
  out->push_back(static_cast<char>((value & kChunkMask) | start));
}

}  // namespace

absl::StatusOr<std::vector<ExceptionTableEntry>> ParseExceptionTable(std::string_view table) {
  std::vector<ExceptionTableEntry> entries;
  size_t pos = 0;
  while (pos < table.size()) {
    size_t entry_pos = pos;
    absl::StatusOr<int> start = ReadValue(table, &pos, /*entry_start=*/true);
    if (!start.ok()) return start.status();
    absl::StatusOr<int> size = ReadValue(table, &pos, false);
    if (!size.ok()) return size.status();
    absl::StatusOr<int> target = ReadValue(table, &pos, false);
    if (!target.ok()) return target.status();
    absl::StatusOr<int> depth_lasti = ReadValue(table, &pos, false);
    if (!depth_lasti.ok()) return depth_lasti.status();
    if (*size == 0) {
      return absl::InvalidArgumentError(
          absl::StrFormat("exception table: empty range in the entry at byte %d", entry_pos));
    }
    entries.push_back({.start = *start,
                       .end = *start + *size,
                       .target = *target,
                       .depth = *depth_lasti >> 1,
                       .lasti = (*depth_lasti & 1) != 0});
  }
  return entries;
}

absl::StatusOr<std::string> EncodeExceptionTable(absl::Span<const ExceptionTableEntry> entries) {
  std::string out;
  for (const ExceptionTableEntry& e : entries) {
    int size = e.end - e.start;
    if (e.start < 0 || size <= 0 || e.target < 0 || e.depth < 0 || e.end >= kValueLimit ||
        e.target >= kValueLimit || e.depth >= kValueLimit / 2) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "exception table: cannot encode entry [%d, %d) -> %d depth %d", e.start, e.end,
          e.target, e.depth));
    }
    WriteValue(e.start, /*entry_start=*/true, &out);
    WriteValue(size, false, &out);
    WriteValue(e.target, false, &out);
    WriteValue((e.depth << 1) | (e.lasti ? 1 : 0), false, &out);
  }
  return out;
}

const ExceptionTableEntry* FindHandler(absl::Span<const ExceptionTableEntry> entries,
                                       int offset) {
  for (const ExceptionTableEntry& e : entries) {
    if (e.Covers(offset)) return &e;
  }
  return nullptr;
}

}  // namespace fatjit::bytecode
