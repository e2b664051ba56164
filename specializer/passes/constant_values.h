// Constant values: which objects the folding passes (fold_constants, pure_builtin_calls,
// dead_branches) may compute with and produce, CPython's caps on what a fold may build, and
// taking a computed result without losing a Python error.
//
// Assumes CPython 3.11's builtin types. An *immutable constant* is None, a bool, an exact int,
// float, complex, str or bytes, or an exact tuple or frozenset of immutable constants, with at most
// kMaxTotalItems items in all (Python/ast_opt.c's check_complexity). Operations of these types
// are CPython's own C code: none reaches a __eq__, __hash__, __bool__ or __index__ of a user type,
// and their values never change, so a result computed once while specializing is the result of
// every run. Two exceptions are handled here: under -b (sys.flags.bytes_warning) comparing bytes
// with str or int emits a BytesWarning, and a warning can run user code or raise
// (BytesMayWarn); and int<->str conversions raise past sys.set_int_max_str_digits(), which can
// change at run time (kMaxConvertedDigits).
// Produces predicates and the caps; a fold refuses anything they reject.
// Why sound: a pass folds only when every operand passes IsImmutableConstant and the result
// passes IsFoldableResult, computing with the very C functions the interpreter calls.
#ifndef FATJIT_SPECIALIZER_PASSES_CONSTANT_VALUES_H_
#define FATJIT_SPECIALIZER_PASSES_CONSTANT_VALUES_H_

#include "absl/types/span.h"
#include "base/python.h"
#include "base/ref.h"

namespace fatjit::specializer {

// The caps of CPython's AST optimizer (Python/ast_opt.c), so a fold never builds a constant the
// compiler would not: they bound the time spent folding and the size of co_consts.
inline constexpr int kMaxIntBits = 128;                 // MAX_INT_SIZE
inline constexpr Py_ssize_t kMaxCollectionSize = 256;  // MAX_COLLECTION_SIZE
inline constexpr Py_ssize_t kMaxStrSize = 4096;         // MAX_STR_SIZE
inline constexpr Py_ssize_t kMaxTotalItems = 1024;      // MAX_TOTAL_ITEMS, nested items included
// Int operands larger than this are not computed with: it bounds CPython's quadratic int
// algorithms (division, multiplication) to microseconds while specializing, whatever the
// globals hold. (Source literals can be any size; ast_opt.c only ever builds up to kMaxIntBits.)
inline constexpr int kMaxOperandIntBits = 4096;
// The smallest limit sys.set_int_max_str_digits() accepts (other than 0, "no limit"): an int<->str
// conversion of at most this many digits succeeds whatever the limit is set to later.
inline constexpr Py_ssize_t kMaxConvertedDigits = 640;

// See the file comment.
bool IsImmutableConstant(PyObject* value);

// True if no operand is an int of more than kMaxOperandIntBits bits.
bool OperandsWithinCaps(absl::Span<PyObject* const> operands);

// An immutable constant within the caps: ints of at most kMaxIntBits bits, str and bytes of at
// most kMaxStrSize, tuples and frozensets of at most kMaxCollectionSize items (recursively).
// Stricter than ast_opt.c, which only checks *, ** and << before computing: our operands can be
// arbitrary globals, so the result is checked too.
bool IsFoldableResult(PyObject* value);

// True if Python is run with -b and a bytes object appears in `operands` (at any depth): an
// equality test between bytes and str or int, direct or inside a tuple or a set lookup, would
// warn. Folds involving bytes are then refused wholesale.
bool BytesMayWarn(absl::Span<PyObject* const> operands);

// True if `value` holds an int too large to convert to str under every digit limit (more than
// kMaxIntBits bits, which is far below kMaxConvertedDigits digits), at any depth.
bool HasLargeInt(PyObject* value);

// ast_opt.c's checks before computing v * w, v ** w and v << w: false if the result could exceed
// the caps (a quick refusal before doing the work).
bool MultiplyWithinCaps(PyObject* v, PyObject* w);
bool PowerWithinCaps(PyObject* v, PyObject* w);
bool LshiftWithinCaps(PyObject* v, PyObject* w);

// The truth value of `value` if it can be known without running user code and never changes:
// 1 or 0 for an immutable constant (computed) or for an instance of a static (non-heap) type
// without __bool__ and __len__ (always true: functions, builtins, modules, plain classes);
// -1 otherwise. Never leaves an error set.
int KnownTruth(PyObject* value);

// Takes a computation's result (a new reference, or null with an error set) and returns it if it
// is a foldable result; otherwise returns null and leaves no error set. An Exception is cleared
// (the fold is refused; the operation raises again at run time). Anything else can only come
// from a Python signal handler that a long computation ran (CPython's int arithmetic polls
// signals): a KeyboardInterrupt is cleared and re-armed with PyErr_SetInterrupt(), so the
// interpreter raises it at its next check; others (SystemExit from a handler) are lost, since a
// pass has no way to propagate a Python exception (a known limitation).
Ref<> AcceptResult(PyObject* result);

}  // namespace fatjit::specializer

#endif  // FATJIT_SPECIALIZER_PASSES_CONSTANT_VALUES_H_
