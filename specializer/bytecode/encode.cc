// Encoding Instructions back to code units: see encode.h for what is preserved.
#include "specializer/bytecode/encode.h"

#include <cstring>

#include "absl/strings/str_format.h"
#include "specializer/bytecode/opcode_tables.h"

namespace fatjit::bytecode {
namespace {

absl::Status Invalid(int offset, const char* what) {
  return absl::InvalidArgumentError(absl::StrFormat("bytecode offset %d: %s", offset, what));
}

}  // namespace

int ExtendedArgsFor(int oparg) {
  unsigned value = static_cast<unsigned>(oparg);
  return value > 0xffffff ? 3 : value > 0xffff ? 2 : value > 0xff ? 1 : 0;
}

absl::StatusOr<std::vector<_Py_CODEUNIT>> Encode(absl::Span<const Instruction> instructions,
                                                 absl::Span<const _Py_CODEUNIT> caches_from) {
  std::vector<_Py_CODEUNIT> units;
  if (!instructions.empty()) units.reserve(instructions.back().next_offset());
  for (const Instruction& inst : instructions) {
    if (inst.offset != static_cast<int>(units.size())) {
      return Invalid(inst.offset, "instructions are not contiguous");
    }
    if (ExtendedArgsFor(inst.oparg) > inst.extended_args) {
      return Invalid(inst.offset, "oparg needs more EXTENDED_ARG prefixes than recorded");
    }
    unsigned oparg = static_cast<unsigned>(inst.oparg);
    int prefix = inst.prefix_opcode != 0 ? inst.prefix_opcode : EXTENDED_ARG;
    for (int k = inst.extended_args; k > 0; --k) {
      unsigned byte = (oparg >> (8 * k)) & 0xff;
      units.push_back(static_cast<_Py_CODEUNIT>(_Py_MAKECODEUNIT(prefix, byte)));
    }
    units.push_back(static_cast<_Py_CODEUNIT>(_Py_MAKECODEUNIT(inst.opcode, oparg & 0xff)));
    for (int c = 0; c < inst.cache_entries; ++c) {
      size_t at = units.size();
      units.push_back(at < caches_from.size() ? caches_from[at] : _Py_CODEUNIT{0});
    }
  }
  return units;
}

std::string CodeUnitsToBytes(absl::Span<const _Py_CODEUNIT> units) {
  std::string bytes(units.size() * sizeof(_Py_CODEUNIT), '\0');
  if (!units.empty()) std::memcpy(bytes.data(), units.data(), bytes.size());
  return bytes;
}

}  // namespace fatjit::bytecode
