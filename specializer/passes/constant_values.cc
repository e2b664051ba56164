// Constant values: see constant_values.h. The size checks follow Python/ast_opt.c case by case.
#include "specializer/passes/constant_values.h"

namespace fatjit::specializer {
namespace {

bool IsScalar(PyObject* value) {
  return value == Py_None || PyBool_Check(value) || PyLong_CheckExact(value) ||
         PyFloat_CheckExact(value) || PyComplex_CheckExact(value) ||
         PyUnicode_CheckExact(value) || PyBytes_CheckExact(value);
}

// The items of an exact tuple or frozenset, or false for anything else.
template <typename Visit>
bool ForEachItem(PyObject* value, Visit visit) {
  if (PyTuple_CheckExact(value)) {
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(value); ++i) {
      if (!visit(PyTuple_GET_ITEM(value, i))) return true;
    }
    return true;
  }
  if (PyFrozenSet_CheckExact(value)) {
    Py_ssize_t pos = 0;
    PyObject* item;
    Py_hash_t hash;
    while (_PySet_NextEntry(value, &pos, &item, &hash)) {
      if (!visit(item)) return true;
    }
    return true;
  }
  return false;
}

Py_ssize_t CollectionSize(PyObject* value) {
  return PyTuple_CheckExact(value) ? PyTuple_GET_SIZE(value) : PySet_GET_SIZE(value);
}

// Immutable, with `budget` items left in all (check_complexity); `caps` adds the result caps.
bool Check(PyObject* value, Py_ssize_t& budget, bool caps) {
  if (IsScalar(value)) {
    if (!caps) return true;
    if (PyLong_CheckExact(value)) return _PyLong_NumBits(value) <= kMaxIntBits;
    if (PyUnicode_CheckExact(value)) return PyUnicode_GET_LENGTH(value) <= kMaxStrSize;
    if (PyBytes_CheckExact(value)) return PyBytes_GET_SIZE(value) <= kMaxStrSize;
    return true;
  }
  if (!PyTuple_CheckExact(value) && !PyFrozenSet_CheckExact(value)) return false;
  Py_ssize_t size = CollectionSize(value);
  if (caps && size > kMaxCollectionSize) return false;
  budget -= size;
  bool ok = budget >= 0;
  ForEachItem(value, [&](PyObject* item) {
    ok = ok && Check(item, budget, caps);
    return ok;
  });
  return ok;
}

bool ContainsBytes(PyObject* value) {
  if (PyBytes_CheckExact(value)) return true;
  bool found = false;
  ForEachItem(value, [&](PyObject* item) {
    found = ContainsBytes(item);
    return !found;
  });
  return found;
}

// _PyLong_NumBits of a nonzero int, or -1 if it does not fit a size_t.
Py_ssize_t Bits(PyObject* v) {
  size_t bits = _PyLong_NumBits(v);
  if (bits == static_cast<size_t>(-1)) {
    PyErr_Clear();
    return -1;
  }
  return static_cast<Py_ssize_t>(bits);
}

bool IsNonzeroInt(PyObject* v) { return PyLong_Check(v) && Py_SIZE(v) != 0; }

}  // namespace

bool IsImmutableConstant(PyObject* value) {
  Py_ssize_t budget = kMaxTotalItems;
  return Check(value, budget, /*caps=*/false);
}

bool IsFoldableResult(PyObject* value) {
  Py_ssize_t budget = kMaxTotalItems;
  return Check(value, budget, /*caps=*/true);
}

bool OperandsWithinCaps(absl::Span<PyObject* const> operands) {
  for (PyObject* operand : operands) {
    if (PyLong_CheckExact(operand) && _PyLong_NumBits(operand) > kMaxOperandIntBits) {
      return false;  // (size_t)-1 on overflow is larger still
    }
  }
  return true;
}

bool BytesMayWarn(absl::Span<PyObject* const> operands) {
  if (_Py_GetConfig()->bytes_warning == 0) return false;
  for (PyObject* operand : operands) {
    if (ContainsBytes(operand)) return true;
  }
  return false;
}

bool HasLargeInt(PyObject* value) {
  if (PyLong_CheckExact(value) || PyBool_Check(value)) {
    return _PyLong_NumBits(value) > kMaxIntBits;
  }
  bool found = false;
  ForEachItem(value, [&](PyObject* item) {
    found = HasLargeInt(item);
    return !found;
  });
  return found;
}

