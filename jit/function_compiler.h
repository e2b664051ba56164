// FunctionCompiler: the baseline translation of one function's bytecode into Emitter calls (see
// compile_function.h for what it assumes and why it is sound). Internal to jit/: the class and
// what its parts share. Its members are defined by topic:
//   compile_function.cc  the driver: blocks, stack depths, exits, the eval breaker, helper
//                        calls and the per-instruction switch
//   lower_numbers.cc     BINARY_OP and COMPARE_OP on small ints and floats inline, constant
//                        and borrowed operands, where numeric results go
//   lower_objects.cc     subscripts, iteration, attribute caches, calls and list.append inline
#ifndef FATJIT_JIT_FUNCTION_COMPILER_H_
#define FATJIT_JIT_FUNCTION_COMPILER_H_

#include "jit/compile_function.h"  // first: base/python.h, which the internal headers need

#include <array>
#include <cstdlib>
#include <cstddef>
#include <cstring>
#include <functional>
#include <map>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <internal/pycore_dict.h>  // PyDictKeysObject (LOAD_METHOD's inline cache probe)
#include <internal/pycore_interp.h>
// _Py_SINGLETON(small_ints): the small-int cache inside the exported _PyRuntime.
#include <internal/pycore_runtime.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "guards/guard_set.h"
#include "jit/runtime/fast_paths.h"
#include "jit/runtime/frame_exits.h"
#include "jit/runtime/native_call.h"
#include "jit/runtime/runtime.h"
#include "specializer/bytecode/cfg.h"
#include "specializer/bytecode/decode.h"
#include "specializer/bytecode/opcode_tables.h"
#include "specializer/bytecode/stack_depth.h"

