// dead_branches: a conditional jump on a constant becomes a plain pop (never taken) or a jump
// that is always taken and tests only an identity.
//
// Assumes: the condition is a constant known in the block (known_stack.h), often one an earlier
// rewrite produced (`if DEBUG:` after globals_to_constants, `if MODE == 2:` after fold_constants),
// whose truth value is known without running user code and never changes (KnownTruth in
// constant_values.h: immutable builtin constants, and instances of static types without __bool__
// or __len__, which are always true); for POP_JUMP_*_IF_NONE/NOT_NONE only its identity matters.
// Produces, in the jump's own slot (so every instruction start keeps its offset and depth, and
// the stack keeps the original's values everywhere):
//   never taken:  POP_JUMP_x_IF_y  -> POP_TOP
//   always taken: POP_JUMP_x_IF_TRUE/FALSE -> POP_JUMP_x_IF_NOT_NONE (or _IF_NONE if the
//                 condition is None) to the same target, in the same direction
// A jump that must pop its condition and jump does not fit one code unit otherwise; testing an
// identity instead of a truth value never calls __bool__, and entry_stability counts a forward
// IF_NONE/NOT_NONE on a constant, like POP_TOP of one, as effect-free, which is what lets the
// rewrites after `if DEBUG:` be used in interpreted code. An IF_NONE/NOT_NONE jump that is
// already always taken is left as it is. A backward jump keeps servicing the eval breaker.
// Not done: the code the rewrite makes unreachable stays in place (the interpreter never runs
// it, the stack-depth check skips it, and NOP-ing it would gain nothing); rewrites inside it
// still count their guards (a SpecializeFunction follow-up could drop them).
// The condition's slot is re-emitted when an earlier rewrite produced it, so the rewrite builds
// on that one and carries its assumptions.
// Why sound: under those assumptions the condition is that object, whose truth (or identity) is
// what the original jump tests, so the replacement goes where the original goes; popping a
// constant frees nothing.
#include "absl/strings/str_cat.h"
#include "specializer/bytecode/opcode_tables.h"
#include "specializer/passes/constant_values.h"
#include "specializer/passes/known_stack.h"
#include "specializer/passes/lookup.h"
#include "specializer/passes/passes.h"

namespace fatjit::specializer {
namespace {

// Why a branch was not decided. X(enum, name, message)
#define FATJIT_DEAD_BRANCHES_MISSES(X)                                                     \
  X(kNotConstant, "not_constant", "the condition is not a constant known in this block")  \
  X(kUnknownTruth, "unknown_truth",                                                        \
    "the condition's truth could run user code or change (a __bool__ or __len__)")         \
  X(kAlreadyDecided, "already_decided", "the jump is an always-taken identity test already")

enum class Miss : uint8_t {
#define FATJIT_MISS_ENUM(e, name, doc) e,
  FATJIT_DEAD_BRANCHES_MISSES(FATJIT_MISS_ENUM)
#undef FATJIT_MISS_ENUM
      kNone
};

struct Jump {
  bool forward;
  enum { kIfTrue, kIfFalse, kIfNone, kIfNotNone } test;
};

bool DecodeJump(int opcode, Jump& jump) {
  switch (opcode) {
    case POP_JUMP_FORWARD_IF_TRUE:
      jump = {true, Jump::kIfTrue};
      return true;
    case POP_JUMP_FORWARD_IF_FALSE:
      jump = {true, Jump::kIfFalse};
      return true;
    case POP_JUMP_FORWARD_IF_NONE:
      jump = {true, Jump::kIfNone};
      return true;
    case POP_JUMP_FORWARD_IF_NOT_NONE:
      jump = {true, Jump::kIfNotNone};
      return true;
    case POP_JUMP_BACKWARD_IF_TRUE:
      jump = {false, Jump::kIfTrue};
      return true;
    case POP_JUMP_BACKWARD_IF_FALSE:
      jump = {false, Jump::kIfFalse};
      return true;
    case POP_JUMP_BACKWARD_IF_NONE:
      jump = {false, Jump::kIfNone};
      return true;
    case POP_JUMP_BACKWARD_IF_NOT_NONE:
      jump = {false, Jump::kIfNotNone};
      return true;
    default:
      return false;
  }
}

// The always-taken identity test for `condition`, in `jump`'s direction.
int AlwaysTaken(const Jump& jump, PyObject* condition) {
  if (condition == Py_None) {
    return jump.forward ? POP_JUMP_FORWARD_IF_NONE : POP_JUMP_BACKWARD_IF_NONE;
  }
  return jump.forward ? POP_JUMP_FORWARD_IF_NOT_NONE : POP_JUMP_BACKWARD_IF_NOT_NONE;
}

struct Proposal {
  Rewrite rewrite;
  Miss miss = Miss::kNone;
};

Proposal NotDecided(Miss miss) {
  Proposal p;
  p.miss = miss;
  return p;
}

Proposal DecideBranch(const SpecializationBuilder& builder, const bytecode::Instruction& branch,
                      const Jump& jump, const KnownStack& known) {
  if (known.size() < 1 || known.Peek(0).is_null()) return NotDecided(Miss::kNotConstant);
  const KnownValue& condition = known.Peek(0);
  PyObject* value = condition.object;
  bool taken;
  switch (jump.test) {
    case Jump::kIfNone:
      taken = value == Py_None;
      break;
    case Jump::kIfNotNone:
      taken = value != Py_None;
      break;
    default: {
      int truth = KnownTruth(value);
      if (truth < 0) return NotDecided(Miss::kUnknownTruth);
      taken = (truth == 1) == (jump.test == Jump::kIfTrue);
      break;
    }
  }
  const int replacement = taken ? AlwaysTaken(jump, value) : POP_TOP;
  if (replacement == branch.base_opcode) return NotDecided(Miss::kAlreadyDecided);

  Proposal p;
  p.rewrite.pass = "dead_branches";
  p.rewrite.line = branch.line;
  p.rewrite.before = absl::StrCat(bytecode::OpcodeName(branch.base_opcode), " on ",
                                  DescribeValue(value));
  p.rewrite.after = taken ? absl::StrCat("always jump to offset ", branch.jump_target * 2, " (",
                                         bytecode::OpcodeName(replacement), ")")
                          : "never jump (POP_TOP)";
  SlotEdit edit;
  edit.offset = branch.offset;
  if (taken) {
    edit.code.push_back({replacement, 0, branch.jump_target});
  } else {
    edit.code.push_back({POP_TOP, 0});
  }
  p.rewrite.edits.push_back(std::move(edit));
  const KnownValue operands[] = {condition};
  BuildOnOperands(builder, operands, p.rewrite);
  return p;
}

}  // namespace

absl::StatusOr<bool> DeadBranches(SpecializationBuilder& builder) {
  return ScanKnownStack(
      builder,
      [&](absl::Span<const bytecode::Instruction> insts, int index,
          const KnownStack& known) -> absl::StatusOr<bool> {
        const bytecode::Instruction& branch = insts[index];
        Jump jump;
        if (!DecodeJump(branch.base_opcode, jump)) return false;
        Proposal proposal = DecideBranch(builder, branch, jump, known);
        if (proposal.miss != Miss::kNone) return false;
        absl::Status proposed = builder.Propose(std::move(proposal.rewrite));
        if (!proposed.ok()) return proposed;
        return true;
      });
}

}  // namespace fatjit::specializer

#undef FATJIT_DEAD_BRANCHES_MISSES
