// The baseline translation: see compile_function.h for what it assumes and why it is sound.
#include "jit/compile_function.h"

#include <chrono>

#include "jit/backend_loader.h"
#include "jit/function_compiler.h"

namespace fatjit::jit {

extern "C" int64_t fatjit_rt_is_true(PyObject* value) { return PyObject_IsTrue(value); }

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
  if (PyCodeObject* entered_with = request_.entered_with; entered_with != nullptr &&
      (entered_with->co_nlocalsplus != original->co_nlocalsplus ||
       entered_with->co_stacksize < original->co_stacksize || entered_with->co_flags != flags ||
       ParameterCount(entered_with) != ParameterCount(original))) {
    return Refuse(JitRefusal::kLayoutMismatch, "the frames it is entered on do not fit it");
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

  FindBoundLocals();

  tstate_ = e_.Param(0);
  frame_ = e_.Param(1);
  exit_site_slot_ = e_.StackSlot();
  shared_exit_ = e_.NewBlock("exit");
  blocks_.assign(n, -1);
  for (int i = 0; i < n; ++i) {
    if (reachable[i]) blocks_[i] = e_.NewBlock(absl::StrFormat("i%d", insts[i].offset));
  }
  FindBorrowedOperands();
  FindNumericRegions();
  FindNumericLoops();

  // Entry: count the recursion level and link the frame, as ceval's start_frame does. Inline
  // while levels remain (_Py_EnterRecursiveCallTstate's decrement and test); at the limit the
  // helper does the same and raises RecursionError as the interpreter would.
  current_ = 0;
  if (request_.entered_with != nullptr) SwapFrameCode();
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
    if (loop_end_[i] >= 0) {
      LowerNumericLoop(i);
      ++out_.numeric_loops;
    }
    if (region_end_[i] >= 0) {
      LowerNumericRegion(i);
      ++out_.numeric_regions;
    }
    if (!LowerInstruction(i)) return false;
  }
  Enter(shared_exit_);
  e_.Return(e_.Call(kExit, {tstate_, frame_, e_.Load(exit_site_slot_, 0)}));
  if (!layout_error_.empty()) return Refuse(JitRefusal::kLayoutMismatch, layout_error_);
  return true;
}

// The entry of code run in place of the frame's own (CompileRequest::entered_with): the frame
// takes a reference to the code it now runs and drops the one to its own code, as
// compat::SwapFrameCode does for the interpreter. That reference cannot be the last: the frame's
// function (f_func, held by the frame) has it as __code__, since the frame was pushed from it
// (were __code__ replaced by a finalizer the dispatcher's allocations ran in between, the old
// code would leak rather than be freed under the frame). prev_instr moves to the new code's
// start, from which exits compute offsets.
void FunctionCompiler::SwapFrameCode() {
  Value code = e_.Ptr(request_.original);
  Incref(code);
  Value own = FrameLoad(offsetof(_PyInterpreterFrame, f_code));
  FrameStore(offsetof(_PyInterpreterFrame, f_code), code);
  FrameStore(kPrevInstr, e_.Ptr(code_units_ - 1));
  DecrefNoDealloc(own);
}

