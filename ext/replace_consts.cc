// replace_consts: see replace_consts.h. Matching is on (exact type, value), as fat's helper did:
// the table is a dict keyed by (type(key), key) tuples, so equality is the key's own __eq__,
// the same comparison the Python version made.
#include "ext/replace_consts.h"

#include "base/cpython_compat.h"
#include "base/ref.h"

namespace fatjit {
namespace {

Ref<> TypedKey(PyObject* value) {
  return Ref<>::Steal(PyTuple_Pack(2, reinterpret_cast<PyObject*>(Py_TYPE(value)), value));
}

// {(type(old), old): new} for the mapping's items (its keys hashed once already, as dict keys).
Ref<> TypedTable(PyObject* mapping) {
  Ref<> table = Ref<>::Steal(PyDict_New());
  if (!table) return nullptr;
  Py_ssize_t position = 0;
  PyObject* old_value;
  PyObject* new_value;
  while (PyDict_Next(mapping, &position, &old_value, &new_value)) {
    Ref<> key = TypedKey(old_value);
    if (!key) return nullptr;
    if (PyDict_SetItem(table.get(), key.get(), new_value) < 0) return nullptr;
  }
  return table;
}

}  // namespace

PyObject* ReplaceConsts(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 2) {
    PyErr_Format(PyExc_TypeError, "replace_consts() takes 2 arguments (code, mapping), got %zd",
                 nargs);
    return nullptr;
  }
  PyObject* code = args[0];
  PyObject* mapping = args[1];
  if (!PyCode_Check(code)) {
    PyErr_Format(PyExc_TypeError, "replace_consts: code must be a code object, not %s",
                 Py_TYPE(code)->tp_name);
    return nullptr;
  }
  if (!PyDict_Check(mapping)) {
    PyErr_Format(PyExc_TypeError, "replace_consts: mapping must be a dict, not %s",
                 Py_TYPE(mapping)->tp_name);
    return nullptr;
  }
  Ref<> table = TypedTable(mapping);
  if (!table) return nullptr;
  PyObject* consts = reinterpret_cast<PyCodeObject*>(code)->co_consts;
  Py_ssize_t size = PyTuple_GET_SIZE(consts);
  Ref<> replaced = Ref<>::Steal(PyTuple_New(size));
  if (!replaced) return nullptr;
  for (Py_ssize_t i = 0; i < size; ++i) {
    PyObject* constant = PyTuple_GET_ITEM(consts, i);
    PyObject* value = constant;
    Ref<> key = TypedKey(constant);
    if (!key) return nullptr;
    PyObject* found = PyDict_GetItemWithError(table.get(), key.get());
    if (found != nullptr) {
      value = found;
    } else if (PyErr_Occurred()) {
      if (!PyErr_ExceptionMatches(PyExc_TypeError)) return nullptr;
      PyErr_Clear();  // an unhashable constant (a tuple holding a list...) matches nothing
    }
    PyTuple_SET_ITEM(replaced.get(), i, Py_NewRef(value));
  }
  // As code.replace(co_consts=...) builds it, without its audit event (compat::CodeWith).
  return compat::CodeWith(reinterpret_cast<PyCodeObject*>(code), nullptr, replaced.get());
}

}  // namespace fatjit
