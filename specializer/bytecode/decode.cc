// Decoding bytecode into Instructions: see decode.h for the format it assumes.
#include "specializer/bytecode/decode.h"

#include <cstdint>
#include <cstring>

#include "absl/strings/str_format.h"
#include "specializer/bytecode/code_object.h"
#include "specializer/bytecode/opcode_tables.h"

namespace fatjit::bytecode {
namespace {

// CPython folds EXTENDED_ARG into a C int; the compiler never needs more than three prefixes.
constexpr int kMaxExtendedArgs = 3;

absl::Status Invalid(int offset, const char* what) {
  return absl::InvalidArgumentError(absl::StrFormat("bytecode offset %d: %s", offset, what));
}

// Decodes the instruction starting at units[start].
absl::StatusOr<Instruction> DecodeOne(absl::Span<const _Py_CODEUNIT> units, int start) {
  const int end = static_cast<int>(units.size());
  Instruction inst;
  inst.offset = start;
  int pos = start;
  unsigned oparg = 0;
  int opcode = _Py_OPCODE(units[pos]);
  while (DeoptOpcode(opcode) == EXTENDED_ARG) {
    if (inst.extended_args == kMaxExtendedArgs) return Invalid(pos, "too many EXTENDED_ARG");
    if (inst.prefix_opcode != 0 && inst.prefix_opcode != opcode) {
      return Invalid(pos, "EXTENDED_ARG and EXTENDED_ARG_QUICK mixed in one prefix");
    }
    inst.prefix_opcode = static_cast<uint8_t>(opcode);
    oparg = (oparg << 8) | _Py_OPARG(units[pos]);
    ++inst.extended_args;
    if (++pos == end) return Invalid(pos - 1, "EXTENDED_ARG at the end of the code");
    opcode = _Py_OPCODE(units[pos]);
  }
  int base = DeoptOpcode(opcode);
  if (base == 0) {
    return Invalid(pos, opcode == CACHE ? "CACHE where an instruction should start"
                                        : "unknown opcode");
  }
  inst.opcode = static_cast<uint8_t>(opcode);
  inst.base_opcode = static_cast<uint8_t>(base);
  inst.oparg = static_cast<int>((oparg << 8) | _Py_OPARG(units[pos]));
  inst.cache_entries = static_cast<uint8_t>(CacheEntries(base));
  if (inst.next_offset() > end) return Invalid(pos, "inline caches run past the end");
  if (IsJump(base)) {
    int64_t distance = (static_cast<int64_t>(oparg) << 8) | _Py_OPARG(units[pos]);
    int64_t target = IsBackwardJump(base) ? inst.next_offset() - distance
                                          : inst.next_offset() + distance;
    if (target < 0 || target >= end) return Invalid(pos, "jump target outside the code");
    inst.jump_target = static_cast<int>(target);
  }
  return inst;
}

absl::Status CheckBoundary(const DecodedCode& code, int offset, bool end_allowed,
                           const char* what) {
  if (end_allowed && offset == code.code_units()) return absl::OkStatus();
  if (code.IndexAt(offset) >= 0) return absl::OkStatus();
  return Invalid(offset, what);
}

}  // namespace

absl::StatusOr<std::vector<Instruction>> DecodeInstructions(absl::Span<const _Py_CODEUNIT> units,
                                                            const LineTable* lines) {
  std::vector<Instruction> result;
  int offset = 0;
  while (offset < static_cast<int>(units.size())) {
    absl::StatusOr<Instruction> inst = DecodeOne(units, offset);
    if (!inst.ok()) return inst.status();
    if (lines != nullptr) inst->line = lines->LineAt(inst->opcode_offset());
    offset = inst->next_offset();
    result.push_back(*inst);
  }
  return result;
}

absl::StatusOr<DecodedCode> DecodedCode::Create(std::vector<Instruction> instructions,
                                                std::vector<ExceptionTableEntry> exception_table) {
  DecodedCode code;
  int units = instructions.empty() ? 0 : instructions.back().next_offset();
  code.index_at_.assign(units, -1);
  int expected = 0;
  for (size_t i = 0; i < instructions.size(); ++i) {
    if (instructions[i].offset != expected) {
      return Invalid(instructions[i].offset, "instructions are not contiguous");
    }
    code.index_at_[expected] = static_cast<int>(i);
    expected = instructions[i].next_offset();
  }
  code.instructions_ = std::move(instructions);
  code.exception_table_ = std::move(exception_table);
  for (const Instruction& inst : code.instructions_) {
    if (inst.is_jump()) {
      absl::Status ok = CheckBoundary(code, inst.jump_target, false,
                                      "jump target is not an instruction start");
      if (!ok.ok()) return ok;
    }
  }
  int previous_end = 0;
  for (const ExceptionTableEntry& e : code.exception_table_) {
    if (e.start < previous_end) {
      return Invalid(e.start, "exception table ranges overlap or are unsorted");
    }
    previous_end = e.end;
    absl::Status ok =
        CheckBoundary(code, e.start, false, "exception range start is not an instruction start");
    if (ok.ok()) {
      ok = CheckBoundary(code, e.end, true, "exception range end is not an instruction boundary");
    }
    if (ok.ok()) {
      ok = CheckBoundary(code, e.target, false, "exception handler is not an instruction start");
    }
    if (!ok.ok()) return ok;
  }
  return code;
}

absl::StatusOr<std::vector<_Py_CODEUNIT>> CodeUnitsFromBytes(std::string_view bytes) {
  if (bytes.size() % sizeof(_Py_CODEUNIT) != 0) {
    return absl::InvalidArgumentError("bytecode has an odd number of bytes");
  }
  // co_code holds units in memory order, as CPython copies it into co_code_adaptive.
  std::vector<_Py_CODEUNIT> units(bytes.size() / sizeof(_Py_CODEUNIT));
  if (!units.empty()) std::memcpy(units.data(), bytes.data(), bytes.size());
  return units;
}

absl::StatusOr<DecodedCode> Decode(PyObject* code, CodeForm form) {
  absl::StatusOr<LineTable> lines = LineTable::ForCode(code);
  if (!lines.ok()) return lines.status();
  absl::StatusOr<Ref<>> table = CodeBytesAttribute(code, "co_exceptiontable");
  if (!table.ok()) return table.status();
  absl::StatusOr<std::vector<ExceptionTableEntry>> entries = ParseExceptionTable(BytesView(*table));
  if (!entries.ok()) return entries.status();

  absl::StatusOr<std::vector<Instruction>> instructions;
  if (form == CodeForm::kLive) {
    instructions =
        DecodeInstructions(LiveCodeUnits(reinterpret_cast<PyCodeObject*>(code)), &*lines);
  } else {
    absl::StatusOr<Ref<>> bytes = CodeBytesAttribute(code, "co_code");
    if (!bytes.ok()) return bytes.status();
    absl::StatusOr<std::vector<_Py_CODEUNIT>> units = CodeUnitsFromBytes(BytesView(*bytes));
    if (!units.ok()) return units.status();
    instructions = DecodeInstructions(*units, &*lines);
  }
  if (!instructions.ok()) return instructions.status();
  return DecodedCode::Create(*std::move(instructions), *std::move(entries));
}

}  // namespace fatjit::bytecode
