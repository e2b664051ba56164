// fatjit.Guard and its subtypes: thin Python wrappers around the guards/ classes.
#include "ext/guard_objects.h"

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "ext/status_to_python.h"
#include "structmember.h"
#include "guards/guard_arg_type.h"
#include "guards/guard_builtins.h"
#include "guards/guard_dict.h"
#include "guards/guard_func.h"
#include "guards/guard_type_version.h"

namespace fatjit {
namespace {

struct GuardObject {
  PyObject_HEAD
  Guard* guard;
  PyObject* weakreflist;
  bool hide_dict;  // a type's own dict (guard_type_dict) is shown read-only
};

PyTypeObject* g_guard_base = nullptr;
PyTypeObject* g_type_for_kind[kNumGuardKinds] = {};

GuardObject* AsGuardObject(PyObject* self) { return reinterpret_cast<GuardObject*>(self); }

template <typename G>
G* As(PyObject* self) {
  return static_cast<G*>(AsGuardObject(self)->guard);
}

// Wraps a freshly made C++ guard in a new object of its kind's Python type.
PyObject* Wrap(absl::StatusOr<std::unique_ptr<Guard>> guard, bool type_error = true) {
  if (!guard.ok()) return RaiseStatus(guard.status(), type_error);
  PyTypeObject* type = g_type_for_kind[static_cast<int>((*guard)->kind())];
  PyObject* self = type->tp_alloc(type, 0);
  if (self == nullptr) return nullptr;
  AsGuardObject(self)->guard = guard->release();
  return self;
}

template <typename G>
absl::StatusOr<std::unique_ptr<Guard>> Upcast(absl::StatusOr<std::unique_ptr<G>> guard) {
  if (!guard.ok()) return guard.status();
  return std::unique_ptr<Guard>(std::move(*guard));
}

bool NoKeywords(const char* name, PyObject* kwargs) {
  if (kwargs != nullptr && PyDict_GET_SIZE(kwargs) != 0) {
    PyErr_Format(PyExc_TypeError, "%s() takes no keyword arguments", name);
    return false;
  }
  return true;
}

std::vector<PyObject*> Items(PyObject* tuple, Py_ssize_t from = 0) {
  std::vector<PyObject*> items;
  for (Py_ssize_t i = from; i < PyTuple_GET_SIZE(tuple); ++i) {
    items.push_back(PyTuple_GET_ITEM(tuple, i));
  }
  return items;
}

PyObject* TupleOf(const std::vector<Ref<>>& items) {
  PyObject* tuple = PyTuple_New(static_cast<Py_ssize_t>(items.size()));
  if (tuple == nullptr) return nullptr;
  for (size_t i = 0; i < items.size(); ++i) {
    Py_INCREF(items[i].obj());
    PyTuple_SET_ITEM(tuple, static_cast<Py_ssize_t>(i), items[i].obj());
  }
  return tuple;
}

PyObject* NewOrNone(PyObject* obj) { return Py_NewRef(obj ? obj : Py_None); }

// --- constructors ----------------------------------------------------------------------------

PyObject* NewGuardDict(PyTypeObject*, PyObject* args, PyObject* kwargs) {
  if (!NoKeywords("GuardDict", kwargs)) return nullptr;
  if (PyTuple_GET_SIZE(args) < 2) {
    PyErr_SetString(PyExc_TypeError, "GuardDict(d, *keys) needs a dict and at least one key");
    return nullptr;
  }
  return Wrap(Upcast(GuardDict::Create(PyTuple_GET_ITEM(args, 0), Items(args, 1))));
}

PyObject* NewGuardGlobals(PyTypeObject*, PyObject* args, PyObject* kwargs) {
  if (!NoKeywords("GuardGlobals", kwargs)) return nullptr;
  if (PyTuple_GET_SIZE(args) == 0) {
    PyErr_SetString(PyExc_TypeError, "GuardGlobals(*names) needs at least one name");
    return nullptr;
  }
  return Wrap(Upcast(GuardDict::CreateForGlobals(Items(args))));
}

PyObject* NewGuardBuiltins(PyTypeObject*, PyObject* args, PyObject* kwargs) {
  if (!NoKeywords("GuardBuiltins", kwargs)) return nullptr;
  if (PyTuple_GET_SIZE(args) == 0) {
    PyErr_SetString(PyExc_TypeError, "GuardBuiltins(*names) needs at least one name");
    return nullptr;
  }
  return Wrap(Upcast(GuardBuiltins::Create(Items(args))));
}

PyObject* NewGuardFunc(PyTypeObject*, PyObject* args, PyObject* kwargs) {
  PyObject* func;
  static const char* kwlist[] = {"func", nullptr};
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:GuardFunc", const_cast<char**>(kwlist),
                                   &func)) {
    return nullptr;
  }
  return Wrap(Upcast(GuardFunc::Create(func)));
}

