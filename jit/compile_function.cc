// The baseline translation: see compile_function.h for what it assumes and why it is sound.
#include "jit/compile_function.h"

#include <array>
#include <chrono>
#include <cstdlib>
#include <cstddef>
#include <cstring>
#include <functional>
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
#include "jit/backend_loader.h"
#include "jit/runtime/fast_paths.h"
#include "jit/runtime/frame_exits.h"
#include "jit/runtime/native_call.h"
#include "jit/runtime/runtime.h"
#include "specializer/bytecode/cfg.h"
#include "specializer/bytecode/decode.h"
#include "specializer/bytecode/opcode_tables.h"
#include "specializer/bytecode/stack_depth.h"

namespace fatjit::jit {
namespace {

using bytecode::Instruction;

// PyObject_IsTrue returns an int; native code calls helpers as returning int64.
extern "C" int64_t fatjit_rt_is_true(PyObject* value) { return PyObject_IsTrue(value); }

const Helper kEnter{"fatjit_rt_enter", reinterpret_cast<const void*>(&fatjit_rt_enter), 2};
const Helper kRaise{"fatjit_rt_raise", reinterpret_cast<const void*>(&fatjit_rt_raise), 4};
const Helper kDeopt{"fatjit_rt_deopt", reinterpret_cast<const void*>(&fatjit_rt_deopt), 3};
const Helper kExit{"fatjit_rt_exit", reinterpret_cast<const void*>(&fatjit_rt_exit), 3};
const Helper kUnboundLocal{"fatjit_rt_unbound_local",
                               reinterpret_cast<const void*>(&fatjit_rt_unbound_local), 3};
const Helper kEvalBreaker{"fatjit_rt_eval_breaker",
                              reinterpret_cast<const void*>(&fatjit_rt_eval_breaker), 1};
const Helper kGuardsHold{"fatjit_rt_guards_hold",
                             reinterpret_cast<const void*>(&fatjit_rt_guards_hold), 3};
const Helper kIsTrue{"fatjit_rt_is_true", reinterpret_cast<const void*>(&fatjit_rt_is_true),
                         1};
const Helper kDealloc{"_Py_Dealloc", reinterpret_cast<const void*>(&_Py_Dealloc), 1, false};
const Helper kLongFromInt64{"PyLong_FromLongLong",
                            reinterpret_cast<const void*>(&PyLong_FromLongLong), 1};
const Helper kBoxFloat{"fatjit_rt_box_float", reinterpret_cast<const void*>(&fatjit_rt_box_float),
                       1};

struct OpEntry {
  Helper helper{nullptr, nullptr, 0};
  HelperKind kind = HelperKind::kRunsCode;
};

const OpEntry kLoadGlobalCached{
    Helper{"fatjit_rt_LOAD_GLOBAL_CACHED",
           reinterpret_cast<const void*>(&fatjit_rt_LOAD_GLOBAL_CACHED), 5},
    HelperKind::kRunsCode};

const std::array<OpEntry, 256>& OpTable() {
  static const std::array<OpEntry, 256> table = [] {
    std::array<OpEntry, 256> t{};
#define FATJIT_OP_ENTRY(name, helper_kind) \
  t[name] = {Helper{"fatjit_rt_" #name, reinterpret_cast<const void*>(&fatjit_rt_##name), 5}, \
             HelperKind::helper_kind};
    FATJIT_RUNTIME_OPS(FATJIT_OP_ENTRY)
#undef FATJIT_OP_ENTRY
    return t;
  }();
  return table;
}

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

bool IsHandlerOnly(int opcode) {
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

bool EndsFlow(int opcode) {
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

int ParameterCount(PyCodeObject* code) {
  return code->co_argcount + code->co_kwonlyargcount + ((code->co_flags & CO_VARARGS) ? 1 : 0) +
         ((code->co_flags & CO_VARKEYWORDS) ? 1 : 0);
}

// Switches for the numeric fast paths (LowerBinaryOp, LowerCompareOp). FATJIT_JIT_INLINE_NUMBERS=0
// in the environment (read once) turns them off: BINARY_OP and COMPARE_OP are helper calls only,
// as before they existed (for A/B measurements and bisecting). kFuseCompareAndJump off: a fast
// compare pushes a bool for the POP_JUMP instead of branching itself.
bool NumericFastPathsEnabled() {
  static const bool enabled = [] {
    const char* setting = std::getenv("FATJIT_JIT_INLINE_NUMBERS");
    return setting == nullptr || std::string_view(setting) != "0";
  }();
  return enabled;
}
constexpr bool kFuseCompareAndJump = true;

struct Refused {
  JitRefusal refusal;
  std::string detail;
};

}  // namespace

// Builds one function through an Emitter. Lower() returns false with `refused` set when the
// function cannot be translated; it may have emitted a partial function then (discarded).
class FunctionCompiler {
 public:
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
  bool LowerHelper(int index, const OpEntry& op, PyObject* aux);

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
  void CountBuiltinCall();
  int LiveOpcode(const Instruction& inst) const;

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

  // Borrowed operands. A LOAD_FAST whose value the very next BINARY_OP, COMPARE_OP,
  // BINARY_SUBSCR or LOAD_ATTR (of its owner) consumes, with only LOAD_CONST and LOAD_FAST of
  // bound locals between (nothing that can exit or run code) and no jump into the stretch,
  // pushes the local's object without a reference of its own: the local keeps it alive until
  // the operation, which runs no code on its inline paths. Native code never exposes value-stack
  // slots to the collector (stacktop stays at co_nlocalsplus until an exit sets it, DESIGN.md),
  // so a borrowed slot is seen by nobody before the operation or an exit takes the reference.
  // The inline paths skip its decref, never write a result into it (its count says nothing of
  // the stack's), and count no stack reference to it when writing into a local; every way out to
  // the generic helper or an error exit first takes the reference the stack is expected to hold
  // (OwnBorrowedOperands), so the interpreter and the helpers see the usual stack.
  void FindBorrowedOperands();
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
    Block floats = -1;
    Block float_int = -1;
    Block int_float = -1;
  };
  NumberKinds BranchOnNumberKinds(Value left, Value right, bool ints, bool floats, bool mixed,
                                  Block slow);
  // Branches to `yes` when both exact ints have |ob_size| <= 2 (at most 60 bits), else `no`.
  void BranchIfSmallInts(Value left, Value right, Block yes, Block no);
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
  Value IntArithmetic(int op, Value a, Value b, Block slow);
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
  void TryResultIntoLocal(int index, Value left, Value right, PyTypeObject* type,
                          const std::function<Value(Value)>& can_hold,
                          const std::function<void(Value)>& write, Block otherwise);
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
  std::vector<bool> may_be_unbound_;  // per local: a LOAD_FAST must check for null
  std::vector<bool> jump_target_;     // per instruction: some jump goes there
  std::unordered_map<Value, PyObject*> constant_values_;  // OperandAt's immediates
  std::vector<bool> borrowed_push_;   // per instruction: a LOAD_FAST that takes no reference
  std::vector<uint8_t> borrow_mask_;  // per consumer: 1 second from top, 2 top borrowed
  std::unordered_set<Value> borrowed_values_;  // OperandAt's loads of borrowed operands
  Block current_ = 0;
  int lowering_opcode_offset_ = -1;  // of the instruction LowerInstruction is translating
  // Helper calls leave through one shared block that reads their site from a stack slot.
  Value exit_site_slot_ = 0;
  Block shared_exit_ = -1;
  std::string layout_error_;  // set when an exit would resume at a point the original lacks
  Value box_slot_ = -1;        // BoxInt's join: a StackSlot made on first use
};

bool FunctionCompiler::ValidResumePoint(int offset, int depth) const {
  int index = original_decoded_.IndexAt(offset);
  return index >= 0 && original_depth_[index] == depth;
}

void FunctionCompiler::CheckErrorPoint(const Instruction& inst) {
  const int index = original_decoded_.IndexAt(inst.offset);
  if (index < 0 || original_decoded_.instructions()[index].opcode_offset() != inst.opcode_offset()) {
    layout_error_ = absl::StrFormat("error exit at %d is not an instruction of the original",
                                    inst.offset);
  }
}

Block FunctionCompiler::ErrorExit(int depth, const Instruction& inst) {
  CheckErrorPoint(inst);
  Block resume = current_;
  Block exit = e_.NewBlock("error");
  Enter(exit);
  e_.Return(e_.Call(kRaise, {tstate_, frame_, e_.Imm(depth), e_.Imm(inst.opcode_offset())}));
  Enter(resume);
  return exit;
}

Block FunctionCompiler::DeoptExit(int target_offset, int depth, DeoptReason reason) {
  if (!ValidResumePoint(target_offset, depth)) {
    layout_error_ = absl::StrFormat("deopt target %d (depth %d) is not a resume point of the "
                                    "original",
                                    target_offset, depth);
  }
  DeoptSite& site = out_.sites_.emplace_back();
  site.target = target_offset;
  site.depth = depth;
  site.reason = reason;
  Block resume = current_;
  Block exit = e_.NewBlock(absl::StrCat("deopt_", DeoptReasonName(reason)));
  Enter(exit);
  e_.Return(e_.Call(kDeopt, {tstate_, frame_, e_.Ptr(&site)}));
  Enter(resume);
  return exit;
}

void FunctionCompiler::CheckAfterCode(int next_offset, int depth_after) {
  Value cframe = e_.Load(tstate_, kCframe);
  Value tracing = e_.LoadVolatile(cframe, kUseTracing, Width::k8);
  Block cont = e_.NewBlock("not_traced");
  Block deopt = DeoptExit(next_offset, depth_after, DeoptReason::kTracing);
  e_.BranchUnlikely(e_.Compare(Cmp::kNe, tracing, e_.Imm(0)), deopt, cont);
  Enter(cont);
  if (request_.recheck != nullptr) {
    Value ok =
        e_.Call(kGuardsHold, {e_.Ptr(request_.recheck.get()), frame_, e_.Imm(nparams_)});
    Block held = e_.NewBlock("guards_hold");
    Block failed = DeoptExit(next_offset, depth_after, DeoptReason::kGuardFailed);
    e_.BranchUnlikely(e_.Compare(Cmp::kEq, ok, e_.Imm(0)), failed, held);
    Enter(held);
  }
}

// A loop back-edge: polls the eval breaker as ceval's backward jumps do (CHECK_EVAL_BREAKER),
// then jumps to the loop head. `depth` is the stack depth at the jump target.
Block FunctionCompiler::BackEdge(const Instruction& inst, int depth) {
  Block resume = current_;
  Block edge = e_.NewBlock("back_edge");
  Enter(edge);
  PollEvalBreaker(inst, depth, inst.jump_target);
  JumpTo(inst.jump_target);
  Enter(resume);
  return edge;
}

void FunctionCompiler::PollEvalBreaker(const Instruction& inst, int depth, int resume_offset) {
  Value interp = e_.Load(tstate_, kInterp);
  Value breaker = e_.LoadVolatile(interp, kEvalBreakerFlag, Width::k32);
  Block pending = e_.NewBlock("eval_breaker");
  Block cont = e_.NewBlock("no_eval_breaker");
  e_.BranchUnlikely(e_.Compare(Cmp::kNe, breaker, e_.Imm(0)), pending, cont);
  Enter(pending);
  SetPrevInstr(inst.opcode_offset());
  Value r = e_.Call(kEvalBreaker, {tstate_});
  Block not_error = e_.NewBlock("breaker_no_error");
  e_.BranchUnlikely(e_.Compare(Cmp::kSlt, r, e_.Imm(0)), ErrorExit(depth, inst), not_error);
  Enter(not_error);
  Block handled = e_.NewBlock("breaker_handled");
  e_.BranchUnlikely(e_.Compare(Cmp::kNe, r, e_.Imm(0)),
                    DeoptExit(resume_offset, depth, DeoptReason::kEvalBreaker), handled);
  Enter(handled);
  CheckAfterCode(resume_offset, depth);  // a signal handler may have run anything
  e_.Jump(cont);
  Enter(cont);
}

bool FunctionCompiler::Lower() {
  PyCodeObject* original = request_.original;
  PyCodeObject* compiled = request_.compiled;
  const int flags = original->co_flags;
  if (flags & (CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR | CO_ITERABLE_COROUTINE)) {
    return Refuse(JitRefusal::kGenerator, "");
  }
  if ((flags & (CO_OPTIMIZED | CO_NEWLOCALS)) != (CO_OPTIMIZED | CO_NEWLOCALS)) {
    return Refuse(JitRefusal::kNotFunction, "");
  }
  if (compiled->co_nlocalsplus != original->co_nlocalsplus ||
      compiled->co_stacksize > original->co_stacksize || compiled->co_flags != original->co_flags) {
    return Refuse(JitRefusal::kLayoutMismatch, "locals, stack size or flags differ");
  }
  nlocalsplus_ = original->co_nlocalsplus;
  nparams_ = ParameterCount(original);
  code_units_ = _PyCode_CODE(original);

  auto decode = [](PyCodeObject* code, bytecode::DecodedCode& out,
                   std::vector<int>& depths) -> absl::Status {
    absl::StatusOr<bytecode::DecodedCode> d =
        bytecode::Decode(reinterpret_cast<PyObject*>(code), bytecode::CodeForm::kDeoptimized);
    if (!d.ok()) return d.status();
    absl::StatusOr<bytecode::ControlFlowGraph> cfg = bytecode::ControlFlowGraph::Build(*d);
    if (!cfg.ok()) return cfg.status();
    absl::StatusOr<bytecode::StackDepths> s = bytecode::ComputeStackDepths(*d, *cfg);
    if (!s.ok()) return s.status();
    out = *std::move(d);
    depths = std::move(s->depth_before);
    return absl::OkStatus();
  };
  if (absl::Status s = decode(compiled, decoded_, depth_); !s.ok()) {
    PyErr_Clear();
    return Refuse(JitRefusal::kMalformed, std::string(s.message()));
  }
  if (compiled == original) {
    original_decoded_ = decoded_;
    original_depth_ = depth_;
  } else if (absl::Status s = decode(original, original_decoded_, original_depth_); !s.ok()) {
    PyErr_Clear();
    return Refuse(JitRefusal::kMalformed, std::string(s.message()));
  }

  absl::Span<const Instruction> insts = decoded_.instructions();
  const int n = static_cast<int>(insts.size());
  if (n == 0) return Refuse(JitRefusal::kMalformed, "no instructions");

  // Normal reachability from the entry; handlers are reached only through errors.
  std::vector<bool> reachable(n, false);
  std::vector<int> work = {0};
  reachable[0] = true;
  while (!work.empty()) {
    const int i = work.back();
    work.pop_back();
    const Instruction& inst = insts[i];
    auto visit = [&](int index) {
      if (index >= 0 && index < n && !reachable[index]) {
        reachable[index] = true;
        work.push_back(index);
      }
    };
    if (IsHandlerOnly(inst.base_opcode)) continue;  // deopts there
    if (inst.base_opcode == RAISE_VARARGS) continue;
    if (inst.is_jump()) visit(decoded_.IndexAt(inst.jump_target));
    if (!EndsFlow(inst.base_opcode)) visit(i + 1);
  }
  for (int i = 0; i < n; ++i) {
    if (reachable[i] && depth_[i] == bytecode::kUnreachable) {
      return Refuse(JitRefusal::kMalformed, "reachable instruction without a stack depth");
    }
    if (reachable[i] && i + 1 == n && !EndsFlow(insts[i].base_opcode) &&
        !IsHandlerOnly(insts[i].base_opcode)) {
      return Refuse(JitRefusal::kMalformed, "falls off the end of the code");
    }
  }

  jump_target_.assign(n, false);
  for (const Instruction& inst : insts) {
    if (!inst.is_jump()) continue;
    const int target = decoded_.IndexAt(inst.jump_target);
    if (target >= 0 && target < n) jump_target_[target] = true;
  }

  // Locals that may be null at a LOAD_FAST: all but parameters the function never deletes.
  may_be_unbound_.assign(nlocalsplus_, true);
  for (int i = 0; i < nparams_ && i < nlocalsplus_; ++i) may_be_unbound_[i] = false;
  for (const Instruction& inst : insts) {
    if (inst.base_opcode == DELETE_FAST && inst.oparg < nlocalsplus_) {
      may_be_unbound_[inst.oparg] = true;
    }
  }

  tstate_ = e_.Param(0);
  frame_ = e_.Param(1);
  exit_site_slot_ = e_.StackSlot();
  shared_exit_ = e_.NewBlock("exit");
  blocks_.assign(n, -1);
  for (int i = 0; i < n; ++i) {
    if (reachable[i]) blocks_[i] = e_.NewBlock(absl::StrFormat("i%d", insts[i].offset));
  }
  FindBorrowedOperands();

  // Entry: count the recursion level and link the frame, as ceval's start_frame does. Inline
  // while levels remain (_Py_EnterRecursiveCallTstate's decrement and test); at the limit the
  // helper does the same and raises RecursionError as the interpreter would.
  current_ = 0;
  Value remaining = e_.Load(tstate_, kRecursionRemaining, Width::k32);
  Block inline_enter = e_.NewBlock("enter");
  Block helper_enter = e_.NewBlock("enter_at_limit");
  // Width::k32 loads zero-extend: a level count is positive well below 2^31.
  e_.Branch(e_.And(e_.Compare(Cmp::kSgt, remaining, e_.Imm(0)),
                   e_.Compare(Cmp::kSlt, remaining, e_.Imm(int64_t{1} << 31))),
            inline_enter, helper_enter);
  Enter(inline_enter);
  e_.Store(tstate_, kRecursionRemaining, e_.Sub(remaining, e_.Imm(1)), Width::k32);
  Value cframe = e_.Load(tstate_, kCframe);
  FrameStore(kPrevious, e_.Load(cframe, kCurrentFrame));
  e_.Store(cframe, kCurrentFrame, frame_);
  e_.Jump(blocks_[0]);
  Enter(helper_enter);
  Value entered = e_.Call(kEnter, {tstate_, frame_});
  Block fail = e_.NewBlock("recursion_error");
  e_.BranchUnlikely(e_.Compare(Cmp::kNe, entered, e_.Imm(0)), fail, blocks_[0]);
  Enter(fail);
  e_.Return(e_.Imm(0));

  for (int i = 0; i < n; ++i) {
    if (!reachable[i]) continue;
    Enter(blocks_[i]);
    if (!LowerInstruction(i)) return false;
  }
  Enter(shared_exit_);
  e_.Return(e_.Call(kExit, {tstate_, frame_, e_.Load(exit_site_slot_, 0)}));
  if (!layout_error_.empty()) return Refuse(JitRefusal::kLayoutMismatch, layout_error_);
  return true;
}

bool FunctionCompiler::LowerHelper(int index, const OpEntry& op, PyObject* aux) {
  const Instruction& inst = decoded_.instructions()[index];
  // The compiler charges PRECALL with popping the arguments and CALL with the rest; at run time
  // PRECALL leaves the stack as it is and CALL pops everything. Static depths follow the
  // compiler (so they match exception table and deopt depths); the helper needs the real one.
  const int d = depth_[index] + (inst.base_opcode == CALL ? inst.oparg : 0);
  absl::StatusOr<int> effect = bytecode::StackEffect(inst, false);
  if (!effect.ok()) return Refuse(JitRefusal::kMalformed, std::string(effect.status().message()));
  const bool runs_code = op.kind != HelperKind::kNoCode;
  // Where this instruction leaves: errors at its own offset and depth; after a call that turned
  // tracing on, to the next instruction.
  DeoptSite& site = out_.sites_.emplace_back();
  site.opcode_offset = inst.opcode_offset();
  site.error_depth = d;
  site.target = inst.next_offset();
  site.depth = depth_[index] + *effect;
  site.reason = DeoptReason::kTracing;
  CheckErrorPoint(inst);
  if (runs_code && !ValidResumePoint(site.target, site.depth)) {
    layout_error_ = absl::StrFormat("no resume point after %d", inst.offset);
  }

  SetPrevInstr(inst.opcode_offset());
  e_.Store(exit_site_slot_, 0, e_.Ptr(&site));
  Value sp = e_.Add(frame_, e_.Imm(SlotOffset(d)));
  Value r = e_.Call(op.helper, {tstate_, frame_, sp, e_.Imm(inst.oparg), e_.Ptr(aux)});
  Block next = NextBlock(index);
  if (op.kind == HelperKind::kForIter) {
    Block not_error = e_.NewBlock("not_error");
    e_.BranchUnlikely(e_.Compare(Cmp::kSlt, r, e_.Imm(0)), shared_exit_, not_error);
    Enter(not_error);
    Block next_value = e_.NewBlock("next_value");
    e_.Branch(e_.Compare(Cmp::kEq, r, e_.Imm(1)), BlockAt(inst.jump_target), next_value);
    Enter(next_value);
    r = e_.Imm(0);
  }
  if (!runs_code) {
    e_.BranchUnlikely(e_.Compare(Cmp::kNe, r, e_.Imm(0)), shared_exit_, next);
    return true;
  }
  // One test for both: the helper failed, or tracing was switched on while it ran.
  Value tracing = e_.LoadVolatile(e_.Load(tstate_, kCframe), kUseTracing, Width::k8);
  Value leave = e_.Compare(Cmp::kNe, e_.Or(r, tracing), e_.Imm(0));
  // ceval's calls end with CHECK_EVAL_BREAKER: a signal handler raises at the call.
  const bool polls = inst.base_opcode == CALL || inst.base_opcode == CALL_FUNCTION_EX;
  if (request_.recheck == nullptr && !polls) {
    e_.BranchUnlikely(leave, shared_exit_, next);
    return true;
  }
  Block cont = e_.NewBlock("stay");
  e_.BranchUnlikely(leave, shared_exit_, cont);
  Enter(cont);
  if (polls) PollEvalBreaker(inst, site.depth, inst.next_offset());
  if (request_.recheck == nullptr) {
    e_.Jump(next);
    return true;
  }
  Value ok = e_.Call(kGuardsHold, {e_.Ptr(request_.recheck.get()), frame_, e_.Imm(nparams_)});
  Block failed = DeoptExit(site.target, site.depth, DeoptReason::kGuardFailed);
  e_.BranchUnlikely(e_.Compare(Cmp::kEq, ok, e_.Imm(0)), failed, next);
  return true;
}

// ---- Numeric fast paths: BINARY_OP and COMPARE_OP on small ints and exact floats ------------
//
// Assumes CPython 3.11's layouts (static_asserts above): an exact int with |ob_size| <= 2 holds
// its magnitude in ob_digit[0] + ob_digit[1] << 30 (at most 60 bits), so sums, differences,
// quotients and remainders of two such values, and products of two in [-2^31, 2^31) (else the
// slow path), stay below 2^62 in magnitude, as do left shifts checked to (else the slow path);
// an exact float holds a C double in ob_fval.
// Produces, per BINARY_OP and COMPARE_OP: type tests on the two operands, the operation on
// machine values, the result written into an operand the stack owns alone or boxed anew
// (FinishIntResult, FinishFloatResult), and the generic helper call (LowerHelper) for every
// other case.
// Which fast paths are emitted follows the interpreter's own feedback when it has any (the
// quickened BINARY_OP_ADD_INT, COMPARE_OP_FLOAT_JUMP, ...): a site specialized for ints gets no
// float path, one for strings gets none. A COMPARE_OP directly followed by
// POP_JUMP_*_IF_FALSE/TRUE branches to the jump's successors on its fast paths, without a bool.
//
// Sound because: for two exact ints or two exact floats, the abstract operations reduce to
// int's and float's own slots (in-place forms fall back to them: both types are immutable),
// whose results are this arithmetic, compared as C compares (NaN unordered, -0.0 == 0.0). For
// an exact float and an exact int, int's slots return NotImplemented and float's convert the int
// with PyLong_AsDouble (float_add .. float_div) or compare exactly (float_richcompare); for ints
// of magnitude at most 2^53 the conversion is exact, so both are the double arithmetic and
// comparison done here. Division and modulo by zero, int true division, larger ints and every
// other type take the slow path. The fast paths run no Python code: boxing allocates untracked objects (no GC, so no
// finalizer), the operands are ints or floats whose deallocation runs nothing, and no error is
// possible except MemoryError from boxing (an error exit at the instruction, operands still on
// the stack). So they need no tracing or guard re-check afterwards, unlike the slow path. The
// fused POP_JUMP keeps its own block, lowered as usual, for the slow path and any other
// predecessor: jump targets and exception ranges are untouched, and a backward jump polls the
// eval breaker exactly as the POP_JUMP's own lowering does.

// The form the interpreter quickened the instruction to (its type feedback), or the base opcode.
int FunctionCompiler::LiveOpcode(const Instruction& inst) const {
  for (PyCodeObject* code : {request_.compiled, request_.original}) {
    if (inst.opcode_offset() >= Py_SIZE(code)) continue;
    const int live = _Py_OPCODE(_PyCode_CODE(code)[inst.opcode_offset()]);
    if (bytecode::DeoptOpcode(live) == inst.base_opcode) return live;
  }
  return inst.base_opcode;
}

FunctionCompiler::NumberKinds FunctionCompiler::BranchOnNumberKinds(Value left, Value right,
                                                                     bool ints, bool floats,
                                                                     bool mixed, Block slow) {
  NumberKinds kinds;
  Value left_type = TypeOf(left);
  Value right_type = TypeOf(right);
  Block float_test = floats ? e_.NewBlock("float_operands") : slow;
  if (ints) {
    Block both_int = e_.NewBlock("int_operands");
    kinds.ints = e_.NewBlock("compact_ints");
    e_.Branch(e_.And(IsType(left_type, &PyLong_Type), IsType(right_type, &PyLong_Type)), both_int,
              float_test);
    Enter(both_int);
    BranchIfSmallInts(left, right, kinds.ints, slow);
  } else {
    e_.Jump(float_test);
  }
  if (!floats) return kinds;
  Enter(float_test);
  kinds.floats = e_.NewBlock("float_operands_exact");
  Block mixed_test = mixed ? e_.NewBlock("mixed_operands") : slow;
  Value left_float = IsType(left_type, &PyFloat_Type);
  e_.Branch(e_.And(left_float, IsType(right_type, &PyFloat_Type)), kinds.floats, mixed_test);
  if (mixed) {
    // One float, one int: float's own slot computes (int's returns NotImplemented first).
    Enter(mixed_test);
    Block float_left = e_.NewBlock("float_left");
    Block int_left = e_.NewBlock("int_left");
    Block float_int_small = e_.NewBlock("float_int_small");
    Block int_float_small = e_.NewBlock("int_float_small");
    kinds.float_int = e_.NewBlock("float_int");
    kinds.int_float = e_.NewBlock("int_float");
    auto small = [&](Value v) {
      return e_.Compare(Cmp::kUlt, e_.Add(Field(v, kObSize), e_.Imm(2)), e_.Imm(5));
    };
    e_.Branch(left_float, float_left, int_left);
    Enter(float_left);
    e_.Branch(IsType(right_type, &PyLong_Type), float_int_small, slow);
    Enter(float_int_small);
    e_.Branch(small(right), kinds.float_int, slow);
    Enter(int_left);
    e_.Branch(e_.And(IsType(left_type, &PyLong_Type), IsType(right_type, &PyFloat_Type)),
              int_float_small, slow);
    Enter(int_float_small);
    e_.Branch(small(left), kinds.int_float, slow);
  }
  return kinds;
}

Value FunctionCompiler::ExactIntAsDouble(Value object, Block slow) {
  constexpr int64_t kExact = int64_t{1} << 53;
  Value value = SmallIntValue(object);
  Block exact = e_.NewBlock("int_exact_as_double");
  e_.Branch(e_.Compare(Cmp::kUlt, e_.Add(value, e_.Imm(kExact)), e_.Imm(2 * kExact + 1)), exact,
            slow);
  Enter(exact);
  return e_.IntToDouble(value);
}

void FunctionCompiler::BranchIfSmallInts(Value left, Value right, Block yes, Block no) {
  auto small = [&](Value v) {
    return e_.Compare(Cmp::kUlt, e_.Add(Field(v, kObSize), e_.Imm(2)), e_.Imm(5));
  };
  e_.Branch(e_.And(small(left), small(right)), yes, no);
}

Value FunctionCompiler::SmallIntValue(Value object) {
  PyObject* known = KnownConstant(object);
  if (known != nullptr && PyLong_CheckExact(known)) {
    return e_.Imm(PyLong_AsLongLong(known));  // at most two digits (OperandAt): never fails
  }
  Value size = Field(object, kObSize);
  Value negative = e_.Compare(Cmp::kSlt, size, e_.Imm(0));
  Value two_digits = e_.Compare(Cmp::kEq, e_.Select(negative, e_.Sub(e_.Imm(0), size), size),
                                e_.Imm(2));
  Value low = Field(object, kIntDigit0, Width::k32);
  // The second digit's address only when it exists (else the first's again, and unused).
  Value high_at = e_.Select(two_digits, e_.Add(object, e_.Imm(sizeof(digit))), object);
  Value high = e_.Select(two_digits, Field(high_at, kIntDigit0, Width::k32), e_.Imm(0));
  Value magnitude = e_.Add(low, e_.Mul(high, e_.Imm(int64_t{1} << PyLong_SHIFT)));
  // Zero has ob_size 0 and a first digit that need not be 0 (long_normalize leaves it).
  Value value = e_.Select(negative, e_.Sub(e_.Imm(0), magnitude), magnitude);
  return e_.Select(e_.Compare(Cmp::kEq, size, e_.Imm(0)), e_.Imm(0), value);
}

namespace {

// BINARY_OP's in-place forms compute as the binary ones for immutable numbers.
int BinaryOpBase(int op) { return op >= NB_INPLACE_ADD ? op - NB_INPLACE_ADD : op; }

bool IntOpInline(int op) {
  switch (BinaryOpBase(op)) {
    case NB_ADD: case NB_SUBTRACT: case NB_MULTIPLY: case NB_AND: case NB_OR: case NB_XOR:
    case NB_FLOOR_DIVIDE: case NB_REMAINDER: case NB_LSHIFT: case NB_RSHIFT:
      return true;
    default:
      return false;  // true division makes a float; powers can grow past int64
  }
}

bool FloatOpInline(int op) {
  switch (BinaryOpBase(op)) {
    case NB_ADD: case NB_SUBTRACT: case NB_MULTIPLY: case NB_TRUE_DIVIDE:
      return true;
    default:
      return false;
  }
}

Cmp IntComparison(int op) {
  switch (op) {
    case Py_LT: return Cmp::kSlt;
    case Py_LE: return Cmp::kSle;
    case Py_EQ: return Cmp::kEq;
    case Py_NE: return Cmp::kNe;
    case Py_GT: return Cmp::kSgt;
    default: return Cmp::kSge;
  }
}

FCmp FloatComparison(int op) {
  switch (op) {
    case Py_LT: return FCmp::kOlt;
    case Py_LE: return FCmp::kOle;
    case Py_EQ: return FCmp::kOeq;
    case Py_NE: return FCmp::kUne;
    case Py_GT: return FCmp::kOgt;
    default: return FCmp::kOge;
  }
}

bool IsPopJumpOnBool(int opcode) {
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

}  // namespace

Value FunctionCompiler::IntArithmetic(int op, Value a, Value b, Block slow) {
  switch (BinaryOpBase(op)) {
    case NB_ADD: return e_.Add(a, b);
    case NB_SUBTRACT: return e_.Sub(a, b);
    case NB_MULTIPLY: {
      // Operands of up to 60 bits: the product stays below 2^62 when both are in [-2^31, 2^31).
      auto fits = [&](Value v) {
        return e_.Compare(Cmp::kUlt, e_.Add(v, e_.Imm(int64_t{1} << 31)),
                          e_.Imm(int64_t{1} << 32));
      };
      Block product = e_.NewBlock("int_product");
      e_.BranchUnlikely(e_.And(fits(a), fits(b)), product, slow);
      Enter(product);
      return e_.Mul(a, b);
    }
    case NB_AND: return e_.And(a, b);
    case NB_OR: return e_.Or(a, b);
    case NB_XOR: return e_.Xor(a, b);
    case NB_RSHIFT: {
      // floor(a / 2^b): an arithmetic shift, by at most 63 (every larger count gives what 63
      // gives: 0 or -1). A negative count raises ValueError: the slow path does.
      Block counted = e_.NewBlock("rshift_count");
      e_.BranchUnlikely(e_.Compare(Cmp::kSlt, b, e_.Imm(0)), slow, counted);
      Enter(counted);
      return e_.AShr(a, e_.Select(e_.Compare(Cmp::kSlt, b, e_.Imm(63)), b, e_.Imm(63)));
    }
    case NB_LSHIFT: {
      // a * 2^b when the count is in [0, 62] and the product stays below 2^62 in magnitude
      // (shifting back gives a again); anything else (a negative count raises) takes the slow path.
      constexpr int64_t kLimit = int64_t{1} << 62;
      Block counted = e_.NewBlock("lshift_count");
      Block shifted = e_.NewBlock("lshift_fits");
      e_.Branch(e_.Compare(Cmp::kUlt, b, e_.Imm(63)), counted, slow);
      Enter(counted);
      Value r = e_.Shl(a, b);
      Value exact = e_.Compare(Cmp::kEq, e_.AShr(r, b), a);
      Value small = e_.Compare(Cmp::kUlt, e_.Add(r, e_.Imm(kLimit - 1)), e_.Imm(2 * kLimit - 1));
      e_.Branch(e_.And(exact, small), shifted, slow);
      Enter(shifted);
      return r;
    }
    default: break;
  }
  // Floor division and modulo: C truncates; Python rounds toward -inf, so when the remainder is
  // nonzero with the divisor's opposite sign, the quotient is one less and the modulo one
  // divisor more. Division by zero raises: the slow path does.
  Block nonzero = e_.NewBlock("nonzero_divisor");
  e_.BranchUnlikely(e_.Compare(Cmp::kEq, b, e_.Imm(0)), slow, nonzero);
  Enter(nonzero);
  Value r = e_.SRem(a, b);
  Value adjust = e_.And(e_.Compare(Cmp::kNe, r, e_.Imm(0)),
                        e_.Compare(Cmp::kSlt, e_.Xor(r, b), e_.Imm(0)));
  if (BinaryOpBase(op) == NB_FLOOR_DIVIDE) return e_.Sub(e_.SDiv(a, b), adjust);
  return e_.Add(r, e_.Mul(b, adjust));
}

Value FunctionCompiler::CachedSmallInt(Value value, Block other) {
  Block small = e_.NewBlock("small_int");
  Value biased = e_.Add(value, e_.Imm(_PY_NSMALLNEGINTS));
  e_.Branch(e_.Compare(Cmp::kUlt, biased, e_.Imm(_PY_NSMALLNEGINTS + _PY_NSMALLPOSINTS)), small,
            other);
  Enter(small);
  PyLongObject* small_ints = _Py_SINGLETON(small_ints);
  Value cached = e_.Add(e_.Ptr(small_ints), e_.Mul(biased, e_.Imm(sizeof(PyLongObject))));
  Incref(cached);
  return cached;
}

Value FunctionCompiler::BoxInt(Value value, const Instruction& inst, int depth) {
  if (box_slot_ < 0) box_slot_ = e_.StackSlot();
  Block allocate = e_.NewBlock("box_int");
  Block boxed = e_.NewBlock("int_boxed");
  e_.Store(box_slot_, 0, CachedSmallInt(value, allocate));
  e_.Jump(boxed);
  Enter(allocate);
  Value object = e_.Call(kLongFromInt64, {value});
  Block allocated = e_.NewBlock("int_allocated");
  e_.BranchUnlikely(e_.Compare(Cmp::kEq, object, e_.Imm(0)), ErrorExit(depth, inst), allocated);
  Enter(allocated);
  e_.Store(box_slot_, 0, object);
  e_.Jump(boxed);
  Enter(boxed);
  return e_.Load(box_slot_, 0);
}

void FunctionCompiler::FinishNumeric(int index, Value left, Value right, Value result) {
  const int d = depth_[index];
  Decref(right);  // ceval's order; neither can run code (int and float deallocs run none)
  Decref(left);
  StoreSlot(d - 2, result);
  e_.Jump(NextBlock(index));
}

// Reusing an operand: an exact int or float whose only reference is the value stack's is
// referenced by nothing else that could see it change (ints and floats have no weak references
// and are not tracked by the collector), and the interpreter would free it right after the
// operation; writing the result into it gives an object equal in every observable way to a new
// one. Small ints (-5..256) are never reused (the stack is never their only owner) and always
// come from the cache, as CPython's own results do.
void FunctionCompiler::FinishIntResult(int index, Value left, Value right, Value value) {
  Block large = e_.NewBlock("large_int");
  FinishNumeric(index, left, right, CachedSmallInt(value, large));

  Enter(large);
  Value negative = e_.Compare(Cmp::kSlt, value, e_.Imm(0));
  Value magnitude = e_.Select(negative, e_.Sub(e_.Imm(0), value), value);
  Value two_digits = e_.Compare(Cmp::kSge, magnitude, e_.Imm(int64_t{1} << PyLong_SHIFT));
  Value digits = e_.Select(two_digits, e_.Imm(2), e_.Imm(1));
  Value fits_two = e_.Compare(Cmp::kSlt, magnitude, e_.Imm(int64_t{1} << (2 * PyLong_SHIFT)));
  PlaceNumericResult(
      index, left, right, &PyLong_Type,
      // Room for the digits: an int has max(1, |ob_size|) digits at least.
      [&](Value target) {
        Value size = Field(target, kObSize);
        Value room =
            e_.Select(e_.Compare(Cmp::kSlt, size, e_.Imm(0)), e_.Sub(e_.Imm(0), size), size);
        room = e_.Select(e_.Compare(Cmp::kEq, room, e_.Imm(0)), e_.Imm(1), room);
        return e_.And(fits_two, e_.Compare(Cmp::kSge, room, digits));
      },
      [&](Value target) {
        Value high_at = e_.Select(two_digits, e_.Add(target, e_.Imm(sizeof(digit))), target);
        SetField(high_at, kIntDigit0, e_.SDiv(magnitude, e_.Imm(int64_t{1} << PyLong_SHIFT)),
                 Width::k32);
        SetField(target, kIntDigit0, e_.And(magnitude, e_.Imm(PyLong_MASK)), Width::k32);
        SetField(target, kObSize, e_.Select(negative, e_.Sub(e_.Imm(0), digits), digits));
      },
      [&] { return e_.Call(kLongFromInt64, {value}); });
}

// Where a numeric result goes, first that applies: into the object of the local the next
// STORE_FAST replaces (TryResultIntoLocal), into an operand only the stack refers to, or into a
// new object from `allocate` (null: MemoryError, an error exit with the operands on the stack).
// `can_hold(object)`: the object has room for the result; `write(object)` puts it there.
void FunctionCompiler::PlaceNumericResult(int index, Value left, Value right, PyTypeObject* type,
                                          const std::function<Value(Value)>& can_hold,
                                          const std::function<void(Value)>& write,
                                          const std::function<Value()>& allocate) {
  const Instruction& inst = decoded_.instructions()[index];
  const int d = depth_[index];
  Block try_left = e_.NewBlock("try_left");
  Block into_left = e_.NewBlock(type == &PyFloat_Type ? "float_into_left" : "int_into_left");
  Block try_right = e_.NewBlock("try_right");
  Block into_right = e_.NewBlock("into_right");
  Block allocate_new = e_.NewBlock("allocate_result");
  TryResultIntoLocal(index, left, right, type, can_hold, write, try_left);
  auto sole_owner = [&](Value operand) {
    if (Borrowed(operand)) return e_.Imm(0);  // the local's object: never written into
    return e_.And(e_.Compare(Cmp::kEq, Refcount(operand), e_.Imm(1)), can_hold(operand));
  };
  auto write_into = [&](Value target, Value other) {
    write(target);
    Decref(other);  // an int or float: its deallocation runs nothing
    StoreSlot(d - 2, target);
    e_.Jump(NextBlock(index));
  };
  Enter(try_left);
  e_.Branch(sole_owner(left), into_left, try_right);
  Enter(into_left);
  write_into(left, right);
  Enter(try_right);
  e_.Branch(sole_owner(right), into_right, allocate_new);
  Enter(into_right);
  write_into(right, left);
  Enter(allocate_new);
  Value object = allocate();
  Block allocated = e_.NewBlock("result_allocated");
  e_.BranchUnlikely(e_.Compare(Cmp::kEq, object, e_.Imm(0)), OperandErrorExit(index, inst),
                    allocated);
  Enter(allocated);
  FinishNumeric(index, left, right, object);
}

// `local = a op b`: the local's current object, when nothing but the local and the operands
// refer to it, would be released by the STORE_FAST right after the operation; it takes the
// result instead (the same reasoning as for a temporary operand), and the STORE_FAST's block is
// skipped: the local already holds the result. The operands' stack references are released as
// usual; one that is the local's object keeps the local's reference, so it is not freed.
void FunctionCompiler::TryResultIntoLocal(int index, Value left, Value right, PyTypeObject* type,
                                          const std::function<Value(Value)>& can_hold,
                                          const std::function<void(Value)>& write,
                                          Block otherwise) {
  absl::Span<const Instruction> insts = decoded_.instructions();
  if (index + 2 >= static_cast<int>(insts.size()) || insts[index + 1].base_opcode != STORE_FAST ||
      blocks_[index + 1] < 0 || blocks_[index + 2] < 0 || insts[index + 1].oparg >= nlocalsplus_) {
    e_.Jump(otherwise);
    return;
  }
  Value local = FrameLoad(LocalOffset(insts[index + 1].oparg));
  Block bound = e_.NewBlock("local_bound");
  Block take = e_.NewBlock("into_local");
  e_.Branch(e_.Compare(Cmp::kNe, local, e_.Imm(0)), bound, otherwise);
  Enter(bound);
  // References to the local's object: the local's, and the stack's for each operand that is it
  // (none for a borrowed operand).
  auto stack_reference = [&](Value operand) {
    return Borrowed(operand) ? e_.Imm(0) : e_.Compare(Cmp::kEq, local, operand);
  };
  Value owners =
      e_.Add(e_.Imm(1), e_.Add(stack_reference(left), stack_reference(right)));
  Value sole = e_.And(IsType(TypeOf(local), type),
                      e_.Compare(Cmp::kEq, Refcount(local), owners));
  e_.Branch(e_.And(sole, can_hold(local)), take, otherwise);
  Enter(take);
  write(local);
  Decref(right);  // ceval's order; an operand that is the local's object keeps a reference
  Decref(left);
  e_.Jump(NextBlock(index + 1));
}

void FunctionCompiler::FinishFloatResult(int index, Value left, Value right, Value bits,
                                          bool mixed) {
  PlaceNumericResult(
      index, left, right, &PyFloat_Type,
      [&](Value target) {
        return mixed ? IsType(TypeOf(target), &PyFloat_Type) : e_.Imm(1);
      },
      [&](Value target) { SetField(target, kFloatValue, bits); },
      [&] { return e_.Call(kBoxFloat, {bits}); });
}

// Native code enters an instruction's block by falling through from the one before, by a jump
// to it, or (TryResultIntoLocal, a compare fused with its jump) by skipping a STORE_FAST or
// POP_JUMP right before it. So when `index` is no jump target and the instructions from a
// LOAD_CONST up to it only push (LOAD_CONST, LOAD_FAST: the values below stay), the slot the
// LOAD_CONST wrote holds its constant at `index`.
PyObject* FunctionCompiler::ConstantInSlot(int index, int depth) const {
  absl::Span<const Instruction> insts = decoded_.instructions();
  for (int i = index - 1; i >= 0 && !jump_target_[i + 1]; --i) {
    const Instruction& inst = insts[i];
    if (depth_[i] == bytecode::kUnreachable || depth_[i] < depth) return nullptr;
    if (inst.base_opcode == LOAD_CONST && depth_[i] == depth) {
      PyObject* constant = PyTuple_GET_ITEM(request_.compiled->co_consts, inst.oparg);
      return constant;
    }
    if (inst.base_opcode != LOAD_CONST && inst.base_opcode != LOAD_FAST) return nullptr;
  }
  return nullptr;
}

Value FunctionCompiler::OperandAt(int index, int depth) {
  PyObject* constant = ConstantInSlot(index, depth);
  const bool foldable =
      constant != nullptr &&
      ((PyLong_CheckExact(constant) && std::abs(Py_SIZE(constant)) <= 2) ||
       PyFloat_CheckExact(constant));
  if (!foldable) {
    Value v = LoadSlot(depth);
    const int side = depth == depth_[index] - 2 ? 1 : 2;
    if ((borrow_mask_[index] & side) != 0) borrowed_values_.insert(v);
    return v;
  }
  Value v = e_.Ptr(constant);
  constant_values_[v] = constant;
  return v;
}

void FunctionCompiler::FindBorrowedOperands() {
  absl::Span<const Instruction> insts = decoded_.instructions();
  const int n = static_cast<int>(insts.size());
  borrowed_push_.assign(n, false);
  borrow_mask_.assign(n, 0);
  if (!NumericFastPathsEnabled()) return;
  auto quiet_push = [&](const Instruction& inst) {  // pushes one value; cannot exit
    return inst.base_opcode == LOAD_CONST ||
           (inst.base_opcode == LOAD_FAST && inst.oparg >= 0 && inst.oparg < nlocalsplus_ &&
            !may_be_unbound_[inst.oparg]);
  };
  for (int c = 0; c < n; ++c) {
    const int op = insts[c].base_opcode;
    const bool two = op == BINARY_OP || op == COMPARE_OP || op == BINARY_SUBSCR;
    if ((!two && !(op == LOAD_ATTR && AttrCachesEnabled())) || blocks_[c] < 0) continue;
    const int d = depth_[c];
    for (int side = two ? 1 : 2; side <= 2; ++side) {
      const int depth = d - 3 + side;  // left: d - 2, right: d - 1
      for (int i = c - 1; i >= 0 && !jump_target_[i + 1] && blocks_[i] >= 0; --i) {
        const Instruction& inst = insts[i];
        if (depth_[i] == depth) {
          if (inst.base_opcode == LOAD_FAST && inst.oparg >= 0 && inst.oparg < nlocalsplus_) {
            borrowed_push_[i] = true;
            borrow_mask_[c] |= side;
          }
          break;
        }
        if (depth_[i] < depth || !quiet_push(inst)) break;
      }
    }
  }
}

void FunctionCompiler::OwnBorrowedOperands(int index) {
  const int d = depth_[index];
  if ((borrow_mask_[index] & 1) != 0) Incref(LoadSlot(d - 2));
  if ((borrow_mask_[index] & 2) != 0) Incref(LoadSlot(d - 1));
}

Block FunctionCompiler::OperandErrorExit(int index, const Instruction& inst) {
  Block exit = ErrorExit(depth_[index], inst);
  if (borrow_mask_[index] == 0) return exit;
  Block resume = current_;
  Block own = e_.NewBlock("own_operands");
  Enter(own);
  OwnBorrowedOperands(index);
  e_.Jump(exit);
  Enter(resume);
  return own;
}

bool FunctionCompiler::LowerBinaryOp(int index) {
  const Instruction& inst = decoded_.instructions()[index];
  const int d = depth_[index];
  const int op = inst.oparg;
  bool ints = IntOpInline(op);
  bool floats = FloatOpInline(op);
  bool mixed = floats;  // unless the interpreter saw only floats here
  switch (LiveOpcode(inst)) {
    case BINARY_OP_ADD_INT: case BINARY_OP_SUBTRACT_INT: case BINARY_OP_MULTIPLY_INT:
      floats = mixed = false;
      break;
    case BINARY_OP_ADD_FLOAT: case BINARY_OP_SUBTRACT_FLOAT: case BINARY_OP_MULTIPLY_FLOAT:
      ints = mixed = false;
      break;
    case BINARY_OP_ADD_UNICODE: case BINARY_OP_INPLACE_ADD_UNICODE:
      ints = floats = mixed = false;
      break;
    default:
      break;
  }
  const OpEntry& generic = OpTable()[BINARY_OP];
  if (!NumericFastPathsEnabled() || (!ints && !floats)) {
    OwnBorrowedOperands(index);
    return LowerHelper(index, generic, nullptr);
  }

  Block slow = e_.NewBlock("binary_op_generic");
  Value left = OperandAt(index, d - 2);
  Value right = OperandAt(index, d - 1);
  const NumberKinds kinds = BranchOnNumberKinds(left, right, ints, floats, mixed, slow);
  if (ints) {
    Enter(kinds.ints);
    Value result = IntArithmetic(op, SmallIntValue(left), SmallIntValue(right), slow);
    FinishIntResult(index, left, right, result);
  }
  if (floats) {
    Enter(kinds.floats);
    FinishFloatResult(index, left, right,
                      FloatArithmetic(op, FloatBits(left), FloatBits(right), slow));
  }
  if (mixed) {
    Enter(kinds.float_int);
    Value int_right = ExactIntAsDouble(right, slow);
    FinishFloatResult(index, left, right, FloatArithmetic(op, FloatBits(left), int_right, slow),
                      /*mixed=*/true);
    Enter(kinds.int_float);
    Value int_left = ExactIntAsDouble(left, slow);
    FinishFloatResult(index, left, right, FloatArithmetic(op, int_left, FloatBits(right), slow),
                      /*mixed=*/true);
  }
  Enter(slow);
  OwnBorrowedOperands(index);
  return LowerHelper(index, generic, nullptr);
}

Value FunctionCompiler::FloatArithmetic(int op, Value a, Value b, Block slow) {
  switch (BinaryOpBase(op)) {
    case NB_ADD: return e_.FAdd(a, b);
    case NB_SUBTRACT: return e_.FSub(a, b);
    case NB_MULTIPLY: return e_.FMul(a, b);
    default: {  // NB_TRUE_DIVIDE: float division by zero (or -0.0) raises: the slow path does
      Block nonzero = e_.NewBlock("nonzero_divisor");
      e_.BranchUnlikely(e_.FCompare(FCmp::kOeq, b, e_.Imm(0)), slow, nonzero);
      Enter(nonzero);
      return e_.FDiv(a, b);
    }
  }
}

bool FunctionCompiler::LowerCompareOp(int index) {
  absl::Span<const Instruction> insts = decoded_.instructions();
  const Instruction& inst = insts[index];
  const int d = depth_[index];
  const int op = inst.oparg;
  bool ints = true;
  bool floats = true;
  bool mixed = true;  // unless the interpreter saw only floats here
  switch (LiveOpcode(inst)) {
    case COMPARE_OP_INT_JUMP: floats = mixed = false; break;
    case COMPARE_OP_FLOAT_JUMP: ints = mixed = false; break;
    case COMPARE_OP_STR_JUMP: ints = floats = mixed = false; break;
    default: break;
  }
  const OpEntry& generic = OpTable()[COMPARE_OP];
  if (!NumericFastPathsEnabled() || op < Py_LT || op > Py_GE || (!ints && !floats)) {
    OwnBorrowedOperands(index);
    return LowerHelper(index, generic, nullptr);
  }

  // Where a true and a false outcome go: the successors of a POP_JUMP on the bool that follows
  // (it pops the bool: depth d - 2 after it), or blocks that push the bool.
  Block on_true;
  Block on_false;
  const bool fused = index + 2 < static_cast<int>(insts.size()) &&
                     IsPopJumpOnBool(insts[index + 1].base_opcode) && blocks_[index + 1] >= 0 &&
                     blocks_[index + 2] >= 0 && kFuseCompareAndJump;
  if (fused) {
    const Instruction& jump_inst = insts[index + 1];
    const bool jump_if_true = jump_inst.base_opcode == POP_JUMP_FORWARD_IF_TRUE ||
                              jump_inst.base_opcode == POP_JUMP_BACKWARD_IF_TRUE;
    Block jump = IsBackward(jump_inst) ? BackEdge(jump_inst, depth_[index + 1] - 1)
                                       : BlockAt(jump_inst.jump_target);
    on_true = jump_if_true ? jump : NextBlock(index + 1);
    on_false = jump_if_true ? NextBlock(index + 1) : jump;
  } else {
    on_true = e_.NewBlock("push_true");
    on_false = e_.NewBlock("push_false");
  }

  Block slow = e_.NewBlock("compare_generic");
  Value left = OperandAt(index, d - 2);
  Value right = OperandAt(index, d - 1);
  const NumberKinds kinds = BranchOnNumberKinds(left, right, ints, floats, mixed, slow);
  if (ints) {
    Enter(kinds.ints);
    Value holds = e_.Compare(IntComparison(op), SmallIntValue(left), SmallIntValue(right));
    Decref(right);
    Decref(left);
    e_.Branch(holds, on_true, on_false);
  }
  if (floats) {
    auto compare = [&](Value a, Value b) {
      Value holds = e_.FCompare(FloatComparison(op), a, b);
      Decref(right);
      Decref(left);
      e_.Branch(holds, on_true, on_false);
    };
    Enter(kinds.floats);
    compare(FloatBits(left), FloatBits(right));
    if (mixed) {
      Enter(kinds.float_int);
      Value int_right = ExactIntAsDouble(right, slow);
      compare(FloatBits(left), int_right);
      Enter(kinds.int_float);
      Value int_left = ExactIntAsDouble(left, slow);
      compare(int_left, FloatBits(right));
    }
  }
  if (!fused) {
    for (auto [block, object] : {std::pair{on_true, Py_True}, std::pair{on_false, Py_False}}) {
      Enter(block);
      Value result = e_.Ptr(object);
      Incref(result);
      StoreSlot(d - 2, result);
      e_.Jump(NextBlock(index));
    }
  }
  Enter(slow);
  OwnBorrowedOperands(index);
  return LowerHelper(index, generic, nullptr);
}

// BINARY_SUBSCR of an exact list or tuple by a compact int in [0, len), as ceval's
// BINARY_SUBSCR_LIST_INT / _TUPLE_INT do (negative indexes, slices, other types: the helper).
// The container loses a reference without reaching zero (a last reference takes the slow path,
// where releasing the container may run finalizers and is followed by the usual checks); the
// index is an int: nothing here runs code or raises.
bool FunctionCompiler::LowerSubscript(int index) {
  const Instruction& inst = decoded_.instructions()[index];
  const int d = depth_[index];
  bool lists = true;
  bool tuples = true;
  switch (LiveOpcode(inst)) {
    case BINARY_SUBSCR_LIST_INT: tuples = false; break;
    case BINARY_SUBSCR_TUPLE_INT: lists = false; break;
    case BINARY_SUBSCR_DICT: case BINARY_SUBSCR_GETITEM: lists = tuples = false; break;
    default: break;
  }
  const OpEntry& generic = OpTable()[BINARY_SUBSCR];
  if (!NumericFastPathsEnabled() || (!lists && !tuples)) {
    OwnBorrowedOperands(index);
    return LowerHelper(index, generic, nullptr);
  }
  Block slow = e_.NewBlock("subscript_generic");
  Block int_index = e_.NewBlock("int_index");
  Block compact_index = e_.NewBlock("compact_index");
  Value container = OperandAt(index, d - 2);
  Value sub = OperandAt(index, d - 1);
  e_.Branch(IsType(TypeOf(sub), &PyLong_Type), int_index, slow);
  Enter(int_index);
  e_.Branch(e_.Compare(Cmp::kUlt, e_.Add(Field(sub, kObSize), e_.Imm(1)), e_.Imm(3)),
            compact_index, slow);
  Enter(compact_index);
  Value i = CompactIntValue(sub);
  Value container_type = TypeOf(container);
  // In range (a negative index is a huge unsigned one) and not the container's last reference
  // (a borrowed one is the local's).
  auto usable = [&]() {
    Value in_range = e_.Compare(Cmp::kUlt, i, Field(container, kObSize));
    if (Borrowed(container)) return in_range;
    return e_.And(in_range, e_.Compare(Cmp::kSgt, Refcount(container), e_.Imm(1)));
  };
  auto finish = [&](Value item) {
    Incref(item);
    Decref(sub);  // an int: its deallocation runs nothing
    if (!Borrowed(container)) DecrefNoDealloc(container);
    StoreSlot(d - 2, item);
    e_.Jump(NextBlock(index));
  };
  Block tuple_test = tuples ? e_.NewBlock("tuple_test") : slow;
  if (lists) {
    Block list = e_.NewBlock("list_index");
    Block list_item = e_.NewBlock("list_item");
    e_.Branch(IsType(container_type, &PyList_Type), list, tuple_test);
    Enter(list);
    e_.Branch(usable(), list_item, slow);
    Enter(list_item);
    Value items = e_.Load(container, offsetof(PyListObject, ob_item));
    finish(e_.Load(e_.Add(items, e_.Mul(i, e_.Imm(sizeof(PyObject*)))), 0));
  }
  if (tuples) {
    if (!lists) e_.Jump(tuple_test);
    Enter(tuple_test);
    Block tuple = e_.NewBlock("tuple_index");
    Block tuple_item = e_.NewBlock("tuple_item");
    e_.Branch(IsType(container_type, &PyTuple_Type), tuple, slow);
    Enter(tuple);
    e_.Branch(usable(), tuple_item, slow);
    Enter(tuple_item);
    Value address = e_.Add(container, e_.Mul(i, e_.Imm(sizeof(PyObject*))));
    finish(e_.Load(address, offsetof(PyTupleObject, ob_item)));
  }
  Enter(slow);
  OwnBorrowedOperands(index);
  return LowerHelper(index, generic, nullptr);
}

// STORE_SUBSCR of an exact list by a compact int in [0, len), as ceval's STORE_SUBSCR_LIST_INT
// does, when nothing it releases can run code: the list is not the stack's last reference and
// the item it replaces either keeps other references or is an exact int or float (whose
// deallocation runs nothing). Everything else (dicts, slices, negative indexes, a replaced item
// whose release may run __del__) takes the helper, followed by the usual checks.
bool FunctionCompiler::LowerStoreSubscript(int index) {
  const Instruction& inst = decoded_.instructions()[index];
  const int d = depth_[index];
  const OpEntry& generic = OpTable()[STORE_SUBSCR];
  if (!NumericFastPathsEnabled() || LiveOpcode(inst) == STORE_SUBSCR_DICT) {
    return LowerHelper(index, generic, nullptr);
  }
  Block slow = e_.NewBlock("store_subscript_generic");
  Block int_index = e_.NewBlock("store_int_index");
  Block list = e_.NewBlock("store_list");
  Block store = e_.NewBlock("store_list_item");
  Value sub = LoadSlot(d - 1);
  Value container = LoadSlot(d - 2);
  Value value = LoadSlot(d - 3);
  Value size = Field(sub, kObSize);
  e_.Branch(e_.And(IsType(TypeOf(sub), &PyLong_Type), e_.Compare(Cmp::kUlt, size, e_.Imm(2))),
            int_index, slow);
  Enter(int_index);
  Value i = e_.Select(e_.Compare(Cmp::kEq, size, e_.Imm(0)), e_.Imm(0),
                      Field(sub, kIntDigit0, Width::k32));
  e_.Branch(e_.And(IsType(TypeOf(container), &PyList_Type),
                   e_.And(e_.Compare(Cmp::kUlt, i, Field(container, kObSize)),
                          e_.Compare(Cmp::kSgt, Refcount(container), e_.Imm(1)))),
            list, slow);
  Enter(list);
  Value slot = e_.Add(e_.Load(container, offsetof(PyListObject, ob_item)),
                      e_.Mul(i, e_.Imm(sizeof(PyObject*))));
  Value old = e_.Load(slot, 0);
  Value old_type = TypeOf(old);
  Value quiet = e_.Or(e_.Compare(Cmp::kSgt, Refcount(old), e_.Imm(1)),
                      e_.Or(IsType(old_type, &PyFloat_Type), IsType(old_type, &PyLong_Type)));
  e_.Branch(quiet, store, slow);
  Enter(store);
  e_.Store(slot, 0, value);  // the stack's reference to the value moves into the list
  Decref(old);
  Decref(sub);
  DecrefNoDealloc(container);
  e_.Jump(NextBlock(index));
  Enter(slow);
  return LowerHelper(index, generic, nullptr);
}

// FOR_ITER over an exact range or list iterator, inline: what rangeiter_next and listiter_next
// do while values remain. A range iterator's exhaustion pops and releases it here (its
// deallocation runs nothing); a list iterator's, which releases the list, takes the helper, as
// does every other iterator. Layouts are the private structs of rangeobject.c and listobject.c,
// checked against the types' basic sizes before use.
namespace {
struct RangeIterLayout {
  PyObject_HEAD
  long index;
  long start;
  long step;
  long len;
};
struct ListIterLayout {
  PyObject_HEAD
  Py_ssize_t index;
  PyListObject* seq;
};
}  // namespace

bool FunctionCompiler::LowerForIter(int index) {
  const Instruction& inst = decoded_.instructions()[index];
  const int d = depth_[index];
  const OpEntry& generic = OpTable()[FOR_ITER];
  const bool ranges = PyRangeIter_Type.tp_basicsize == sizeof(RangeIterLayout);
  const bool lists = PyListIter_Type.tp_basicsize == sizeof(ListIterLayout);
  if (!NumericFastPathsEnabled() || (!ranges && !lists)) {
    return LowerHelper(index, generic, nullptr);
  }
  Block slow = e_.NewBlock("for_iter_generic");
  Value iter = LoadSlot(d - 1);
  Value type = TypeOf(iter);
  Block list_test = lists ? e_.NewBlock("list_iter_test") : slow;
  if (ranges) {
    Block range = e_.NewBlock("range_iter");
    Block next_value = e_.NewBlock("range_next");
    Block exhausted = e_.NewBlock("range_exhausted");
    e_.Branch(IsType(type, &PyRangeIter_Type), range, list_test);
    Enter(range);
    Value i = Field(iter, offsetof(RangeIterLayout, index));
    e_.Branch(e_.Compare(Cmp::kSlt, i, Field(iter, offsetof(RangeIterLayout, len))),
              next_value, exhausted);
    Enter(next_value);
    // start + index * step with C's unsigned wrap-around, as rangeiter_next computes it.
    Value value = e_.Add(Field(iter, offsetof(RangeIterLayout, start)),
                         e_.Mul(i, Field(iter, offsetof(RangeIterLayout, step))));
    SetField(iter, offsetof(RangeIterLayout, index), e_.Add(i, e_.Imm(1)));
    StoreSlot(d, BoxInt(value, inst, d));
    e_.Jump(NextBlock(index));
    Enter(exhausted);
    Decref(iter);
    JumpTo(inst.jump_target);
  }
  if (lists) {
    if (!ranges) e_.Jump(list_test);
    Enter(list_test);
    Block list = e_.NewBlock("list_iter");
    Block has_items = e_.NewBlock("list_iter_seq");
    Block next_item = e_.NewBlock("list_next");
    e_.Branch(IsType(type, &PyListIter_Type), list, slow);
    Enter(list);
    Value seq = Field(iter, offsetof(ListIterLayout, seq));
    e_.Branch(e_.Compare(Cmp::kNe, seq, e_.Imm(0)), has_items, slow);
    Enter(has_items);
    Value i = Field(iter, offsetof(ListIterLayout, index));
    e_.Branch(e_.Compare(Cmp::kSlt, i, Field(seq, kObSize)), next_item, slow);
    Enter(next_item);
    Value item = e_.Load(e_.Add(e_.Load(seq, offsetof(PyListObject, ob_item)),
                                e_.Mul(i, e_.Imm(sizeof(PyObject*)))),
                         0);
    Incref(item);
    SetField(iter, offsetof(ListIterLayout, index), e_.Add(i, e_.Imm(1)));
    StoreSlot(d, item);
    e_.Jump(NextBlock(index));
  }
  Enter(slow);
  return LowerHelper(index, generic, nullptr);
}

// LOAD_ATTR and STORE_ATTR: the first entry of the site's cache probed inline for the two kinds
// that are plain memory accesses in the instance (attr_cache.h says why a hit is sound): an
// instance value of a managed dict that is not materialized, and a __slots__ member. The owner
// must not be the stack's last reference (releasing it could run __del__). Each leaves the
// current block in the miss path, which calls the helper (every entry probed, a refill, or the
// generic lookup).
void FunctionCompiler::ProbeAttrCacheInline(AttrCache& cache, Value owner, Block miss,
                                            const std::function<void(Value)>& at_address) {
  const AttrCacheEntry& entry = cache.entries[0];
  Value at = e_.Ptr(&entry);
  Block probe = e_.NewBlock("attr_cache_probe");
  Block instance_value = e_.NewBlock("attr_instance_value");
  Block values_present = e_.NewBlock("attr_values");
  Block slot_test = e_.NewBlock("attr_slot_test");
  Block slot = e_.NewBlock("attr_slot");
  Value version = e_.Load(at, offsetof(AttrCacheEntry, type_version), Width::k32);
  Value type_version = e_.Load(TypeOf(owner), offsetof(PyTypeObject, tp_version_tag), Width::k32);
  e_.Branch(e_.And(e_.And(e_.Compare(Cmp::kEq, version, type_version),
                          e_.Compare(Cmp::kNe, version, e_.Imm(0))),
                   e_.Compare(Cmp::kSgt, Refcount(owner), e_.Imm(1))),
            probe, miss);
  Enter(probe);
  Value kind = e_.Load(at, offsetof(AttrCacheEntry, kind), Width::k8);
  Value index = e_.Load(at, offsetof(AttrCacheEntry, index));
  e_.Branch(e_.Compare(Cmp::kEq, kind, e_.Imm(static_cast<int>(AttrCacheKind::kInstanceValue))),
            instance_value, slot_test);
  Enter(instance_value);
  // _PyObject_ValuesPointer: the values pointer sits four words before a managed-dict object.
  Value values = e_.Load(owner, -4 * static_cast<int64_t>(sizeof(PyObject*)));
  e_.Branch(e_.Compare(Cmp::kNe, values, e_.Imm(0)), values_present, miss);
  Enter(values_present);
  at_address(e_.Add(values, e_.Mul(index, e_.Imm(sizeof(PyObject*)))));
  Enter(slot_test);
  e_.Branch(e_.Compare(Cmp::kEq, kind, e_.Imm(static_cast<int>(AttrCacheKind::kSlot))), slot,
            miss);
  Enter(slot);
  at_address(e_.Add(owner, index));  // kSlot's index is the member's byte offset
}

void FunctionCompiler::CountAttrCacheHit() {
  Value hits = e_.Ptr(&GlobalJitCounters().attr_cache_hits);
  e_.Store(hits, 0, e_.Add(e_.Load(hits, 0), e_.Imm(1)));
}

void FunctionCompiler::InlineLoadAttr(int index, AttrCache& cache) {
  const int d = depth_[index];
  Value owner = OperandAt(index, d - 1);
  Block miss = e_.NewBlock("attr_cache_miss");
  ProbeAttrCacheInline(cache, owner, miss, [&](Value address) {
    Value value = e_.Load(address, 0);
    Block found = e_.NewBlock("attr_cache_hit");
    e_.Branch(e_.Compare(Cmp::kNe, value, e_.Imm(0)), found, miss);
    Enter(found);
    CountAttrCacheHit();
    Incref(value);
    if (!Borrowed(owner)) DecrefNoDealloc(owner);
    StoreSlot(d - 1, value);
    e_.Jump(NextBlock(index));
  });
  Enter(miss);
}

// LOAD_METHOD [owner] -> [method, owner]: the first entry, when it holds a method found on the
// owner's type that the instance cannot shadow (ProbeMethod in attr_cache.cc, inline).
void FunctionCompiler::InlineLoadMethod(int index, AttrCache& cache) {
  const int d = depth_[index];
  const AttrCacheEntry& entry = cache.entries[0];
  Value at = e_.Ptr(&entry);
  Value owner = LoadSlot(d - 1);
  Block miss = e_.NewBlock("method_cache_miss");
  Block method = e_.NewBlock("method_cache_entry");
  Block with_keys = e_.NewBlock("method_shared_keys");
  Block hit = e_.NewBlock("method_cache_hit");
  Value type = TypeOf(owner);
  Value version = e_.Load(at, offsetof(AttrCacheEntry, type_version), Width::k32);
  Value kind = e_.Load(at, offsetof(AttrCacheEntry, kind), Width::k8);
  e_.Branch(e_.And(e_.And(e_.Compare(Cmp::kEq, version,
                                     e_.Load(type, offsetof(PyTypeObject, tp_version_tag),
                                             Width::k32)),
                          e_.Compare(Cmp::kNe, version, e_.Imm(0))),
                   e_.Compare(Cmp::kEq, kind,
                              e_.Imm(static_cast<int>(AttrCacheKind::kMethod)))),
            method, miss);
  Enter(method);
  Value keys = e_.Load(at, offsetof(AttrCacheEntry, shared_keys));
  e_.Branch(e_.Compare(Cmp::kEq, keys, e_.Imm(0)), hit, with_keys);
  Enter(with_keys);
  // A managed-dict instance: no materialized dict (at obj[-3]) and the type's shared keys
  // unchanged in size (they only grow), so the instance still lacks the name.
  Value dict = e_.Load(owner, -3 * static_cast<int64_t>(sizeof(PyObject*)));
  Value same_keys =
      e_.Compare(Cmp::kEq, e_.Load(type, offsetof(PyHeapTypeObject, ht_cached_keys)), keys);
  Value entries = e_.Load(keys, offsetof(PyDictKeysObject, dk_nentries));
  e_.Branch(e_.And(e_.And(e_.Compare(Cmp::kEq, dict, e_.Imm(0)), same_keys),
                   e_.Compare(Cmp::kEq, entries,
                              e_.Load(at, offsetof(AttrCacheEntry, shared_keys_entries)))),
            hit, miss);
  Enter(hit);
  CountAttrCacheHit();
  Value function = e_.Load(at, offsetof(AttrCacheEntry, value));
  Incref(function);
  StoreSlot(d - 1, function);
  StoreSlot(d, owner);  // the slot's reference moves up
  e_.Jump(NextBlock(index));
  Enter(miss);
}

// PRECALL [method-or-NULL, callable-or-self, args...]: the helper only unpacks an exact bound
// method in the callable slot when the first slot is NULL. After a LOAD_METHOD that found a
// method (the first slot is set), or for any other callable, it does nothing: those cases skip
// it here.
void FunctionCompiler::InlinePrecallOfMethod(int index) {
  if (!NumericFastPathsEnabled()) return;
  const Instruction& inst = decoded_.instructions()[index];
  const int d = depth_[index];  // PRECALL's depth: the arguments are still on the stack
  Block not_method = e_.NewBlock("precall_no_self");
  Block unpack = e_.NewBlock("precall_unpack");
  e_.Branch(e_.Compare(Cmp::kNe, LoadSlot(d - inst.oparg - 2), e_.Imm(0)), NextBlock(index),
            not_method);
  // [NULL, callable, args...]: the helper only unpacks an exact bound method; anything else
  // (a function, a type, a builtin) it leaves as it is.
  Enter(not_method);
  e_.Branch(IsType(TypeOf(LoadSlot(d - inst.oparg - 1)), &PyMethod_Type), unpack,
            NextBlock(index));
  Enter(unpack);
}

void FunctionCompiler::CountBuiltinCall() {
  Value calls = e_.Ptr(&GlobalJitCounters().builtin_calls);
  e_.Store(calls, 0, e_.Add(e_.Load(calls, 0), e_.Imm(1)));
}

// CALL 1 [list.append, list, item] -> [None]: what ceval's PRECALL_NO_KW_LIST_APPEND does
// (the callable is the interpreter's own list.append, interp->callable_cache.list_append, and
// self a list), for an exact list with room for the item (_PyList_AppendTakeRef without the
// resize) that is not the stack's last reference. It runs no code and cannot fail, so nothing
// else of a call is needed (ceval's specialized form skips the eval-breaker check too). The
// item's reference moves into the list. Every other case (a resize, a subclass, another
// callable) takes the helper: CallBuiltinDirectly or the generic call.
void FunctionCompiler::InlineListAppend(int index) {
  PyObject* append = PyInterpreterState_Get()->callable_cache.list_append;
  if (!NumericFastPathsEnabled() || append == nullptr) return;
  const int d = depth_[index] + 1;  // CALL's run-time depth (static depths charge PRECALL)
  Block room_test = e_.NewBlock("list_append_test");
  Block append_item = e_.NewBlock("list_append");
  Block miss = e_.NewBlock("list_append_generic");
  Value method = LoadSlot(d - 3);
  Value list = LoadSlot(d - 2);  // never NULL: self, or the callable when method is NULL
  Value item = LoadSlot(d - 1);
  e_.Branch(e_.And(e_.Compare(Cmp::kEq, method, e_.Ptr(append)),
                   IsType(TypeOf(list), &PyList_Type)),
            room_test, miss);
  Enter(room_test);
  Value size = Field(list, kObSize);
  e_.Branch(e_.And(e_.Compare(Cmp::kSlt, size, Field(list, offsetof(PyListObject, allocated))),
                   e_.Compare(Cmp::kSgt, Refcount(list), e_.Imm(1))),
            append_item, miss);
  Enter(append_item);
  Value items = Field(list, offsetof(PyListObject, ob_item));
  e_.Store(e_.Add(items, e_.Mul(size, e_.Imm(sizeof(PyObject*)))), 0, item);
  SetField(list, kObSize, e_.Add(size, e_.Imm(1)));
  DecrefNoDealloc(list);
  DecrefNoDealloc(method);  // list's type dict holds the descriptor
  Value none = e_.Ptr(Py_None);
  Incref(none);
  StoreSlot(d - 3, none);
  CountBuiltinCall();
  e_.Jump(NextBlock(index));
  Enter(miss);
}

// [value, owner] -> []: only over an existing value whose release runs nothing (other references
// remain, or an exact int or float); a new attribute (insertion order to record) or a value
// with a finalizer takes the helper.
void FunctionCompiler::InlineStoreAttr(int index, AttrCache& cache) {
  const int d = depth_[index];
  Value owner = LoadSlot(d - 1);
  Value value = LoadSlot(d - 2);
  Block miss = e_.NewBlock("attr_cache_miss");
  ProbeAttrCacheInline(cache, owner, miss, [&](Value address) {
    Value old = e_.Load(address, 0);
    Block present = e_.NewBlock("attr_store_present");
    Block store = e_.NewBlock("attr_store_hit");
    e_.Branch(e_.Compare(Cmp::kNe, old, e_.Imm(0)), present, miss);
    Enter(present);
    Value old_type = TypeOf(old);
    e_.Branch(e_.Or(e_.Compare(Cmp::kSgt, Refcount(old), e_.Imm(1)),
                    e_.Or(IsType(old_type, &PyFloat_Type), IsType(old_type, &PyLong_Type))),
              store, miss);
    Enter(store);
    CountAttrCacheHit();
    e_.Store(address, 0, value);  // the stack's reference moves into the instance
    Decref(old);
    DecrefNoDealloc(owner);
    e_.Jump(NextBlock(index));
  });
  Enter(miss);
}

bool FunctionCompiler::LowerInstruction(int index) {
  const Instruction& inst = decoded_.instructions()[index];
  lowering_opcode_offset_ = inst.opcode_offset();
  const int d = depth_[index];
  const int oparg = inst.oparg;
  PyCodeObject* compiled = request_.compiled;
  auto name = [&](int i) -> PyObject* { return PyTuple_GET_ITEM(compiled->co_names, i); };

  switch (inst.base_opcode) {
    case RESUME:  // the function's start (oparg 0): ceval polls the eval breaker here
      if (oparg < 2) PollEvalBreaker(inst, d, inst.next_offset());
      e_.Jump(NextBlock(index));
      return true;
    case NOP:
    case KW_NAMES:  // read by the CALL it precedes
      e_.Jump(NextBlock(index));
      return true;

    case LOAD_FAST:
    case LOAD_CLOSURE: {
      Value v = FrameLoad(LocalOffset(oparg));
      if (oparg < 0 || oparg >= nlocalsplus_) return Refuse(JitRefusal::kMalformed, "local index");
      if (may_be_unbound_[oparg]) {
        Block bound = e_.NewBlock("bound");
        Block unbound = e_.NewBlock("unbound");
        e_.BranchUnlikely(e_.Compare(Cmp::kEq, v, e_.Imm(0)), unbound, bound);
        Enter(unbound);
        SetPrevInstr(inst.opcode_offset());
        e_.Call(kUnboundLocal, {tstate_, frame_, e_.Imm(oparg)});
        e_.Jump(ErrorExit(d, inst));
        Enter(bound);
      }
      if (!borrowed_push_[index]) Incref(v);
      StoreSlot(d, v);
      e_.Jump(NextBlock(index));
      return true;
    }
    case LOAD_CONST: {
      PyObject* constant = PyTuple_GET_ITEM(compiled->co_consts, oparg);
      Value v = e_.Ptr(constant);
      Incref(v);
      StoreSlot(d, v);
      e_.Jump(NextBlock(index));
      return true;
    }
    case STORE_FAST: {
      Value v = LoadSlot(d - 1);
      Value old = FrameLoad(LocalOffset(oparg));
      FrameStore(LocalOffset(oparg), v);
      XDecref(old);
      e_.Jump(NextBlock(index));
      return true;
    }
    case POP_TOP:
      Decref(LoadSlot(d - 1));
      e_.Jump(NextBlock(index));
      return true;
    case PUSH_NULL:
      StoreSlot(d, e_.Imm(0));
      e_.Jump(NextBlock(index));
      return true;
    case COPY: {
      Value v = LoadSlot(d - oparg);
      Incref(v);
      StoreSlot(d, v);
      e_.Jump(NextBlock(index));
      return true;
    }
    case SWAP: {
      Value top = LoadSlot(d - 1);
      Value other = LoadSlot(d - oparg);
      StoreSlot(d - 1, other);
      StoreSlot(d - oparg, top);
      e_.Jump(NextBlock(index));
      return true;
    }
    case IS_OP: {
      Value left = LoadSlot(d - 2);
      Value right = LoadSlot(d - 1);
      Value same = e_.Compare(oparg ? Cmp::kNe : Cmp::kEq, left, right);
      Decref(left);
      Decref(right);
      Block yes = e_.NewBlock("is_true");
      Block no = e_.NewBlock("is_false");
      e_.Branch(same, yes, no);
      for (auto [block, object] : {std::pair{yes, Py_True}, std::pair{no, Py_False}}) {
        Enter(block);
        Value result = e_.Ptr(object);
        Incref(result);
        StoreSlot(d - 2, result);
        e_.Jump(NextBlock(index));
      }
      return true;
    }

    case JUMP_FORWARD:
    case JUMP_BACKWARD_NO_INTERRUPT:
      JumpTo(inst.jump_target);
      return true;
    case JUMP_BACKWARD:
      e_.Jump(BackEdge(inst, d));
      return true;
    case POP_JUMP_FORWARD_IF_FALSE:
    case POP_JUMP_BACKWARD_IF_FALSE:
    case POP_JUMP_FORWARD_IF_TRUE:
    case POP_JUMP_BACKWARD_IF_TRUE: {
      const bool jump_if_true =
          inst.base_opcode == POP_JUMP_FORWARD_IF_TRUE || inst.base_opcode == POP_JUMP_BACKWARD_IF_TRUE;
      Block jump = IsBackward(inst) ? BackEdge(inst, d - 1) : BlockAt(inst.jump_target);
      Block on_true = jump_if_true ? jump : NextBlock(index);
      Block on_false = jump_if_true ? NextBlock(index) : jump;
      Value v = LoadSlot(d - 1);
      Block is_true = e_.NewBlock("true");
      Block not_true = e_.NewBlock("not_true");
      Block is_false = e_.NewBlock("false");
      Block general = e_.NewBlock("is_true_call");
      e_.Branch(e_.Compare(Cmp::kEq, v, e_.Ptr(Py_True)), is_true, not_true);
      Enter(is_true);
      DecrefNoDealloc(v);
      e_.Jump(on_true);
      Enter(not_true);
      // An exact int is true when nonzero (ob_size != 0); dropping it runs no code.
      Block int_test = NumericFastPathsEnabled() ? e_.NewBlock("int_test") : general;
      e_.Branch(e_.Compare(Cmp::kEq, v, e_.Ptr(Py_False)), is_false, int_test);
      Enter(is_false);
      DecrefNoDealloc(v);
      e_.Jump(on_false);
      if (NumericFastPathsEnabled()) {
        Enter(int_test);
        Block int_truth = e_.NewBlock("int_truth");
        e_.Branch(IsType(TypeOf(v), &PyLong_Type), int_truth, general);
        Enter(int_truth);
        Value nonzero = e_.Compare(Cmp::kNe, Field(v, kObSize), e_.Imm(0));
        Decref(v);
        e_.Branch(nonzero, on_true, on_false);
      }
      Enter(general);
      SetPrevInstr(inst.opcode_offset());
      Value truth = e_.Call(kIsTrue, {v});
      Decref(v);
      Block decided = e_.NewBlock("decided");
      e_.BranchUnlikely(e_.Compare(Cmp::kSlt, truth, e_.Imm(0)), ErrorExit(d - 1, inst), decided);
      Enter(decided);
      // __bool__ or __len__ may have run; the successors check again after their own calls.
      e_.Branch(e_.Compare(Cmp::kNe, truth, e_.Imm(0)), on_true, on_false);
      return true;
    }
    case POP_JUMP_FORWARD_IF_NONE:
    case POP_JUMP_BACKWARD_IF_NONE:
    case POP_JUMP_FORWARD_IF_NOT_NONE:
    case POP_JUMP_BACKWARD_IF_NOT_NONE: {
      const bool jump_if_none =
          inst.base_opcode == POP_JUMP_FORWARD_IF_NONE || inst.base_opcode == POP_JUMP_BACKWARD_IF_NONE;
      Block jump = IsBackward(inst) ? BackEdge(inst, d - 1) : BlockAt(inst.jump_target);
      Value v = LoadSlot(d - 1);
      Value is_none = e_.Compare(Cmp::kEq, v, e_.Ptr(Py_None));
      Block none = e_.NewBlock("none");
      Block some = e_.NewBlock("not_none");
      e_.Branch(is_none, none, some);
      Enter(none);
      DecrefNoDealloc(v);
      e_.Jump(jump_if_none ? jump : NextBlock(index));
      Enter(some);
      Decref(v);
      e_.Jump(jump_if_none ? NextBlock(index) : jump);
      return true;
    }
    case JUMP_IF_FALSE_OR_POP:
    case JUMP_IF_TRUE_OR_POP: {
      const bool jump_if_true = inst.base_opcode == JUMP_IF_TRUE_OR_POP;
      Value v = LoadSlot(d - 1);
      // Jumping keeps the value on the stack; falling through pops it.
      Block keep = e_.NewBlock("keep_and_jump");
      Block pop = e_.NewBlock("pop");
      Block not_true = e_.NewBlock("not_true");
      Block general = e_.NewBlock("is_true_call");
      Block is_true = jump_if_true ? keep : pop;
      Block is_false = jump_if_true ? pop : keep;
      e_.Branch(e_.Compare(Cmp::kEq, v, e_.Ptr(Py_True)), is_true, not_true);
      Enter(not_true);
      Block known_false = e_.NewBlock("false");
      e_.Branch(e_.Compare(Cmp::kEq, v, e_.Ptr(Py_False)), known_false, general);
      Enter(known_false);
      e_.Jump(is_false);
      Enter(general);
      SetPrevInstr(inst.opcode_offset());
      Value truth = e_.Call(kIsTrue, {v});
      Block decided = e_.NewBlock("decided");
      e_.BranchUnlikely(e_.Compare(Cmp::kSlt, truth, e_.Imm(0)), ErrorExit(d, inst), decided);
      Enter(decided);
      e_.Branch(e_.Compare(Cmp::kNe, truth, e_.Imm(0)), is_true, is_false);
      Enter(keep);
      JumpTo(inst.jump_target);
      Enter(pop);
      Decref(v);
      e_.Jump(NextBlock(index));
      return true;
    }
    case RETURN_VALUE: {
      if (d != 1) return Refuse(JitRefusal::kMalformed, "RETURN_VALUE with a deeper stack");
      Value v = LoadSlot(0);
      SetPrevInstr(inst.opcode_offset());
      // The level back, the frame unlinked (_Py_LeaveRecursiveCallTstate, ceval's pop).
      e_.Store(tstate_, kRecursionRemaining,
               e_.Add(e_.Load(tstate_, kRecursionRemaining, Width::k32), e_.Imm(1)), Width::k32);
      e_.Store(e_.Load(tstate_, kCframe), kCurrentFrame, FrameLoad(kPrevious));
      e_.Return(v);
      return true;
    }
    case RAISE_VARARGS:
      if (oparg == 0) {  // a bare raise: the interpreter re-raises without a traceback entry
        e_.Jump(DeoptExit(inst.offset, d, DeoptReason::kReraise));
        return true;
      }
      SetPrevInstr(inst.opcode_offset());
      e_.Call(OpTable()[RAISE_VARARGS].helper,
              {tstate_, frame_, e_.Add(frame_, e_.Imm(SlotOffset(d))), e_.Imm(oparg), e_.Imm(0)});
      e_.Jump(ErrorExit(d, inst));
      return true;

    case LOAD_GLOBAL: {
      // The cache's hit test inline (global_cache.h says why it is sound); a miss, which also
      // refills the cache, is the helper's.
      GlobalCache& cache = out_.global_caches_.emplace_back();
      cache.name = name(oparg >> 1);
      Value at = e_.Ptr(&cache);
      Value value = e_.Load(at, offsetof(GlobalCache, value));
      Value globals = FrameLoad(offsetof(_PyInterpreterFrame, f_globals));
      Value builtins = FrameLoad(offsetof(_PyInterpreterFrame, f_builtins));
      Block same_dicts = e_.NewBlock("global_cache_dicts");
      Block hit = e_.NewBlock("global_cache_hit");
      Block miss = e_.NewBlock("global_cache_miss");
      e_.Branch(e_.And(e_.Compare(Cmp::kNe, value, e_.Imm(0)),
                       e_.And(e_.Compare(Cmp::kEq, globals,
                                         e_.Load(at, offsetof(GlobalCache, globals))),
                              e_.Compare(Cmp::kEq, builtins,
                                         e_.Load(at, offsetof(GlobalCache, builtins))))),
                same_dicts, miss);
      Enter(same_dicts);
      constexpr int64_t kVersion = offsetof(PyDictObject, ma_version_tag);
      e_.Branch(e_.And(e_.Compare(Cmp::kEq, e_.Load(globals, kVersion),
                                  e_.Load(at, offsetof(GlobalCache, globals_version))),
                       e_.Compare(Cmp::kEq, e_.Load(builtins, kVersion),
                                  e_.Load(at, offsetof(GlobalCache, builtins_version)))),
                hit, miss);
      Enter(hit);
      if (oparg & 1) StoreSlot(d, e_.Imm(0));
      Incref(value);
      StoreSlot(d + (oparg & 1), value);
      e_.Jump(NextBlock(index));
      Enter(miss);
      return LowerHelper(index, kLoadGlobalCached, reinterpret_cast<PyObject*>(&cache));
    }
    case LOAD_ATTR:
    case STORE_ATTR:
    case LOAD_METHOD: {
      // Per-site caches (jit/runtime/attr_cache.h); FATJIT_JIT_ATTR_CACHE=0: generic helpers.
      static const OpEntry kCached[] = {
          {Helper{"fatjit_rt_LOAD_ATTR_CACHED",
                  reinterpret_cast<const void*>(&fatjit_rt_LOAD_ATTR_CACHED), 5},
           HelperKind::kRunsCode},
          {Helper{"fatjit_rt_STORE_ATTR_CACHED",
                  reinterpret_cast<const void*>(&fatjit_rt_STORE_ATTR_CACHED), 5},
           HelperKind::kRunsCode},
          {Helper{"fatjit_rt_LOAD_METHOD_CACHED",
                  reinterpret_cast<const void*>(&fatjit_rt_LOAD_METHOD_CACHED), 5},
           HelperKind::kRunsCode}};
      if (!AttrCachesEnabled()) return LowerHelper(index, OpTable()[inst.base_opcode], name(oparg));
      AttrCache& cache = out_.attr_caches_.emplace_back();
      cache.name = name(oparg);
      const int which = inst.base_opcode == LOAD_ATTR ? 0 : inst.base_opcode == STORE_ATTR ? 1 : 2;
      if (inst.base_opcode == LOAD_ATTR) InlineLoadAttr(index, cache);
      if (inst.base_opcode == STORE_ATTR) InlineStoreAttr(index, cache);
      if (inst.base_opcode == LOAD_METHOD) InlineLoadMethod(index, cache);
      OwnBorrowedOperands(index);  // a LOAD_ATTR's owner, on the miss path
      return LowerHelper(index, kCached[which], reinterpret_cast<PyObject*>(&cache));
    }
    case STORE_GLOBAL:
    case DELETE_GLOBAL:
    case DELETE_ATTR:
    case IMPORT_NAME:
    case IMPORT_FROM:
      return LowerHelper(index, OpTable()[inst.base_opcode], name(oparg));
    case BINARY_OP:
      return LowerBinaryOp(index);
    case BINARY_SUBSCR:
      return LowerSubscript(index);
    case STORE_SUBSCR:
      return LowerStoreSubscript(index);
    case FOR_ITER:
      return LowerForIter(index);
    case COMPARE_OP:
      return LowerCompareOp(index);
    case CALL: {
      // KW_NAMES, PRECALL, CALL: the names tuple of the KW_NAMES two instructions back.
      PyObject* kwnames = nullptr;
      absl::Span<const Instruction> insts = decoded_.instructions();
      if (index >= 2 && insts[index - 1].base_opcode == PRECALL &&
          insts[index - 2].base_opcode == KW_NAMES) {
        kwnames = PyTuple_GET_ITEM(compiled->co_consts, insts[index - 2].oparg);
      }
      if (kwnames != nullptr) return LowerHelper(index, OpTable()[CALL], kwnames);
      if (oparg == 1) InlineListAppend(index);
      static const OpEntry kCallCached{
          Helper{"fatjit_rt_CALL_CACHED", reinterpret_cast<const void*>(&fatjit_rt_CALL_CACHED),
                 5},
          HelperKind::kRunsCode};
      DirectCallCache& cache = out_.call_caches_.emplace_back();
      return LowerHelper(index, kCallCached, reinterpret_cast<PyObject*>(&cache));
    }
    case PRECALL:
      InlinePrecallOfMethod(index);
      return LowerHelper(index, OpTable()[PRECALL], nullptr);
    default:
      break;
  }
  if (IsHandlerOnly(inst.base_opcode)) {
    e_.Jump(DeoptExit(inst.offset, d,
                      inst.base_opcode == RERAISE ? DeoptReason::kReraise
                                                  : DeoptReason::kHandlerCode));
    return true;
  }
  const OpEntry& op = OpTable()[inst.base_opcode];
  if (op.helper.address == nullptr) {
    return Refuse(JitRefusal::kUnsupportedOpcode, bytecode::OpcodeName(inst.base_opcode));
  }
  return LowerHelper(index, op, nullptr);
}

const char* JitRefusalName(JitRefusal refusal) {
  switch (refusal) {
#define FATJIT_JIT_REFUSAL_NAME(name, id, text) \
  case JitRefusal::name:                        \
    return id;
    FATJIT_JIT_REFUSALS(FATJIT_JIT_REFUSAL_NAME)
#undef FATJIT_JIT_REFUSAL_NAME
    case JitRefusal::kCount:
      break;
  }
  return "?";
}

const char* JitRefusalMessage(JitRefusal refusal) {
  switch (refusal) {
#define FATJIT_JIT_REFUSAL_TEXT(name, id, text) \
  case JitRefusal::name:                        \
    return text;
    FATJIT_JIT_REFUSALS(FATJIT_JIT_REFUSAL_TEXT)
#undef FATJIT_JIT_REFUSAL_TEXT
    case JitRefusal::kCount:
      break;
  }
  return "?";
}

namespace {
uint64_t g_code_limit = 0;

uint64_t NanosecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                              start)
      .count();
}
}  // namespace

uint64_t CodeLimit() { return g_code_limit; }
void SetCodeLimit(uint64_t bytes) { g_code_limit = bytes; }

LowerResult LowerFunction(CompileRequest request) {
  LowerResult result;
  JitCounters& counters = GlobalJitCounters();
  if (g_code_limit != 0 && counters.code_bytes >= g_code_limit) {
    ++counters.compile_failures;
    result.refusal = JitRefusal::kCodeLimit;
    result.detail = absl::StrFormat("%u bytes live, limit %u", counters.code_bytes, g_code_limit);
    return result;
  }
  const bool first = !BackendLoaded();
  auto start = std::chrono::steady_clock::now();
  absl::StatusOr<Backend*> backend = LoadBackend();
  if (first) {  // loading libLLVM (once per process) is not compile time
    counters.backend_load_ns += NanosecondsSince(start);
    start = std::chrono::steady_clock::now();
  }
  if (!backend.ok()) {
    ++counters.compile_failures;
    result.refusal = JitRefusal::kBackendUnavailable;
    result.detail = std::string(backend.status().message());
    return result;
  }
  auto lowered = std::make_unique<LoweredFunction>();
  lowered->backend = *backend;
  lowered->code = std::make_unique<NativeCode>(*backend);
  if (const char* level = std::getenv("FATJIT_JIT_OPT")) request.options.opt_level = std::atoi(level);
  const char* qualname = PyUnicode_AsUTF8(request.original->co_qualname);
  if (qualname == nullptr) {
    PyErr_Clear();
    qualname = "function";
  }
  lowered->emitter = (*backend)->NewFunction(qualname);
  FunctionCompiler compiler(request, *lowered->emitter, *lowered->code);
  if (!compiler.Lower()) {
    ++counters.compile_failures;
    result.refusal = compiler.refused.refusal;
    result.detail = compiler.refused.detail;
    return result;
  }
  request.keep_alive.push_back(Ref<>::Create(reinterpret_cast<PyObject*>(request.compiled)));
  lowered->keep_alive = std::move(request.keep_alive);
  lowered->recheck = std::move(request.recheck);
  lowered->options = request.options;
  lowered->lower_ns = NanosecondsSince(start);
  result.lowered = std::move(lowered);
  return result;
}

void GenerateCode(LoweredFunction& lowered) {
  if (lowered.generated) return;
  lowered.generated = true;
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<CompiledFunction> compiled =
      lowered.backend->Compile(std::move(lowered.emitter), lowered.options);
  lowered.codegen_ns = NanosecondsSince(start);
  if (compiled.ok()) {
    lowered.compiled = *std::move(compiled);
  } else {
    lowered.codegen_error = std::string(compiled.status().message());
  }
}

void SetCodegenLevel(LoweredFunction& lowered, int opt_level) {
  if (!lowered.generated) lowered.options.opt_level = opt_level;
}

CompileResult FinishCompile(std::unique_ptr<LoweredFunction> lowered) {
  GenerateCode(*lowered);
  CompileResult result;
  JitCounters& counters = GlobalJitCounters();
  if (lowered->compiled.entry == nullptr) {
    ++counters.compile_failures;
    result.refusal = JitRefusal::kBackendError;
    result.detail = lowered->codegen_error.empty() ? "no entry" : lowered->codegen_error;
    return result;
  }
  std::unique_ptr<NativeCode> code = std::move(lowered->code);
  code->Attach(std::move(lowered->compiled), std::move(lowered->keep_alive),
               std::move(lowered->recheck));
  const uint64_t ns = lowered->lower_ns + lowered->codegen_ns;
  code->compile_ns = ns;
  code->opt_level = lowered->options.opt_level;
  ++counters.compiles;
  counters.compile_ns += ns;
  counters.compile_ns_max = std::max(counters.compile_ns_max, ns);
  counters.code_bytes += code->code_size();
  result.code = NativeCode::Share(std::move(code));
  return result;
}

CompileResult CompileFunction(CompileRequest request) {
  LowerResult lowered = LowerFunction(std::move(request));
  if (!lowered.lowered) {
    CompileResult result;
    result.refusal = lowered.refusal;
    result.detail = std::move(lowered.detail);
    return result;
  }
  return FinishCompile(std::move(lowered.lowered));
}

}  // namespace fatjit::jit
