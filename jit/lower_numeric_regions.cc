// Numeric regions: straight-line int and float arithmetic on locals, unboxed from its first read
// to its last store (FunctionCompiler, function_compiler.h).
//
// Assumes the per-instruction translation of every instruction of a region exists (Lower emits
// it as usual) and that CPython 3.11's int and float layouts are those lower_numbers.cc reads.
// Produces, at the first instruction of each region, a fast path that reads each local the
// region reads once (a type test and an unboxing), computes every BINARY_OP of the region on
// machine values (int64 with exactness checks, doubles), and only at the end writes the locals
// the region stores (each once, its last value: into the local's own object when nothing else
// refers to it, else boxed anew), then goes on after the region or branches where its final
// COMPARE_OP + POP_JUMP or POP_JUMP on a number goes. Any test that fails (a local unbound or not
// of the kind guessed, an int beyond int64, an overflow, a division by zero, a boxing that cannot
// allocate) jumps to the per-instruction translation of the region's first instruction, with
// nothing written yet: the region then runs as if it had no fast path.
// A region is a stretch of LOAD_FAST, LOAD_CONST (of an int that fits an int64 or a float),
// BINARY_OP (the operators lower_numbers.cc inlines for those kinds), STORE_FAST, and a last
// COMPARE_OP + POP_JUMP_IF_FALSE/TRUE or POP_JUMP_IF_FALSE/TRUE, that takes nothing from the
// stack below the depth it starts at, leaves the stack as it found it, has no jump into it past
// its first instruction, and does at least two operations (one alone gains nothing over the
// per-instruction paths).
// Which kind (int or float) a local is guessed to hold comes from the values stored into it
// anywhere in the function (GuessLocalKinds): constants, and results of operations on them; a
// local of no known kind is guessed an int. A wrong guess costs the type test only.
//
// Sound because: the fast path runs no Python code and changes nothing before its commit, so
// leaving it for the per-instruction code at the region's start is leaving before anything
// happened; the operations on exact ints and floats are the same arithmetic lower_numbers.cc
// does (same reasons: int's and float's own slots, exact conversions below 2^53, the slow
// cases left to the generic code), so the values committed are the ones the instructions would
// have stored, and each stored local's last value is the only one anybody could see afterwards
// (an intermediate store is overwritten before anything can look). Writing a value into the
// local's own object is writing into an int or float only that local refers to (refcount 1:
// the object no stack slot, container or scratch reference holds), which the STORE_FAST would
// have released right away. Releasing a local's old object runs no code: the commit takes only
// locals that are unbound or hold an exact int or float (whose deallocation runs nothing).
#include "jit/function_compiler.h"

#include <map>