namespace fatjit::jit {

using bytecode::Instruction;

// PyObject_IsTrue returns an int; native code calls helpers as returning int64.
extern "C" int64_t fatjit_rt_is_true(PyObject* value);

inline const Helper kEnter{"fatjit_rt_enter", reinterpret_cast<const void*>(&fatjit_rt_enter), 2};
inline const Helper kRaise{"fatjit_rt_raise", reinterpret_cast<const void*>(&fatjit_rt_raise), 4};
inline const Helper kDeopt{"fatjit_rt_deopt", reinterpret_cast<const void*>(&fatjit_rt_deopt), 3};
inline const Helper kExit{"fatjit_rt_exit", reinterpret_cast<const void*>(&fatjit_rt_exit), 3};
inline const Helper kUnboundLocal{"fatjit_rt_unbound_local",
                               reinterpret_cast<const void*>(&fatjit_rt_unbound_local), 3};
inline const Helper kEvalBreaker{"fatjit_rt_eval_breaker",
                              reinterpret_cast<const void*>(&fatjit_rt_eval_breaker), 1};
inline const Helper kGuardsHold{"fatjit_rt_guards_hold",
                             reinterpret_cast<const void*>(&fatjit_rt_guards_hold), 3};
inline const Helper kIsTrue{"fatjit_rt_is_true", reinterpret_cast<const void*>(&fatjit_rt_is_true),
                         1};
inline const Helper kDealloc{"_Py_Dealloc", reinterpret_cast<const void*>(&_Py_Dealloc), 1, false};
inline const Helper kLongFromInt64{"PyLong_FromLongLong",
                            reinterpret_cast<const void*>(&PyLong_FromLongLong), 1};
inline const Helper kPeekGlobal{"fatjit_rt_peek_global",
                                reinterpret_cast<const void*>(&fatjit_rt_peek_global), 2};
inline const Helper kPeekModuleAttribute{
    "fatjit_rt_peek_module_attribute",
    reinterpret_cast<const void*>(&fatjit_rt_peek_module_attribute), 2};
inline const Helper kNumericLoopMissed{
    "fatjit_rt_numeric_loop_missed",
    reinterpret_cast<const void*>(&fatjit_rt_numeric_loop_missed), 3, false};
inline const Helper kClearError{"PyErr_Clear", reinterpret_cast<const void*>(&PyErr_Clear), 0,
                                false};
inline const Helper kBoxFloat{"fatjit_rt_box_float", reinterpret_cast<const void*>(&fatjit_rt_box_float),
                       1};

struct OpEntry {
  Helper helper{nullptr, nullptr, 0};
  HelperKind kind = HelperKind::kRunsCode;
};

inline const OpEntry kLoadGlobalCached{
    Helper{"fatjit_rt_LOAD_GLOBAL_CACHED",
           reinterpret_cast<const void*>(&fatjit_rt_LOAD_GLOBAL_CACHED), 5},
    HelperKind::kRunsCode};

// The helper of every opcode native code reaches through one (runtime.h).
const std::array<OpEntry, 256>& OpTable();

// Field offsets native code uses. 3.11 layout; base/cpython_compat.h checks the widths.
constexpr int64_t kLocalsplus = offsetof(_PyInterpreterFrame, localsplus);
constexpr int64_t kPrevInstr = offsetof(_PyInterpreterFrame, prev_instr);
constexpr int64_t kCframe = offsetof(PyThreadState, cframe);
constexpr int64_t kCurrentFrame = offsetof(_PyCFrame, current_frame);
constexpr int64_t kPrevious = offsetof(_PyInterpreterFrame, previous);
constexpr int64_t kRecursionRemaining = offsetof(PyThreadState, recursion_remaining);
static_assert(sizeof(((PyThreadState*)nullptr)->recursion_remaining) == 4);
constexpr int64_t kUseTracing = offsetof(_PyCFrame, use_tracing);
constexpr int64_t kInterp = offsetof(PyThreadState, interp);
constexpr int64_t kEvalBreakerFlag = offsetof(PyInterpreterState, ceval.eval_breaker);
constexpr int64_t kRefcnt = offsetof(PyObject, ob_refcnt);
static_assert(sizeof(((PyObject*)nullptr)->ob_refcnt) == 8);
static_assert(sizeof(((_PyCFrame*)nullptr)->use_tracing) == 1);
static_assert(sizeof(((PyInterpreterState*)nullptr)->ceval.eval_breaker) == 4);
// Numeric fast paths (see LowerBinaryOp): int and float layouts.
constexpr int64_t kObType = offsetof(PyObject, ob_type);
constexpr int64_t kObSize = offsetof(PyVarObject, ob_size);
constexpr int64_t kIntDigit0 = offsetof(PyLongObject, ob_digit);
constexpr int64_t kFloatValue = offsetof(PyFloatObject, ob_fval);
static_assert(sizeof(((PyVarObject*)nullptr)->ob_size) == 8);
static_assert(sizeof(((PyLongObject*)nullptr)->ob_digit[0]) == 4 && PYLONG_BITS_IN_DIGIT == 30);
static_assert(sizeof(((PyFloatObject*)nullptr)->ob_fval) == 8);
static_assert(_PY_NSMALLNEGINTS == 5 && _PY_NSMALLPOSINTS == 257);

inline bool IsHandlerOnly(int opcode) {
  switch (opcode) {
    case PUSH_EXC_INFO:
    case POP_EXCEPT:
    case RERAISE:
    case CHECK_EXC_MATCH:
    case CHECK_EG_MATCH:
    case WITH_EXCEPT_START:
    case PREP_RERAISE_STAR:
      return true;
    default:
      return false;
  }
}

inline bool EndsFlow(int opcode) {
  switch (opcode) {
    case RETURN_VALUE:
    case RAISE_VARARGS:
    case RERAISE:
    case JUMP_FORWARD:
    case JUMP_BACKWARD:
    case JUMP_BACKWARD_NO_INTERRUPT:
      return true;
    default:
      return false;
  }
}

inline int ParameterCount(PyCodeObject* code) {
  return code->co_argcount + code->co_kwonlyargcount + ((code->co_flags & CO_VARARGS) ? 1 : 0) +
         ((code->co_flags & CO_VARKEYWORDS) ? 1 : 0);
}

// BINARY_OP and COMPARE_OP on numbers, shared by the per-instruction fast paths
// (lower_numbers.cc) and numeric regions (lower_numeric_regions.cc).
// BINARY_OP's in-place forms compute as the binary ones for immutable numbers.
inline int BaseOp(int op) { return op >= NB_INPLACE_ADD ? op - NB_INPLACE_ADD : op; }

// The operators computed inline on two ints (true division makes a float; powers can grow
// past int64) and on two floats or a float and an int.
inline bool IntOpInline(int op) {
  switch (BaseOp(op)) {
    case NB_ADD: case NB_SUBTRACT: case NB_MULTIPLY: case NB_AND: case NB_OR: case NB_XOR:
    case NB_FLOOR_DIVIDE: case NB_REMAINDER: case NB_LSHIFT: case NB_RSHIFT:
      return true;
    default:
      return false;
  }
}
inline bool FloatOpInline(int op) {
  switch (BaseOp(op)) {
    case NB_ADD: case NB_SUBTRACT: case NB_MULTIPLY: case NB_TRUE_DIVIDE:
      return true;
    default:
      return false;
  }
}

inline Cmp IntComparison(int op) {
  switch (op) {
    case Py_LT: return Cmp::kSlt;
    case Py_LE: return Cmp::kSle;
    case Py_EQ: return Cmp::kEq;
    case Py_NE: return Cmp::kNe;
    case Py_GT: return Cmp::kSgt;
    default: return Cmp::kSge;
  }
}
inline FCmp FloatComparison(int op) {
  switch (op) {
    case Py_LT: return FCmp::kOlt;
    case Py_LE: return FCmp::kOle;
    case Py_EQ: return FCmp::kOeq;
    case Py_NE: return FCmp::kUne;
    case Py_GT: return FCmp::kOgt;
    default: return FCmp::kOge;
  }
}

inline bool IsPopJumpOnTruth(int opcode) {
  switch (opcode) {
    case POP_JUMP_FORWARD_IF_FALSE:
    case POP_JUMP_BACKWARD_IF_FALSE:
    case POP_JUMP_FORWARD_IF_TRUE:
    case POP_JUMP_BACKWARD_IF_TRUE:
      return true;
    default:
      return false;
  }
}

// Switches read once from the environment, for A/B measurements and bisecting: each is on
// unless its variable is "0".
inline bool SwitchOn(const char* variable) {
  const char* setting = std::getenv(variable);
  return setting == nullptr || std::string_view(setting) != "0";
}
// FATJIT_JIT_INLINE_NUMBERS=0 turns the numeric fast paths off (LowerBinaryOp, LowerCompareOp):
// BINARY_OP and COMPARE_OP are helper calls only, as before they existed. kFuseCompareAndJump
// off: a fast compare pushes a bool for the POP_JUMP instead of branching itself.
inline bool NumericFastPathsEnabled() {
  static const bool enabled = SwitchOn("FATJIT_JIT_INLINE_NUMBERS");
  return enabled;
}
constexpr bool kFuseCompareAndJump = true;
// FATJIT_JIT_NUMERIC_LOOPS=0 turns numeric loops off (lower_numeric_loops.cc).
inline bool NumericLoopsEnabled() {
  static const bool enabled = SwitchOn("FATJIT_JIT_NUMERIC_LOOPS");
  return enabled;
}
// FATJIT_JIT_NUMERIC_REGIONS=0 turns numeric regions off (lower_numeric_regions.cc).
inline bool NumericRegionsEnabled() {
  static const bool enabled = SwitchOn("FATJIT_JIT_NUMERIC_REGIONS");
  return enabled;
}
// FATJIT_JIT_INLINE_CALLS=0 leaves cached direct calls to the CALL helper (InlineDirectCall).
inline bool DirectCallsInline() {
  static const bool enabled = SwitchOn("FATJIT_JIT_INLINE_CALLS");
  return enabled;
}

struct Refused {
  JitRefusal refusal;
  std::string detail;
};

// Builds one function through an Emitter. Lower() returns false with `refused` set when the
// function cannot be translated; it may have emitted a partial function then (discarded).
class FunctionCompiler {
 public:
  // What a value is guessed or known to be, for numeric regions: an int that fits an int64, a
  // float, anything else, or not known yet.
  // kUnknown, kInt, kFloat, kOther: what a value or a local holds. Only on numeric loops' stacks
  // (lower_numeric_loops.cc): kIntList and kFloatList, an exact list (a local, borrowed) whose
  // items are read as that kind; kNull and kCallee, the two slots of a function to be called
  // (inlined); kModule, a module bound to a global (math), whose attribute the loop calls;
  // kSqrt, the math module's own sqrt, to be called (computed inline); kRange, the range type,
  // to be called; kRangeIter, the iterator of an inner range loop (its state held unboxed).
  enum class NumKind : uint8_t {
    kUnknown, kInt, kFloat, kOther, kIntList, kFloatList, kNull, kCallee, kModule, kSqrt,
    kRange, kRangeIter
  };

