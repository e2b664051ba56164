// Runtime helpers, first group: operators, containers, unpacking, f-strings, iteration, match.
//
// Assumes: the calling convention of runtime.h (sp is the first free slot before the
// instruction, inputs at sp[-1], sp[-2], ...; slots hold owned references). Produces: for each
// opcode, the outputs ceval leaves, in the slots it leaves them, with the depth
// PyCompile_OpcodeStackEffect gives. Why it matches ceval: each helper is the generic TARGET of
// CPython 3.11's Python/ceval.c step for step (same C API calls in the same order, same
// exception types and messages); ceval's static helpers (binary_ops, unpack_iterable,
// match_keys, match_class, format_kwargs_error) are re-implemented here from exported API only,
// because both supported interpreters (pyenv 3.11.7, Debian's static 3.11.2) export nothing else.
//
// The error-slot rule: wherever ceval pops an input before it can fail, the helper nulls that
// slot and releases the reference (the frontend then unwinds at depth_before like ceval's error
// path, finding null slots where ceval's stack pointer had already moved); an input ceval still
// has on the stack when it jumps to `error` is left untouched. A slot is always nulled before
// the reference it held is released, so no slot ever dangles, even while __del__ runs.
//
// Known differences from ceval, none observable to Python code except through sys.getsizeof:
//  - BUILD_MAP / BUILD_CONST_KEY_MAP: ceval presizes the dict (_PyDict_FromItems is not
//    exported). We presize only when some key is not an exact str (the same general-keys table
//    ceval makes); an all-str dict grows from PyDict_New() and keeps the str-keys table kind that
//    guards and the specializer rely on, with possibly a different table size.
//  - FORMAT_VALUE with a bad conversion flag (unreachable from compiled code): ceval leaks the
//    popped operands, we release them.
#include <array>
#include <cstring>
#include <cstdint>
#include <utility>

#include "base/python.h"
#include "base/ref.h"
#include "jit/runtime/fast_paths.h"
#include "jit/runtime/runtime.h"

#include <opcode.h>  // NB_*: BINARY_OP's oparg
// _Py_ID()/_Py_STR(): the interpreter's static strings (inside the exported _PyRuntime), the
// same objects ceval passes.
#include <internal/pycore_runtime.h>