PyObject* NewGuardArgType(PyTypeObject*, PyObject* args, PyObject* kwargs) {
  int arg_index;
  PyObject* arg_types;
  static const char* kwlist[] = {"arg_index", "arg_types", nullptr};
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "iO:GuardArgType", const_cast<char**>(kwlist),
                                   &arg_index, &arg_types)) {
    return nullptr;
  }
  if (arg_index < 0) {
    PyErr_Format(PyExc_ValueError, "GuardArgType: arg_index must be >= 0, got %d", arg_index);
    return nullptr;
  }
  std::vector<PyObject*> types;
  Ref<> seq;
  if (PyType_Check(arg_types)) {
    types.push_back(arg_types);
  } else {
    seq = Ref<>::Steal(PySequence_Fast(arg_types, ""));
    if (!seq) {
      PyErr_Format(PyExc_TypeError,
                   "GuardArgType: arg_types must be a type or a sequence of types, not %s",
                   Py_TYPE(arg_types)->tp_name);
      return nullptr;
    }
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq.obj()); ++i) {
      types.push_back(PySequence_Fast_GET_ITEM(seq.obj(), i));
    }
  }
  absl::StatusOr<std::unique_ptr<GuardArgType>> guard = GuardArgType::Create(arg_index, types);
  if (!guard.ok() && types.empty()) return RaiseStatus(guard.status(), /*type_error=*/false);
  return Wrap(Upcast(std::move(guard)));
}

PyObject* NewGuardType(PyTypeObject*, PyObject* args, PyObject* kwargs) {
  PyObject* tp;
  static const char* kwlist[] = {"tp", nullptr};
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O:GuardType", const_cast<char**>(kwlist),
                                   &tp)) {
    return nullptr;
  }
  absl::StatusOr<std::unique_ptr<GuardTypeVersion>> guard = GuardTypeVersion::Create(tp);
  bool type_error = !guard.ok() && absl::IsInvalidArgument(guard.status());
  return Wrap(Upcast(std::move(guard)), type_error);
}

PyObject* NewAbstractGuard(PyTypeObject*, PyObject*, PyObject*) {
  PyErr_SetString(PyExc_TypeError,
                  "fatjit.Guard is the base of the guard types; create a GuardDict, "
                  "GuardGlobals, GuardBuiltins, GuardFunc, GuardArgType or GuardType");
  return nullptr;
}

// --- the object protocol ---------------------------------------------------------------------

void Dealloc(PyObject* self) {
  PyTypeObject* type = Py_TYPE(self);
  PyObject_GC_UnTrack(self);
  GuardObject* g = AsGuardObject(self);
  if (g->weakreflist != nullptr) PyObject_ClearWeakRefs(self);
  delete g->guard;
  g->guard = nullptr;
  type->tp_free(self);
  Py_DECREF(type);
}

int Traverse(PyObject* self, visitproc visit, void* arg) {
  Py_VISIT(Py_TYPE(self));
  Guard* guard = AsGuardObject(self)->guard;
  return guard ? guard->Traverse(visit, arg) : 0;
}

int ClearRefs(PyObject* self) {
  if (Guard* guard = AsGuardObject(self)->guard) guard->Clear();
  return 0;
}

PyObject* Repr(PyObject* self) {
  Guard* guard = AsGuardObject(self)->guard;
  if (guard == nullptr) return PyUnicode_FromString("<fatjit.Guard>");
  return PyUnicode_FromFormat("<fatjit.%s>", guard->Describe().c_str());
}

// guard(*args, **kw): 0 pass, 1 fail, 2 fail forever.
PyObject* Call(PyObject* self, PyObject* args, PyObject* kwargs) {
  Guard* guard = AsGuardObject(self)->guard;
  if (guard == nullptr) {
    PyErr_SetString(PyExc_ValueError, "this guard was cleared by the garbage collector");
    return nullptr;
  }
  if (!guard->bound()) {
    PyErr_Format(PyExc_ValueError,
                 "%s is not bound to a function yet: fatjit.specialize(func, code, guards) "
                 "binds it to func's globals and builtins",
                 guard->Describe().c_str());
    return nullptr;
  }
  GuardResult result;
  if (guard->kind() == GuardKind::kArgType) {
    auto* arg_type = static_cast<GuardArgType*>(guard);
    PyObject* value = nullptr;
    if (arg_type->arg_index() < PyTuple_GET_SIZE(args)) {
      value = PyTuple_GET_ITEM(args, arg_type->arg_index());
    } else if (kwargs != nullptr && arg_type->param_name() != nullptr) {
      value = PyDict_GetItemWithError(kwargs, arg_type->param_name());
      if (value == nullptr && PyErr_Occurred()) return nullptr;
    }
    result = arg_type->CheckValue(value);
  } else {
    result = guard->Check(CallArgs{});
  }
  return PyLong_FromLong(static_cast<long>(result));
}