  FunctionCompiler(const CompileRequest& request, Emitter& e, NativeCode& out)
      : request_(request), e_(e), out_(out) {}

  bool Lower();
  Refused refused{JitRefusal::kCount, ""};

 private:
  bool Refuse(JitRefusal refusal, std::string detail) {
    refused = {refusal, std::move(detail)};
    return false;
  }
  bool LowerInstruction(int index);
  // The helper call of `op` at instruction `index` (its site, the checks after it). `fast`, when
  // set, emits a fast path first: it branches to its `miss` block when it does not apply, else
  // computes what the helper would return (0, or -1 with an exception set) in the current block.
  using FastPath = std::function<Value(Block miss)>;
  bool LowerHelper(int index, const OpEntry& op, PyObject* aux, const FastPath& fast = {});

  // Numeric fast paths inline (the section "Numeric fast paths" below says why they are exact).
  bool LowerBinaryOp(int index);
  bool LowerCompareOp(int index);
  bool LowerSubscript(int index);
  bool LowerStoreSubscript(int index);
  bool LowerForIter(int index);
  // Attribute caches probed inline (the helpers stay for misses).
  void ProbeAttrCacheInline(AttrCache& cache, Value owner, Block miss,
                            const std::function<void(Value)>& at_address);
  void CountAttrCacheHit();
  void InlineLoadAttr(int index, AttrCache& cache);
  void InlineStoreAttr(int index, AttrCache& cache);
  void InlineLoadMethod(int index, AttrCache& cache);
  // PRECALL and CALL of a method found by LOAD_METHOD (ceval's PRECALL_NO_KW_LIST_APPEND):
  // each leaves the current block in its miss path, which calls the helper.
  void InlinePrecallOfMethod(int index);
  void InlineListAppend(int index);
  // UNPACK_SEQUENCE of an exact tuple or list of the right size, and FORMAT_VALUE of an exact
  // str without a spec: inline, before the helper call that serves every other case.
  void InlineUnpackSequence(int index);
  void InlineFormatOfStr(int index);
  // CALL through its site's direct-call cache (native_call.h), the cache's first entry checked
  // and the callee's frame pushed inline: LowerHelper's FastPath for CALL_CACHED.
  Value InlineDirectCall(int index, DirectCallCache& cache, Block miss);
  void ClearAndPopDirectFrame(Value callee, const Helper& clear_and_pop);
  void CountedLoop(Value begin, Value end, const std::function<void(Value)>& body);
  void CountBuiltinCall();
  int LiveOpcode(const Instruction& inst) const;

