// fold_constants: unary, binary, comparison and subscript operations on constants become a load
// of their result.
//
// Assumes: the operands are constants known in the same basic block (known_stack.h: loaded by
// LOAD_CONST, possibly a constant an earlier rewrite produced, and only moved since) and are
// immutable builtin constants (constant_values.h), so computing the operation runs only
// CPython's own C code for those types, no user code, and gives the same value on every run. It
// is computed here with the function the interpreter calls for the opcode (ceval.c's binary_ops
// table for BINARY_OP; PyObject_RichCompare; PyObject_GetItem; PyNumber_Negative/Invert/
// Positive; PyObject_IsTrue for UNARY_NOT). Refused (see the misses below): operations that
// raise (1/0, 'a' - 1, (1,)[5]: the exception is left to run time), results past CPython's
// folding caps, @ and % on str/bytes (never folded by CPython either), and bytes under -b.
// Produces, in place, with every instruction start shared with the original keeping its stack
// depth (invariant 4; the rewriter checks it):
//   COMPARE_OP (3 code units)     a b COMPARE_OP     -> a b POP_TOP POP_TOP LOAD_CONST r
//   BINARY_SUBSCR (5 units)       a b BINARY_SUBSCR  -> a b POP_TOP POP_TOP LOAD_CONST r NOP NOP
//   BINARY_OP (2 units)           a LOAD_CONST b BINARY_OP -> a LOAD_CONST r SWAP 2 POP_TOP
//   UNARY_* (1 unit)              LOAD_CONST a UNARY_x     -> LOAD_CONST r NOP
// The first two leave every value on the stack as the original has it. BINARY_OP's and UNARY's
// slots are too small to pop the operands and load the result, so the LOAD_CONST that pushed the
// last operand loads the result instead (only if nothing else uses that push: no COPY); then the
// stack at the folded instruction's own start holds r where the original holds b (or a): same
// depth, other value. Nothing between that load and the folded instruction can raise, call or
// poll the eval breaker (known_stack.h), so the interpreter never observes it; the JIT must
// treat the rewrite as one unit and deopt only to its start (Rewrite::offset, its first edit),
// where the stack is the original's.
// Operands that an earlier rewrite produced (globals_to_constants, module_attributes, a previous
// fold) have their slots re-emitted by this rewrite, so it builds on them and carries their
// assumptions (known_stack.h, BuildOnOperands): a fold is active only while what it folded is.
// Why sound: under the operands' assumptions the folded instruction would push exactly r (the
// same C function on the same objects), and its popping of constants frees nothing.
#include <array>

#include "absl/strings/str_cat.h"
#include "specializer/bytecode/opcode_tables.h"
#include "specializer/passes/constant_values.h"
#include "specializer/passes/known_stack.h"
#include "specializer/passes/lookup.h"
#include "specializer/passes/passes.h"