namespace fatjit::jit {
namespace {

// Stores `result` (owned, or null on error) in `*slot`, then releases the input it replaces.
inline int64_t ReplaceSlot(PyObject** slot, PyObject* result) {
  PyObject* input = std::exchange(*slot, result);
  Py_DECREF(input);
  return result != nullptr ? 0 : -1;
}

// Nulls `*slot` and returns the reference it held (now owned by the caller).
inline Ref<> TakeSlot(PyObject** slot) { return Ref<>::Steal(std::exchange(*slot, nullptr)); }

// A one-input, one-output operator (UNARY_POSITIVE & co., GET_ITER).
inline int64_t UnaryOp(PyObject** sp, unaryfunc op) { return ReplaceSlot(&sp[-1], op(sp[-1])); }

// A two-input, one-output operator: the left operand's slot receives the result, the right
// operand's slot is popped (BINARY_OP, COMPARE_OP, BINARY_SUBSCR).
inline int64_t BinaryResult(PyObject** sp, PyObject* result) {
  Ref<> right = TakeSlot(&sp[-1]);
  return ReplaceSlot(&sp[-2], result);  // releases the left operand, then `right`: ceval's order
}

// ceval's binary_ops: BINARY_OP's oparg (NB_*) to the abstract operation.
PyObject* PowerNoMod(PyObject* base, PyObject* exponent) {
  return PyNumber_Power(base, exponent, Py_None);
}
PyObject* InPlacePowerNoMod(PyObject* base, PyObject* exponent) {
  return PyNumber_InPlacePower(base, exponent, Py_None);
}

constexpr auto kBinaryOps = [] {
  std::array<binaryfunc, NB_INPLACE_XOR + 1> ops{};
  ops[NB_ADD] = PyNumber_Add;
  ops[NB_AND] = PyNumber_And;
  ops[NB_FLOOR_DIVIDE] = PyNumber_FloorDivide;
  ops[NB_LSHIFT] = PyNumber_Lshift;
  ops[NB_MATRIX_MULTIPLY] = PyNumber_MatrixMultiply;
  ops[NB_MULTIPLY] = PyNumber_Multiply;
  ops[NB_REMAINDER] = PyNumber_Remainder;
  ops[NB_OR] = PyNumber_Or;
  ops[NB_POWER] = PowerNoMod;
  ops[NB_RSHIFT] = PyNumber_Rshift;
  ops[NB_SUBTRACT] = PyNumber_Subtract;
  ops[NB_TRUE_DIVIDE] = PyNumber_TrueDivide;
  ops[NB_XOR] = PyNumber_Xor;
  ops[NB_INPLACE_ADD] = PyNumber_InPlaceAdd;
  ops[NB_INPLACE_AND] = PyNumber_InPlaceAnd;
  ops[NB_INPLACE_FLOOR_DIVIDE] = PyNumber_InPlaceFloorDivide;
  ops[NB_INPLACE_LSHIFT] = PyNumber_InPlaceLshift;
  ops[NB_INPLACE_MATRIX_MULTIPLY] = PyNumber_InPlaceMatrixMultiply;
  ops[NB_INPLACE_MULTIPLY] = PyNumber_InPlaceMultiply;
  ops[NB_INPLACE_REMAINDER] = PyNumber_InPlaceRemainder;
  ops[NB_INPLACE_OR] = PyNumber_InPlaceOr;
  ops[NB_INPLACE_POWER] = InPlacePowerNoMod;
  ops[NB_INPLACE_RSHIFT] = PyNumber_InPlaceRshift;
  ops[NB_INPLACE_SUBTRACT] = PyNumber_InPlaceSubtract;
  ops[NB_INPLACE_TRUE_DIVIDE] = PyNumber_InPlaceTrueDivide;
  ops[NB_INPLACE_XOR] = PyNumber_InPlaceXor;
  return ops;
}();

// Builds a dict from `n` key/value pairs at keys[i * stride] and values[i * stride] with
// PyDict_SetItem in order, as _PyDict_FromItems does (see the top comment on presizing).
PyObject* DictFromItems(PyObject* const* keys, PyObject* const* values, Py_ssize_t stride,
                        Py_ssize_t n) {
  bool all_str = true;
  for (Py_ssize_t i = 0; i < n && all_str; ++i) all_str = PyUnicode_CheckExact(keys[i * stride]);
  Ref<> dict = Ref<>::Steal(all_str ? PyDict_New() : _PyDict_NewPresized(n));
  if (!dict) return nullptr;
  for (Py_ssize_t i = 0; i < n; ++i) {
    if (PyDict_SetItem(dict.get(), keys[i * stride], values[i * stride]) < 0) return nullptr;
  }
  return dict.Release();
}

// ceval's unpack_iterable: stores `before` items of `seq` below `top` (the first item at
// top[-1]); if `after` >= 0, then a list of the remaining items but the last `after`, then
// those. Returns false with an exception set, every slot it wrote released and nulled.
bool UnpackIterable(PyObject* seq, int before, int after, PyObject** top) {
  PyObject** out = top;
  auto fail = [&] {
    for (; out < top; ++out) Py_CLEAR(*out);
    return false;
  };
  Ref<> it = Ref<>::Steal(PyObject_GetIter(seq));
  if (!it) {
    if (PyErr_ExceptionMatches(PyExc_TypeError) && Py_TYPE(seq)->tp_iter == nullptr &&
        !PySequence_Check(seq)) {
      PyErr_Format(PyExc_TypeError, "cannot unpack non-iterable %.200s object",
                   Py_TYPE(seq)->tp_name);
    }
    return false;
  }
  for (int i = 0; i < before; ++i) {
    PyObject* item = PyIter_Next(it.get());
    if (item == nullptr) {
      if (!PyErr_Occurred()) {
        if (after < 0) {
          PyErr_Format(PyExc_ValueError, "not enough values to unpack (expected %d, got %d)",
                       before, i);
        } else {
          PyErr_Format(PyExc_ValueError,
                       "not enough values to unpack (expected at least %d, got %d)",
                       before + after, i);
        }
      }
      return fail();
    }
    *--out = item;
  }
  if (after < 0) {
    PyObject* extra = PyIter_Next(it.get());
    if (extra == nullptr) return PyErr_Occurred() ? fail() : true;  // exhausted: a match
    Py_DECREF(extra);
    PyErr_Format(PyExc_ValueError, "too many values to unpack (expected %d)", before);
    return fail();
  }
  PyObject* rest = PySequence_List(it.get());
  if (rest == nullptr) return fail();
  *--out = rest;
  const Py_ssize_t n = PyList_GET_SIZE(rest);
  if (n < after) {
    PyErr_Format(PyExc_ValueError,
                 "not enough values to unpack (expected at least %d, got %zd)", before + after,
                 before + n);
    return fail();
  }
  // The last `after` items move from the list to the stack: their references change owner.
  for (int j = after; j > 0; --j) *--out = PyList_GET_ITEM(rest, n - j);
  Py_SET_SIZE(rest, n - after);
  return true;
}

// The exact tuple or list fast path of UNPACK_SEQUENCE (what UNPACK_SEQUENCE_TUPLE/_LIST do):
// iterating them runs no code, so copying the items is the generic path's result.
bool UnpackExactSequence(PyObject* seq, int count, PyObject** top) {
  PyObject** items;
  if (PyTuple_CheckExact(seq) && PyTuple_GET_SIZE(seq) == count) {
    items = &PyTuple_GET_ITEM(seq, 0);
  } else if (PyList_CheckExact(seq) && PyList_GET_SIZE(seq) == count) {
    items = reinterpret_cast<PyListObject*>(seq)->ob_item;
  } else {
    return false;
  }
  for (int i = 0; i < count; ++i) top[-1 - i] = Py_NewRef(items[i]);
  return true;
}

// ceval's match_keys: a tuple of map's values for `keys` (read with map.get(key, dummy)), None
// if one is missing, or null with an exception (a duplicate key is a ValueError).
PyObject* MatchKeys(PyObject* map, PyObject* keys) {
  const Py_ssize_t nkeys = PyTuple_GET_SIZE(keys);
  if (nkeys == 0) return PyTuple_New(0);
  PyObject* get_raw = nullptr;
  // get() without a bound method when possible; never map[key] (no __missing__, no resizing).
  const int unbound = _PyObject_GetMethod(map, &_Py_ID(get), &get_raw);
  Ref<> get = Ref<>::Steal(get_raw);
  if (!get) return nullptr;
  Ref<> seen = Ref<>::Steal(PySet_New(nullptr));
  if (!seen) return nullptr;
  Ref<> dummy = Ref<>::Steal(PyObject_CallNoArgs(reinterpret_cast<PyObject*>(&PyBaseObject_Type)));
  if (!dummy) return nullptr;
  Ref<> values = Ref<>::Steal(PyTuple_New(nkeys));
  if (!values) return nullptr;
  for (Py_ssize_t i = 0; i < nkeys; ++i) {
    PyObject* key = PyTuple_GET_ITEM(keys, i);
    if (PySet_Contains(seen.get(), key) || PySet_Add(seen.get(), key)) {
      if (!PyErr_Occurred()) {
        PyErr_Format(PyExc_ValueError, "mapping pattern checks duplicate key (%R)", key);
      }
      return nullptr;
    }
    PyObject* args[] = {map, key, dummy.get()};
    PyObject* value = unbound ? PyObject_Vectorcall(get.get(), args, 3, nullptr)
                              : PyObject_Vectorcall(get.get(), args + 1, 2, nullptr);
    if (value == nullptr) return nullptr;
    if (value == dummy.get()) {
      Py_DECREF(value);
      return Py_NewRef(Py_None);
    }
    PyTuple_SET_ITEM(values.get(), i, value);
  }
  return values.Release();
}

// ceval's match_class_attr: subject.name, remembering names in `seen` (a repeated one is a
// TypeError). Null without an exception when the attribute is missing.
PyObject* MatchClassAttr(PyObject* subject, PyObject* type, PyObject* name, PyObject* seen) {
  if (PySet_Contains(seen, name) || PySet_Add(seen, name)) {
    if (!PyErr_Occurred()) {
      PyErr_Format(PyExc_TypeError, "%s() got multiple sub-patterns for attribute %R",
                   reinterpret_cast<PyTypeObject*>(type)->tp_name, name);
    }
    return nullptr;
  }
  PyObject* attr = PyObject_GetAttr(subject, name);
  if (attr == nullptr && PyErr_ExceptionMatches(PyExc_AttributeError)) PyErr_Clear();
  return attr;
}

// The attributes __match_args__ names for `nargs` positional sub-patterns, appended to `attrs`
// (or the subject itself for the _Py_TPFLAGS_MATCH_SELF builtins). False on no match or error.
bool MatchPositional(PyObject* subject, PyObject* type, Py_ssize_t nargs, PyObject* seen,
                     PyObject* attrs) {
  auto* tp = reinterpret_cast<PyTypeObject*>(type);
  bool match_self = false;
  Ref<> match_args = Ref<>::Steal(PyObject_GetAttrString(type, "__match_args__"));
  if (match_args) {
    if (!PyTuple_CheckExact(match_args.get())) {
      PyErr_Format(PyExc_TypeError, "%s.__match_args__ must be a tuple (got %s)", tp->tp_name,
                   Py_TYPE(match_args.get())->tp_name);
      return false;
    }
  } else if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
    PyErr_Clear();
    // MATCH_SELF counts only for a type without __match_args__ (subclasses may redefine it).
    match_args = Ref<>::Steal(PyTuple_New(0));
    if (!match_args) return false;
    match_self = PyType_HasFeature(tp, _Py_TPFLAGS_MATCH_SELF);
  } else {
    return false;
  }
  const Py_ssize_t allowed = match_self ? 1 : PyTuple_GET_SIZE(match_args.get());
  if (allowed < nargs) {
    PyErr_Format(PyExc_TypeError, "%s() accepts %zd positional sub-pattern%s (%zd given)",
                 tp->tp_name, allowed, allowed == 1 ? "" : "s", nargs);
    return false;
  }
  if (match_self) return PyList_Append(attrs, subject) == 0;
  for (Py_ssize_t i = 0; i < nargs; ++i) {
    PyObject* name = PyTuple_GET_ITEM(match_args.get(), i);
    if (!PyUnicode_CheckExact(name)) {
      PyErr_Format(PyExc_TypeError, "__match_args__ elements must be strings (got %s)",
                   Py_TYPE(name)->tp_name);
      return false;
    }
    Ref<> attr = Ref<>::Steal(MatchClassAttr(subject, type, name, seen));
    if (!attr || PyList_Append(attrs, attr.get()) < 0) return false;
  }
  return true;
}

// ceval's match_class: a tuple of the attributes the class pattern extracts from `subject`, or
// null (no match, or an exception: the caller tells them apart with PyErr_Occurred).
PyObject* MatchClass(PyObject* subject, PyObject* type, Py_ssize_t nargs, PyObject* kwargs) {
  if (!PyType_Check(type)) {
    PyErr_SetString(PyExc_TypeError, "called match pattern must be a type");
    return nullptr;
  }
  if (PyObject_IsInstance(subject, type) <= 0) return nullptr;
  Ref<> seen = Ref<>::Steal(PySet_New(nullptr));
  if (!seen) return nullptr;
  Ref<> attrs = Ref<>::Steal(PyList_New(0));
  if (!attrs) return nullptr;
  if (nargs > 0 && !MatchPositional(subject, type, nargs, seen.get(), attrs.get())) {
    return nullptr;
  }
  for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(kwargs); ++i) {
    PyObject* name = PyTuple_GET_ITEM(kwargs, i);
    Ref<> attr = Ref<>::Steal(MatchClassAttr(subject, type, name, seen.get()));
    if (!attr || PyList_Append(attrs.get(), attr.get()) < 0) return nullptr;
  }
  return PyList_AsTuple(attrs.get());
}