  // Numeric regions (lower_numeric_regions.cc says what they assume and why they are exact):
  // straight-line int and float arithmetic on locals, unboxed from first read to last store.
  // region_end_[i] >= 0: a region starts at instruction i and ends before region_end_[i];
  // LowerNumericRegion(i) emits its fast path into the current block and leaves the current
  // block the one where instruction i's own translation goes (the fast path's way out).
  void FindNumericRegions();
  void GuessLocalKinds();
  void GuessLocalKindsFrom(const std::vector<LocalKind>& hints);
  NumKind KindBefore(int index, int depth, int& steps) const;
  NumKind KindAfter(int index, int depth, int& steps) const;
  void LowerNumericRegion(int start);
  // i1: an exact int's value fits an int64 (MachineIntValue reads it then).
  Value FitsInt64(Value object);
  // A machine value of a known kind: an int64, or a double's bits.
  struct Num {
    NumKind kind;
    Value value;
  };
  // Shared by regions and loops; each leaves for `fail` when the inline result would not be
  // exact (a type other than `kind`, an int beyond int64 or 2^53 where a double is needed, an
  // overflow, a zero divisor), and continues in a new current block otherwise.
  Value UnboxNumber(Value object, NumKind kind, Block fail);  // object not null
  // A constant's kind (an exact int that fits an int64, an exact float, or other) and, for the
  // first two, its machine value as an immediate.
  static NumKind ConstantKind(PyObject* constant);
  Value NumericConstant(PyObject* constant);
  Value AsDouble(Num num, Block fail);
  Num NumericBinary(int oparg, Num left, Num right, Block fail);
  Value NumericCompare(int op, Num left, Num right, Block fail);  // i1
  Value NumericTruth(Num value);                                    // i1
  // Numeric loops (lower_numeric_loops.cc): a loop whose body is all numeric-region
  // instructions (and range iteration at its head) runs with its locals unboxed across
  // iterations. loop_end_[h] >= 0: such a loop's head is h, its last instruction before
  // loop_end_[h].
  void FindNumericLoops();
  // A small function a numeric loop calls, inlined: its code is straight-line arithmetic on
  // its arguments (LeafCallee says exactly what qualifies).
  struct InlineCallee {
    PyObject* name = nullptr;      // the global it is called through (co_names)
    PyCodeObject* code = nullptr;  // what the global's function runs (kept alive: kept_)
    std::vector<Instruction> body;  // after RESUME, through RETURN_VALUE
  };
  // The stack kinds before each instruction of [head, end) when the loop qualifies, and the
  // functions its CALLs inline (by the CALL's index).
  // A local left open by the code (open_local_) takes the kind the loop stores into it: the
  // analysis starts again with that kind (loop_kinds_, per loop) a few times at most.
  bool NumericLoopShape(int head, int end, std::vector<std::vector<NumKind>>* stacks,
                        std::vector<int>* locals, std::vector<bool>* stored,
                        std::map<int, InlineCallee>* callees) const;
  bool NumericLoopShapeOnce(int head, int end, std::vector<std::vector<NumKind>>* stacks,
                            std::vector<int>* locals, std::vector<bool>* stored,
                            std::map<int, InlineCallee>* callees, bool* again) const;
  mutable std::map<int, NumKind> loop_kinds_;  // NumericLoopShape's kinds of open locals
  NumKind LoopKindOfLocal(int local) const;
  void FindSubscriptedLocals();
  // What the global a LOAD_GLOBAL at `index` reads is taken to be in a numeric loop, from its
  // value now: without a NULL, kModule (a module whose attribute the next LOAD_METHOD takes is
  // math.sqrt), kFloat, kInt (also when unbound now) or kOther (no numeric loop); with one,
  // kModule (math, whose attribute the next LOAD_ATTR takes is math.sqrt), kSqrt (math.sqrt
  // itself), kRange (the range type) or kCallee.
  NumKind LoopGlobalKind(int index) const;
  PyObject* GlobalNow(PyObject* name) const;  // borrowed, or null; runs no code
  // The function bound to global `name` now, if its code qualifies for inlining with arguments
  // of kinds `args`: *callee and the result's kind (int or float).
  bool LeafCallee(PyObject* name, const std::vector<NumKind>& args, InlineCallee* callee,
                  NumKind* result) const;
  Num InlineLeafCall(const InlineCallee& callee, const std::vector<Num>& args, Block fail);
  void LowerNumericLoop(int head);
 public:
  // References the native code must keep (inlined callees' code objects), taken once lowered.
  std::vector<Ref<>> TakeKeptAlive() { return std::move(kept_); }