PyObject* GetKind(PyObject* self, void*) {
  Guard* guard = AsGuardObject(self)->guard;
  return PyUnicode_FromString(guard ? GuardKindName(guard->kind()) : "cleared");
}

PyObject* GetDict(PyObject* self, void*) {
  PyObject* dict = As<GuardDict>(self)->dict();
  if (dict != nullptr && AsGuardObject(self)->hide_dict) return PyDictProxy_New(dict);
  return NewOrNone(dict);
}
PyObject* GetDictKeys(PyObject* self, void*) { return TupleOf(As<GuardDict>(self)->names()); }
PyObject* GetBuiltinsNames(PyObject* self, void*) {
  return TupleOf(As<GuardBuiltins>(self)->names());
}
PyObject* GetFunc(PyObject* self, void*) { return NewOrNone(As<GuardFunc>(self)->func()); }
PyObject* GetArgIndex(PyObject* self, void*) {
  return PyLong_FromLong(As<GuardArgType>(self)->arg_index());
}
PyObject* GetArgTypes(PyObject* self, void*) { return TupleOf(As<GuardArgType>(self)->types()); }
PyObject* GetType(PyObject* self, void*) { return NewOrNone(As<GuardTypeVersion>(self)->type()); }

PyGetSetDef kBaseGetSet[] = {
    {"kind", GetKind, nullptr, "the guard's kind, as named in fatjit.stats()", nullptr},
    {nullptr}};
PyGetSetDef kDictGetSet[] = {
    {"dict", GetDict, nullptr, "the watched dict", nullptr},
    {"keys", GetDictKeys, nullptr, "the watched keys", nullptr},
    {nullptr}};
PyGetSetDef kGlobalsGetSet[] = {
    {"globals", GetDict, nullptr, "the globals it is bound to, or None before binding", nullptr},
    {"names", GetDictKeys, nullptr, "the watched global names", nullptr},
    {nullptr}};
PyGetSetDef kBuiltinsGetSet[] = {
    {"names", GetBuiltinsNames, nullptr, "the watched builtin names", nullptr}, {nullptr}};
PyGetSetDef kFuncGetSet[] = {
    {"func", GetFunc, nullptr, "the watched function, or None once it died", nullptr},
    {nullptr}};
PyGetSetDef kArgTypeGetSet[] = {
    {"arg_index", GetArgIndex, nullptr, "index of the guarded parameter", nullptr},
    {"arg_types", GetArgTypes, nullptr, "the accepted exact types", nullptr},
    {nullptr}};
PyGetSetDef kTypeGetSet[] = {
    {"type", GetType, nullptr, "the watched type", nullptr}, {nullptr}};

PyMemberDef kMembers[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(GuardObject, weakreflist), READONLY, nullptr},
    {nullptr}};

PyTypeObject* MakeType(const char* name, const char* doc, newfunc new_fn, PyGetSetDef* getset,
                       PyObject* bases, bool base) {
  PyType_Slot slots[] = {
      {Py_tp_doc, const_cast<char*>(doc)},
      {Py_tp_new, reinterpret_cast<void*>(new_fn)},
      {Py_tp_dealloc, reinterpret_cast<void*>(Dealloc)},
      {Py_tp_traverse, reinterpret_cast<void*>(Traverse)},
      {Py_tp_clear, reinterpret_cast<void*>(ClearRefs)},
      {Py_tp_repr, reinterpret_cast<void*>(Repr)},
      {Py_tp_call, reinterpret_cast<void*>(Call)},
      {Py_tp_getset, getset},
      {Py_tp_members, kMembers},
      {0, nullptr}};
  PyType_Spec spec = {name, sizeof(GuardObject), 0,
                      static_cast<unsigned int>(Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC |
                                                (base ? Py_TPFLAGS_BASETYPE : 0u)),
                      slots};
  return reinterpret_cast<PyTypeObject*>(PyType_FromSpecWithBases(&spec, bases));
}

}  // namespace

