// The one-line listing of an Instruction (see instruction.h).
#include "specializer/bytecode/instruction.h"

#include "absl/strings/str_format.h"
#include "specializer/bytecode/opcode_tables.h"

namespace fatjit::bytecode {

std::string FormatInstruction(const Instruction& instruction) {
  std::string text = absl::StrFormat("%d %s", instruction.offset, OpcodeName(instruction.opcode));
  if (instruction.base_opcode >= HAVE_ARGUMENT || instruction.oparg != 0) {
    absl::StrAppendFormat(&text, " %d", instruction.oparg);
  }
  if (instruction.extended_args != 0) {
    absl::StrAppendFormat(&text, " (%d EXTENDED_ARG)", instruction.extended_args);
  }
  if (instruction.cache_entries != 0) {
    absl::StrAppendFormat(&text, " (+%d caches)", instruction.cache_entries);
  }
  if (instruction.is_jump()) absl::StrAppendFormat(&text, " -> %d", instruction.jump_target);
  if (instruction.line != kNoLine) absl::StrAppendFormat(&text, " line %d", instruction.line);
  return text;
}

}  // namespace fatjit::bytecode