// ceval's format_kwargs_error: turns _PyDict_MergeEx's AttributeError (not a mapping) and
// KeyError (a repeated key) into the TypeErrors a call with **kwargs reports, naming `func`.
void FormatKwargsError(PyObject* func, PyObject* kwargs) {
  if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
    PyErr_Clear();
    Ref<> funcstr = Ref<>::Steal(_PyObject_FunctionStr(func));
    if (funcstr) {
      PyErr_Format(PyExc_TypeError, "%U argument after ** must be a mapping, not %.200s",
                   funcstr.get(), Py_TYPE(kwargs)->tp_name);
    }
  } else if (PyErr_ExceptionMatches(PyExc_KeyError)) {
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    if (value != nullptr && PyTuple_Check(value) && PyTuple_GET_SIZE(value) == 1) {
      Ref<> funcstr = Ref<>::Steal(_PyObject_FunctionStr(func));
      if (funcstr) {
        PyErr_Format(PyExc_TypeError, "%U got multiple values for keyword argument '%S'",
                     funcstr.get(), PyTuple_GET_ITEM(value, 0));
      }
      Py_XDECREF(type);
      Py_XDECREF(value);
      Py_XDECREF(traceback);
    } else {
      PyErr_Restore(type, value, traceback);
    }
  }
}

}  // namespace

