// Encode: Instructions -> code units, the inverse of decode.
//
// Assumes instructions contiguous from offset 0 (each at the previous one's next_offset()).
// Produces, per instruction, its EXTENDED_ARG prefixes (as many as it had, with the prefix
// opcode it had), its opcode as found and the low byte of its oparg, then its cache units:
// copied from `caches_from` when given (the live code the instructions came from), zeros
// otherwise, which is what co_code and a freshly compiled code object hold. Jump opargs are
// written as stored, not recomputed from jump_target; the rewriter computes them. So
// Encode(Decode(co_code)) == co_code and Encode(DecodeLive(c), LiveCodeUnits(c)) == live bytes.
// InvalidArgument if an oparg does not fit its prefixes or offsets are not contiguous.
#ifndef FATJIT_SPECIALIZER_BYTECODE_ENCODE_H_
#define FATJIT_SPECIALIZER_BYTECODE_ENCODE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "base/python.h"
#include "specializer/bytecode/instruction.h"

namespace fatjit::bytecode {

absl::StatusOr<std::vector<_Py_CODEUNIT>> Encode(absl::Span<const Instruction> instructions,
                                                 absl::Span<const _Py_CODEUNIT> caches_from = {});

// The code units as co_code bytes (memory order, as CPython stores them).
std::string CodeUnitsToBytes(absl::Span<const _Py_CODEUNIT> units);

// EXTENDED_ARG prefixes needed for `oparg`.
int ExtendedArgsFor(int oparg);

}  // namespace fatjit::bytecode

#endif  // FATJIT_SPECIALIZER_BYTECODE_ENCODE_H_
