// Numeric fast paths of the baseline translation (FunctionCompiler, function_compiler.h):
// BINARY_OP and COMPARE_OP on small ints and exact floats, constant and borrowed operands, and
// where a numeric result goes. The section comment below says what they assume and why they are
// exact.
#include "jit/function_compiler.h"

namespace fatjit::jit {

// ---- Numeric fast paths: BINARY_OP and COMPARE_OP on small ints and exact floats ------------
//
// Assumes CPython 3.11's layouts (static_asserts above): an exact int with |ob_size| <= 2 holds
// its magnitude in ob_digit[0] + ob_digit[1] << 30 (at most 60 bits), so sums, differences,
// quotients and remainders of two such values, and products of two in [-2^31, 2^31) (else the
// slow path), stay below 2^62 in magnitude, as do left shifts checked to (else the slow path);
// one of three digits whose top digit is below 8 is below 2^63 in magnitude, an int64: operands
// that are such ints (not both of two digits) take a second path, where a sum or difference
// that overflows takes the slow path (quotients, remainders, bitwise results and checked
// products and shifts cannot overflow); an exact float holds a C double in ob_fval.
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
    kinds.wide_ints = e_.NewBlock("wide_ints");
    e_.Branch(e_.And(IsType(left_type, &PyLong_Type), IsType(right_type, &PyLong_Type)), both_int,
              float_test);
    Enter(both_int);
    BranchIfSmallInts(left, right, kinds.ints, kinds.wide_ints, slow);
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

void FunctionCompiler::BranchIfSmallInts(Value left, Value right, Block yes, Block wide,
                                         Block no) {
  auto up_to = [&](Value v, int digits) {  // |ob_size| <= digits
    return e_.Compare(Cmp::kUlt, e_.Add(Field(v, kObSize), e_.Imm(digits)), e_.Imm(2 * digits + 1));
  };
  Block wide_test = e_.NewBlock("wide_int_test");
  e_.Branch(e_.And(up_to(left, 2), up_to(right, 2)), yes, wide_test);
  // Three digits whose top one is below 8: |value| < 2^63, an int64.
  Enter(wide_test);
  auto machine = [&](Value v) {
    Value three_digits = e_.Compare(Cmp::kNe, up_to(v, 2), e_.Imm(1));
    Value top = Field(e_.Select(three_digits, e_.Add(v, e_.Imm(2 * sizeof(digit))), v),
                      kIntDigit0, Width::k32);
    return e_.And(up_to(v, 3),
                  e_.Or(e_.Compare(Cmp::kEq, three_digits, e_.Imm(0)),
                        e_.Compare(Cmp::kUlt, top, e_.Imm(8))));
  };
  e_.BranchUnlikely(e_.And(machine(left), machine(right)), wide, no);
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

Value FunctionCompiler::MachineIntValue(Value object) {
  // Up to three digits, the top one below 8 (BranchIfSmallInts' second test): an int64. A digit
  // is read only when the int has it (else the first one's address is read again, unused).
  Value size = Field(object, kObSize);
  Value negative = e_.Compare(Cmp::kSlt, size, e_.Imm(0));
  Value digits = e_.Select(negative, e_.Sub(e_.Imm(0), size), size);
  auto digit_k = [&](int k) {
    Value has = e_.Compare(Cmp::kSge, digits, e_.Imm(k + 1));
    Value at = e_.Select(has, e_.Add(object, e_.Imm(k * sizeof(digit))), object);
    return e_.Select(has, Field(at, kIntDigit0, Width::k32), e_.Imm(0));
  };
  Value magnitude = e_.Add(Field(object, kIntDigit0, Width::k32),
                           e_.Add(e_.Shl(digit_k(1), e_.Imm(PyLong_SHIFT)),
                                  e_.Shl(digit_k(2), e_.Imm(2 * PyLong_SHIFT))));
  Value value = e_.Select(negative, e_.Sub(e_.Imm(0), magnitude), magnitude);
  return e_.Select(e_.Compare(Cmp::kEq, size, e_.Imm(0)), e_.Imm(0), value);
}


Value FunctionCompiler::IntArithmetic(int op, Value a, Value b, Block slow, bool wide) {
  switch (BaseOp(op)) {
    case NB_ADD:
    case NB_SUBTRACT: {
      // Operands of up to 60 bits: no overflow. Of up to 63 (`wide`): the sum or difference
      // wraps exactly when it overflows (the operands agree in sign and the result does not),
      // which the slow path computes.
      const bool add = BaseOp(op) == NB_ADD;
      Value r = add ? e_.Add(a, b) : e_.Sub(a, b);
      if (!wide) return r;
      Value overflow = add ? e_.And(e_.Xor(a, r), e_.Xor(b, r))
                           : e_.And(e_.Xor(a, b), e_.Xor(a, r));
      Block fits = e_.NewBlock("int_sum_fits");
      e_.BranchUnlikely(e_.Compare(Cmp::kSlt, overflow, e_.Imm(0)), slow, fits);
      Enter(fits);
      return r;
    }
    case NB_MULTIPLY: {
      // The product of two values in [-2^31, 2^31) stays below 2^62; others take the slow path.
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
      Value small = e_.Compare(Cmp::kUlt, e_.Add(r, e_.Imm(kLimit - 1)), e_.Imm(kLimit - 1 + kLimit));  // 2^63 - 1
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
  if (BaseOp(op) == NB_FLOOR_DIVIDE) return e_.Sub(e_.SDiv(a, b), adjust);
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
FunctionCompiler::InPlaceWrite FunctionCompiler::IntWriter(Value value) {
  Value negative = e_.Compare(Cmp::kSlt, value, e_.Imm(0));
  Value magnitude = e_.Select(negative, e_.Sub(e_.Imm(0), value), value);
  // Every int64 but INT64_MIN (whose magnitude is no int64) has at most three digits.
  Value fits = e_.Compare(Cmp::kNe, value, e_.Imm(INT64_MIN));
  Value two = e_.Compare(Cmp::kSge, magnitude, e_.Imm(int64_t{1} << PyLong_SHIFT));
  Value three = e_.Compare(Cmp::kSge, magnitude, e_.Imm(int64_t{1} << (2 * PyLong_SHIFT)));
  Value digits = e_.Select(three, e_.Imm(3), e_.Select(two, e_.Imm(2), e_.Imm(1)));
  return InPlaceWrite{
      // Room for the digits: an int has max(1, |ob_size|) digits at least.
      [=, this](Value target) {
        Value size = Field(target, kObSize);
        Value room =
            e_.Select(e_.Compare(Cmp::kSlt, size, e_.Imm(0)), e_.Sub(e_.Imm(0), size), size);
        room = e_.Select(e_.Compare(Cmp::kEq, room, e_.Imm(0)), e_.Imm(1), room);
        return e_.And(fits, e_.Compare(Cmp::kSge, room, digits));
      },
      // One digit (|value| < 2^30, the common case): the digit and the sign. Else the top
      // digits first, each written to the first digit's place when the value has no such
      // digit, where the first digit then overwrites it.
      [=, this](Value target) {
        Block one = e_.NewBlock("write_one_digit");
        Block more = e_.NewBlock("write_digits");
        Block written = e_.NewBlock("int_written");
        e_.Branch(e_.Compare(Cmp::kEq, digits, e_.Imm(1)), one, more);
        Enter(one);
        SetField(target, kIntDigit0, magnitude, Width::k32);
        SetField(target, kObSize,
                 e_.Select(negative, e_.Imm(-1),
                           e_.Select(e_.Compare(Cmp::kEq, value, e_.Imm(0)), e_.Imm(0),
                                     e_.Imm(1))));
        e_.Jump(written);
        Enter(more);
        auto at = [&](Value has, int k) {
          return e_.Select(has, e_.Add(target, e_.Imm(k * sizeof(digit))), target);
        };
        SetField(at(three, 2), kIntDigit0, e_.AShr(magnitude, e_.Imm(2 * PyLong_SHIFT)),
                 Width::k32);
        SetField(at(two, 1), kIntDigit0,
                 e_.And(e_.AShr(magnitude, e_.Imm(PyLong_SHIFT)), e_.Imm(PyLong_MASK)),
                 Width::k32);
        SetField(target, kIntDigit0, e_.And(magnitude, e_.Imm(PyLong_MASK)), Width::k32);
        SetField(target, kObSize, e_.Select(negative, e_.Sub(e_.Imm(0), digits), digits));
        e_.Jump(written);
        Enter(written);
      }};
}

void FunctionCompiler::FinishIntResult(int index, Value left, Value right, Value value) {
  Block large = e_.NewBlock("large_int");
  FinishNumeric(index, left, right, CachedSmallInt(value, large));

  Enter(large);
  InPlaceWrite writer = IntWriter(value);
  PlaceNumericResult(index, left, right, &PyLong_Type, writer.can_hold, writer.write,
                     [&] { return e_.Call(kLongFromInt64, {value}); });
}

// A result object of the site's own. The compiled code keeps one reference to it for its whole
// life; when that is the only one, no stack slot, local, container or callee holds the object
// (each would own a reference), so no one can see it change and writing the next result into
// it, then pushing it with a reference of its own, gives what a new object would. Nothing that
// writes into objects in place ever writes into it: they need the sole reference, and the
// compiled code's is always one more. Once the object escapes (a local keeps the result, a call
// stores it), the site allocates as before until it is free again. Floats and untracked ints:
// no finalizer, no weak reference, no garbage collector involvement.
PyObject* FunctionCompiler::NewScratch(PyTypeObject* type) {
  PyObject* object = type == &PyFloat_Type ? PyFloat_FromDouble(0.0)
                     : type == &PyLong_Type ? PyLong_FromLongLong(int64_t{1} << 61)  // 3 digits
                                            : nullptr;
  if (object == nullptr) {
    PyErr_Clear();  // no scratch object: the site allocates
    return nullptr;
  }
  out_.scratch_.push_back(Ref<>::Steal(object));
  return object;
}

// Where a numeric result goes, first that applies: into the object of the local the next
// STORE_FAST replaces (TryResultIntoLocal), into an operand only the stack refers to, into the
// site's scratch object when no one else holds it (NewScratch), or into a new object from
// `allocate` (null: MemoryError, an error exit with the operands on the stack).
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
  if (PyObject* scratch = NewScratch(type)) {
    // The site's own object, when nothing but the compiled code refers to it (ScratchResult).
    Value object = e_.Ptr(scratch);
    Block use = e_.NewBlock("scratch_result");
    Block fresh = e_.NewBlock("fresh_result");
    e_.Branch(e_.And(e_.Compare(Cmp::kEq, Refcount(object), e_.Imm(1)), can_hold(object)), use,
              fresh);
    Enter(use);
    write(object);
    Incref(object);
    FinishNumeric(index, left, right, object);
    Enter(fresh);
  }
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
  // References to the local's object: the local's, and the stack's for each operand that is it
  // (none for a borrowed operand).
  auto stack_reference = [&](Value local, Value operand) {
    return Borrowed(operand) ? e_.Imm(0) : e_.Compare(Cmp::kEq, local, operand);
  };
  TryIntoLocal(
      index, type,
      [&](Value local) {
        return e_.Add(e_.Imm(1),
                      e_.Add(stack_reference(local, left), stack_reference(local, right)));
      },
      can_hold, write,
      [&] {
        Decref(right);  // ceval's order; an operand that is the local's object keeps a reference
        Decref(left);
      },
      otherwise);
}

void FunctionCompiler::TryIntoLocal(int index, PyTypeObject* type,
                                    const std::function<Value(Value)>& owners,
                                    const std::function<Value(Value)>& can_hold,
                                    const std::function<void(Value)>& write,
                                    const std::function<void()>& release_operands,
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
  Value sole = e_.And(IsType(TypeOf(local), type),
                      e_.Compare(Cmp::kEq, Refcount(local), owners(local)));
  e_.Branch(e_.And(sole, can_hold(local)), take, otherwise);
  Enter(take);
  write(local);
  release_operands();
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
  const int side = depth == depth_[index] - 2 ? 1 : 2;
  const bool borrowed = (borrow_mask_[index] & side) != 0;
  if (!foldable) {
    Value v = LoadSlot(depth);
    if (borrowed) borrowed_values_.insert(v);
    return v;
  }
  // A borrowed constant is read from its slot, a value of its own: the immediate e_.Ptr makes
  // is shared by every use of that constant, borrowed or not.
  Value v = borrowed ? LoadSlot(depth) : e_.Ptr(constant);
  constant_values_[v] = constant;
  if (borrowed) borrowed_values_.insert(v);
  return v;
}

void FunctionCompiler::FindBorrowedOperands() {
  absl::Span<const Instruction> insts = decoded_.instructions();
  const int n = static_cast<int>(insts.size());
  borrowed_push_.assign(n, false);
  borrow_mask_.assign(n, 0);
  borrow_pusher_.assign(n, {-1, -1});
  if (!NumericFastPathsEnabled()) return;
  auto quiet_push = [&](int i) {  // pushes one value; cannot exit
    const Instruction& inst = insts[i];
    return inst.base_opcode == LOAD_CONST ||
           (inst.base_opcode == LOAD_FAST && !MayBeUnbound(i, inst.oparg));
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
          if ((inst.base_opcode == LOAD_FAST && inst.oparg >= 0 && inst.oparg < nlocalsplus_) ||
              inst.base_opcode == LOAD_CONST) {
            borrowed_push_[i] = true;
            borrow_mask_[c] |= side;
            borrow_pusher_[c][side - 1] = i;
          }
          break;
        }
        if (depth_[i] < depth || !quiet_push(i)) break;
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
    // Two paths to one result: operands of up to 60 bits (no sum overflows), and the rarer
    // ones of up to 63 bits (sums and differences checked).
    Block join = e_.NewBlock("int_result");
    Enter(kinds.ints);
    const Value small = IntArithmetic(op, SmallIntValue(left), SmallIntValue(right), slow, false);
    const Block from_small = current_;
    e_.Jump(join);
    Enter(kinds.wide_ints);
    const Value wide =
        IntArithmetic(op, MachineIntValue(left), MachineIntValue(right), slow, true);
    const Block from_wide = current_;
    e_.Jump(join);
    Enter(join);
    FinishIntResult(index, left, right, e_.Phi({{small, from_small}, {wide, from_wide}}));
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
  switch (BaseOp(op)) {
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
                     IsPopJumpOnTruth(insts[index + 1].base_opcode) && blocks_[index + 1] >= 0 &&
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
    Enter(kinds.wide_ints);
    holds = e_.Compare(IntComparison(op), MachineIntValue(left), MachineIntValue(right));
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

}  // namespace fatjit::jit