// --- unary operators: TOS -> op(TOS) ---------------------------------------------------------

extern "C" int64_t fatjit_rt_UNARY_POSITIVE(PyThreadState*, _PyInterpreterFrame*, PyObject** sp,
                                            int64_t, PyObject*) {
  return UnaryOp(sp, PyNumber_Positive);
}

extern "C" int64_t fatjit_rt_UNARY_NEGATIVE(PyThreadState*, _PyInterpreterFrame*, PyObject** sp,
                                            int64_t, PyObject*) {
  return UnaryOp(sp, PyNumber_Negative);
}

extern "C" int64_t fatjit_rt_UNARY_NOT(PyThreadState*, _PyInterpreterFrame*, PyObject** sp,
                                       int64_t, PyObject*) {
  const int truth = PyObject_IsTrue(sp[-1]);
  PyObject* result = truth < 0 ? nullptr : Py_NewRef(truth ? Py_False : Py_True);
  return ReplaceSlot(&sp[-1], result);
}

extern "C" int64_t fatjit_rt_UNARY_INVERT(PyThreadState*, _PyInterpreterFrame*, PyObject** sp,
                                          int64_t, PyObject*) {
  return UnaryOp(sp, PyNumber_Invert);
}

// --- binary operators: TOS1, TOS -> result ----------------------------------------------------

