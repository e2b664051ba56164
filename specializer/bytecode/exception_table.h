// Exception table: CPython 3.11's co_exceptiontable, parsed into entries and encoded back.
//
// Assumes the format of Objects/exception_handling_notes.txt: per entry four unsigned integers
// (start, size, target, depth << 1 | lasti), each a big-endian sequence of 6-bit chunks with bit 6
// set on every chunk but the last, and bit 7 set on the first byte of each entry. Produces
// entries in table order with half-open ranges [start, end) in code units. Encoding writes the
// minimal chunk sequence, which is what the compiler writes (compile.c,
// assemble_emit_exception_table_item), so Encode(Parse(t)) == t for every compiled table.
//
// Semantics: while an instruction whose opcode unit lies in [start, end) raises, the interpreter
// pops the value stack down to `depth`, pushes the offset of the raising instruction if `lasti`,
// pushes the exception, and continues at `target`. The first matching entry wins; the compiler
// emits non-overlapping ranges in offset order.
#ifndef FATJIT_SPECIALIZER_BYTECODE_EXCEPTION_TABLE_H_
#define FATJIT_SPECIALIZER_BYTECODE_EXCEPTION_TABLE_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace fatjit::bytecode {

struct ExceptionTableEntry {
  int start = 0;   // first code unit covered
  int end = 0;     // one past the last code unit covered
  int target = 0;  // handler offset
  int depth = 0;   // value-stack depth the handler starts from, before lasti and the exception
  bool lasti = false;

  // Stack depth at the first instruction of the handler.
  int handler_depth() const { return depth + (lasti ? 1 : 0) + 1; }
  bool Covers(int offset) const { return start <= offset && offset < end; }

  friend bool operator==(const ExceptionTableEntry&, const ExceptionTableEntry&) = default;
};

// Parses co_exceptiontable. InvalidArgument for a truncated entry, a missing or misplaced
// entry-start bit, an empty range, or a value that does not fit in 30 bits.
absl::StatusOr<std::vector<ExceptionTableEntry>> ParseExceptionTable(std::string_view table);

// Encodes entries in the compiler's format. InvalidArgument for a negative value, an empty
// range, or a value of 2**30 or more (the compiler's limit).
absl::StatusOr<std::string> EncodeExceptionTable(absl::Span<const ExceptionTableEntry> entries);

// The entry handling a raise at opcode unit `offset`, as the interpreter finds it, or null.
const ExceptionTableEntry* FindHandler(absl::Span<const ExceptionTableEntry> entries, int offset);

}  // namespace fatjit::bytecode

#endif  // FATJIT_SPECIALIZER_BYTECODE_EXCEPTION_TABLE_H_
