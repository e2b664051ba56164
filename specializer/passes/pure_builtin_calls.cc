// pure_builtin_calls: a call of a pure builtin on constants becomes a load of its result.
//
// Assumes: the call is `NULL <builtin> args... PRECALL n; CALL n` with every entry known in the
// block (known_stack.h): the NULL pushed by PUSH_NULL (globals_to_constants turns
// `LOAD_GLOBAL NULL + len` into `PUSH_NULL; LOAD_CONST <len>`), the callable one of the builtins
// below, identified as CPython's own object (a type by identity; a function as a PyCFunction
// of the module whose C definition is named "builtins", which Python code cannot forge; its name
// in the globals does not matter: the guard on the name that loaded it is the one its load
// already carries), and the n positional arguments immutable builtin constants
// (constant_values.h). These builtins then run only CPython's C code on those types, have no side
// effect and depend on nothing else (with two exceptions refused: str() and int() of more digits
// than the smallest limit sys.set_int_max_str_digits() accepts, and bytes under -b).
// Folded: len, abs, min, max (positional, no key=), chr, ord, round, divmod, pow (two arguments,
// within ast_opt.c's power cap), int, float, str, bool, tuple, frozenset, within the caps of
// constant_values.h checked before computing where a call could do much work (WithinCaps).
// Not yet: keyword arguments (KW_NAMES), and more than two arguments (see below).
// Produces, in place (invariant 4: depths at shared instruction starts unchanged):
//   PUSH_NULL      -> LOAD_CONST None            (a placeholder POP_TOP can drop; NULL it cannot)
//   PRECALL n      -> POP_TOP * n                (the compiler counts PRECALL as popping the
//                                                 n arguments, so the depth after it matches)
//   CALL n         -> POP_TOP POP_TOP LOAD_CONST r  (drops the callable and the placeholder)
// PRECALL's slot holds two units, hence at most two arguments. Between the placeholder and the
// CALL the stack holds None where the original holds NULL, and at the CALL's start the
// arguments are already popped (the interpreter's PRECALL pops nothing: the depth counts agree,
// the stack contents do not); nothing in between can raise, call, or poll the eval breaker, so
// the interpreter never observes it, and the JIT must deopt only to the rewrite's start.
// Arguments and callable produced by earlier rewrites are re-emitted so the call builds on them.
// Why sound: under the assumptions of what it builds on, the CALL would call that builtin with
// those objects and push exactly r; the pops drop constants, which frees nothing.
#include <array>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "specializer/bytecode/opcode_tables.h"
#include "specializer/passes/constant_values.h"
#include "specializer/passes/known_stack.h"
#include "specializer/passes/lookup.h"
#include "specializer/passes/passes.h"