extern "C" int64_t fatjit_rt_BINARY_OP(PyThreadState*, _PyInterpreterFrame*, PyObject** sp,
                                       int64_t oparg, PyObject*) {
  if (oparg < 0 || oparg > NB_INPLACE_XOR) {
    PyErr_Format(PyExc_SystemError, "bad BINARY_OP oparg %lld", static_cast<long long>(oparg));
    return -1;
  }
  bool handled;
  PyObject* result = FastBinaryOp(static_cast<int>(oparg), sp[-2], sp[-1], &handled);
  if (!handled) result = kBinaryOps[oparg](sp[-2], sp[-1]);
  return BinaryResult(sp, result);
}

extern "C" PyObject* fatjit_rt_box_float(int64_t bits) {
  double value;
  std::memcpy(&value, &bits, sizeof value);
  return PyFloat_FromDouble(value);
}

extern "C" int64_t fatjit_rt_COMPARE_OP(PyThreadState*, _PyInterpreterFrame*, PyObject** sp,
                                        int64_t oparg, PyObject*) {
  if (PyObject* fast = FastCompare(static_cast<int>(oparg), sp[-2], sp[-1])) {
    return BinaryResult(sp, fast);
  }
  return BinaryResult(sp, PyObject_RichCompare(sp[-2], sp[-1], static_cast<int>(oparg)));
}

// TOS1 in TOS (oparg 0) or TOS1 not in TOS (oparg 1).
extern "C" int64_t fatjit_rt_CONTAINS_OP(PyThreadState*, _PyInterpreterFrame*, PyObject** sp,
                                         int64_t oparg, PyObject*) {
  Ref<> container = TakeSlot(&sp[-1]);
  Ref<> item = TakeSlot(&sp[-2]);
  const int found = PySequence_Contains(container.get(), item.get());
  item.Reset();  // ceval releases the item, then the container
  container.Reset();
  if (found < 0) return -1;
  sp[-2] = Py_NewRef((found ^ static_cast<int>(oparg)) ? Py_True : Py_False);
  return 0;
}

extern "C" int64_t fatjit_rt_BINARY_SUBSCR(PyThreadState*, _PyInterpreterFrame*, PyObject** sp,
                                           int64_t, PyObject*) {
  if (PyObject* fast = FastSubscript(sp[-2], sp[-1])) return BinaryResult(sp, fast);
  return BinaryResult(sp, PyObject_GetItem(sp[-2], sp[-1]));
}

// TOS1[TOS] = TOS2; all three popped.
extern "C" int64_t fatjit_rt_STORE_SUBSCR(PyThreadState*, _PyInterpreterFrame*, PyObject** sp,
                                          int64_t, PyObject*) {
  Ref<> sub = TakeSlot(&sp[-1]);
  Ref<> container = TakeSlot(&sp[-2]);
  Ref<> value = TakeSlot(&sp[-3]);
  // An exact dict's mp_ass_subscript with a value is PyDict_SetItem (dict_ass_sub): called
  // directly, as ceval's STORE_SUBSCR_DICT does.
  const int err = PyDict_CheckExact(container.get())
                      ? PyDict_SetItem(container.get(), sub.get(), value.get())
                      : PyObject_SetItem(container.get(), sub.get(), value.get());
  value.Reset();  // ceval's release order: value, container, key
  container.Reset();
  sub.Reset();
  return err != 0 ? -1 : 0;
}

// del TOS1[TOS]; both popped.
extern "C" int64_t fatjit_rt_DELETE_SUBSCR(PyThreadState*, _PyInterpreterFrame*, PyObject** sp,
                                           int64_t, PyObject*) {
  Ref<> sub = TakeSlot(&sp[-1]);
  Ref<> container = TakeSlot(&sp[-2]);
  const int err = PyObject_DelItem(container.get(), sub.get());
  container.Reset();
  sub.Reset();
  return err != 0 ? -1 : 0;
}

// --- building containers ----------------------------------------------------------------------

// slice(start, stop[, step]) from oparg (2 or 3) items.
extern "C" int64_t fatjit_rt_BUILD_SLICE(PyThreadState*, _PyInterpreterFrame*, PyObject** sp,
                                         int64_t oparg, PyObject*) {
  Ref<> step = oparg == 3 ? TakeSlot(&sp[-1]) : nullptr;
  PyObject** start = &sp[-oparg];
  Ref<> stop = TakeSlot(&start[1]);
  return ReplaceSlot(start, PySlice_New(*start, stop.get(), step.get()));  // then stop, step
}

// ''.join of the oparg strings on top; they stay on the stack if the join fails.
extern "C" int64_t fatjit_rt_BUILD_STRING(PyThreadState*, _PyInterpreterFrame*, PyObject** sp,
                                          int64_t oparg, PyObject*) {
  PyObject** items = sp - oparg;
  PyObject* joined = _PyUnicode_JoinArray(&_Py_STR(empty), items, oparg);
  if (joined == nullptr) return -1;
  for (int64_t i = oparg - 1; i >= 0; --i) Py_CLEAR(items[i]);
  items[0] = joined;
  return 0;
}