// Definite assignment: the locals that hold a value at each instruction on every path native
// code can take to it. Native code is entered only at the first instruction and follows only
// normal edges (exception handlers and everything after a deopt run in the interpreter), so a
// forward "must" analysis over those edges is exact for it: parameters are bound at entry,
// STORE_FAST binds, DELETE_FAST unbinds, and a block's state is the intersection of its
// predecessors'. Nothing else writes a fast local while native code runs (a debugger's
// frame.f_locals writes go through tracing, which deopts first).
void FunctionCompiler::FindBoundLocals() {
  absl::Span<const Instruction> insts = decoded_.instructions();
  const int n = static_cast<int>(insts.size());
  words_per_state_ = (nlocalsplus_ + 63) / 64;
  bound_.assign(static_cast<size_t>(n) * words_per_state_, ~uint64_t{0});  // top: all bound
  std::vector<bool> seen(n, false);
  auto state = [&](int i) { return &bound_[static_cast<size_t>(i) * words_per_state_]; };
  std::fill_n(state(0), words_per_state_, 0);
  for (int i = 0; i < nparams_ && i < nlocalsplus_; ++i) state(0)[i / 64] |= uint64_t{1} << (i % 64);
  seen[0] = true;
  std::vector<int> work = {0};
  std::vector<uint64_t> out(words_per_state_);
  while (!work.empty()) {
    const int i = work.back();
    work.pop_back();
    const Instruction& inst = insts[i];
    if (IsHandlerOnly(inst.base_opcode) || inst.base_opcode == RAISE_VARARGS) continue;
    std::copy_n(state(i), words_per_state_, out.begin());
    if ((inst.base_opcode == STORE_FAST || inst.base_opcode == DELETE_FAST) && inst.oparg >= 0 &&
        inst.oparg < nlocalsplus_) {
      const uint64_t bit = uint64_t{1} << (inst.oparg % 64);
      if (inst.base_opcode == STORE_FAST) {
        out[inst.oparg / 64] |= bit;
      } else {
        out[inst.oparg / 64] &= ~bit;
      }
    }
    auto flow_to = [&](int j) {
      if (j < 0 || j >= n) return;
      uint64_t* in = state(j);
      bool changed = !seen[j];
      seen[j] = true;
      for (int w = 0; w < words_per_state_; ++w) {
        const uint64_t meet = in[w] & out[w];
        changed |= meet != in[w];
        in[w] = meet;
      }
      if (changed) work.push_back(j);
    };
    if (inst.is_jump()) flow_to(decoded_.IndexAt(inst.jump_target));
    if (!EndsFlow(inst.base_opcode)) flow_to(i + 1);
  }
}

bool FunctionCompiler::MayBeUnbound(int index, int local) const {
  if (local < 0 || local >= nlocalsplus_) return true;
  const uint64_t word = bound_[static_cast<size_t>(index) * words_per_state_ + local / 64];
  return (word >> (local % 64) & 1) == 0;
}

bool FunctionCompiler::LowerHelper(int index, const OpEntry& op, PyObject* aux,
                                   const FastPath& fast) {
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
  Value r;
  if (fast) {
    // The fast path's result and the helper's meet, then share what follows a helper call.
    Block helper = e_.NewBlock("helper");
    Block joined = e_.NewBlock("helper_done");
    const Value fast_r = fast(helper);
    const Block fast_end = current_;
    e_.Jump(joined);
    Enter(helper);
    const Value helper_r =
        e_.Call(op.helper, {tstate_, frame_, sp, e_.Imm(inst.oparg), e_.Ptr(aux)});
    e_.Jump(joined);
    Enter(joined);
    r = e_.Phi({{fast_r, fast_end}, {helper_r, helper}});
  } else {
    r = e_.Call(op.helper, {tstate_, frame_, sp, e_.Imm(inst.oparg), e_.Ptr(aux)});
  }
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
      if (MayBeUnbound(index, oparg)) {
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
      if (!borrowed_push_[index]) Incref(v);  // else co_consts keeps it alive (borrowed)
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
      FastPath direct_call;
      if (DirectCallsInline()) {
        direct_call = [&](Block miss) { return InlineDirectCall(index, cache, miss); };
      }
      return LowerHelper(index, kCallCached, reinterpret_cast<PyObject*>(&cache), direct_call);
    }
    case UNPACK_SEQUENCE:
      InlineUnpackSequence(index);
      return LowerHelper(index, OpTable()[UNPACK_SEQUENCE], nullptr);
    case FORMAT_VALUE:
      InlineFormatOfStr(index);
      return LowerHelper(index, OpTable()[FORMAT_VALUE], nullptr);
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
  lowered->code->local_kinds = request.local_kinds;
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
  for (Ref<>& kept : compiler.TakeKeptAlive()) request.keep_alive.push_back(std::move(kept));
  lowered->keep_alive = std::move(request.keep_alive);
  lowered->recheck = std::move(request.recheck);
  lowered->options = request.options;
  lowered->ir_instructions = lowered->emitter->InstructionCount();
  if (lowered->ir_instructions > kMaxOptimizedInstructions) {
    lowered->options.opt_level = 0;
    lowered->code->optimizable = false;
  }
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
  counters.numeric_loops += code->numeric_loops;
  counters.numeric_regions += code->numeric_regions;
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