namespace fatjit::specializer {
namespace {

// Why a call was not folded. X(enum, name, message)
#define FATJIT_PURE_BUILTIN_CALLS_MISSES(X)                                                   \
  X(kNotConstant, "not_constant", "the callable or an argument is not a known constant")     \
  X(kNotPureBuiltin, "not_pure_builtin", "the callable is not one of the pure builtins")     \
  X(kArity, "arity", "more than two arguments, or a count the builtin does not take")        \
  X(kNotImmutable, "not_immutable", "an argument is not an immutable builtin constant")      \
  X(kBytesWarning, "bytes_warning", "with -b, an operation on bytes may warn")              \
  X(kDigitLimit, "digit_limit", "an int<->str conversion past the smallest digit limit")     \
  X(kTooLarge, "too_large", "an argument or the result exceeds the caps (constant_values.h)")  \
  X(kRaises, "raises", "the call raises; the exception is left to run time")                \
  X(kNoRoom, "no_room", "a LOAD_CONST does not fit its slot (co_consts past 255)")

enum class Miss : uint8_t {
#define FATJIT_MISS_ENUM(e, name, doc) e,
  FATJIT_PURE_BUILTIN_CALLS_MISSES(FATJIT_MISS_ENUM)
#undef FATJIT_MISS_ENUM
      kNone
};

// The most arguments a folded call may have: PRECALL's slot (2 code units) must pop them all.
constexpr int kMaxArguments = 2;

struct PureBuiltin {
  const char* name;
  PyObject* type;  // for a builtin type: the type; null for a builtin function
  int min_args;
  int max_args;
};

const std::array<PureBuiltin, 15>& PureBuiltins() {
  static const std::array<PureBuiltin, 15> builtins = {{
      {"len", nullptr, 1, 1},
      {"abs", nullptr, 1, 1},
      {"min", nullptr, 1, 2},
      {"max", nullptr, 1, 2},
      {"chr", nullptr, 1, 1},
      {"ord", nullptr, 1, 1},
      {"round", nullptr, 1, 2},
      {"divmod", nullptr, 2, 2},
      {"pow", nullptr, 2, 2},
      {"int", reinterpret_cast<PyObject*>(&PyLong_Type), 0, 2},
      {"float", reinterpret_cast<PyObject*>(&PyFloat_Type), 0, 1},
      {"str", reinterpret_cast<PyObject*>(&PyUnicode_Type), 0, 1},
      {"bool", reinterpret_cast<PyObject*>(&PyBool_Type), 0, 1},
      {"tuple", reinterpret_cast<PyObject*>(&PyTuple_Type), 0, 1},
      {"frozenset", reinterpret_cast<PyObject*>(&PyFrozenSet_Type), 0, 1},
  }};
  return builtins;
}

// True if `callable` is CPython's builtin function `name`: a PyCFunction bound to the module
// built from the C module definition "builtins".
bool IsBuiltinFunction(PyObject* callable, const char* name) {
  if (!PyCFunction_CheckExact(callable)) return false;
  auto* function = reinterpret_cast<PyCFunctionObject*>(callable);
  PyObject* module = function->m_self;
  if (module == nullptr || !PyModule_CheckExact(module)) return false;
  PyModuleDef* def = PyModule_GetDef(module);
  return def != nullptr && def->m_name != nullptr && std::strcmp(def->m_name, "builtins") == 0 &&
         std::strcmp(function->m_ml->ml_name, name) == 0;
}

const PureBuiltin* FindPureBuiltin(PyObject* callable) {
  for (const PureBuiltin& builtin : PureBuiltins()) {
    if (builtin.type != nullptr ? callable == builtin.type
                                : IsBuiltinFunction(callable, builtin.name)) {
      return &builtin;
    }
  }
  return nullptr;
}

// int(str) and str(int) are limited by sys.set_int_max_str_digits(), which may be lowered later.
bool PastDigitLimit(const PureBuiltin& builtin, absl::Span<PyObject* const> args) {
  if (std::strcmp(builtin.name, "str") == 0) {
    return !args.empty() && HasLargeInt(args[0]);
  }
  if (std::strcmp(builtin.name, "int") == 0 && !args.empty()) {
    PyObject* text = args[0];
    Py_ssize_t length = PyUnicode_CheckExact(text) ? PyUnicode_GET_LENGTH(text)
                        : PyBytes_CheckExact(text) ? PyBytes_GET_SIZE(text)
                                                   : 0;
    return length > kMaxConvertedDigits;
  }
  return false;
}

// Checks before computing, so that no call does much work or builds much only to be refused:
// pow as ast_opt.c's safe_power; round(int, -n) computes 10 ** n (refused past kMaxIntBits,
// 10 ** 38 < 2 ** 128); tuple() and frozenset() of a str or bytes build one item per character.
bool WithinCaps(const PureBuiltin& builtin, absl::Span<PyObject* const> args) {
  if (std::strcmp(builtin.name, "pow") == 0) return PowerWithinCaps(args[0], args[1]);
  if (std::strcmp(builtin.name, "round") == 0 && args.size() == 2 && PyLong_Check(args[0]) &&
      PyLong_Check(args[1])) {
    int overflow = 0;
    long ndigits = PyLong_AsLongAndOverflow(args[1], &overflow);
    return overflow == 0 && ndigits >= -38;
  }
  if (builtin.type == reinterpret_cast<PyObject*>(&PyTuple_Type) ||
      builtin.type == reinterpret_cast<PyObject*>(&PyFrozenSet_Type)) {
    if (args.empty()) return true;
    Py_ssize_t size = PyUnicode_CheckExact(args[0]) ? PyUnicode_GET_LENGTH(args[0])
                      : PyBytes_CheckExact(args[0]) ? PyBytes_GET_SIZE(args[0])
                                                    : 0;
    return size <= kMaxCollectionSize;
  }
  return true;
}

struct Call {
  const PureBuiltin* builtin = nullptr;
  Ref<> result;
  Miss miss = Miss::kNone;
};

Call Refused(Miss miss) {
  Call call;
  call.miss = miss;
  return call;
}

// Calls `callable` (a pure builtin) on `args` if the preconditions hold.
Call Evaluate(PyObject* callable, absl::Span<PyObject* const> args) {
  const PureBuiltin* builtin = FindPureBuiltin(callable);
  if (builtin == nullptr) return Refused(Miss::kNotPureBuiltin);
  const int n = static_cast<int>(args.size());
  if (n < builtin->min_args || n > builtin->max_args) return Refused(Miss::kArity);
  for (PyObject* arg : args) {
    if (!IsImmutableConstant(arg)) return Refused(Miss::kNotImmutable);
  }
  if (!OperandsWithinCaps(args) || !WithinCaps(*builtin, args)) return Refused(Miss::kTooLarge);
  if (BytesMayWarn(args)) return Refused(Miss::kBytesWarning);
  if (PastDigitLimit(*builtin, args)) return Refused(Miss::kDigitLimit);
  PyObject* computed =
      PyObject_Vectorcall(callable, const_cast<PyObject**>(args.data()), args.size(), nullptr);
  Call call;
  call.builtin = builtin;
  call.result = AcceptResult(computed);
  if (!call.result) call.miss = computed == nullptr ? Miss::kRaises : Miss::kTooLarge;
  return call;
}

struct Proposal {
  Rewrite rewrite;
  Miss miss = Miss::kNone;
};

Proposal NotFolded(Miss miss) {
  Proposal p;
  p.miss = miss;
  return p;
}

Proposal FoldCall(const SpecializationBuilder& builder, const bytecode::Instruction& precall,
                  const bytecode::Instruction& call, const KnownStack& known) {
  const int n = precall.oparg;
  if (n > kMaxArguments) return NotFolded(Miss::kArity);
  if (known.size() < n + 2) return NotFolded(Miss::kNotConstant);
  const KnownValue& null = known.Peek(n + 1);
  const KnownValue& callable = known.Peek(n);
  if (!null.is_null() || null.copied || callable.is_null()) return NotFolded(Miss::kNotConstant);
  std::vector<KnownValue> operands = {null, callable};
  std::vector<PyObject*> args;
  std::vector<std::string> described;
  for (int depth = n - 1; depth >= 0; --depth) {
    const KnownValue& arg = known.Peek(depth);
    if (arg.is_null()) return NotFolded(Miss::kNotConstant);
    operands.push_back(arg);
    args.push_back(arg.object);
    described.push_back(DescribeValue(arg.object));
  }
  Call evaluated = Evaluate(callable.object, args);
  if (!evaluated.result) return NotFolded(evaluated.miss);

  Proposal p;
  p.rewrite.pass = "pure_builtin_calls";
  p.rewrite.line = call.line;
  p.rewrite.before = absl::StrCat(evaluated.builtin->name, "(", absl::StrJoin(described, ", "), ")");
  p.rewrite.after = absl::StrCat("LOAD_CONST ", DescribeValue(evaluated.result.obj()));
  SlotEdit placeholder;
  placeholder.offset = null.pushed_by;
  placeholder.code.push_back({LOAD_CONST, 0});
  placeholder.consts.push_back(Ref<>::Create(Py_None));
  p.rewrite.edits.push_back(std::move(placeholder));
  SlotEdit pop_arguments;
  pop_arguments.offset = precall.offset;
  pop_arguments.code.assign(n, {POP_TOP, 0});
  p.rewrite.edits.push_back(std::move(pop_arguments));
  SlotEdit load_result;
  load_result.offset = call.offset;
  load_result.code = {{POP_TOP, 0}, {POP_TOP, 0}, {LOAD_CONST, 0}};
  load_result.consts.push_back(evaluated.result);
  p.rewrite.edits.push_back(std::move(load_result));
  BuildOnOperands(builder, operands, p.rewrite);
  if (!EditsFit(builder, p.rewrite)) return NotFolded(Miss::kNoRoom);
  return p;
}

}  // namespace

absl::StatusOr<bool> PureBuiltinCalls(SpecializationBuilder& builder) {
  return ScanKnownStack(
      builder,
      [&](absl::Span<const bytecode::Instruction> insts, int index,
          const KnownStack& known) -> absl::StatusOr<bool> {
        const bytecode::Instruction& precall = insts[index];
        if (precall.base_opcode != PRECALL || index + 1 >= static_cast<int>(insts.size())) {
          return false;
        }
        const bytecode::Instruction& call = insts[index + 1];
        if (call.base_opcode != CALL || call.oparg != precall.oparg) return false;
        Proposal proposal = FoldCall(builder, precall, call, known);
        if (proposal.miss != Miss::kNone) return false;
        absl::Status proposed = builder.Propose(std::move(proposal.rewrite));
        if (!proposed.ok()) return proposed;
        return true;
      });
}

}  // namespace fatjit::specializer

#undef FATJIT_PURE_BUILTIN_CALLS_MISSES