// safe_multiply: int * int within kMaxIntBits; n * collection within kMaxCollectionSize items and
// kMaxTotalItems in all; n * str/bytes within kMaxStrSize.
bool MultiplyWithinCaps(PyObject* v, PyObject* w) {
  if (IsNonzeroInt(v) && IsNonzeroInt(w)) {
    Py_ssize_t vbits = Bits(v), wbits = Bits(w);
    return vbits >= 0 && wbits >= 0 && vbits + wbits <= kMaxIntBits;
  }
  if (PyLong_Check(v) && (PyTuple_Check(w) || PyFrozenSet_Check(w))) {
    Py_ssize_t size = PyTuple_Check(w) ? PyTuple_GET_SIZE(w) : PySet_GET_SIZE(w);
    if (size == 0) return true;
    long n = PyLong_AsLong(v);
    if (n == -1 && PyErr_Occurred()) {
      PyErr_Clear();
      return false;
    }
    if (n < 0 || n > kMaxCollectionSize / size) return false;
    Py_ssize_t budget = n == 0 ? 0 : kMaxTotalItems / n;
    return n == 0 || Check(w, budget, /*caps=*/false);
  }
  if (PyLong_Check(v) && (PyUnicode_Check(w) || PyBytes_Check(w))) {
    Py_ssize_t size = PyUnicode_Check(w) ? PyUnicode_GET_LENGTH(w) : PyBytes_GET_SIZE(w);
    if (size == 0) return true;
    long n = PyLong_AsLong(v);
    if (n == -1 && PyErr_Occurred()) {
      PyErr_Clear();
      return false;
    }
    return n >= 0 && n <= kMaxStrSize / size;
  }
  if (PyLong_Check(w) && (PyTuple_Check(v) || PyFrozenSet_Check(v) || PyUnicode_Check(v) ||
                          PyBytes_Check(v))) {
    return MultiplyWithinCaps(w, v);
  }
  return true;
}

// safe_power: int ** positive int within kMaxIntBits.
bool PowerWithinCaps(PyObject* v, PyObject* w) {
  if (!IsNonzeroInt(v) || !PyLong_Check(w) || Py_SIZE(w) <= 0) return true;
  Py_ssize_t vbits = Bits(v);
  size_t wbits = PyLong_AsSize_t(w);
  if (wbits == static_cast<size_t>(-1) && PyErr_Occurred()) {
    PyErr_Clear();
    return false;
  }
  return vbits >= 0 && static_cast<size_t>(vbits) <= kMaxIntBits / wbits;
}

// safe_lshift: int << int within kMaxIntBits.
bool LshiftWithinCaps(PyObject* v, PyObject* w) {
  if (!IsNonzeroInt(v) || !IsNonzeroInt(w)) return true;
  Py_ssize_t vbits = Bits(v);
  size_t wbits = PyLong_AsSize_t(w);
  if (wbits == static_cast<size_t>(-1) && PyErr_Occurred()) {
    PyErr_Clear();
    return true;  // a negative shift: PyNumber_Lshift raises ValueError, which refuses the fold
  }
  return vbits >= 0 && wbits <= kMaxIntBits && static_cast<size_t>(vbits) <= kMaxIntBits - wbits;
}

int KnownTruth(PyObject* value) {
  if (IsImmutableConstant(value)) {
    int truth = PyObject_IsTrue(value);
    if (truth < 0) PyErr_Clear();
    return truth;
  }
  PyTypeObject* type = Py_TYPE(value);
  if (type->tp_flags & Py_TPFLAGS_HEAPTYPE) return -1;  // its slots can change
  bool has_bool = type->tp_as_number != nullptr && type->tp_as_number->nb_bool != nullptr;
  bool has_len = (type->tp_as_mapping != nullptr && type->tp_as_mapping->mp_length != nullptr) ||
                 (type->tp_as_sequence != nullptr && type->tp_as_sequence->sq_length != nullptr);
  return has_bool || has_len ? -1 : 1;
}

Ref<> AcceptResult(PyObject* result) {
  Ref<> owned = Ref<>::Steal(result);
  if (!owned) {
    bool interrupted = PyErr_ExceptionMatches(PyExc_KeyboardInterrupt);
    PyErr_Clear();
    if (interrupted) PyErr_SetInterrupt();
    return nullptr;
  }
  if (!IsFoldableResult(owned.obj())) return nullptr;
  return owned;
}

}  // namespace fatjit::specializer