namespace fatjit::specializer {
namespace {

// Why an operation was not folded. X(enum, name, message)
#define FATJIT_FOLD_CONSTANTS_MISSES(X)                                                        \
  X(kNotConstant, "not_constant", "an operand is not a constant known in this block")         \
  X(kNotImmutable, "not_immutable", "an operand is not an immutable builtin constant")        \
  X(kNeverFolded, "never_folded", "CPython never folds this operator (@; % on str or bytes)") \
  X(kBytesWarning, "bytes_warning", "with -b, an operation on bytes may warn")               \
  X(kTooLarge, "too_large", "an int operand or the result exceeds the caps (constant_values.h)") \
  X(kRaises, "raises", "the operation raises; the exception is left to run time")            \
  X(kShared, "shared_operand", "the operand's load also feeds another value (COPY)")          \
  X(kNoRoom, "no_room", "the result's LOAD_CONST does not fit its slot (co_consts past 255)")

enum class Miss : uint8_t {
#define FATJIT_MISS_ENUM(e, name, doc) e,
  FATJIT_FOLD_CONSTANTS_MISSES(FATJIT_MISS_ENUM)
#undef FATJIT_MISS_ENUM
      kNone
};

// The result of one operation on constants, or why there is none.
struct Folded {
  Ref<> value;
  Miss miss = Miss::kNone;
};

Folded Refused(Miss miss) { return {nullptr, miss}; }

// A computed result (new reference or null with an error set): raised, too large, or folded.
Folded Accept(PyObject* computed) {
  bool raised = computed == nullptr;
  Ref<> value = AcceptResult(computed);
  if (!value) return Refused(raised ? Miss::kRaises : Miss::kTooLarge);
  return {std::move(value), Miss::kNone};
}

// The operands' common preconditions.
Miss CheckOperands(absl::Span<PyObject* const> operands) {
  for (PyObject* operand : operands) {
    if (!IsImmutableConstant(operand)) return Miss::kNotImmutable;
  }
  if (!OperandsWithinCaps(operands)) return Miss::kTooLarge;
  if (BytesMayWarn(operands)) return Miss::kBytesWarning;
  return Miss::kNone;
}

// BINARY_OP's oparg -> what the interpreter calls (ceval.c's binary_ops) and its symbol.
struct BinaryOperator {
  PyObject* (*compute)(PyObject*, PyObject*);
  const char* symbol;
};
constexpr std::array<BinaryOperator, 26> kBinaryOperators = {{
    {PyNumber_Add, "+"},
    {PyNumber_And, "&"},
    {PyNumber_FloorDivide, "//"},
    {PyNumber_Lshift, "<<"},
    {PyNumber_MatrixMultiply, "@"},
    {PyNumber_Multiply, "*"},
    {PyNumber_Remainder, "%"},
    {PyNumber_Or, "|"},
    {nullptr, "**"},  // PyNumber_Power takes a third argument: see FoldBinary
    {PyNumber_Rshift, ">>"},
    {PyNumber_Subtract, "-"},
    {PyNumber_TrueDivide, "/"},
    {PyNumber_Xor, "^"},
    {PyNumber_InPlaceAdd, "+="},
    {PyNumber_InPlaceAnd, "&="},
    {PyNumber_InPlaceFloorDivide, "//="},
    {PyNumber_InPlaceLshift, "<<="},
    {PyNumber_InPlaceMatrixMultiply, "@="},
    {PyNumber_InPlaceMultiply, "*="},
    {PyNumber_InPlaceRemainder, "%="},
    {PyNumber_InPlaceOr, "|="},
    {nullptr, "**="},
    {PyNumber_InPlaceRshift, ">>="},
    {PyNumber_InPlaceSubtract, "-="},
    {PyNumber_InPlaceTrueDivide, "/="},
    {PyNumber_InPlaceXor, "^="},
}};
static_assert(NB_ADD == 0 && NB_POWER == 8 && NB_INPLACE_ADD == 13 && NB_INPLACE_XOR == 25,
              "BINARY_OP's operator numbering");

constexpr std::array<const char*, 6> kComparisons = {"<", "<=", "==", "!=", ">", ">="};
static_assert(Py_LT == 0 && Py_GE == 5, "COMPARE_OP's oparg is the rich comparison");

Folded FoldBinary(int oparg, PyObject* a, PyObject* b) {
  if (Miss miss = CheckOperands({a, b}); miss != Miss::kNone) return Refused(miss);
  const int op = oparg >= NB_INPLACE_ADD ? oparg - NB_INPLACE_ADD : oparg;
  switch (op) {
    case NB_MATRIX_MULTIPLY:
      return Refused(Miss::kNeverFolded);
    case NB_REMAINDER:  // safe_mod: str % x and bytes % x format, which CPython leaves alone
      if (PyUnicode_Check(a) || PyBytes_Check(a)) return Refused(Miss::kNeverFolded);
      break;
    case NB_MULTIPLY:
      if (!MultiplyWithinCaps(a, b)) return Refused(Miss::kTooLarge);
      break;
    case NB_POWER:
      if (!PowerWithinCaps(a, b)) return Refused(Miss::kTooLarge);
      return Accept(oparg == NB_POWER ? PyNumber_Power(a, b, Py_None)
                                      : PyNumber_InPlacePower(a, b, Py_None));
    case NB_LSHIFT:
      if (!LshiftWithinCaps(a, b)) return Refused(Miss::kTooLarge);
      break;
    default:
      break;
  }
  return Accept(kBinaryOperators[oparg].compute(a, b));
}

Folded FoldUnary(int opcode, PyObject* a) {
  if (Miss miss = CheckOperands({a}); miss != Miss::kNone) return Refused(miss);
  switch (opcode) {
    case UNARY_NEGATIVE:
      return Accept(PyNumber_Negative(a));
    case UNARY_POSITIVE:
      return Accept(PyNumber_Positive(a));
    case UNARY_INVERT:
      return Accept(PyNumber_Invert(a));
    case UNARY_NOT: {
      int truth = PyObject_IsTrue(a);
      return Accept(truth < 0 ? nullptr : PyBool_FromLong(!truth));
    }
    default:
      return Refused(Miss::kNeverFolded);
  }
}

const char* UnarySymbol(int opcode) {
  switch (opcode) {
    case UNARY_NEGATIVE:
      return "-";
    case UNARY_POSITIVE:
      return "+";
    case UNARY_INVERT:
      return "~";
    default:
      return "not ";
  }
}

// The fold of instruction `op` given the known stack before it, as a rewrite ready to propose,
// or the reason there is none.
struct Proposal {
  Rewrite rewrite;
  Miss miss = Miss::kNone;
};

Proposal NotFolded(Miss miss) {
  Proposal p;
  p.miss = miss;
  return p;
}

// The common frame of a rewrite of `op` computing `result`.
Rewrite NewRewrite(const bytecode::Instruction& op, std::string before, PyObject* result) {
  Rewrite rewrite;
  rewrite.pass = "fold_constants";
  rewrite.line = op.line;
  rewrite.before = std::move(before);
  rewrite.after = absl::StrCat("LOAD_CONST ", DescribeValue(result));
  return rewrite;
}

// An edit of `offset` loading `value`.
SlotEdit LoadEdit(int offset, PyObject* value) {
  SlotEdit edit;
  edit.offset = offset;
  edit.code.push_back({LOAD_CONST, 0});
  edit.consts.push_back(Ref<>::Create(value));
  return edit;
}

// COMPARE_OP and BINARY_SUBSCR: POP_TOP POP_TOP LOAD_CONST r in the operation's own slot.
Proposal PopOperandsLoadResult(const SpecializationBuilder& builder, const bytecode::Instruction& op,
                    const KnownValue& a, const KnownValue& b, const Folded& folded,
                    std::string before) {
  Proposal p;
  p.rewrite = NewRewrite(op, std::move(before), folded.value.obj());
  SlotEdit edit = LoadEdit(op.offset, folded.value.obj());
  edit.code.insert(edit.code.begin(), {{POP_TOP, 0}, {POP_TOP, 0}});
  p.rewrite.edits.push_back(std::move(edit));
  const KnownValue operands[] = {a, b};
  BuildOnOperands(builder, operands, p.rewrite);
  if (!EditsFit(builder, p.rewrite)) return NotFolded(Miss::kNoRoom);
  return p;
}

// BINARY_OP and UNARY_*: the load of `last` (the top operand) loads r, and the operation's slot
// becomes `rest` (SWAP 2; POP_TOP, or nothing).
Proposal LoadEarly(const SpecializationBuilder& builder, const bytecode::Instruction& op,
                   absl::Span<const KnownValue> operands, const Folded& folded,
                   std::vector<bytecode::NewInstruction> rest, std::string before) {
  const KnownValue& last = operands.back();
  if (!last.retargetable()) return NotFolded(Miss::kShared);
  Proposal p;
  p.rewrite = NewRewrite(op, std::move(before), folded.value.obj());
  p.rewrite.edits.push_back(LoadEdit(last.pushed_by, folded.value.obj()));
  SlotEdit edit;
  edit.offset = op.offset;
  edit.code = std::move(rest);
  p.rewrite.edits.push_back(std::move(edit));
  BuildOnOperands(builder, operands, p.rewrite);
  if (!EditsFit(builder, p.rewrite)) return NotFolded(Miss::kNoRoom);
  return p;
}

Proposal FoldInstruction(const SpecializationBuilder& builder, const bytecode::Instruction& op,
                         const KnownStack& known) {
  switch (op.base_opcode) {
    case UNARY_NEGATIVE:
    case UNARY_POSITIVE:
    case UNARY_INVERT:
    case UNARY_NOT: {
      if (known.size() < 1) return NotFolded(Miss::kNotConstant);
      const KnownValue& a = known.Peek(0);
      if (a.is_null()) return NotFolded(Miss::kNotConstant);
      Folded folded = FoldUnary(op.base_opcode, a.object);
      if (!folded.value) return NotFolded(folded.miss);
      return LoadEarly(builder, op, {a}, folded, {},
                       absl::StrCat(UnarySymbol(op.base_opcode), DescribeValue(a.object)));
    }
    case BINARY_OP:
    case COMPARE_OP:
    case BINARY_SUBSCR: {
      if (known.size() < 2) return NotFolded(Miss::kNotConstant);
      const KnownValue& a = known.Peek(1);
      const KnownValue& b = known.Peek(0);
      if (a.is_null() || b.is_null()) return NotFolded(Miss::kNotConstant);
      if (op.base_opcode == BINARY_SUBSCR) {
        if (Miss miss = CheckOperands({a.object, b.object}); miss != Miss::kNone) {
          return NotFolded(miss);
        }
        Folded folded = Accept(PyObject_GetItem(a.object, b.object));
        if (!folded.value) return NotFolded(folded.miss);
        return PopOperandsLoadResult(builder, op, a, b, folded,
                          absl::StrCat(DescribeValue(a.object), "[", DescribeValue(b.object), "]"));
      }
      if (op.base_opcode == COMPARE_OP) {
        if (op.oparg < Py_LT || op.oparg > Py_GE) return NotFolded(Miss::kNeverFolded);
        if (Miss miss = CheckOperands({a.object, b.object}); miss != Miss::kNone) {
          return NotFolded(miss);
        }
        Folded folded = Accept(PyObject_RichCompare(a.object, b.object, op.oparg));
        if (!folded.value) return NotFolded(folded.miss);
        return PopOperandsLoadResult(builder, op, a, b, folded,
                          absl::StrCat(DescribeValue(a.object), " ", kComparisons[op.oparg], " ",
                                       DescribeValue(b.object)));
      }
      if (op.oparg < 0 || op.oparg >= static_cast<int>(kBinaryOperators.size())) {
        return NotFolded(Miss::kNeverFolded);
      }
      Folded folded = FoldBinary(op.oparg, a.object, b.object);
      if (!folded.value) return NotFolded(folded.miss);
      return LoadEarly(builder, op, {a, b}, folded, {{SWAP, 2}, {POP_TOP, 0}},
                       absl::StrCat(DescribeValue(a.object), " ",
                                    kBinaryOperators[op.oparg].symbol, " ",
                                    DescribeValue(b.object)));
    }
    default:
      return NotFolded(Miss::kNotConstant);
  }
}

bool IsFoldable(int base_opcode) {
  switch (base_opcode) {
    case UNARY_NEGATIVE:
    case UNARY_POSITIVE:
    case UNARY_INVERT:
    case UNARY_NOT:
    case BINARY_OP:
    case COMPARE_OP:
    case BINARY_SUBSCR:
      return true;
    default:
      return false;
  }
}

}  // namespace

absl::StatusOr<bool> FoldConstants(SpecializationBuilder& builder) {
  return ScanKnownStack(
      builder,
      [&](absl::Span<const bytecode::Instruction> insts, int index,
          const KnownStack& known) -> absl::StatusOr<bool> {
        const bytecode::Instruction& op = insts[index];
        if (!IsFoldable(op.base_opcode)) return false;
        Proposal proposal = FoldInstruction(builder, op, known);
        if (proposal.miss != Miss::kNone) return false;
        absl::Status proposed = builder.Propose(std::move(proposal.rewrite));
        if (!proposed.ok()) return proposed;
        return true;
      });
}

}  // namespace fatjit::specializer

#undef FATJIT_FOLD_CONSTANTS_MISSES