 private:

  // Constant operands. An exact int of at most two digits or an exact float that a LOAD_CONST
  // just pushed is known at compile time: OperandAt gives it as an immediate (no load of the
  // slot), and TypeOf, Field, SmallIntValue and Decref of that Value fold to what the object
  // holds (no type test, no digit loads, no test for a last reference: co_consts keeps one).
  // The slot still holds the reference LOAD_CONST took, so helpers and exits see the usual stack.
  // Sound because the object is immutable and fixed when the code is compiled (co_consts of the
  // compiled code, kept alive with the native code), and the slot can hold nothing else (below).
  PyObject* ConstantInSlot(int index, int depth) const;
  Value OperandAt(int index, int depth);
  PyObject* KnownConstant(Value v) const {
    auto it = constant_values_.find(v);
    return it == constant_values_.end() ? nullptr : it->second;
  }

  // Borrowed operands. A LOAD_FAST or LOAD_CONST whose value the very next BINARY_OP,
  // COMPARE_OP, BINARY_SUBSCR or LOAD_ATTR (of its owner) consumes, with only LOAD_CONST and
  // LOAD_FAST of bound locals between (nothing that can exit or run code) and no jump into the
  // stretch, pushes the object without a reference of its own: the local, or the code object's
  // co_consts (the frame holds its code), keeps it alive until the operation, which runs no
  // code on its inline paths. Native code never exposes value-stack
  // slots to the collector (stacktop stays at co_nlocalsplus until an exit sets it, DESIGN.md),
  // so a borrowed slot is seen by nobody before the operation or an exit takes the reference.
  // The inline paths skip its decref, never write a result into it (its count says nothing of
  // the stack's), and count no stack reference to it when writing into a local; every way out to
  // the generic helper or an error exit first takes the reference the stack is expected to hold
  // (OwnBorrowedOperands), so the interpreter and the helpers see the usual stack.
  void FindBorrowedOperands();
  void SwapFrameCode();  // the entry's swap to CompileRequest::entered_with's replacement
  void FindBoundLocals();
  bool MayBeUnbound(int index, int local) const;
  bool Borrowed(Value v) const { return borrowed_values_.count(v) != 0; }
  void OwnBorrowedOperands(int index);
  Block OperandErrorExit(int index, const Instruction& inst);