extern "C" int64_t fatjit_rt_BUILD_TUPLE(PyThreadState*, _PyInterpreterFrame*, PyObject** sp,
                                         int64_t oparg, PyObject*) {
  PyObject* tuple = PyTuple_New(oparg);
  if (tuple == nullptr) return -1;
  PyObject** items = sp - oparg;
  for (int64_t i = 0; i < oparg; ++i) PyTuple_SET_ITEM(tuple, i, std::exchange(items[i], nullptr));
  items[0] = tuple;
  return 0;
}

extern "C" int64_t fatjit_rt_BUILD_LIST(PyThreadState*, _PyInterpreterFrame*, PyObject** sp,
                                        int64_t oparg, PyObject*) {
  PyObject* list = PyList_New(oparg);
  if (list == nullptr) return -1;
  PyObject** items = sp - oparg;
  for (int64_t i = 0; i < oparg; ++i) PyList_SET_ITEM(list, i, std::exchange(items[i], nullptr));
  items[0] = list;
  return 0;
}

// Adds the items deepest first; after a failed add, the rest are only released (all slots end
// null on error, as ceval pops them all).
extern "C" int64_t fatjit_rt_BUILD_SET(PyThreadState*, _PyInterpreterFrame*, PyObject** sp,
                                       int64_t oparg, PyObject*) {
  Ref<> set = Ref<>::Steal(PySet_New(nullptr));
  if (!set) return -1;
  PyObject** items = sp - oparg;
  int err = 0;
  for (int64_t i = 0; i < oparg; ++i) {
    Ref<> item = TakeSlot(&items[i]);
    if (err == 0) err = PySet_Add(set.get(), item.get());
  }
  if (err != 0) return -1;
  items[0] = set.Release();
  return 0;
}

// {k0: v0, ...} from oparg key/value pairs (key deeper); they stay on the stack on error.
extern "C" int64_t fatjit_rt_BUILD_MAP(PyThreadState*, _PyInterpreterFrame*, PyObject** sp,
                                       int64_t oparg, PyObject*) {
  PyObject** items = sp - 2 * oparg;
  PyObject* map = DictFromItems(items, items + 1, 2, oparg);
  if (map == nullptr) return -1;
  for (int64_t i = 2 * oparg - 1; i >= 0; --i) Py_CLEAR(items[i]);
  items[0] = map;
  return 0;
}

// A dict from the oparg values below TOS and the key tuple in TOS (stack untouched on error).
extern "C" int64_t fatjit_rt_BUILD_CONST_KEY_MAP(PyThreadState*, _PyInterpreterFrame*,
                                                 PyObject** sp, int64_t oparg, PyObject*) {
  PyObject* keys = sp[-1];
  if (!PyTuple_CheckExact(keys) || PyTuple_GET_SIZE(keys) != oparg) {
    PyErr_SetString(PyExc_SystemError, "bad BUILD_CONST_KEY_MAP keys argument");
    return -1;
  }
  PyObject** values = sp - 1 - oparg;
  PyObject* map = DictFromItems(&PyTuple_GET_ITEM(keys, 0), values, 1, oparg);
  if (map == nullptr) return -1;
  for (int64_t i = oparg; i >= 0; --i) Py_CLEAR(values[i]);  // the keys first, then the values
  values[0] = map;
  return 0;
}

// --- comprehension and display helpers: the container is deeper in the stack -----------------
// ceval pops the operand(s) and then PEEK(oparg)s, so the container is sp[-1 - oparg] (MAP_ADD:
// sp[-2 - oparg]). The popped operands are released and their slots null whatever happens.

extern "C" int64_t fatjit_rt_LIST_APPEND(PyThreadState*, _PyInterpreterFrame*, PyObject** sp,
                                         int64_t oparg, PyObject*) {
  Ref<> item = TakeSlot(&sp[-1]);
  return PyList_Append(sp[-1 - oparg], item.get()) < 0 ? -1 : 0;
}

extern "C" int64_t fatjit_rt_SET_ADD(PyThreadState*, _PyInterpreterFrame*, PyObject** sp,
                                     int64_t oparg, PyObject*) {
  Ref<> item = TakeSlot(&sp[-1]);
  return PySet_Add(sp[-1 - oparg], item.get()) != 0 ? -1 : 0;
}