namespace fatjit::jit {

namespace {

bool JumpsIfTrue(int opcode) {
  return opcode == POP_JUMP_FORWARD_IF_TRUE || opcode == POP_JUMP_BACKWARD_IF_TRUE;
}

using Kind = FunctionCompiler::NumKind;

// What an operation's result is, given its operands' kinds (kUnknown: a guess is still open).
Kind ResultKind(int op, Kind left, Kind right) {
  if (left == Kind::kOther || right == Kind::kOther) return Kind::kOther;
  const bool some_float = left == Kind::kFloat || right == Kind::kFloat;
  if (BaseOp(op) == NB_TRUE_DIVIDE) return Kind::kFloat;  // of ints or floats: a float
  if (some_float) return FloatOpInline(op) ? Kind::kFloat : Kind::kOther;
  if (left == Kind::kInt && right == Kind::kInt) return IntOpInline(op) ? Kind::kInt : Kind::kOther;
  return Kind::kUnknown;
}

// Joining what two stores put in one local: a float absorbs an int (`total = 0` then
// `total += x * 0.5`: a float after the first round).
Kind Join(Kind a, Kind b) {
  if (a == Kind::kUnknown) return b;
  if (b == Kind::kUnknown || a == b) return a;
  if (a == Kind::kOther || b == Kind::kOther) return Kind::kOther;
  return Kind::kFloat;  // an int and a float
}

}  // namespace

// The kind of the value in stack slot `depth` before instruction `index`, following the
// instructions that pushed it back through straight-line code and the edges into a jump target
// (whose kinds join). kUnknown when an instruction on the way is not one of the few whose
// stack use is known here, or after `steps` instructions.
FunctionCompiler::NumKind FunctionCompiler::KindBefore(int index, int depth, int& steps) const {
  if (--steps < 0 || index <= 0 || index >= static_cast<int>(depth_.size())) return Kind::kUnknown;
  absl::Span<const Instruction> insts = decoded_.instructions();
  if (!jump_target_[index]) return KindAfter(index - 1, depth, steps);
  Kind kind = Kind::kUnknown;
  const Instruction& before = insts[index - 1];
  if (depth_[index - 1] != bytecode::kUnreachable && !EndsFlow(before.base_opcode) &&
      !(before.is_jump() && decoded_.IndexAt(before.jump_target) == index)) {
    kind = KindAfter(index - 1, depth, steps);
  }
  auto [first, last] = jump_sources_.equal_range(index);
  for (auto it = first; it != last; ++it) {
    const int source = it->second;
    if (depth_[source] == bytecode::kUnreachable || depth >= depth_[source] ||
        depth >= depth_[index]) {
      return Kind::kUnknown;  // the jump itself may touch the slot
    }
    kind = Join(kind, KindBefore(source, depth, steps));
  }
  return kind;
}

FunctionCompiler::NumKind FunctionCompiler::KindAfter(int index, int depth, int& steps) const {
  const Instruction& inst = decoded_.instructions()[index];
  const int d = depth_[index];
  if (d == bytecode::kUnreachable) return Kind::kUnknown;
  switch (inst.base_opcode) {
    case LOAD_CONST:
      if (depth == d) return ConstantKind(PyTuple_GET_ITEM(request_.compiled->co_consts, inst.oparg));
      break;
    case LOAD_FAST:
      if (depth == d) {
        return inst.oparg >= 0 && inst.oparg < nlocalsplus_ ? local_kind_[inst.oparg]
                                                            : Kind::kUnknown;
      }
      break;
    case BINARY_OP:
      if (depth == d - 2) {
        return ResultKind(inst.oparg, KindBefore(index, depth, steps),
                          KindBefore(index, depth + 1, steps));
      }
      if (depth > d - 2) return Kind::kUnknown;
      break;
    case COMPARE_OP:
      if (depth >= d - 2) return Kind::kOther;  // a bool, or the generic result
      break;
    case STORE_FAST:
    case POP_TOP:
      if (depth >= d - 1) return Kind::kUnknown;
      break;
    case NOP:
    case RESUME:
      break;
    default:
      return Kind::kUnknown;
  }
  return depth < d ? KindBefore(index, depth, steps) : Kind::kUnknown;
}

FunctionCompiler::NumKind FunctionCompiler::ConstantKind(PyObject* constant) {
  if (PyFloat_CheckExact(constant)) return Kind::kFloat;
  if (!PyLong_CheckExact(constant)) return Kind::kOther;
  int overflow = 0;
  PyLong_AsLongLongAndOverflow(constant, &overflow);
  if (PyErr_Occurred()) PyErr_Clear();
  return overflow == 0 ? Kind::kInt : Kind::kOther;
}

Value FunctionCompiler::NumericConstant(PyObject* constant) {
  if (PyFloat_CheckExact(constant)) {
    const double d = PyFloat_AS_DOUBLE(constant);
    int64_t bits;
    std::memcpy(&bits, &d, sizeof bits);
    return e_.Imm(bits);
  }
  return e_.Imm(PyLong_AsLongLong(constant));  // ConstantKind said it fits
}

// Twice: without the hints, which says what locals the code alone leaves open (open_local_:
// kind feedback watches those), then from the hints.
void FunctionCompiler::GuessLocalKinds() {
  GuessLocalKindsFrom({});
  open_local_.assign(nlocalsplus_, false);
  for (int l = 0; l < nlocalsplus_; ++l) open_local_[l] = local_kind_[l] == Kind::kUnknown;
  GuessLocalKindsFrom(request_.local_kinds);
}

void FunctionCompiler::GuessLocalKindsFrom(const std::vector<LocalKind>& hints) {
  absl::Span<const Instruction> insts = decoded_.instructions();
  const int n = static_cast<int>(insts.size());
  local_kind_.assign(nlocalsplus_, Kind::kUnknown);
  for (size_t p = 0; p < hints.size() && p < local_kind_.size(); ++p) {
    local_kind_[p] = hints[p] == LocalKind::kInt     ? Kind::kInt
                     : hints[p] == LocalKind::kFloat ? Kind::kFloat
                                                     : Kind::kUnknown;
  }
  jump_sources_.clear();
  for (int i = 0; i < n; ++i) {
    if (insts[i].is_jump() && depth_[i] != bytecode::kUnreachable) {
      jump_sources_.emplace(decoded_.IndexAt(insts[i].jump_target), i);
    }
  }
  // Kinds only rise (kUnknown, then int or float, then float or other): a few rounds settle.
  for (int round = 0; round < 4; ++round) {
    bool changed = false;
    for (int i = 0; i < n; ++i) {
      const Instruction& inst = insts[i];
      if (inst.base_opcode != STORE_FAST || depth_[i] == bytecode::kUnreachable ||
          inst.oparg < 0 || inst.oparg >= nlocalsplus_) {
        continue;
      }
      int steps = 64;
      const Kind stored = KindBefore(i, depth_[i] - 1, steps);
      const Kind joined = Join(local_kind_[inst.oparg], stored);
      if (joined != local_kind_[inst.oparg]) {
        local_kind_[inst.oparg] = joined;
        changed = true;
      }
    }
    if (!changed) break;
  }
}

void FunctionCompiler::FindNumericRegions() {
  absl::Span<const Instruction> insts = decoded_.instructions();
  const int n = static_cast<int>(insts.size());
  region_end_.assign(n, -1);
  if (!NumericFastPathsEnabled()) return;
  GuessLocalKinds();  // numeric loops use the guesses too
  if (!NumericRegionsEnabled()) return;
  auto guess = [&](int local) {
    const Kind k = local_kind_[local];
    return k == Kind::kUnknown ? Kind::kInt : k;
  };
  for (int s = 0; s < n;) {
    std::vector<Kind> stack;
    std::map<int, Kind> stored;
    int operations = 0;
    int end = -1;          // after the last instruction that left the stack as it was
    int end_operations = 0;
    int j = s;
    for (; j < n; ++j) {
      const Instruction& inst = insts[j];
      if (blocks_[j] < 0 || (j > s && jump_target_[j])) break;
      const int op = inst.base_opcode;
      bool ends = false;
      if (op == LOAD_FAST) {
        if (inst.oparg < 0 || inst.oparg >= nlocalsplus_) break;
        auto it = stored.find(inst.oparg);
        const Kind k = it != stored.end() ? it->second : guess(inst.oparg);
        if (k != Kind::kInt && k != Kind::kFloat) break;
        stack.push_back(k);
      } else if (op == LOAD_CONST) {
        const Kind k = ConstantKind(PyTuple_GET_ITEM(request_.compiled->co_consts, inst.oparg));
        if (k == Kind::kOther) break;
        stack.push_back(k);
      } else if (op == BINARY_OP) {
        if (stack.size() < 2) break;
        const Kind right = stack.back();
        const Kind left = stack[stack.size() - 2];
        const Kind result = ResultKind(inst.oparg, left, right);
        if (result != Kind::kInt && result != Kind::kFloat) break;
        if (result == Kind::kFloat && !FloatOpInline(inst.oparg)) break;  // int / int
        stack.pop_back();
        stack.back() = result;
        ++operations;
      } else if (op == STORE_FAST) {
        if (stack.empty() || inst.oparg < 0 || inst.oparg >= nlocalsplus_) break;
        stored[inst.oparg] = stack.back();
        stack.pop_back();
      } else if (op == COMPARE_OP) {
        if (stack.size() != 2 || inst.oparg < Py_LT || inst.oparg > Py_GE || j + 2 >= n ||
            !IsPopJumpOnTruth(insts[j + 1].base_opcode) || blocks_[j + 1] < 0 ||
            blocks_[j + 2] < 0) {
          break;
        }
        stack.clear();
        ++operations;
        ++j;  // the POP_JUMP
        ends = true;
      } else if (IsPopJumpOnTruth(op)) {
        if (stack.size() != 1 || j + 1 >= n || blocks_[j + 1] < 0) break;
        stack.clear();
        ++operations;
        ends = true;
      } else {
        break;
      }
      if (stack.empty()) {
        end = j + 1;
        end_operations = operations;
      }
      if (ends) break;
    }
    if (end > s && end_operations >= 2) {
      region_end_[s] = end;
      s = end;
    } else {
      ++s;
    }
  }
}

Value FunctionCompiler::FitsInt64(Value object) {
  auto up_to = [&](int digits) {  // |ob_size| <= digits
    return e_.Compare(Cmp::kUlt, e_.Add(Field(object, kObSize), e_.Imm(digits)),
                      e_.Imm(2 * digits + 1));
  };
  // Two digits (60 bits), or three whose top one is below 8 (|value| < 2^63).
  Value three_digits = e_.Compare(Cmp::kNe, up_to(2), e_.Imm(1));
  Value top = Field(e_.Select(three_digits, e_.Add(object, e_.Imm(2 * sizeof(digit))), object),
                    kIntDigit0, Width::k32);
  return e_.And(up_to(3), e_.Or(e_.Compare(Cmp::kEq, three_digits, e_.Imm(0)),
                                e_.Compare(Cmp::kUlt, top, e_.Imm(8))));
}

Value FunctionCompiler::UnboxNumber(Value object, NumKind kind, Block fail) {
  auto require = [&](Value condition, const char* name) {
    Block ok = e_.NewBlock(name);
    e_.Branch(condition, ok, fail);
    Enter(ok);
  };
  if (kind == Kind::kFloat) {
    require(IsType(TypeOf(object), &PyFloat_Type), "unbox_float");
    return FloatBits(object);
  }
  require(IsType(TypeOf(object), &PyLong_Type), "unbox_int");
  // Most ints have one digit or none (|ob_size| <= 1): the value is ob_size * digit.
  Block compact = e_.NewBlock("unbox_compact_int");
  Block wider = e_.NewBlock("unbox_wider_int");
  Block unboxed = e_.NewBlock("int_unboxed");
  e_.Branch(e_.Compare(Cmp::kUlt, e_.Add(Field(object, kObSize), e_.Imm(1)), e_.Imm(3)), compact,
            wider);
  Enter(compact);
  Value small = CompactIntValue(object);
  e_.Jump(unboxed);
  Enter(wider);
  require(FitsInt64(object), "unbox_int64");
  Value wide = MachineIntValue(object);
  const Block from_wide = current_;
  e_.Jump(unboxed);
  Enter(unboxed);
  return e_.Phi({{small, compact}, {wide, from_wide}});
}

Value FunctionCompiler::AsDouble(Num num, Block fail) {
  if (num.kind == Kind::kFloat) return num.value;
  // Exact up to 2^53 in magnitude; larger ints leave for the generic code.
  constexpr int64_t kExact = int64_t{1} << 53;
  Block exact = e_.NewBlock("int_exact_double");
  e_.Branch(e_.Compare(Cmp::kUlt, e_.Add(num.value, e_.Imm(kExact)), e_.Imm(2 * kExact + 1)),
            exact, fail);
  Enter(exact);
  return e_.IntToDouble(num.value);
}

FunctionCompiler::Num FunctionCompiler::NumericBinary(int oparg, Num left, Num right, Block fail) {
  const int op = BaseOp(oparg);
  if (left.kind == Kind::kInt && right.kind == Kind::kInt && op != NB_TRUE_DIVIDE) {
    if (op == NB_FLOOR_DIVIDE || op == NB_REMAINDER) {
      // INT64_MIN // -1 overflows (and traps): only an intermediate can be INT64_MIN.
      Block ok = e_.NewBlock("div_operand");
      e_.Branch(e_.Compare(Cmp::kNe, left.value, e_.Imm(INT64_MIN)), ok, fail);
      Enter(ok);
    }
    return {Kind::kInt, IntArithmetic(op, left.value, right.value, fail, true)};
  }
  // Ints up to 2^53 convert exactly, as float's slots and int true division compute them.
  Value a = AsDouble(left, fail);
  Value b = AsDouble(right, fail);
  return {Kind::kFloat, FloatArithmetic(op, a, b, fail)};
}

Value FunctionCompiler::NumericCompare(int op, Num left, Num right, Block fail) {
  if (left.kind == Kind::kInt && right.kind == Kind::kInt) {
    return e_.Compare(IntComparison(op), left.value, right.value);
  }
  Value a = AsDouble(left, fail);
  Value b = AsDouble(right, fail);
  return e_.FCompare(FloatComparison(op), a, b);
}

Value FunctionCompiler::NumericTruth(Num value) {
  // Nonzero; NaN too (it is unequal to 0.0).
  return value.kind == Kind::kInt ? e_.Compare(Cmp::kNe, value.value, e_.Imm(0))
                                  : e_.FCompare(FCmp::kUne, value.value, e_.Imm(0));
}

void FunctionCompiler::LowerNumericRegion(int start) {
  absl::Span<const Instruction> insts = decoded_.instructions();
  const int end = region_end_[start];
  const int base = depth_[start];
  Block generic = e_.NewBlock("region_generic");
  auto likely = [&](Value condition, const char* name) {  // else the generic code
    Block ok = e_.NewBlock(name);
    e_.Branch(condition, ok, generic);
    Enter(ok);
  };
  struct Local {
    Value object = 0;  // its object when the region began (read or about to be replaced)
    bool loaded = false;
    bool typed = false;  // `object` is known to be an exact int or float (it was unboxed)
  };
  std::map<int, Num> read;     // first reads, unboxed
  std::map<int, Num> written;  // last stores
  std::map<int, Local> locals;
  std::vector<Num> stack;
  std::vector<int> store_order;
  auto load_local = [&](int local) -> Local& {
    Local& l = locals[local];
    if (!l.loaded) {
      l.object = FrameLoad(LocalOffset(local));
      l.loaded = true;
    }
    return l;
  };
  // Comparison or truth of the final jump, if any: the condition and the jump instruction.
  Value condition = 0;
  int jump_index = -1;
  for (int j = start; j < end; ++j) {
    const Instruction& inst = insts[j];
    switch (inst.base_opcode) {
      case LOAD_FAST: {
        if (auto it = written.find(inst.oparg); it != written.end()) {
          stack.push_back(it->second);
          break;
        }
        if (auto it = read.find(inst.oparg); it != read.end()) {
          stack.push_back(it->second);
          break;
        }
        const Kind k = local_kind_[inst.oparg] == Kind::kFloat ? Kind::kFloat : Kind::kInt;
        Local& l = load_local(inst.oparg);
        likely(e_.Compare(Cmp::kNe, l.object, e_.Imm(0)), "region_bound");
        const Num num{k, UnboxNumber(l.object, k, generic)};
        l.typed = true;
        read[inst.oparg] = num;
        stack.push_back(num);
        break;
      }
      case LOAD_CONST: {
        PyObject* constant = PyTuple_GET_ITEM(request_.compiled->co_consts, inst.oparg);
        stack.push_back({ConstantKind(constant), NumericConstant(constant)});
        break;
      }
      case BINARY_OP: {
        const Num right = stack.back();
        stack.pop_back();
        const Num left = stack.back();
        const Num result = NumericBinary(inst.oparg, left, right, generic);
        stack.back() = result;
        break;
      }
      case STORE_FAST: {
        if (written.count(inst.oparg) == 0) store_order.push_back(inst.oparg);
        written[inst.oparg] = stack.back();
        stack.pop_back();
        break;
      }
      case COMPARE_OP: {
        const Num right = stack.back();
        const Num left = stack[stack.size() - 2];
        stack.clear();
        condition = NumericCompare(inst.oparg, left, right, generic);
        jump_index = j + 1;
        j = end;  // the POP_JUMP is the region's last instruction
        break;
      }
      default: {  // POP_JUMP_*_IF_FALSE/TRUE on a number
        const Num value = stack.back();
        stack.clear();
        condition = NumericTruth(value);
        jump_index = j;
        break;
      }
    }
  }

  // The commit. First every local to be replaced must hold nothing or an exact int or float
  // (releasing it runs no code); then every new object is made (an allocation that fails
  // releases the ones made and leaves for the generic code, nothing written); then the writes.
  struct Commit {
    int local;
    Num num;
    Value in_place;  // i1: write into the local's own object
    Value fresh;     // the new object when !in_place (else 0)
  };
  std::vector<Commit> commits;
  for (int local : store_order) {
    Local& l = load_local(local);
    if (!l.typed) {
      Block check_type = e_.NewBlock("region_old_value");
      Block ok = e_.NewBlock("region_old_ok");
      e_.Branch(e_.Compare(Cmp::kEq, l.object, e_.Imm(0)), ok, check_type);
      Enter(check_type);
      Value type = TypeOf(l.object);
      e_.Branch(e_.Or(IsType(type, &PyLong_Type), IsType(type, &PyFloat_Type)), ok, generic);
      Enter(ok);
    }
  }
  for (int local : store_order) {
    const Num num = written[local];
    Local& l = locals[local];
    PyTypeObject* type = num.kind == Kind::kInt ? &PyLong_Type : &PyFloat_Type;
    std::vector<std::pair<Value, Block>> in_place_from;
    std::vector<std::pair<Value, Block>> fresh_from;
    Block join = e_.NewBlock("region_placed");
    Block place = e_.NewBlock("region_place");
    if (num.kind == Kind::kInt) {
      // -5..256: the cached object, as CPython's own results are (identity is observable).
      Value cached = CachedSmallInt(num.value, place);
      in_place_from.push_back({e_.Imm(0), current_});
      fresh_from.push_back({cached, current_});
      e_.Jump(join);
    } else {
      e_.Jump(place);
    }
    // In place: the local's object is of the result's type, only the local refers to it, and
    // (an int) it has room for the value's digits.
    Enter(place);
    Block test_type = e_.NewBlock("region_in_place_test");
    Block allocate = e_.NewBlock("region_new_object");
    e_.Branch(e_.Compare(Cmp::kNe, l.object, e_.Imm(0)), test_type, allocate);
    Enter(test_type);
    Block test_owner = e_.NewBlock("region_owner_test");
    e_.Branch(IsType(TypeOf(l.object), type), test_owner, allocate);
    Enter(test_owner);
    Value sole = e_.Compare(Cmp::kEq, Refcount(l.object), e_.Imm(1));
    Block yes = e_.NewBlock("region_in_place");
    if (num.kind == Kind::kInt) {
      // One digit (|value| < 2^30) always fits: every int has room for one.
      Value one_digit = e_.Compare(Cmp::kUlt, e_.Add(num.value, e_.Imm((1 << 30) - 1)),
                                   e_.Imm((int64_t{1} << 31) - 1));
      InPlaceWrite writer = IntWriter(num.value);
      e_.Branch(e_.And(sole, e_.Or(one_digit, writer.can_hold(l.object))), yes, allocate);
    } else {
      e_.Branch(sole, yes, allocate);
    }
    Enter(yes);
    in_place_from.push_back({e_.Imm(1), current_});
    fresh_from.push_back({e_.Imm(0), current_});
    e_.Jump(join);
    Enter(allocate);
    Value fresh = num.kind == Kind::kInt ? e_.Call(kLongFromInt64, {num.value})
                                         : e_.Call(kBoxFloat, {num.value});
    Block allocated = e_.NewBlock("region_allocated");
    Block failed = e_.NewBlock("region_allocation_failed");
    e_.BranchUnlikely(e_.Compare(Cmp::kEq, fresh, e_.Imm(0)), failed, allocated);
    Enter(failed);
    for (const Commit& made : commits) XDecref(made.fresh);  // new ints and floats: no code
    // The allocator set MemoryError; the generic code allocates again and raises it where
    // the interpreter would.
    e_.Call(kClearError, {});
    e_.Jump(generic);
    Enter(allocated);
    in_place_from.push_back({e_.Imm(0), current_});
    fresh_from.push_back({fresh, current_});
    e_.Jump(join);
    Enter(join);
    Value in_place = e_.Phi(in_place_from);
    Value fresh_or_null = e_.Phi(fresh_from);
    commits.push_back({local, num, in_place, fresh_or_null});
  }
  for (const Commit& c : commits) {
    Local& l = locals[c.local];
    Block write = e_.NewBlock("region_write_in_place");
    Block replace = e_.NewBlock("region_replace");
    Block done = e_.NewBlock("region_stored");
    e_.Branch(e_.Compare(Cmp::kNe, c.in_place, e_.Imm(0)), write, replace);
    Enter(write);
    if (c.num.kind == Kind::kInt) {
      IntWriter(c.num.value).write(l.object);
    } else {
      SetField(l.object, kFloatValue, c.num.value);
    }
    e_.Jump(done);
    Enter(replace);
    FrameStore(LocalOffset(c.local), c.fresh);
    XDecref(l.object);  // nothing, an int or a float: runs no code
    e_.Jump(done);
    Enter(done);
  }

  if (jump_index < 0) {
    e_.Jump(blocks_[end]);
  } else {
    const Instruction& jump_inst = insts[jump_index];
    Block jump = IsBackward(jump_inst) ? BackEdge(jump_inst, base) : BlockAt(jump_inst.jump_target);
    Block next = NextBlock(jump_index);
    const bool if_true = JumpsIfTrue(jump_inst.base_opcode);
    e_.Branch(condition, if_true ? jump : next, if_true ? next : jump);
  }
  Enter(generic);
}

}  // namespace fatjit::jit