  Value TypeOf(Value object) {
    if (PyObject* known = KnownConstant(object)) return e_.Ptr(Py_TYPE(known));
    return e_.Load(object, kObType, Width::k64, Mem::kType);
  }
  Value IsType(Value type, PyTypeObject* expected) {
    return e_.Compare(Cmp::kEq, type, e_.Ptr(expected));
  }
  // Ends the current block in the type tests of two numeric operands: `ints` is entered when
  // both are exact ints of at most two digits, `floats` when both are exact floats, and (with
  // floats and mixed) `float_int` / `int_float` when one is an exact float and the other an exact
  // int of at most two digits (each only if asked for, else -1); every other case goes to `slow`.
  struct NumberKinds {
    Block ints = -1;
    Block wide_ints = -1;  // with ints: both fit an int64, not both 60 bits
    Block floats = -1;
    Block float_int = -1;
    Block int_float = -1;
  };
  NumberKinds BranchOnNumberKinds(Value left, Value right, bool ints, bool floats, bool mixed,
                                  Block slow);
  // Branches to `yes` when both exact ints have |ob_size| <= 2 (at most 60 bits), to `wide`
  // when both fit an int64 otherwise (up to three digits, the top one below 8), else to `no`.
  void BranchIfSmallInts(Value left, Value right, Block yes, Block wide, Block no);
  // The value of an exact int that fits an int64 (BranchIfSmallInts' `wide`).
  Value MachineIntValue(Value object);
  // The value of an exact int with |ob_size| <= 2 (reads the second digit only if it exists).
  Value SmallIntValue(Value object);
  Value CompactIntValue(Value object) {
    return e_.Mul(Field(object, kObSize), Field(object, kIntDigit0, Width::k32));
  }
  Value FloatBits(Value object) { return Field(object, kFloatValue); }
  // The double equal to an exact int of at most two digits, in a new current block, when its
  // magnitude is at most 2^53 (where every int has an exact double); larger ones go to `slow`.
  Value ExactIntAsDouble(Value object, Block slow);
  // BINARY_OP's float arithmetic on the doubles `a`, `b` (bits); division by zero goes to `slow`.
  Value FloatArithmetic(int op, Value a, Value b, Block slow);
  // `wide`: the operands may have up to 63 bits (else 60).
  Value IntArithmetic(int op, Value a, Value b, Block slow, bool wide);
  // A new reference to the int `value` (the small-int cache or PyLong_FromLongLong); on
  // allocation failure, an error exit at `inst` with `depth` values (the operands) on the stack.
  Value BoxInt(Value value, const Instruction& inst, int depth);
  // Branches on whether `value` is in CPython's small-int cache (-5..256): returns the cached
  // int with a new reference, in the block entered then (current on return); else to `other`.
  Value CachedSmallInt(Value value, Block other);
  // Replaces the two int or float operands at depth-2, depth-1 by `result`, then goes on.
  void FinishNumeric(int index, Value left, Value right, Value result);
  // The same for an int result `value` (|value| < 2^62) or float result `bits`: the result is
  // written into an operand the stack holds the only reference to, else boxed anew.
  void FinishIntResult(int index, Value left, Value right, Value value);
  // `mixed`: one operand is an int, which never takes the result.
  void FinishFloatResult(int index, Value left, Value right, Value bits, bool mixed = false);
  // When the instruction after `index` is STORE_FAST, branches to a block that writes the
  // result into the local's current object (via `write`) and skips the STORE_FAST, if that
  // object is of `type` and referenced only by the local and the operands; else to `otherwise`.
  // TryResultIntoLocal for any producer at `index`: `owners(local)` says how many references
  // the local's object has when only the local and the instruction's operands hold it;
  // `release_operands` runs on the path that took the local (the operands' stack references).
  void TryIntoLocal(int index, PyTypeObject* type, const std::function<Value(Value)>& owners,
                    const std::function<Value(Value)>& can_hold,
                    const std::function<void(Value)>& write,
                    const std::function<void()>& release_operands, Block otherwise);
  // How an int `value` is written into an existing exact int (PlaceNumericResult's can_hold and
  // write): it fits when |value| < 2^60 and the object has room for its digits.
  struct InPlaceWrite {
    std::function<Value(Value)> can_hold;
    std::function<void(Value)> write;
  };
  InPlaceWrite IntWriter(Value value);
  void TryResultIntoLocal(int index, Value left, Value right, PyTypeObject* type,
                          const std::function<Value(Value)>& can_hold,
                          const std::function<void(Value)>& write, Block otherwise);
  // A new object of `type` (float or int) that only the compiled code refers to, or null.
  PyObject* NewScratch(PyTypeObject* type);
  void PlaceNumericResult(int index, Value left, Value right, PyTypeObject* type,
                          const std::function<Value(Value)>& can_hold,
                          const std::function<void(Value)>& write,
                          const std::function<Value()>& allocate);

