// Fast paths of the operator helpers for the exact builtin types CPython's own specialized
// instructions handle (BINARY_OP_ADD_INT, COMPARE_OP_FLOAT_JUMP, BINARY_SUBSCR_LIST_INT, ...).
//
// Assumes CPython 3.11's int layout: a "compact" int has |ob_size| <= 1 and its value in one
// 30-bit digit. Produces the result the generic operation would, or null WITHOUT an exception
// when the operands are not the handled case (the caller then runs the generic operation).
// Sound because exact int, float, list and tuple have no Python-level overrides: for them the
// abstract operations reduce to the arithmetic done here, and every case that could raise
// (division by zero, an index out of range) is left to the generic path.
#ifndef FATJIT_JIT_RUNTIME_FAST_PATHS_H_
#define FATJIT_JIT_RUNTIME_FAST_PATHS_H_

#include <cstdint>

#include "base/python.h"

#include <opcode.h>  // NB_*

namespace fatjit::jit {

static_assert(PYLONG_BITS_IN_DIGIT == 30, "compact ints hold one 30-bit digit");

inline bool IsCompactInt(PyObject* v) {
  return PyLong_CheckExact(v) && static_cast<uint64_t>(Py_SIZE(v) + 1) <= 2;
}
inline int64_t CompactValue(PyObject* v) {
  return Py_SIZE(v) * static_cast<int64_t>(reinterpret_cast<PyLongObject*>(v)->ob_digit[0]);
}

// Python's floor division and modulo on int64, for b != 0.
inline int64_t FloorDiv(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}
inline int64_t FloorMod(int64_t a, int64_t b) {
  int64_t r = a % b;
  if (r != 0 && ((r < 0) != (b < 0))) r += b;
  return r;
}

inline PyObject* FastIntOp(int op, int64_t a, int64_t b) {
  switch (op) {
    case NB_ADD: case NB_INPLACE_ADD: return PyLong_FromLongLong(a + b);
    case NB_SUBTRACT: case NB_INPLACE_SUBTRACT: return PyLong_FromLongLong(a - b);
    case NB_MULTIPLY: case NB_INPLACE_MULTIPLY: return PyLong_FromLongLong(a * b);  // < 2^60
    case NB_FLOOR_DIVIDE: case NB_INPLACE_FLOOR_DIVIDE:
      return b == 0 ? nullptr : PyLong_FromLongLong(FloorDiv(a, b));
    case NB_REMAINDER: case NB_INPLACE_REMAINDER:
      return b == 0 ? nullptr : PyLong_FromLongLong(FloorMod(a, b));
    case NB_AND: case NB_INPLACE_AND: return PyLong_FromLongLong(a & b);
    case NB_OR: case NB_INPLACE_OR: return PyLong_FromLongLong(a | b);
    case NB_XOR: case NB_INPLACE_XOR: return PyLong_FromLongLong(a ^ b);
    default: return nullptr;
  }
}

inline PyObject* FastFloatOp(int op, double a, double b) {
  switch (op) {
    case NB_ADD: case NB_INPLACE_ADD: return PyFloat_FromDouble(a + b);
    case NB_SUBTRACT: case NB_INPLACE_SUBTRACT: return PyFloat_FromDouble(a - b);
    case NB_MULTIPLY: case NB_INPLACE_MULTIPLY: return PyFloat_FromDouble(a * b);
    case NB_TRUE_DIVIDE: case NB_INPLACE_TRUE_DIVIDE:
      return b == 0.0 ? nullptr : PyFloat_FromDouble(a / b);
    default: return nullptr;
  }
}

// The number slot of an exact builtin type for a BINARY_OP oparg, or null. For two operands of
// that exact type, PyNumber_<op>(a, b) is exactly slot(a, b) (binary_op1 finds the same slot on
// both sides and calls it once); the in-place forms fall back to it for immutable numbers.
inline binaryfunc NumberSlot(PyTypeObject* type, int op) {
  PyNumberMethods* nb = type->tp_as_number;
  switch (op) {
    case NB_ADD: case NB_INPLACE_ADD: return nb->nb_add;
    case NB_SUBTRACT: case NB_INPLACE_SUBTRACT: return nb->nb_subtract;
    case NB_MULTIPLY: case NB_INPLACE_MULTIPLY: return nb->nb_multiply;
    case NB_FLOOR_DIVIDE: case NB_INPLACE_FLOOR_DIVIDE: return nb->nb_floor_divide;
    case NB_TRUE_DIVIDE: case NB_INPLACE_TRUE_DIVIDE: return nb->nb_true_divide;
    case NB_REMAINDER: case NB_INPLACE_REMAINDER: return nb->nb_remainder;
    case NB_AND: case NB_INPLACE_AND: return nb->nb_and;
    case NB_OR: case NB_INPLACE_OR: return nb->nb_or;
    case NB_XOR: case NB_INPLACE_XOR: return nb->nb_xor;
    case NB_LSHIFT: case NB_INPLACE_LSHIFT: return nb->nb_lshift;
    case NB_RSHIFT: case NB_INPLACE_RSHIFT: return nb->nb_rshift;
    default: return nullptr;  // power (a ternary slot), matrix multiply
  }
}

// BINARY_OP on two ints or two floats of the exact builtin types. *handled is false when it is
// not that case (nothing done); otherwise the result, or null with the exception set.
inline PyObject* FastBinaryOp(int op, PyObject* a, PyObject* b, bool* handled) {
  *handled = false;
  PyTypeObject* type = Py_TYPE(a);
  if (type != Py_TYPE(b) || (type != &PyLong_Type && type != &PyFloat_Type)) return nullptr;
  PyObject* result = nullptr;
  if (type == &PyLong_Type && IsCompactInt(a) && IsCompactInt(b)) {
    result = FastIntOp(op, CompactValue(a), CompactValue(b));
  } else if (type == &PyFloat_Type) {
    result = FastFloatOp(op, PyFloat_AS_DOUBLE(a), PyFloat_AS_DOUBLE(b));
  }
  if (result == nullptr && !PyErr_Occurred()) {
    binaryfunc slot = NumberSlot(type, op);
    if (slot == nullptr) return nullptr;
    result = slot(a, b);
  }
  *handled = true;
  return result;
}

template <typename T>
inline bool Compare(int op, T a, T b) {
  switch (op) {
    case Py_LT: return a < b;
    case Py_LE: return a <= b;
    case Py_EQ: return a == b;
    case Py_NE: return a != b;
    case Py_GT: return a > b;
    default: return a >= b;
  }
}

// COMPARE_OP on two compact ints or two exact floats (NaN compares as C does, as float's
// richcompare does): Py_True/Py_False (a new reference), or null if not handled.
inline PyObject* FastCompare(int op, PyObject* a, PyObject* b) {
  bool result;
  if (IsCompactInt(a) && IsCompactInt(b)) {
    result = Compare(op, CompactValue(a), CompactValue(b));
  } else if (PyFloat_CheckExact(a) && PyFloat_CheckExact(b)) {
    result = Compare(op, PyFloat_AS_DOUBLE(a), PyFloat_AS_DOUBLE(b));
  } else {
    return nullptr;
  }
  return Py_NewRef(result ? Py_True : Py_False);
}

// container[index] for an exact list or tuple and a compact int index in range: a new
// reference, or null if not handled (out of range included: the generic path raises).
inline PyObject* FastSubscript(PyObject* container, PyObject* index) {
  if (!IsCompactInt(index)) return nullptr;
  int64_t i = CompactValue(index);
  if (PyList_CheckExact(container)) {
    const Py_ssize_t n = PyList_GET_SIZE(container);
    if (i < 0) i += n;
    if (i < 0 || i >= n) return nullptr;
    return Py_NewRef(PyList_GET_ITEM(container, i));
  }
  if (PyTuple_CheckExact(container)) {
    const Py_ssize_t n = PyTuple_GET_SIZE(container);
    if (i < 0) i += n;
    if (i < 0 || i >= n) return nullptr;
    return Py_NewRef(PyTuple_GET_ITEM(container, i));
  }
  return nullptr;
}

// PyFloat_FromDouble for native code, whose helper calls pass int64s only: `bits` is the
// double's bit pattern. A new reference, or null with MemoryError set (values.cc).
extern "C" PyObject* fatjit_rt_box_float(int64_t bits);

}  // namespace fatjit::jit

#endif  // FATJIT_JIT_RUNTIME_FAST_PATHS_H_
