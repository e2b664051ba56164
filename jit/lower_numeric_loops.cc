// Numeric loops: a loop whose body is all int and float arithmetic on locals keeps those locals
// unboxed across its iterations (FunctionCompiler, function_compiler.h).
//
// Assumes what numeric regions assume (lower_numeric_regions.cc), and that every instruction of
// the loop has its per-instruction translation (Lower emits it as usual): that translation is
// where the loop goes whenever its fast path cannot go on.
// A numeric loop is the range [head, end) of a backward jump's target (head) through the last
// backward jump to it, reached from outside only at its head, whose instructions are LOAD_FAST,
// LOAD_CONST of an int64 or float, LOAD_GLOBAL of an int or float (read once, at the entry),
// BINARY_OP (the operators numeric regions compute), STORE_FAST, COMPARE_OP + POP_JUMP, POP_JUMP
// on a number, JUMP_FORWARD, NOP, backward jumps to the head, FOR_ITER at the head,
// BINARY_SUBSCR of a list local's item at an int index, STORE_SUBSCR of a number of the list's
// kind into one, COPY and SWAP of numbers and lists, a call (LOAD_GLOBAL with its NULL, the
// arguments, PRECALL, CALL) of a function bound to a global whose code is straight-line
// arithmetic on its arguments (LeafCallee), math.sqrt of a number (through the module bound to a
// global, or a global bound to it), and inner range loops: range() of 1 to 3 ints (bound to a
// global or a constant), GET_ITER, FOR_ITER whose exhaustion stays in the loop, POP_TOP of its
// iterator for a break, and JUMP_BACKWARD to that FOR_ITER; every way out leaves the stack as
// the head found it (FOR_ITER's exhaustion less the iterator). Each local it uses has one kind
// (int or float: the guess of GuessLocalKinds, which every store into it keeps; for a local the
// code leaves open, the kind the loop stores into it; or, for a local the loop never stores, a
// list of floats or ints by its hint, or if it has none and its items are used, of floats).
// Produces, at the head: an entry that requires every local the loop uses to hold an exact int
// (fitting an int64) or float of its kind (a list local: an exact list), FOR_ITER's iterator to
// be a range iterator, each callee's global to be bound to a function whose code is the code
// inlined, and room for one more recursion level (what the interpreter's call of a callee
// would count), math and range bound as when compiled (the objects, kept alive); it unboxes
// the locals into stack slots of the native frame (which the optimizer promotes to registers);
// an inner range loop's iterator is its state (start, step, length, index) in stack slots;
// the body on those machine values, a back edge that polls the eval breaker; and commits, which
// box the locals the loop stored (each into its own object when only the local refers to it, a
// result in -5..256 as the cached int) and write back the iterator's index:
//   - at every exit (a jump out, the end of the range, the fall through of the last jump), the
//     current values, then on to the exit's instruction;
//   - when the eval breaker is set at a back edge, the current values, then the back edge's own
//     translation (which handles it, then enters the head again);
//   - when an operation cannot be done inline (overflow, a zero divisor, an int too large for a
//     double; an inlined callee's too; a list index past the end, an item not of the list's kind,
//     an item replaced that is not an int or float), the current values, then the value stack as
//     that instruction finds it (boxed, written into the frame; an inner loop's iterator made
//     a range iterator at its position), then that instruction's own per-instruction
//     translation, which goes on from there (an inlined callee's, math.sqrt's or range()'s
//     failure leaves at its PRECALL: the call is made, and raises as the interpreter's would);
//     an inner loop's back edge leaves that way at its jump when the eval breaker is set;
// an entry that fails goes to the per-instruction translation of the head too (each back edge
// there comes back to the entry, so a loop whose locals change kind on the first iteration runs
// that one iteration generically and the rest unboxed), and is counted: failing for good, with
// parameters of other kinds than the compile's hints, it asks for a recompile (kind_feedback.h).
//
// Sound because: nothing in the body runs Python code or can be seen: the frame's locals and its
// value stack are written only at commits, and no other thread runs before the eval breaker is
// handled, which a commit precedes. An inlined call is the callee's arithmetic on the same values:
// its code is the code the function bound to the global runs (checked at the entry, and nothing in
// the loop can rebind the global or the function's __code__), that code reads no global, cell,
// default or attribute, and its frame could be seen only by code that runs while it exists (none
// does: no tracing, since native code runs only without it, and no signal handler or thread before
// the eval breaker, handled after a commit); the recursion level its call would take is checked at
// the entry. A list item is read as list's subscript reads it (a negative index counts from the
// end), and only if it is an exact int or float of the list's kind; it is stored as list's item
// assignment stores it, into a list whose size nothing in the loop changes, and the item it
// replaces is released only if it is an exact int or float (whose deallocation runs no code); a
// float that only the list refers to takes the value in place (nobody else can see it change).
// Every read of an item loads it again, after any store before it (lists may be aliased).
// math.sqrt is the math module's own function (the entry checks the global, or the module's
// attribute, is that very object): IEEE sqrt of the double the number converts to exactly, and
// a negative argument (its ValueError) left to the real call. range() of ints is the iterator
// range_iter makes (start, step, get_len_of_range's length), arguments within 2^62 so that no
// difference overflows; the object it would be is never seen before a way out makes it.
// Leaving mid-iteration hands the frame to the per-instruction code exactly as the interpreter
// would have it at that instruction: the locals committed, the value stack written as that
// code expects it (an operand it borrows holds no reference of its own: FindBorrowedOperands),
// so nothing done in the iteration is done twice. The operations are the ones numeric regions
// do, exact for the reasons given there. The iterator is a range iterator held by the value stack;
// its values are start + index * step as rangeiter_next makes them, and its index is written back
// before anybody can look at it. The old objects a commit releases are exact ints and floats (the
// entry checked them, and nothing else writes the locals), whose deallocation runs no code.
// Not exact: a MemoryError while boxing at a commit is raised at the head (the interpreter
// would have raised it at some operation inside the loop), with the locals committed so far.
#include <algorithm>
#include <map>

#include "jit/function_compiler.h"