  // Memory, by what it is (Mem: the optimizer may assume the classes never overlap).
  Value FrameLoad(int64_t offset) { return e_.Load(frame_, offset, Width::k64, Mem::kFrame); }
  void FrameStore(int64_t offset, Value v) { e_.Store(frame_, offset, v, Width::k64, Mem::kFrame); }
  Value Refcount(Value object) { return e_.Load(object, kRefcnt, Width::k64, Mem::kRefcount); }
  void SetRefcount(Value object, Value n) {
    e_.Store(object, kRefcnt, n, Width::k64, Mem::kRefcount);
  }
  // A field of an object other than its header (ob_size, digits, ob_fval, iterator state).
  Value Field(Value object, int64_t offset, Width width = Width::k64) {
    if (PyObject* known = KnownConstant(object)) {
      if (PyLong_CheckExact(known) && offset == kObSize && width == Width::k64) {
        return e_.Imm(Py_SIZE(known));
      }
      if (PyLong_CheckExact(known) && offset == kIntDigit0 && width == Width::k32) {
        return e_.Imm(reinterpret_cast<PyLongObject*>(known)->ob_digit[0]);
      }
      if (PyFloat_CheckExact(known) && offset == kFloatValue && width == Width::k64) {
        const double value = PyFloat_AS_DOUBLE(known);
        int64_t bits;
        std::memcpy(&bits, &value, sizeof bits);
        return e_.Imm(bits);
      }
    }
    return e_.Load(object, offset, width, Mem::kField);
  }
  void SetField(Value object, int64_t offset, Value v, Width width = Width::k64) {
    e_.Store(object, offset, v, width, Mem::kField);
  }

  // Memory of the frame.
  int64_t SlotOffset(int depth) const { return kLocalsplus + 8 * (nlocalsplus_ + depth); }
  int64_t LocalOffset(int index) const { return kLocalsplus + 8 * index; }
  Value LoadSlot(int depth) { return FrameLoad(SlotOffset(depth)); }
  void StoreSlot(int depth, Value v) { FrameStore(SlotOffset(depth), v); }
  void SetPrevInstr(int opcode_offset) {
    FrameStore(kPrevInstr, e_.Ptr(code_units_ + opcode_offset));
  }

  // Reference counting, inline.
  void Incref(Value v) {
    SetRefcount(v, e_.Add(Refcount(v), e_.Imm(1)));
  }
  void Decref(Value v) {
    if (Borrowed(v)) return;                                      // the local's reference
    if (KnownConstant(v) != nullptr) return DecrefNoDealloc(v);  // co_consts holds one
    Value n = e_.Sub(Refcount(v), e_.Imm(1));
    SetRefcount(v, n);
    Block dealloc = e_.NewBlock("dealloc");
    Block done = e_.NewBlock("decref_done");
    e_.Branch(e_.Compare(Cmp::kEq, n, e_.Imm(0)), dealloc, done);
    Enter(dealloc);
    // A finalizer (__del__, a weakref callback, ResourceWarning) may look at the frame's line.
    if (lowering_opcode_offset_ >= 0) SetPrevInstr(lowering_opcode_offset_);
    e_.Call(kDealloc, {v});
    e_.Jump(done);
    Enter(done);
  }
  // For objects that never reach zero here (True, False, None are referenced by the runtime).
  void DecrefNoDealloc(Value v) {
    SetRefcount(v, e_.Sub(Refcount(v), e_.Imm(1)));
  }
  void XDecref(Value v) {
    Block some = e_.NewBlock("xdecref");
    Block done = e_.NewBlock("xdecref_done");
    e_.Branch(e_.Compare(Cmp::kEq, v, e_.Imm(0)), done, some);
    Enter(some);
    Decref(v);
    e_.Jump(done);
    Enter(done);
  }