extern "C" int64_t fatjit_rt_MAP_ADD(PyThreadState*, _PyInterpreterFrame*, PyObject** sp,
                                     int64_t oparg, PyObject*) {
  Ref<> value = TakeSlot(&sp[-1]);
  Ref<> key = TakeSlot(&sp[-2]);
  return PyDict_SetItem(sp[-2 - oparg], key.get(), value.get()) != 0 ? -1 : 0;
}

extern "C" int64_t fatjit_rt_LIST_TO_TUPLE(PyThreadState*, _PyInterpreterFrame*, PyObject** sp,
                                           int64_t, PyObject*) {
  return ReplaceSlot(&sp[-1], PyList_AsTuple(sp[-1]));
}

extern "C" int64_t fatjit_rt_LIST_EXTEND(PyThreadState*, _PyInterpreterFrame*, PyObject** sp,
                                         int64_t oparg, PyObject*) {
  Ref<> iterable = TakeSlot(&sp[-1]);
  auto* list = reinterpret_cast<PyListObject*>(sp[-1 - oparg]);
  Ref<> none = Ref<>::Steal(_PyList_Extend(list, iterable.get()));
  if (none) return 0;
  PyTypeObject* tp = Py_TYPE(iterable.get());
  if (PyErr_ExceptionMatches(PyExc_TypeError) && tp->tp_iter == nullptr &&
      !PySequence_Check(iterable.get())) {
    PyErr_Clear();
    PyErr_Format(PyExc_TypeError, "Value after * must be an iterable, not %.200s", tp->tp_name);
  }
  return -1;
}

extern "C" int64_t fatjit_rt_SET_UPDATE(PyThreadState*, _PyInterpreterFrame*, PyObject** sp,
                                        int64_t oparg, PyObject*) {
  Ref<> iterable = TakeSlot(&sp[-1]);
  return _PySet_Update(sp[-1 - oparg], iterable.get()) < 0 ? -1 : 0;
}

extern "C" int64_t fatjit_rt_DICT_UPDATE(PyThreadState*, _PyInterpreterFrame*, PyObject** sp,
                                         int64_t oparg, PyObject*) {
  Ref<> update = TakeSlot(&sp[-1]);
  if (PyDict_Update(sp[-1 - oparg], update.get()) == 0) return 0;
  if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
    PyErr_Format(PyExc_TypeError, "'%.200s' object is not a mapping",
                 Py_TYPE(update.get())->tp_name);
  }
  return -1;
}

// The **kwargs merge of CALL_FUNCTION_EX: a repeated key is an error. The stack below is
// [..., callable, args, dict, ..., update]: the callable (named in the messages) is
// sp[-3 - oparg], ceval's PEEK(2 + oparg) after popping `update`.
extern "C" int64_t fatjit_rt_DICT_MERGE(PyThreadState*, _PyInterpreterFrame*, PyObject** sp,
                                        int64_t oparg, PyObject*) {
  Ref<> update = TakeSlot(&sp[-1]);
  if (_PyDict_MergeEx(sp[-1 - oparg], update.get(), 2) == 0) return 0;
  FormatKwargsError(sp[-3 - oparg], update.get());
  return -1;
}

// --- unpacking: outputs from sp[-1] upwards, the first item on top ----------------------------

extern "C" int64_t fatjit_rt_UNPACK_SEQUENCE(PyThreadState*, _PyInterpreterFrame*, PyObject** sp,
                                             int64_t oparg, PyObject*) {
  Ref<> seq = TakeSlot(&sp[-1]);
  PyObject** top = sp - 1 + oparg;
  const int count = static_cast<int>(oparg);
  if (UnpackExactSequence(seq.get(), count, top)) return 0;
  return UnpackIterable(seq.get(), count, -1, top) ? 0 : -1;
}

// oparg: (items after the starred target) << 8 | items before it.
extern "C" int64_t fatjit_rt_UNPACK_EX(PyThreadState*, _PyInterpreterFrame*, PyObject** sp,
                                       int64_t oparg, PyObject*) {
  const int before = static_cast<int>(oparg & 0xFF);
  const int after = static_cast<int>(oparg >> 8);
  Ref<> seq = TakeSlot(&sp[-1]);
  PyObject** top = sp - 1 + (before + 1 + after);  // before items, the starred list, after items
  return UnpackIterable(seq.get(), before, after, top) ? 0 : -1;
}

// --- f-strings --------------------------------------------------------------------------------