namespace fatjit::jit {

namespace {

using Kind = FunctionCompiler::NumKind;

struct RangeIterFields {  // rangeobject.c's rangeiterobject
  PyObject_HEAD
  long index;
  long start;
  long step;
  long len;
};

// A range iterator in the state an inner range loop holds unboxed (a new reference; null with
// MemoryError set). Runs no Python code.
extern "C" PyObject* fatjit_rt_new_range_iter(int64_t start, int64_t step, int64_t len,
                                              int64_t index) {
  auto* iter = reinterpret_cast<RangeIterFields*>(_PyObject_New(&PyRangeIter_Type));
  if (iter == nullptr) return nullptr;
  iter->start = start;
  iter->step = step;
  iter->len = len;
  iter->index = index;
  return reinterpret_cast<PyObject*>(iter);
}

const Helper kNewRangeIter{"fatjit_rt_new_range_iter",
                           reinterpret_cast<const void*>(&fatjit_rt_new_range_iter), 4};

bool IsBackwardJumpOpcode(int opcode) {
  return opcode == JUMP_BACKWARD || opcode == POP_JUMP_BACKWARD_IF_FALSE ||
         opcode == POP_JUMP_BACKWARD_IF_TRUE;
}

constexpr int kMaxLoopInstructions = 256;
constexpr int kMaxLoopLocals = 32;

bool IsNumber(Kind k) { return k == Kind::kInt || k == Kind::kFloat; }

constexpr int kMaxCalleeInstructions = 64;

}  // namespace

// A local's kind in numeric loops: the kind the loop stores into it if the code leaves it open
// (NumericLoopShape, loop_kinds_); else its guess (GuessLocalKinds); for a local of no guessed kind
// whose hint is a list of floats or ints, that list kind; else, when nothing is known, a list of
// floats for a local whose items the code reads or stores (FindSubscriptedLocals), an int for
// any other. The entry tests each (kind feedback corrects a guess that keeps failing).
FunctionCompiler::NumKind FunctionCompiler::LoopKindOfLocal(int local) const {
  auto stored = loop_kinds_.find(local);
  if (stored != loop_kinds_.end()) return stored->second;
  const Kind k = local_kind_[local];
  if (k != Kind::kUnknown) return k;
  if (static_cast<size_t>(local) < request_.local_kinds.size()) {
    const LocalKind hint = request_.local_kinds[local];
    if (hint == LocalKind::kFloatList) return Kind::kFloatList;
    if (hint == LocalKind::kIntList) return Kind::kIntList;
  }
  return subscripted_[local] ? Kind::kFloatList : Kind::kInt;
}

// Locals whose value is subscripted or item-assigned right after it is pushed (`x[i]`,
// `x[i] = v`, `x[i] += v`, whose COPY and SWAP move copies of it): what such a value is, is
// guessed a list. Follows the slots holding the value through straight-line code for a few
// instructions.
void FunctionCompiler::FindSubscriptedLocals() {
  absl::Span<const Instruction> insts = decoded_.instructions();
  const int n = static_cast<int>(insts.size());
  subscripted_.assign(nlocalsplus_, false);
  constexpr int kMaxScan = 16;
  for (int i = 0; i < n; ++i) {
    const Instruction& load = insts[i];
    if (load.base_opcode != LOAD_FAST || load.oparg < 0 || load.oparg >= nlocalsplus_ ||
        depth_[i] == bytecode::kUnreachable) {
      continue;
    }
    std::vector<int> holding = {depth_[i]};  // the slots holding the local's value
    auto holds = [&](int slot) {
      return std::find(holding.begin(), holding.end(), slot) != holding.end();
    };
    for (int j = i + 1; j + 1 < n && j <= i + kMaxScan && !jump_target_[j] && !holding.empty();
         ++j) {
      const Instruction& inst = insts[j];
      const int d = depth_[j];
      if (d == bytecode::kUnreachable || depth_[j + 1] == bytecode::kUnreachable) break;
      const int op = inst.base_opcode;
      if ((op == BINARY_SUBSCR || op == STORE_SUBSCR) && holds(d - 2)) {
        subscripted_[load.oparg] = true;
        break;
      }
      if (op == COPY) {
        if (holds(d - inst.oparg)) holding.push_back(d);
      } else if (op == SWAP) {
        for (int& slot : holding) {
          if (slot == d - 1) {
            slot = d - inst.oparg;
          } else if (slot == d - inst.oparg) {
            slot = d - 1;
          }
        }
      } else if (op != LOAD_FAST && op != LOAD_CONST && op != LOAD_GLOBAL) {
        // What it pops and what it writes no longer hold the value: at most the slots from one
        // below the lower of the depths before and after it (it pops one at least).
        const int lowest = std::min(d, depth_[j + 1]) - 1;
        std::erase_if(holding, [&](int slot) { return slot >= lowest; });
      }
    }
  }
}

PyObject* FunctionCompiler::GlobalNow(PyObject* name) const {
  PyObject* globals = request_.globals;
  if (globals == nullptr || !PyDict_CheckExact(globals) ||
      !compat::DictHasOnlyStrKeys(globals) || !PyUnicode_CheckExact(name)) {
    return nullptr;
  }
  PyObject* value = PyDict_GetItemWithError(globals, name);
  PyErr_Clear();
  if (value != nullptr) return value;
  PyObject* builtins = PyDict_GetItemWithError(globals, &_Py_ID(__builtins__));
  PyErr_Clear();
  if (builtins != nullptr && PyModule_CheckExact(builtins)) builtins = PyModule_GetDict(builtins);
  if (builtins == nullptr || !PyDict_CheckExact(builtins) ||
      !compat::DictHasOnlyStrKeys(builtins)) {
    return nullptr;
  }
  value = PyDict_GetItemWithError(builtins, name);
  PyErr_Clear();
  return value;
}

namespace {

// The math module's sqrt, if the module is imported (borrowed from its dict; null otherwise).
// Looked up in sys.modules without importing anything.
PyObject* MathSqrt() {
  Ref<> name = Ref<>::Steal(PyUnicode_FromString("math"));
  if (!name) {
    PyErr_Clear();
    return nullptr;
  }
  Ref<> math = Ref<>::Steal(PyImport_GetModule(name.get()));
  PyErr_Clear();
  if (!math || !PyModule_CheckExact(math.get())) return nullptr;
  PyObject* sqrt = PyDict_GetItemString(PyModule_GetDict(math.get()), "sqrt");
  return sqrt != nullptr && PyCFunction_Check(sqrt) ? sqrt : nullptr;
}

}  // namespace

FunctionCompiler::NumKind FunctionCompiler::LoopGlobalKind(int index) const {
  absl::Span<const Instruction> insts = decoded_.instructions();
  const Instruction& inst = insts[index];
  PyObject* value = GlobalNow(PyTuple_GET_ITEM(request_.compiled->co_names, inst.oparg >> 1));
  PyObject* sqrt = value != nullptr ? MathSqrt() : nullptr;
  const bool with_null = (inst.oparg & 1) != 0;
  // `math.sqrt(x)`: LOAD_GLOBAL of math with a NULL, then LOAD_ATTR sqrt (or without the NULL,
  // then LOAD_METHOD sqrt, which pushes one).
  if (value != nullptr && PyModule_CheckExact(value) && sqrt != nullptr &&
      index + 1 < static_cast<int>(insts.size()) &&
      insts[index + 1].base_opcode == (with_null ? LOAD_ATTR : LOAD_METHOD) &&
      fatjit_rt_peek_module_attribute(
          value, PyTuple_GET_ITEM(request_.compiled->co_names, insts[index + 1].oparg)) == sqrt) {
    return Kind::kModule;
  }
  if (with_null && value != nullptr && value == reinterpret_cast<PyObject*>(&PyRange_Type)) {
    return Kind::kRange;
  }
  if (with_null) return value != nullptr && value == sqrt ? Kind::kSqrt : Kind::kCallee;
  if (value == nullptr || PyLong_CheckExact(value)) return Kind::kInt;  // unbound yet: a guess
  return PyFloat_CheckExact(value) ? Kind::kFloat : Kind::kOther;
}

// Inlined callees: a Python function bound to a global, whose code takes exactly the arguments
// given by position (no defaults used, no keyword-only, *args or **kwargs parameters), has no
// cells or free variables, is not a generator or coroutine, and is straight-line arithmetic:
// RESUME, then LOAD_FAST, LOAD_CONST of an int64 or float, STORE_FAST, BINARY_OP of the operators
// numeric loops compute, NOP, and a RETURN_VALUE of a number; every local read after a store
// or an argument. Looked up now without running code (an exact dict with str keys only).
bool FunctionCompiler::LeafCallee(PyObject* name, const std::vector<NumKind>& args,
                                  InlineCallee* callee, NumKind* result) const {
  PyObject* globals = request_.globals;
  if (globals == nullptr || !PyDict_CheckExact(globals) ||
      !compat::DictHasOnlyStrKeys(globals) || !PyUnicode_CheckExact(name)) {
    return false;
  }
  PyObject* func = PyDict_GetItemWithError(globals, name);
  if (func == nullptr) {
    PyErr_Clear();
    return false;
  }
  if (!PyFunction_Check(func) || Py_TYPE(func) != &PyFunction_Type) return false;
  auto* code =
      reinterpret_cast<PyCodeObject*>(reinterpret_cast<PyFunctionObject*>(func)->func_code);
  constexpr int kRefused = CO_VARARGS | CO_VARKEYWORDS | CO_GENERATOR | CO_COROUTINE |
                           CO_ASYNC_GENERATOR | CO_ITERABLE_COROUTINE;
  if ((code->co_flags & kRefused) != 0 || (code->co_flags & CO_OPTIMIZED) == 0 ||
      code->co_argcount != static_cast<int>(args.size()) || code->co_kwonlyargcount != 0 ||
      code->co_nfreevars != 0 || code->co_ncellvars != 0 ||
      code == request_.original || code == request_.compiled) {
    return false;
  }
  absl::StatusOr<bytecode::DecodedCode> decoded =
      bytecode::Decode(reinterpret_cast<PyObject*>(code), bytecode::CodeForm::kDeoptimized);
  if (!decoded.ok()) return false;
  absl::Span<const Instruction> insts = decoded->instructions();
  if (insts.empty() || insts[0].base_opcode != RESUME ||
      static_cast<int>(insts.size()) > kMaxCalleeInstructions) {
    return false;
  }
  std::vector<Kind> locals(code->co_nlocalsplus, Kind::kUnknown);
  for (size_t a = 0; a < args.size(); ++a) {
    if (!IsNumber(args[a])) return false;
    locals[a] = args[a];
  }
  std::vector<Kind> stack;
  for (size_t j = 1; j < insts.size(); ++j) {
    const Instruction& inst = insts[j];
    switch (inst.base_opcode) {
      case NOP:
        break;
      case LOAD_FAST:
        if (inst.oparg < 0 || inst.oparg >= code->co_nlocalsplus ||
            !IsNumber(locals[inst.oparg])) {
          return false;
        }
        stack.push_back(locals[inst.oparg]);
        break;
      case STORE_FAST:
        if (inst.oparg < 0 || inst.oparg >= code->co_nlocalsplus || stack.empty()) return false;
        locals[inst.oparg] = stack.back();
        stack.pop_back();
        break;
      case LOAD_CONST: {
        const Kind k = ConstantKind(PyTuple_GET_ITEM(code->co_consts, inst.oparg));
        if (!IsNumber(k)) return false;
        stack.push_back(k);
        break;
      }
      case BINARY_OP: {
        if (stack.size() < 2) return false;
        const Kind right = stack.back();
        stack.pop_back();
        const Kind left = stack.back();
        if (left == Kind::kInt && right == Kind::kInt && BaseOp(inst.oparg) != NB_TRUE_DIVIDE) {
          if (!IntOpInline(inst.oparg)) return false;
          stack.back() = Kind::kInt;
        } else {
          if (!FloatOpInline(inst.oparg)) return false;
          stack.back() = Kind::kFloat;
        }
        break;
      }
      case RETURN_VALUE:
        if (stack.size() != 1 || j + 1 != insts.size()) return false;
        callee->name = name;
        callee->code = code;
        callee->body.assign(insts.begin() + 1, insts.end());
        *result = stack.back();
        return true;
      default:
        return false;
    }
  }
  return false;
}

FunctionCompiler::Num FunctionCompiler::InlineLeafCall(const InlineCallee& callee,
                                                      const std::vector<Num>& args, Block fail) {
  std::vector<Num> locals(callee.code->co_nlocalsplus, Num{Kind::kUnknown, 0});
  for (size_t a = 0; a < args.size(); ++a) locals[a] = args[a];
  std::vector<Num> stack;
  for (const Instruction& inst : callee.body) {
    switch (inst.base_opcode) {
      case LOAD_FAST:
        stack.push_back(locals[inst.oparg]);
        break;
      case STORE_FAST:
        locals[inst.oparg] = stack.back();
        stack.pop_back();
        break;
      case LOAD_CONST: {
        PyObject* constant = PyTuple_GET_ITEM(callee.code->co_consts, inst.oparg);
        stack.push_back({ConstantKind(constant), NumericConstant(constant)});
        break;
      }
      case BINARY_OP: {
        const Num right = stack.back();
        stack.pop_back();
        stack.back() = NumericBinary(inst.oparg, stack.back(), right, fail);
        break;
      }
      default:  // NOP, RETURN_VALUE (LeafCallee let nothing else through)
        break;
    }
  }
  return stack.back();
}

bool FunctionCompiler::NumericLoopShape(int head, int end,
                                        std::vector<std::vector<NumKind>>* stacks,
                                        std::vector<int>* locals,
                                        std::vector<bool>* stored,
                                        std::map<int, InlineCallee>* callees) const {
  loop_kinds_.clear();
  for (int round = 0; round <= kMaxLoopLocals; ++round) {  // each round settles one more local
    bool again = false;
    if (NumericLoopShapeOnce(head, end, stacks, locals, stored, callees, &again)) return true;
    if (!again) break;
  }
  loop_kinds_.clear();
  return false;
}

bool FunctionCompiler::NumericLoopShapeOnce(int head, int end,
                                            std::vector<std::vector<NumKind>>* stacks,
                                            std::vector<int>* locals,
                                            std::vector<bool>* stored,
                                            std::map<int, InlineCallee>* callees,
                                            bool* again) const {
  absl::Span<const Instruction> insts = decoded_.instructions();
  const int n = static_cast<int>(insts.size());
  if (end - head > kMaxLoopInstructions || end > n) return false;
  const bool ranged = insts[head].base_opcode == FOR_ITER;
  if (ranged && (PyRangeIter_Type.tp_basicsize != sizeof(RangeIterFields) || depth_[head] < 1)) {
    return false;
  }
  auto inside = [&](int j) { return j >= head && j < end; };
  // Reached from outside only at the head.
  for (int j = head + 1; j < end; ++j) {
    if (!jump_target_[j]) continue;
    auto [first, last] = jump_sources_.equal_range(j);
    for (auto it = first; it != last; ++it) {
      if (!inside(it->second)) return false;
    }
  }
  std::vector<std::vector<Kind>>& at = *stacks;
  callees->clear();
  std::vector<bool> seen(end - head, false);
  at.assign(end - head, {});
  stored->assign(nlocalsplus_, false);
  std::vector<bool> used(nlocalsplus_, false);
  int operations = 0;
  std::vector<int> work = {head};
  seen[0] = true;
  // Flows `stack` to instruction j: a merge must agree; leaving the loop needs an empty stack;
  // the head is entered again only by a back edge with an empty stack.
  auto flow = [&](int j, const std::vector<Kind>& stack, bool back_edge) {
    if (!inside(j)) return stack.empty();
    if (j == head) return back_edge && stack.empty();
    if (back_edge) {  // to an inner range loop's FOR_ITER, reached before from above
      return insts[j].base_opcode == FOR_ITER && seen[j - head] && at[j - head] == stack;
    }
    if (!seen[j - head]) {
      seen[j - head] = true;
      at[j - head] = stack;
      work.push_back(j);
      return true;
    }
    return at[j - head] == stack;
  };
  while (!work.empty()) {
    const int j = work.back();
    work.pop_back();
    const Instruction& inst = insts[j];
    if (blocks_[j] < 0 || depth_[j] == bytecode::kUnreachable) return false;
    std::vector<Kind> stack = at[j - head];
    const int op = inst.base_opcode;
    auto target = [&] { return decoded_.IndexAt(inst.jump_target); };
    if (op == FOR_ITER && j != head) {
      // An inner range loop: its iterator made by a range() call in the loop (below).
      if (stack.empty() || stack.back() != Kind::kRangeIter || !inside(target())) return false;
      stack.pop_back();
      if (!flow(target(), stack, false)) return false;  // exhausted: the iterator goes
      stack.push_back(Kind::kRangeIter);
      stack.push_back(Kind::kInt);
      if (!flow(j + 1, stack, false)) return false;
    } else if (op == FOR_ITER) {
      if (inside(target())) return false;
      if (!flow(target(), stack, false)) return false;  // exhausted: the iterator goes too
      stack.push_back(Kind::kInt);
      if (!flow(j + 1, stack, false)) return false;
    } else if (op == PUSH_NULL) {
      stack.push_back(Kind::kNull);
      if (!flow(j + 1, stack, false)) return false;
    } else if (op == GET_ITER) {  // of range(...): its iterator
      if (stack.empty() || stack.back() != Kind::kRangeIter) return false;
      if (!flow(j + 1, stack, false)) return false;
    } else if (op == LOAD_FAST || op == STORE_FAST) {
      if (inst.oparg < 0 || inst.oparg >= nlocalsplus_) return false;
      const Kind k = LoopKindOfLocal(inst.oparg);
      const bool list = k == Kind::kIntList || k == Kind::kFloatList;
      if (!IsNumber(k) && !(list && op == LOAD_FAST)) return false;
      used[inst.oparg] = true;
      if (op == LOAD_FAST) {
        stack.push_back(k);
      } else {
        if (stack.empty()) return false;
        if (stack.back() != k) {
          // An open local (`dx = x[i] - x[j]`) takes the kind stored: start again with it.
          if (open_local_[inst.oparg] && IsNumber(stack.back()) &&
              loop_kinds_.count(inst.oparg) == 0) {
            loop_kinds_[inst.oparg] = stack.back();
            *again = true;
          }
          return false;
        }
        stack.pop_back();
        (*stored)[inst.oparg] = true;
      }
      if (!flow(j + 1, stack, false)) return false;
    } else if (op == LOAD_CONST) {
      PyObject* constant = PyTuple_GET_ITEM(request_.compiled->co_consts, inst.oparg);
      const Kind k = constant == reinterpret_cast<PyObject*>(&PyRange_Type)
                         ? Kind::kRange
                         : ConstantKind(constant);
      if (k == Kind::kOther) return false;
      stack.push_back(k);
      if (!flow(j + 1, stack, false)) return false;
    } else if (op == LOAD_GLOBAL) {
      // Read once at the entry: nothing in the loop runs code that could rebind it. A number of
      // the kind it holds now (the entry tests it), or math whose sqrt is called. With a NULL
      // (oparg & 1): a function to call, math.sqrt or one the CALL inlines (the entry tests that
      // the global still is that function, or still runs the same code).
      const Kind k = LoopGlobalKind(j);
      if (k == Kind::kOther) return false;  // no number now: no numeric loop
      if ((inst.oparg & 1) != 0) stack.push_back(Kind::kNull);
      stack.push_back(k);
      if (!flow(j + 1, stack, false)) return false;
    } else if (op == LOAD_METHOD || op == LOAD_ATTR) {
      // math.sqrt: LOAD_METHOD of a module attribute pushes a NULL and the attribute; LOAD_ATTR
      // replaces the module (after its NULL) by it.
      if (stack.empty() || stack.back() != Kind::kModule) return false;
      if (op == LOAD_METHOD) {
        stack.back() = Kind::kNull;
        stack.push_back(Kind::kSqrt);
      } else {
        if (stack.size() < 2 || stack[stack.size() - 2] != Kind::kNull) return false;
        stack.back() = Kind::kSqrt;
      }
      if (!flow(j + 1, stack, false)) return false;
    } else if ((op == PRECALL || op == CALL) && inst.oparg >= 1 && inst.oparg <= 3 &&
               static_cast<int>(stack.size()) >= inst.oparg + 2 &&
               stack[stack.size() - inst.oparg - 1] == Kind::kRange) {
      // range(stop), range(start, stop[, step]) of ints, iterated at once by an inner loop
      // (GET_ITER, then its FOR_ITER): its iterator.
      const int argc = inst.oparg;
      const int size = static_cast<int>(stack.size());
      if (stack[size - argc - 2] != Kind::kNull) return false;
      for (int a = size - argc; a < size; ++a) {
        if (stack[a] != Kind::kInt) return false;
      }
      if (op == CALL) {
        if (j + 2 >= end || insts[j + 1].base_opcode != GET_ITER || jump_target_[j + 1] ||
            insts[j + 2].base_opcode != FOR_ITER) {
          return false;
        }
        stack.resize(size - argc - 2);
        stack.push_back(Kind::kRangeIter);
        ++operations;
      }
      if (!flow(j + 1, stack, false)) return false;
    } else if ((op == PRECALL || op == CALL) && inst.oparg == 1 && stack.size() >= 3 &&
               stack[stack.size() - 2] == Kind::kSqrt) {
      // math.sqrt(x) of a number: a float.
      if (stack[stack.size() - 3] != Kind::kNull || !IsNumber(stack.back())) return false;
      if (op == CALL) {
        stack.resize(stack.size() - 3);
        stack.push_back(Kind::kFloat);
        ++operations;
      }
      if (!flow(j + 1, stack, false)) return false;
    } else if (op == PRECALL || op == CALL) {
      const int argc = inst.oparg;
      const int size = static_cast<int>(stack.size());
      if (size < argc + 2 || stack[size - argc - 2] != Kind::kNull ||
          stack[size - argc - 1] != Kind::kCallee) {
        return false;
      }
      if (op == CALL) {
        // The global's name: the LOAD_GLOBAL that pushed the callee, found by walking back
        // over the arguments' instructions (straight-line: each pushes one value at most).
        if (j < 1 || insts[j - 1].base_opcode != PRECALL) return false;
        int pushed = 0;
        int k = j - 2;
        for (; k >= head && pushed < argc + 1; --k) {
          if (jump_target_[k + 1] && k + 1 != j - 1) return false;
          const int kop = insts[k].base_opcode;
          if (kop == LOAD_FAST || kop == LOAD_CONST || kop == LOAD_GLOBAL) {
            ++pushed;
          } else if (kop == BINARY_OP || kop == BINARY_SUBSCR) {
            --pushed;
          } else {
            return false;
          }
        }
        const Instruction& load = insts[k + 1];
        if (pushed != argc + 1 || load.base_opcode != LOAD_GLOBAL || (load.oparg & 1) == 0) {
          return false;
        }
        std::vector<Kind> args(stack.end() - argc, stack.end());
        InlineCallee callee;
        Kind result;
        if (!LeafCallee(PyTuple_GET_ITEM(request_.compiled->co_names, load.oparg >> 1), args,
                        &callee, &result)) {
          return false;
        }
        (*callees)[j] = std::move(callee);
        stack.resize(size - argc - 2);
        stack.push_back(result);
        ++operations;
      }
      if (!flow(j + 1, stack, false)) return false;
    } else if (op == BINARY_SUBSCR) {
      // A list local's item at an int index.
      if (stack.size() < 2 || stack.back() != Kind::kInt) return false;
      stack.pop_back();
      if (stack.back() != Kind::kIntList && stack.back() != Kind::kFloatList) return false;
      stack.back() = stack.back() == Kind::kIntList ? Kind::kInt : Kind::kFloat;
      if (!flow(j + 1, stack, false)) return false;
    } else if (op == STORE_SUBSCR) {
      // A number of the list's item kind into a list local's item at an int index.
      const size_t size = stack.size();
      if (size < 3 || stack[size - 1] != Kind::kInt ||
          !((stack[size - 2] == Kind::kIntList && stack[size - 3] == Kind::kInt) ||
            (stack[size - 2] == Kind::kFloatList && stack[size - 3] == Kind::kFloat))) {
        return false;
      }
      stack.resize(size - 3);
      ++operations;
      if (!flow(j + 1, stack, false)) return false;
    } else if (op == COPY || op == SWAP) {
      const int n = inst.oparg;
      const int size = static_cast<int>(stack.size());
      if (n < 1 || n > size) return false;
      auto plain = [](Kind k) {
        return IsNumber(k) || k == Kind::kIntList || k == Kind::kFloatList;
      };
      const Kind k = stack[size - n];
      if (!plain(k) || !plain(stack[size - 1])) return false;
      if (op == COPY) {
        stack.push_back(k);
      } else {
        std::swap(stack[size - 1], stack[size - n]);
      }
      if (!flow(j + 1, stack, false)) return false;
    } else if (op == BINARY_OP) {
      if (stack.size() < 2) return false;
      const Kind right = stack.back();
      stack.pop_back();
      const Kind left = stack.back();
      if (!IsNumber(left) || !IsNumber(right)) return false;
      Kind result;
      if (left == Kind::kInt && right == Kind::kInt && BaseOp(inst.oparg) != NB_TRUE_DIVIDE) {
        if (!IntOpInline(inst.oparg)) return false;
        result = Kind::kInt;
      } else {
        if (!FloatOpInline(inst.oparg)) return false;
        result = Kind::kFloat;
      }
      stack.back() = result;
      ++operations;
      if (!flow(j + 1, stack, false)) return false;
    } else if (op == COMPARE_OP || IsPopJumpOnTruth(op)) {
      int jump = j;
      if (op == COMPARE_OP) {
        if (stack.size() < 2 || inst.oparg < Py_LT || inst.oparg > Py_GE || j + 1 >= end ||
            !IsPopJumpOnTruth(insts[j + 1].base_opcode) || jump_target_[j + 1]) {
          return false;
        }
        stack.pop_back();
        jump = j + 1;
      }
      if (stack.empty()) return false;
      stack.pop_back();
      const Instruction& jump_inst = insts[jump];
      const int jump_target = decoded_.IndexAt(jump_inst.jump_target);
      const bool backward = jump_inst.jump_target <= jump_inst.offset;
      if (backward && jump_target != head) return false;
      if (!flow(jump_target, stack, backward) || !flow(jump + 1, stack, false)) return false;
    } else if (op == JUMP_FORWARD) {
      if (!flow(target(), stack, false)) return false;
    } else if (op == JUMP_BACKWARD) {  // to the head, or to an inner range loop's FOR_ITER
      if (!inside(target()) || !flow(target(), stack, true)) return false;
    } else if (op == NOP) {
      if (!flow(j + 1, stack, false)) return false;
    } else if (op == POP_TOP && !stack.empty() && stack.back() == Kind::kRangeIter) {
      // `break` out of an inner range loop: its iterator popped, then a jump past the loop.
      stack.pop_back();
      if (!flow(j + 1, stack, false)) return false;
    } else if (op == POP_TOP) {
      // `break` out of a range loop: the iterator popped, then a jump out of the loop.
      if (!ranged || !stack.empty() || j + 1 >= end || insts[j + 1].base_opcode != JUMP_FORWARD ||
          jump_target_[j + 1] || inside(decoded_.IndexAt(insts[j + 1].jump_target))) {
        return false;
      }
    } else {
      return false;
    }
  }
  locals->clear();
  for (int l = 0; l < nlocalsplus_; ++l) {
    if (used[l]) locals->push_back(l);
  }
  return operations > 0 && static_cast<int>(locals->size()) <= kMaxLoopLocals;
}

void FunctionCompiler::FindNumericLoops() {
  absl::Span<const Instruction> insts = decoded_.instructions();
  const int n = static_cast<int>(insts.size());
  loop_end_.assign(n, -1);
  if (!NumericFastPathsEnabled() || !NumericLoopsEnabled() || local_kind_.empty()) return;
  FindSubscriptedLocals();
  std::vector<std::vector<NumKind>> stacks;
  std::vector<int> locals;
  std::vector<bool> stored;
  std::map<int, InlineCallee> callees;
  // Per head, the last backward jump to it ends the loop.
  std::map<int, int> ends;
  for (int b = 0; b < n; ++b) {
    if (blocks_[b] < 0 || !IsBackwardJumpOpcode(insts[b].base_opcode)) continue;
    const int head = decoded_.IndexAt(insts[b].jump_target);
    if (head < 0 || head > b) continue;
    ends[head] = std::max(ends[head], b + 1);
  }
  for (auto [head, end] : ends) {
    if (NumericLoopShape(head, end, &stacks, &locals, &stored, &callees)) loop_end_[head] = end;
  }
}

void FunctionCompiler::LowerNumericLoop(int head) {
  absl::Span<const Instruction> insts = decoded_.instructions();
  const int end = loop_end_[head];
  std::vector<std::vector<NumKind>> stacks;
  std::vector<int> locals;
  std::vector<bool> stored;
  std::map<int, InlineCallee> callees;
  if (!NumericLoopShape(head, end, &stacks, &locals, &stored, &callees)) return;
  const int base = depth_[head];
  const bool ranged = insts[head].base_opcode == FOR_ITER;
  Block generic = e_.NewBlock("loop_generic");
  // Where an entry that fails on a local's kind goes first: it is counted for kind feedback
  // (kind_feedback.h). Other failures (the iterator, a global) go straight to `generic`.
  Block entry_missed = e_.NewBlock("loop_entry_missed");

  auto kind_of_local = [&](int local) { return LoopKindOfLocal(local); };
  size_t max_stack = 0;
  for (const auto& s : stacks) max_stack = std::max(max_stack, s.size() + 1);
  std::vector<Value> stack_slots;
  for (size_t k = 0; k < max_stack; ++k) stack_slots.push_back(e_.StackSlot());
  // An inner range loop's iterator, by its stack slot (loops one after the other share it).
  struct InnerRange {
    Value index, start, step, len;  // stack slots
  };
  std::map<int, InnerRange> inner_ranges;
  auto inner_range = [&](int depth) -> const InnerRange& {
    auto found = inner_ranges.find(depth);
    if (found != inner_ranges.end()) return found->second;
    return inner_ranges[depth] = {e_.StackSlot(), e_.StackSlot(), e_.StackSlot(), e_.StackSlot()};
  };
  struct LocalState {
    Value old_object;  // the frame's object at entry: the frame is not written until a commit
    Value value, dirty;  // stack slots (dirty: only if stored)
  };
  std::map<int, LocalState> state;
  for (int l : locals) {
    LocalState s{};
    s.value = e_.StackSlot();
    if (stored[l]) s.dirty = e_.StackSlot();
    state[l] = s;
  }
  Value index_slot = ranged ? e_.StackSlot() : 0;

  // The range loop's target (FOR_ITER, then STORE_FAST of it at the head): every iteration
  // stores it before anything can read it, so it may be unbound at the entry (as it is when the
  // loop starts): it is then left unbound unless an iteration stores it (the commits write it
  // without an old object to reuse or release).
  const int target = ranged && head + 1 < end && insts[head + 1].base_opcode == STORE_FAST
                         ? insts[head + 1].oparg
                         : -1;
  // The locals whose kind a hint or a default decided: what feedback may change, or give up on.
  NativeCode::LoopGuesses& guesses = out_.loop_guesses.emplace_back();
  for (int l : locals) {
    if (!open_local_[l]) continue;
    const Kind kind = kind_of_local(l);
    guesses.locals.emplace_back(l, kind == Kind::kInt        ? LocalKind::kInt
                                   : kind == Kind::kFloat    ? LocalKind::kFloat
                                   : kind == Kind::kIntList  ? LocalKind::kIntList
                                                             : LocalKind::kFloatList);
  }
  if (!guesses.locals.empty()) {
    Block trying = e_.NewBlock("loop_entry");
    e_.Branch(e_.Compare(Cmp::kEq, e_.Load(e_.Ptr(&guesses.given_up), 0), e_.Imm(0)), trying,
              generic);
    Enter(trying);
  }
  // Entry (the current block, the head's own): every local of its kind, the range iterator.
  for (int l : locals) {
    LocalState& s = state[l];
    s.old_object = FrameLoad(LocalOffset(l));
    Block bound = e_.NewBlock("loop_local_bound");
    Block unbound = l == target ? e_.NewBlock("loop_target_unbound") : entry_missed;
    e_.Branch(e_.Compare(Cmp::kNe, s.old_object, e_.Imm(0)), bound, unbound);
    Enter(bound);
    const Kind kind = kind_of_local(l);
    if (kind == Kind::kIntList || kind == Kind::kFloatList) {  // never stored: the object
      // An exact list, empty or whose first item is of its kind (as LocalKindOf would see it:
      // a list of the other kind fails here, and kind feedback sees why).
      Block is_list = e_.NewBlock("loop_list_local");
      Block has_items = e_.NewBlock("loop_list_items");
      Block of_kind = e_.NewBlock("loop_list_of_kind");
      e_.Branch(IsType(TypeOf(s.old_object), &PyList_Type), is_list, entry_missed);
      Enter(is_list);
      e_.Branch(e_.Compare(Cmp::kEq, Field(s.old_object, kObSize), e_.Imm(0)), of_kind,
                has_items);
      Enter(has_items);
      Value first = e_.Load(Field(s.old_object, offsetof(PyListObject, ob_item)), 0);
      e_.Branch(IsType(TypeOf(first), kind == Kind::kIntList ? &PyLong_Type : &PyFloat_Type),
                of_kind, entry_missed);
      Enter(of_kind);
      e_.Store(s.value, 0, s.old_object);
      continue;
    }
    e_.Store(s.value, 0, UnboxNumber(s.old_object, kind, entry_missed));
    if (stored[l]) e_.Store(s.dirty, 0, e_.Imm(0));
    if (l == target) {
      Block entered = e_.NewBlock("loop_target_entered");
      e_.Jump(entered);
      Enter(unbound);
      e_.Store(s.value, 0, e_.Imm(0));
      e_.Store(s.dirty, 0, e_.Imm(0));
      e_.Jump(entered);
      Enter(entered);
    }
  }
  Value iter = 0, start = 0, step = 0, len = 0;
  if (ranged) {
    iter = LoadSlot(base - 1);
    Block is_range = e_.NewBlock("loop_range_iter");
    e_.Branch(IsType(TypeOf(iter), &PyRangeIter_Type), is_range, generic);
    Enter(is_range);
    e_.Store(index_slot, 0, Field(iter, offsetof(RangeIterFields, index)));
    start = Field(iter, offsetof(RangeIterFields, start));
    step = Field(iter, offsetof(RangeIterFields, step));
    len = Field(iter, offsetof(RangeIterFields, len));
  }
  // A block per instruction some edge reaches, made when the first edge to it is (forward
  // edges only, and back edges to the head, whose block comes first): instructions never reached
  // from the head (after a break, say, or the POP_JUMP of a COMPARE_OP) get none.
  // Globals the loop reads: each looked up once here (the loop runs no code that could rebind
  // one; a back edge that handles the eval breaker leaves the loop first).
  std::map<int, Value> globals;  // co_names index -> unboxed value, or the module, or sqrt
  PyObject* const sqrt = MathSqrt();
  auto is_object = [&](Value value, PyObject* object) {
    kept_.push_back(Ref<>::Create(object));  // no address reuse while the code lives
    Block same = e_.NewBlock("loop_global_same");
    e_.Branch(e_.Compare(Cmp::kEq, value, e_.Ptr(object)), same, generic);
    Enter(same);
  };
  for (int j = head; j < end; ++j) {
    const Instruction& inst = insts[j];
    if (inst.base_opcode != LOAD_GLOBAL || globals.count(inst.oparg >> 1) != 0) continue;
    const Kind kind = LoopGlobalKind(j);
    if (kind == Kind::kCallee) continue;  // below
    PyObject* name = PyTuple_GET_ITEM(request_.compiled->co_names, inst.oparg >> 1);
    Value value = e_.Call(kPeekGlobal, {frame_, e_.Ptr(name)});
    Block found = e_.NewBlock("loop_global_found");
    e_.Branch(e_.Compare(Cmp::kNe, value, e_.Imm(0)), found, generic);
    Enter(found);
    if (kind == Kind::kSqrt) {  // bound to math.sqrt itself
      is_object(value, sqrt);
    } else if (kind == Kind::kRange) {
      is_object(value, reinterpret_cast<PyObject*>(&PyRange_Type));
    } else if (kind == Kind::kModule) {  // the same module, whose attribute is still math.sqrt
      is_object(value, GlobalNow(name));
      PyObject* attribute = PyTuple_GET_ITEM(request_.compiled->co_names, insts[j + 1].oparg);
      is_object(e_.Call(kPeekModuleAttribute, {value, e_.Ptr(attribute)}), sqrt);
    } else {
      value = UnboxNumber(value, kind, generic);
    }
    globals[inst.oparg >> 1] = value;
  }
  // Inlined callees: each global still bound to a function running the code inlined (a
  // function's globals, defaults and closure do not matter to such code), and room for the
  // call's recursion level, which the interpreter's call would count (and fail on at the limit).
  if (!callees.empty()) {
    Value remaining = e_.Load(tstate_, kRecursionRemaining, Width::k32);
    Block room = e_.NewBlock("loop_call_room");
    e_.Branch(e_.Compare(Cmp::kSgt, e_.Sub(e_.Xor(remaining, e_.Imm(0x80000000)),
                                           e_.Imm(0x80000000)),
                         e_.Imm(0)),
              room, generic);
    Enter(room);
  }
  std::map<PyObject*, PyCodeObject*> callee_codes;
  for (const auto& [call, callee] : callees) callee_codes[callee.name] = callee.code;
  std::map<PyObject*, Value> callee_functions;  // by global name, borrowed from the globals
  for (const auto& [name, code] : callee_codes) {
    kept_.push_back(Ref<>::Create(reinterpret_cast<PyObject*>(code)));
    Value value = e_.Call(kPeekGlobal, {frame_, e_.Ptr(name)});
    Block found = e_.NewBlock("loop_callee_found");
    Block is_function = e_.NewBlock("loop_callee_function");
    Block same_code = e_.NewBlock("loop_callee_code");
    e_.Branch(e_.Compare(Cmp::kNe, value, e_.Imm(0)), found, generic);
    Enter(found);
    e_.Branch(IsType(TypeOf(value), &PyFunction_Type), is_function, generic);
    Enter(is_function);
    e_.Branch(e_.Compare(Cmp::kEq, Field(value, offsetof(PyFunctionObject, func_code)),
                         e_.Ptr(code)),
              same_code, generic);
    Enter(same_code);
    callee_functions[name] = value;
  }
  std::vector<Block> body(end - head, -1);
  auto body_block = [&](int j) {
    if (body[j - head] < 0) body[j - head] = e_.NewBlock("loop_body");
    return body[j - head];
  };
  e_.Jump(body_block(head));

  // Commits: the locals stored (their current values), the index.
  auto commit = [&]() {
    if (ranged) SetField(iter, offsetof(RangeIterFields, index), e_.Load(index_slot, 0));
    for (int l : locals) {
      if (!stored[l]) continue;
      const LocalState& s = state[l];
      const Kind kind = kind_of_local(l);
      Block write = e_.NewBlock("loop_commit_local");
      Block next = e_.NewBlock("loop_committed");
      e_.Branch(e_.Compare(Cmp::kNe, e_.Load(s.dirty, 0), e_.Imm(0)), write, next);
      Enter(write);
      Value v = e_.Load(s.value, 0);
      Value old = s.old_object;
      Block in_place = e_.NewBlock("loop_commit_in_place");
      Block replace = e_.NewBlock("loop_commit_replace");
      Block allocate = e_.NewBlock("loop_commit_allocate");
      Value replacement_slot = e_.StackSlot();
      auto unless_unbound = [&] {  // the target, maybe unbound at the entry: nothing to reuse
        if (l != target) return;
        Block had_object = e_.NewBlock("loop_commit_had_object");
        e_.Branch(e_.Compare(Cmp::kEq, old, e_.Imm(0)), allocate, had_object);
        Enter(had_object);
      };
      if (kind == Kind::kInt) {
        Block not_small = e_.NewBlock("loop_commit_not_small");
        e_.Store(replacement_slot, 0, CachedSmallInt(v, not_small));
        e_.Jump(replace);
        Enter(not_small);
        unless_unbound();
        InPlaceWrite writer = IntWriter(v);
        e_.Branch(e_.And(e_.Compare(Cmp::kEq, Refcount(old), e_.Imm(1)), writer.can_hold(old)),
                  in_place, allocate);
        Enter(in_place);
        writer.write(old);
        e_.Jump(next);
      } else {
        unless_unbound();
        e_.Branch(e_.Compare(Cmp::kEq, Refcount(old), e_.Imm(1)), in_place, allocate);
        Enter(in_place);
        SetField(old, kFloatValue, v);
        e_.Jump(next);
      }
      Enter(allocate);
      Value fresh = kind == Kind::kInt ? e_.Call(kLongFromInt64, {v}) : e_.Call(kBoxFloat, {v});
      Block allocated = e_.NewBlock("loop_commit_allocated");
      e_.BranchUnlikely(e_.Compare(Cmp::kEq, fresh, e_.Imm(0)), ErrorExit(base, insts[head]),
                        allocated);
      Enter(allocated);
      e_.Store(replacement_slot, 0, fresh);
      e_.Jump(replace);
      Enter(replace);
      FrameStore(LocalOffset(l), e_.Load(replacement_slot, 0));
      if (l == target) {
        Block release = e_.NewBlock("loop_commit_release");
        e_.Branch(e_.Compare(Cmp::kEq, old, e_.Imm(0)), next, release);
        Enter(release);
      }
      Decref(old);  // an exact int or float: runs no code
      e_.Jump(next);
      Enter(next);
    }
  };
  // Leaving mid-iteration for instruction k's own translation, which does what k could not
  // inline: the current values committed, then the value stack as k finds it written into the
  // frame, each value as k's translation expects it (an operand it borrows is the local's or
  // co_consts' object, without a reference of its own; a constant, co_consts' object; a number,
  // boxed; a list or a callee, the object, with a new reference; a NULL, null).
  // Every such way out records its instruction and goes to one block that commits, then to the
  // instruction's own block that writes the value stack (one commit in the IR, not one per
  // instruction: the loop's IR, and its compile time, stay small).
  std::map<int, Block> fail_blocks;
  Value leave_site = e_.StackSlot();
  Block commit_and_leave = -1;  // made with the first way out
  auto fail_at = [&](int k) {
    auto found = fail_blocks.find(k);
    if (found != fail_blocks.end()) return found->second;
    if (commit_and_leave < 0) commit_and_leave = e_.NewBlock("loop_leave_commit");
    Block exit = e_.NewBlock("loop_leave_at");
    fail_blocks[k] = exit;
    const Block resume = current_;
    Enter(exit);
    e_.Store(leave_site, 0, e_.Imm(k));
    e_.Jump(commit_and_leave);
    Enter(resume);
    return exit;
  };
  // The value stack as instruction k's own translation expects it, then on to it.
  auto write_stack_for = [&](int k) {
    const std::vector<Kind>& kinds = stacks[k - head];
    const Instruction& inst = insts[k];
    for (int d = 0; d < static_cast<int>(kinds.size()); ++d) {
      const int slot = base + d;
      const int side = slot == depth_[k] - 2 ? 1 : slot == depth_[k] - 1 ? 2 : 0;
      if (side != 0 && (borrow_mask_[k] & side) != 0) {
        const Instruction& pusher = insts[borrow_pusher_[k][side - 1]];
        StoreSlot(slot, pusher.base_opcode == LOAD_FAST
                            ? FrameLoad(LocalOffset(pusher.oparg))
                            : e_.Ptr(PyTuple_GET_ITEM(request_.compiled->co_consts,
                                                      pusher.oparg)));
        continue;
      }
      if (PyObject* constant = ConstantInSlot(k, slot)) {
        Value object = e_.Ptr(constant);
        Incref(object);
        StoreSlot(slot, object);
        continue;
      }
      Value v = e_.Load(stack_slots[d], 0);
      switch (kinds[d]) {
        case Kind::kNull:
          StoreSlot(slot, e_.Imm(0));
          break;
        case Kind::kRangeIter: {  // an inner range loop's iterator, as an object now
          const InnerRange& range = inner_range(d);
          Value object = e_.Call(kNewRangeIter, {e_.Load(range.start, 0), e_.Load(range.step, 0),
                                                 e_.Load(range.len, 0), e_.Load(range.index, 0)});
          Block made = e_.NewBlock("loop_leave_range_iter");
          e_.BranchUnlikely(e_.Compare(Cmp::kEq, object, e_.Imm(0)), ErrorExit(slot, inst), made);
          Enter(made);
          StoreSlot(slot, object);
          break;
        }
        case Kind::kInt:
          StoreSlot(slot, BoxInt(v, inst, slot));
          break;
        case Kind::kFloat: {
          Value object = e_.Call(kBoxFloat, {v});
          Block boxed = e_.NewBlock("loop_leave_boxed");
          e_.BranchUnlikely(e_.Compare(Cmp::kEq, object, e_.Imm(0)), ErrorExit(slot, inst), boxed);
          Enter(boxed);
          StoreSlot(slot, object);
          break;
        }
        default:  // a list or a callee
          Incref(v);
          StoreSlot(slot, v);
          break;
      }
    }
    e_.Jump(blocks_[k]);
  };
  // Leaving the loop for instruction `target` (outside it), committing the current values.
  auto leave_to = [&](int target) {
    Block exit = e_.NewBlock("loop_exit");
    const Block resume = current_;
    Enter(exit);
    commit();
    e_.Jump(blocks_[target]);
    Enter(resume);
    return exit;
  };
  // A back edge at `latch`: polls the eval breaker; when set, commits and takes the latch's own
  // back edge (which handles it, then comes to the entry again).
  auto back_edge = [&](int latch) {
    Block edge = e_.NewBlock("loop_back_edge");
    const Block resume = current_;
    Enter(edge);
    Value interp = e_.Load(tstate_, kInterp);
    Value breaker = e_.LoadVolatile(interp, kEvalBreakerFlag, Width::k32);
    Block pending = e_.NewBlock("loop_eval_breaker");
    e_.BranchUnlikely(e_.Compare(Cmp::kNe, breaker, e_.Imm(0)), pending, body_block(head));
    Enter(pending);
    commit();
    e_.Jump(BackEdge(insts[latch], base));
    Enter(resume);
    return edge;
  };
  // A back edge to an inner range loop's FOR_ITER: when the eval breaker is set, the loop
  // leaves at the jump (the iterator made an object), whose own translation handles it.
  auto inner_back_edge = [&](int latch, int inner_head) {
    Block edge = e_.NewBlock("loop_inner_back_edge");
    const Block resume = current_;
    Enter(edge);
    Value interp = e_.Load(tstate_, kInterp);
    Value breaker = e_.LoadVolatile(interp, kEvalBreakerFlag, Width::k32);
    e_.BranchUnlikely(e_.Compare(Cmp::kNe, breaker, e_.Imm(0)), fail_at(latch),
                      body_block(inner_head));
    Enter(resume);
    return edge;
  };
  // The address of a list's item at an int index, as list's subscript finds it (a negative
  // index counts from the end); past the end (IndexError) to `fail`.
  auto item_address = [&](Value list, Value index, Block fail) {
    Value size = Field(list, kObSize);
    Value wrapped = e_.Select(e_.Compare(Cmp::kSlt, index, e_.Imm(0)), e_.Add(index, size), index);
    Block in_range = e_.NewBlock("loop_item_in_range");
    e_.Branch(e_.Compare(Cmp::kUlt, wrapped, size), in_range, fail);
    Enter(in_range);
    return e_.Add(Field(list, offsetof(PyListObject, ob_item)), e_.Mul(wrapped, e_.Imm(8)));
  };
  auto successor = [&](int j) {  // a fall through or forward jump from inside the loop
    return j >= head && j < end ? body_block(j) : leave_to(j);
  };

  for (int j = head; j < end; ++j) {
    if (body[j - head] < 0) continue;  // not reached from the head
    const Instruction& inst = insts[j];
    Enter(body[j - head]);
    const std::vector<Kind>& kinds = stacks[j - head];
    int depth = static_cast<int>(kinds.size());
    auto pop = [&]() -> Num {
      --depth;
      return {kinds[depth], e_.Load(stack_slots[depth], 0)};
    };
    auto push = [&](Value v) { e_.Store(stack_slots[depth++], 0, v); };
    auto jump_of = [&](const Instruction& jump_inst) {
      const int target = decoded_.IndexAt(jump_inst.jump_target);
      const int latch = static_cast<int>(&jump_inst - insts.data());
      if (jump_inst.jump_target > jump_inst.offset) return successor(target);
      return target == head ? back_edge(latch) : inner_back_edge(latch, target);
    };
    switch (inst.base_opcode) {
      case FOR_ITER: {
        if (j != head) {  // an inner range loop's: its state is held unboxed
          const InnerRange& range = inner_range(depth - 1);
          Value index = e_.Load(range.index, 0);
          Block next_value = e_.NewBlock("loop_inner_next");
          e_.Branch(e_.Compare(Cmp::kSlt, index, e_.Load(range.len, 0)), next_value,
                    body_block(decoded_.IndexAt(inst.jump_target)));  // exhausted: popped
          Enter(next_value);
          e_.Store(range.index, 0, e_.Add(index, e_.Imm(1)));
          push(e_.Add(e_.Load(range.start, 0), e_.Mul(index, e_.Load(range.step, 0))));
          e_.Jump(successor(j + 1));
          break;
        }
        Value index = e_.Load(index_slot, 0);
        Block next_value = e_.NewBlock("loop_range_next");
        Block exhausted = e_.NewBlock("loop_range_exhausted");
        e_.Branch(e_.Compare(Cmp::kSlt, index, len), next_value, exhausted);
        Enter(exhausted);
        commit();
        Decref(iter);  // a range iterator: runs no code
        JumpTo(inst.jump_target);
        Enter(next_value);
        e_.Store(index_slot, 0, e_.Add(index, e_.Imm(1)));
        push(e_.Add(start, e_.Mul(index, step)));
        e_.Jump(successor(j + 1));
        break;
      }
      case LOAD_FAST:
        push(e_.Load(state[inst.oparg].value, 0));
        e_.Jump(successor(j + 1));
        break;
      case LOAD_GLOBAL:
        if ((inst.oparg & 1) != 0) push(e_.Imm(0));  // a NULL, then the function
        if (LoopGlobalKind(j) == Kind::kCallee) {  // the entry checked it
          push(callee_functions.at(
              PyTuple_GET_ITEM(request_.compiled->co_names, inst.oparg >> 1)));
        } else {
          push(globals.at(inst.oparg >> 1));
        }
        e_.Jump(successor(j + 1));
        break;
      case PUSH_NULL:
        push(e_.Imm(0));
        e_.Jump(successor(j + 1));
        break;
      case GET_ITER:  // of the range just made: the iterator is its state
        e_.Jump(successor(j + 1));
        break;
      case LOAD_METHOD:  // math's sqrt (the entry checked it), after a NULL
      case LOAD_ATTR:    // the same, the NULL pushed already
        --depth;
        if (inst.base_opcode == LOAD_METHOD) push(e_.Imm(0));
        push(e_.Ptr(sqrt));
        e_.Jump(successor(j + 1));
        break;
      case PRECALL:
        e_.Jump(successor(j + 1));
        break;
      case CALL: {
        if (kinds[depth - inst.oparg - 1] == Kind::kRange) {
          // range()'s iterator, as range_iter makes it: start, step and the length
          // get_len_of_range computes. Arguments within +-2^62 (so that no difference below
          // overflows) and a step other than 0; else range's own call (ValueError for 0).
          std::vector<Value> args;
          for (int a = depth - inst.oparg; a < depth; ++a) {
            args.push_back(e_.Load(stack_slots[a], 0));
          }
          depth -= inst.oparg + 2;
          Value start = args.size() == 1 ? e_.Imm(0) : args[0];
          Value stop = args.size() == 1 ? args[0] : args[1];
          Value step = args.size() == 3 ? args[2] : e_.Imm(1);
          Value fits = e_.Compare(Cmp::kNe, step, e_.Imm(0));
          for (Value v : args) {
            fits = e_.And(fits, e_.Compare(Cmp::kUlt, e_.Add(v, e_.Imm(int64_t{1} << 62)),
                                           e_.Imm(static_cast<int64_t>(uint64_t{1} << 63))));
          }
          Block made = e_.NewBlock("loop_range_made");
          e_.Branch(fits, made, fail_at(j - 1));
          Enter(made);
          Value up = e_.Compare(Cmp::kSgt, step, e_.Imm(0));
          // The values' span less one (negative when empty), and the step's magnitude.
          Value span = e_.Select(up, e_.Sub(e_.Sub(stop, e_.Imm(1)), start),
                                 e_.Sub(e_.Sub(start, e_.Imm(1)), stop));
          Value magnitude = e_.Select(up, step, e_.Sub(e_.Imm(0), step));
          Value len = e_.Select(e_.Compare(Cmp::kSge, span, e_.Imm(0)),
                                e_.Add(e_.SDiv(span, magnitude), e_.Imm(1)), e_.Imm(0));
          const InnerRange& range = inner_range(depth);
          e_.Store(range.index, 0, e_.Imm(0));
          e_.Store(range.start, 0, start);
          e_.Store(range.step, 0, step);
          e_.Store(range.len, 0, len);
          push(e_.Imm(0));  // the iterator: its state above
          e_.Jump(successor(j + 1));
          break;
        }
        if (kinds[depth - 2] == Kind::kSqrt) {  // math.sqrt(x): ValueError below -0.0
          const Num x = pop();
          depth -= 2;
          Value bits = AsDouble(x, fail_at(j - 1));
          Block in_domain = e_.NewBlock("loop_sqrt_domain");
          e_.Branch(e_.FCompare(FCmp::kOlt, bits, e_.Imm(0)), fail_at(j - 1), in_domain);
          Enter(in_domain);
          push(e_.FSqrt(bits));
          e_.Jump(successor(j + 1));
          break;
        }
        std::vector<Num> args;
        for (int a = depth - inst.oparg; a < depth; ++a) {
          args.push_back({kinds[a], e_.Load(stack_slots[a], 0)});
        }
        depth -= inst.oparg + 2;
        push(InlineLeafCall(callees.at(j), args, fail_at(j - 1)).value);  // at its PRECALL
        e_.Jump(successor(j + 1));
        break;
      }
      case BINARY_SUBSCR: {  // list[int]
        const Num index = pop();
        const Kind list_kind = kinds[depth - 1];
        Value list = e_.Load(stack_slots[--depth], 0);
        Value item = e_.Load(item_address(list, index.value, fail_at(j)), 0);
        push(UnboxNumber(item, list_kind == Kind::kIntList ? Kind::kInt : Kind::kFloat,
                         fail_at(j)));
        e_.Jump(successor(j + 1));
        break;
      }
      case STORE_SUBSCR: {  // list[int] = number, as list's item assignment does it
        const Num index = pop();
        const Kind list_kind = kinds[depth - 1];
        Value list = e_.Load(stack_slots[--depth], 0);
        const Num v = pop();
        Value address = item_address(list, index.value, fail_at(j));
        Value old = e_.Load(address, 0);
        // The item replaced is released here: only an exact int or float, whose deallocation
        // runs no code; anything else is left to k's own translation.
        Value old_type = TypeOf(old);
        Block number = e_.NewBlock("loop_store_old_number");
        e_.Branch(e_.Or(IsType(old_type, &PyFloat_Type), IsType(old_type, &PyLong_Type)), number,
                  fail_at(j));
        Enter(number);
        Block replace = e_.NewBlock("loop_store_replace");
        Block stored_item = e_.NewBlock("loop_store_done");
        Value fresh_slot = e_.StackSlot();
        if (list_kind == Kind::kFloatList) {
          // A float only the list refers to takes the value in place.
          Block in_place = e_.NewBlock("loop_store_in_place");
          Block allocate = e_.NewBlock("loop_store_allocate");
          e_.Branch(e_.And(IsType(old_type, &PyFloat_Type),
                           e_.Compare(Cmp::kEq, Refcount(old), e_.Imm(1))),
                    in_place, allocate);
          Enter(in_place);
          SetField(old, kFloatValue, v.value);
          e_.Jump(stored_item);
          Enter(allocate);
          e_.Store(fresh_slot, 0, e_.Call(kBoxFloat, {v.value}));
          e_.Jump(replace);
        } else {
          Block allocate = e_.NewBlock("loop_store_allocate");
          e_.Store(fresh_slot, 0, CachedSmallInt(v.value, allocate));
          e_.Jump(replace);
          Enter(allocate);
          e_.Store(fresh_slot, 0, e_.Call(kLongFromInt64, {v.value}));
          e_.Jump(replace);
        }
        Enter(replace);
        Value fresh = e_.Load(fresh_slot, 0);
        Block allocated = e_.NewBlock("loop_store_allocated");
        Block out_of_memory = e_.NewBlock("loop_store_no_memory");
        e_.BranchUnlikely(e_.Compare(Cmp::kEq, fresh, e_.Imm(0)), out_of_memory, allocated);
        Enter(out_of_memory);  // k's own translation allocates again, and raises if it fails
        e_.Call(kClearError, {});
        e_.Jump(fail_at(j));
        Enter(allocated);
        e_.Store(address, 0, fresh);
        Decref(old);
        e_.Jump(stored_item);
        Enter(stored_item);
        e_.Jump(successor(j + 1));
        break;
      }
      case COPY: {
        push(e_.Load(stack_slots[depth - inst.oparg], 0));
        e_.Jump(successor(j + 1));
        break;
      }
      case SWAP: {
        Value top = e_.Load(stack_slots[depth - 1], 0);
        Value other = e_.Load(stack_slots[depth - inst.oparg], 0);
        e_.Store(stack_slots[depth - 1], 0, other);
        e_.Store(stack_slots[depth - inst.oparg], 0, top);
        e_.Jump(successor(j + 1));
        break;
      }
      case LOAD_CONST: {
        PyObject* constant = PyTuple_GET_ITEM(request_.compiled->co_consts, inst.oparg);
        push(constant == reinterpret_cast<PyObject*>(&PyRange_Type) ? e_.Ptr(constant)
                                                                    : NumericConstant(constant));
        e_.Jump(successor(j + 1));
        break;
      }
      case BINARY_OP: {
        const Num right = pop();
        const Num left = pop();
        push(NumericBinary(inst.oparg, left, right, fail_at(j)).value);
        e_.Jump(successor(j + 1));
        break;
      }
      case STORE_FAST: {
        const Num v = pop();
        e_.Store(state[inst.oparg].value, 0, v.value);
        e_.Store(state[inst.oparg].dirty, 0, e_.Imm(1));
        e_.Jump(successor(j + 1));
        break;
      }
      case NOP:
        e_.Jump(successor(j + 1));
        break;
      case POP_TOP: {  // a break out of the range loop: the iterator goes, then the jump out
        if (!kinds.empty() && kinds.back() == Kind::kRangeIter) {  // an inner one: nothing to free
          --depth;
          e_.Jump(successor(j + 1));
          break;
        }
        commit();
        Decref(iter);  // a range iterator: runs no code
        JumpTo(insts[j + 1].jump_target);
        ++j;
        break;
      }
      case JUMP_FORWARD:
      case JUMP_BACKWARD:
        e_.Jump(jump_of(inst));
        break;
      default: {  // COMPARE_OP + POP_JUMP, or POP_JUMP on a number
        int jump = j;
        Value condition;
        if (inst.base_opcode == COMPARE_OP) {
          const Num right = pop();
          const Num left = pop();
          condition = NumericCompare(inst.oparg, left, right, fail_at(j));
          jump = j + 1;
        } else {
          condition = NumericTruth(pop());
        }
        const Instruction& jump_inst = insts[jump];
        Block taken = jump_of(jump_inst);
        Block next = successor(jump + 1);
        const bool if_true = jump_inst.base_opcode == POP_JUMP_FORWARD_IF_TRUE ||
                             jump_inst.base_opcode == POP_JUMP_BACKWARD_IF_TRUE;
        e_.Branch(condition, if_true ? taken : next, if_true ? next : taken);
        if (jump != j) ++j;  // the POP_JUMP was lowered with its COMPARE_OP
        break;
      }
    }
  }
  if (!fail_blocks.empty()) {
    Enter(commit_and_leave);
    commit();
    Value site = e_.Load(leave_site, 0);
    for (auto it = fail_blocks.begin(); it != fail_blocks.end(); ++it) {
      const int k = it->first;
      if (std::next(it) != fail_blocks.end()) {
        Block here = e_.NewBlock("loop_leave_here");
        Block other = e_.NewBlock("loop_leave_other");
        e_.Branch(e_.Compare(Cmp::kEq, site, e_.Imm(k)), here, other);
        Enter(here);
        write_stack_for(k);
        Enter(other);
      } else {
        write_stack_for(k);
      }
    }
  }
  Enter(entry_missed);
  Value misses_at = e_.Ptr(&out_.loop_entry_misses);
  Value misses = e_.Add(e_.Load(misses_at, 0), e_.Imm(1));
  e_.Store(misses_at, 0, misses);
  Block look = e_.NewBlock("loop_entry_look");
  e_.BranchUnlikely(e_.Compare(Cmp::kEq, e_.And(misses, e_.Imm(kMissesPerCheck - 1)), e_.Imm(0)),
                    look, generic);
  Enter(look);
  e_.Call(kNumericLoopMissed, {frame_, e_.Ptr(&out_), e_.Ptr(&guesses)});
  e_.Jump(generic);
  Enter(generic);
}

}  // namespace fatjit::jit