  // Exits. Each returns a fresh block that hands the frame to the interpreter.
  Block ErrorExit(int depth, const Instruction& inst);
  void CheckErrorPoint(const Instruction& inst);
  Block DeoptExit(int target_offset, int depth, DeoptReason reason);
  // After an instruction that may run arbitrary code: deopt to `next_offset` if tracing was
  // switched on or a re-checked guard fails.
  void CheckAfterCode(int next_offset, int depth_after);
  void JumpTo(int offset) { e_.Jump(BlockAt(offset)); }
  Block BlockAt(int offset) const { return blocks_[decoded_.IndexAt(offset)]; }
  void Enter(Block b) {
    e_.SetBlock(b);
    current_ = b;
  }
  Block NextBlock(int index) const { return blocks_[index + 1]; }
  bool ValidResumePoint(int offset, int depth) const;
  Block BackEdge(const Instruction& inst, int depth);
  // ceval's CHECK_EVAL_BREAKER in `inst` (backward jumps, RESUME, the end of CALL and
  // CALL_FUNCTION_EX): continues in the current block when nothing is pending or what was is
  // handled; an error (a signal handler raised) leaves at `inst` with `depth` values on the
  // stack; what only the interpreter handles deopts to `resume_offset`.
  void PollEvalBreaker(const Instruction& inst, int depth, int resume_offset);
  static bool IsBackward(const Instruction& inst) { return inst.jump_target <= inst.offset; }

  const CompileRequest& request_;
  Emitter& e_;
  NativeCode& out_;
  Value tstate_ = 0;
  Value frame_ = 0;
  int nlocalsplus_ = 0;
  int nparams_ = 0;
  const _Py_CODEUNIT* code_units_ = nullptr;  // of the original: prev_instr points into it
  bytecode::DecodedCode decoded_;
  bytecode::DecodedCode original_decoded_;
  std::vector<int> depth_;           // per instruction of decoded_, before it
  std::vector<int> original_depth_;  // per instruction of original_decoded_
  std::vector<Block> blocks_;        // per instruction; -1 if not reachable normally
  // FindBoundLocals: per instruction, a bitset (words_per_state_ words) of the locals bound
  // there on every path; a LOAD_FAST of any other local checks for null.
  std::vector<uint64_t> bound_;
  int words_per_state_ = 0;
  std::vector<bool> jump_target_;     // per instruction: some jump goes there
  std::unordered_map<Value, PyObject*> constant_values_;  // OperandAt's immediates
  std::vector<bool> borrowed_push_;   // per instruction: a LOAD_FAST that takes no reference
  std::vector<uint8_t> borrow_mask_;  // per consumer: 1 second from top, 2 top borrowed
  std::vector<std::array<int, 2>> borrow_pusher_;  // per consumer: those operands' pushers
  std::unordered_set<Value> borrowed_values_;  // OperandAt's loads of borrowed operands
  Block current_ = 0;
  int lowering_opcode_offset_ = -1;  // of the instruction LowerInstruction is translating
  // Helper calls leave through one shared block that reads their site from a stack slot.
  Value exit_site_slot_ = 0;
  Block shared_exit_ = -1;
  std::string layout_error_;  // set when an exit would resume at a point the original lacks
  Value box_slot_ = -1;        // BoxInt's join: a StackSlot made on first use
  std::vector<int> region_end_;           // FindNumericRegions: per instruction, or -1
  std::vector<int> loop_end_;             // FindNumericLoops: per instruction, or -1
  std::vector<NumKind> local_kind_;       // GuessLocalKinds: per local
  std::vector<bool> open_local_;          // GuessLocalKinds: per local, the code left it open
  std::vector<bool> subscripted_;         // FindNumericLoops: per local, its items are used
  std::vector<Ref<>> kept_;               // TakeKeptAlive
  std::unordered_multimap<int, int> jump_sources_;  // jump target index -> jump's index
};

}  // namespace fatjit::jit

#endif  // FATJIT_JIT_FUNCTION_COMPILER_H_