// format(conv(value), spec): oparg & FVC_MASK picks the conversion, FVS_HAVE_SPEC says whether
// a format spec is on top of the value. Both operands are popped and released.
extern "C" int64_t fatjit_rt_FORMAT_VALUE(PyThreadState*, _PyInterpreterFrame*, PyObject** sp,
                                          int64_t oparg, PyObject*) {
  const int conversion = static_cast<int>(oparg & FVC_MASK);
  const bool have_spec = (oparg & FVS_MASK) == FVS_HAVE_SPEC;
  PyObject** out = have_spec ? &sp[-2] : &sp[-1];
  Ref<> spec = have_spec ? TakeSlot(&sp[-1]) : nullptr;
  Ref<> value = TakeSlot(out);
  unaryfunc convert;
  switch (conversion) {
    case FVC_NONE: convert = nullptr; break;
    case FVC_STR: convert = PyObject_Str; break;
    case FVC_REPR: convert = PyObject_Repr; break;
    case FVC_ASCII: convert = PyObject_ASCII; break;
    default:
      PyErr_Format(PyExc_SystemError, "unexpected conversion flag %d", conversion);
      return -1;
  }
  if (convert != nullptr) {
    value = Ref<>::Steal(convert(value.get()));
    if (!value) return -1;
  }
  if (PyUnicode_CheckExact(value.get()) && !spec) {  // format(str) is the str itself
    *out = value.Release();
    return 0;
  }
  PyObject* result = PyObject_Format(value.get(), spec.get());
  value.Reset();
  spec.Reset();
  *out = result;
  return result != nullptr ? 0 : -1;
}

// --- pattern matching: the subject stays on the stack -----------------------------------------

// Pushes len(TOS).
extern "C" int64_t fatjit_rt_GET_LEN(PyThreadState*, _PyInterpreterFrame*, PyObject** sp,
                                     int64_t, PyObject*) {
  const Py_ssize_t length = PyObject_Length(sp[-1]);
  if (length < 0) return -1;
  PyObject* result = PyLong_FromSsize_t(length);
  if (result == nullptr) return -1;
  sp[0] = result;
  return 0;
}

extern "C" int64_t fatjit_rt_MATCH_MAPPING(PyThreadState*, _PyInterpreterFrame*, PyObject** sp,
                                           int64_t, PyObject*) {
  const bool match = PyType_HasFeature(Py_TYPE(sp[-1]), Py_TPFLAGS_MAPPING);
  sp[0] = Py_NewRef(match ? Py_True : Py_False);
  return 0;
}

extern "C" int64_t fatjit_rt_MATCH_SEQUENCE(PyThreadState*, _PyInterpreterFrame*, PyObject** sp,
                                            int64_t, PyObject*) {
  const bool match = PyType_HasFeature(Py_TYPE(sp[-1]), Py_TPFLAGS_SEQUENCE);
  sp[0] = Py_NewRef(match ? Py_True : Py_False);
  return 0;
}

// subject (TOS1), keys tuple (TOS) -> pushes the values tuple, or None if a key is missing.
extern "C" int64_t fatjit_rt_MATCH_KEYS(PyThreadState*, _PyInterpreterFrame*, PyObject** sp,
                                        int64_t, PyObject*) {
  PyObject* values = MatchKeys(sp[-2], sp[-1]);
  if (values == nullptr) return -1;
  sp[0] = values;
  return 0;
}

// subject, type, keyword-names tuple -> the attribute tuple, or None on no match, in the
// subject's slot. oparg: the number of positional sub-patterns. On error the subject stays.
extern "C" int64_t fatjit_rt_MATCH_CLASS(PyThreadState*, _PyInterpreterFrame*, PyObject** sp,
                                         int64_t oparg, PyObject*) {
  Ref<> names = TakeSlot(&sp[-1]);
  Ref<> type = TakeSlot(&sp[-2]);
  PyObject* attrs = MatchClass(sp[-3], type.get(), oparg, names.get());
  names.Reset();
  type.Reset();
  if (attrs == nullptr) {
    if (PyErr_Occurred()) return -1;
    attrs = Py_NewRef(Py_None);
  }
  return ReplaceSlot(&sp[-3], attrs);
}

// --- iteration --------------------------------------------------------------------------------

extern "C" int64_t fatjit_rt_GET_ITER(PyThreadState*, _PyInterpreterFrame*, PyObject** sp,
                                      int64_t, PyObject*) {
  return UnaryOp(sp, PyObject_GetIter);
}

// 0: next(TOS) pushed; 1: exhausted, the iterator popped and released; -1: error, TOS kept.
extern "C" int64_t fatjit_rt_FOR_ITER(PyThreadState*, _PyInterpreterFrame*, PyObject** sp,
                                      int64_t, PyObject*) {
  PyObject* iter = sp[-1];
  PyObject* next = Py_TYPE(iter)->tp_iternext(iter);
  if (next != nullptr) {
    sp[0] = next;
    return 0;
  }
  if (PyErr_Occurred()) {
    if (!PyErr_ExceptionMatches(PyExc_StopIteration)) return -1;
    PyErr_Clear();  // ceval reports the StopIteration to a tracer first; native code has none
  }
  sp[-1] = nullptr;
  Py_DECREF(iter);
  return 1;
}

}  // namespace fatjit::jit