PyObject* WrapGuard(std::unique_ptr<Guard> guard) { return Wrap(std::move(guard)); }

Guard* GuardOf(PyObject* obj) {
  if (g_guard_base == nullptr || !PyObject_TypeCheck(obj, g_guard_base)) return nullptr;
  return AsGuardObject(obj)->guard;
}

PyObject* GuardTypeDict(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 2) {
    PyErr_SetString(PyExc_TypeError, "guard_type_dict(tp, attrs) takes exactly 2 arguments");
    return nullptr;
  }
  if (!PyType_Check(args[0])) {
    PyErr_Format(PyExc_TypeError, "guard_type_dict: tp must be a type, not %s",
                 Py_TYPE(args[0])->tp_name);
    return nullptr;
  }
  Ref<> attrs = Ref<>::Steal(PySequence_Tuple(args[1]));
  if (!attrs) {
    PyErr_SetString(PyExc_TypeError, "guard_type_dict: attrs must be a sequence of str");
    return nullptr;
  }
  if (PyTuple_GET_SIZE(attrs.obj()) == 0) {
    PyErr_SetString(PyExc_ValueError, "guard_type_dict: attrs must name at least one attribute");
    return nullptr;
  }
  PyObject* tp_dict = reinterpret_cast<PyTypeObject*>(args[0])->tp_dict;
  Ref<> guard = Ref<>::Steal(Wrap(Upcast(GuardDict::Create(tp_dict, Items(attrs.obj())))));
  if (!guard) return nullptr;
  AsGuardObject(guard.obj())->hide_dict = true;
  PyObject* list = PyList_New(1);
  if (list != nullptr) PyList_SET_ITEM(list, 0, guard.Release());
  return list;
}

bool AddGuardTypes(PyObject* module) {
  g_guard_base = MakeType("fatjit.Guard",
                          "Base of fatjit's guards. guard(*args, **kw) checks it now and returns "
                          "0 (pass), 1 (fail) or 2 (fail forever).",
                          NewAbstractGuard, kBaseGetSet, nullptr, /*base=*/true);
  if (g_guard_base == nullptr) return false;
  if (PyModule_AddObjectRef(module, "Guard", reinterpret_cast<PyObject*>(g_guard_base)) < 0) {
    return false;
  }
  struct KindType {
    GuardKind kind;
    const char* name;
    const char* doc;
    newfunc new_fn;
    PyGetSetDef* getset;
  };
  const KindType kinds[] = {
      {GuardKind::kDict, "fatjit.GuardDict",
       "GuardDict(d, *keys): the keys of d stay bound to the same objects (str keys).",
       NewGuardDict, kDictGetSet},
      {GuardKind::kGlobals, "fatjit.GuardGlobals",
       "GuardGlobals(*names): the function's globals keep these names bound to the same "
       "objects. Bound to the function by fatjit.specialize().",
       NewGuardGlobals, kGlobalsGetSet},
      {GuardKind::kBuiltins, "fatjit.GuardBuiltins",
       "GuardBuiltins(*names): these builtins are unchanged and not shadowed by a global of "
       "the function's module. Bound to the function by fatjit.specialize().",
       NewGuardBuiltins, kBuiltinsGetSet},
      {GuardKind::kFunc, "fatjit.GuardFunc",
       "GuardFunc(func): func.__code__ is still the same code object.", NewGuardFunc,
       kFuncGetSet},
      {GuardKind::kArgType, "fatjit.GuardArgType",
       "GuardArgType(arg_index, arg_types): the argument bound to parameter arg_index has one "
       "of these exact types, whether passed by position or keyword.",
       NewGuardArgType, kArgTypeGetSet},
      {GuardKind::kType, "fatjit.GuardType",
       "GuardType(tp): no attribute of tp or of its bases changed (its type version).",
       NewGuardType, kTypeGetSet},
  };
  Ref<> bases = Ref<>::Steal(PyTuple_Pack(1, g_guard_base));
  if (!bases) return false;
  for (const KindType& k : kinds) {
    PyTypeObject* type = MakeType(k.name, k.doc, k.new_fn, k.getset, bases.obj(), false);
    if (type == nullptr) return false;
    g_type_for_kind[static_cast<int>(k.kind)] = type;
    if (PyModule_AddObjectRef(module, k.name + 7, reinterpret_cast<PyObject*>(type)) < 0) {
      return false;
    }
  }
  return true;
}

}  // namespace fatjit
