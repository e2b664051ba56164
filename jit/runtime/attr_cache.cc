// Per-site attribute caches for LOAD_ATTR, STORE_ATTR and LOAD_METHOD: see attr_cache.h.
//
// Each helper probes the cache; on a miss it refills the cache from the owner it sees (the
// analysis of specialize.c, which runs no Python code) and probes again, and if that misses too
// it runs the generic helper of objects.cc. The Fill* functions name every case they refuse.
#include "jit/runtime/attr_cache.h"

#include <structmember.h>

#include <internal/pycore_moduleobject.h>
#include <internal/pycore_object.h>

#include <cstdlib>
#include <string_view>
#include <utility>

#include "jit/native_code.h"
#include "jit/runtime/native_call.h"
#include "jit/runtime/runtime.h"

namespace fatjit::jit {
namespace {

// The type's version tag while it is valid, else 0 (never a valid tag).
uint32_t ValidVersion(PyTypeObject* tp) {
  return (tp->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG) != 0 ? tp->tp_version_tag : 0;
}

// The process-wide counters, resolved once (GlobalJitCounters is defined in another file).
JitCounters& counters = GlobalJitCounters();

bool HasManagedDict(PyTypeObject* tp) { return (tp->tp_flags & Py_TPFLAGS_MANAGED_DICT) != 0; }

bool IsImmutableType(PyTypeObject* tp) { return (tp->tp_flags & Py_TPFLAGS_IMMUTABLETYPE) != 0; }

// The index of `name` among the keys of the str-keyed `keys`, or -1. `identical`: only the very
// object `name` counts (what a hint is checked against); otherwise an equal str also does
// (shared keys, whose index is used without comparing keys). Compares exact strs only.
Py_ssize_t FindStrKey(PyDictKeysObject* keys, PyObject* name, bool identical) {
  if (!DK_IS_UNICODE(keys)) return -1;
  PyDictUnicodeEntry* entries = DK_UNICODE_ENTRIES(keys);
  for (Py_ssize_t i = 0; i < keys->dk_nentries; ++i) {
    PyObject* key = entries[i].me_key;
    if (key == name) return i;
    if (!identical && key != nullptr && _PyUnicode_EQ(key, name)) return i;
  }
  return -1;
}

// The value a lookup of `name` in `dict` finds if the entry at `hint` holds it, else null. Only
// str-keyed dicts: a lookup in them compares strs and never runs __eq__, so the entry whose key
// is `name` is what PyDict_GetItem would return.
PyObject* ReadHint(PyObject* dict_object, Py_ssize_t hint, PyObject* name) {
  auto* dict = reinterpret_cast<PyDictObject*>(dict_object);
  PyDictKeysObject* keys = dict->ma_keys;
  if (!DK_IS_UNICODE(keys) || hint >= keys->dk_nentries) return nullptr;
  PyDictUnicodeEntry* entry = DK_UNICODE_ENTRIES(keys) + hint;
  if (entry->me_key != name) return nullptr;
  return dict->ma_values != nullptr ? dict->ma_values->values[hint] : entry->me_value;
}

// After a miss: fills an entry by `fill` (a refused fill keeps the entries as they were) and
// returns it, or null. Counted: a site that keeps missing stops refilling and stays generic.
template <typename Fill>
AttrCacheEntry* Refill(AttrCache* c, Fill fill) {
  if (c->refills >= kAttrCacheMaxRefills) return nullptr;
  ++c->refills;
  AttrCacheEntry fresh;
  fill(&fresh);
  if (fresh.kind == AttrCacheKind::kEmpty) return nullptr;
  // An entry of the same kind for the same type has gone stale: the fresh one replaces it.
  AttrCacheEntry* way = nullptr;
  for (AttrCacheEntry& e : c->entries) {
    if (e.kind == fresh.kind && e.type_version == fresh.type_version) {
      way = &e;
      break;
    }
  }
  for (int i = 0; way == nullptr && i < kAttrCacheWays; ++i) {
    if (c->entries[i].kind == AttrCacheKind::kEmpty) way = &c->entries[i];
  }
  if (way == nullptr) way = &c->entries[c->next_way++ % kAttrCacheWays];
  *way = fresh;
  return way;
}

// --- filling -------------------------------------------------------------------------------

// CPython 3.11's propertyobject (Objects/descrobject.c), which no header declares
// (a property is cached only while property's instance size is this struct's).
struct PropertyLayout {
  PyObject_HEAD
  PyObject* prop_get;
  PyObject* prop_set;
  PyObject* prop_del;
  PyObject* prop_doc;
  PyObject* prop_name;
  int getter_doc;
};

// owner.name of an exact module finds md_dict's entry: ModuleType defines no such name (a
// static type, never modified), and module_getattro consults __getattr__ only when the dict
// has no entry.
void FillModule(AttrCacheEntry* c, PyObject* name, PyObject* owner) {
  if (_PyType_Lookup(&PyModule_Type, name) != nullptr) return;  // refused: ModuleType's own
  PyObject* dict = reinterpret_cast<PyModuleObject*>(owner)->md_dict;
  if (dict == nullptr || !PyDict_CheckExact(dict)) return;  // refused: no plain dict
  Py_ssize_t hint = FindStrKey(reinterpret_cast<PyDictObject*>(dict)->ma_keys, name, true);
  if (hint < 0) return;  // refused: absent (module __getattr__ or AttributeError) or not str-keyed
  c->kind = AttrCacheKind::kModuleDict;
  c->index = hint;
}

// cls.name where type(cls) is exactly `type`: type_getattro finds nothing on `type` itself, then
// the MRO's attribute; a function or method descriptor __get__(None, cls) returns itself, and a
// non-descriptor of an immutable type is returned as it is.
void FillClass(AttrCacheEntry* c, PyObject* name, PyObject* owner) {
  auto* cls = reinterpret_cast<PyTypeObject*>(owner);
  if (_PyType_Lookup(&PyType_Type, name) != nullptr) return;  // refused: a metatype attribute
  PyObject* value = _PyType_Lookup(cls, name);
  if (value == nullptr) return;  // refused: absent (AttributeError)
  const uint32_t version = ValidVersion(cls);
  if (version == 0) return;  // refused: out of versions
  PyTypeObject* value_type = Py_TYPE(value);
  const bool returns_itself =
      value_type == &PyFunction_Type || value_type == &PyMethodDescr_Type ||
      (IsImmutableType(value_type) && value_type->tp_descr_get == nullptr);
  if (!returns_itself) return;  // refused: another descriptor (classmethod, property, ...)
  c->kind = AttrCacheKind::kClassValue;
  c->type_version = version;
  c->value = value;
}

// A T_OBJECT_EX member the owner is an instance of the declaring class of.
bool FillSlot(AttrCacheEntry* c, PyObject* owner, PyObject* descr, uint32_t version, bool store) {
  auto* member = reinterpret_cast<PyMemberDescrObject*>(descr);
  PyMemberDef* def = member->d_member;
  if (def->type != T_OBJECT_EX) return false;  // refused: not an object slot
  if (!PyObject_TypeCheck(owner, member->d_common.d_type)) return false;  // refused: TypeError
  if ((def->flags & (store ? READONLY : PY_AUDIT_READ)) != 0) return false;  // refused
  c->kind = AttrCacheKind::kSlot;
  c->type_version = version;
  c->index = def->offset;
  return true;
}

// The name lives in the instance (no descriptor, or a non-data one the instance shadows).
void FillInstance(AttrCacheEntry* c, PyObject* name, PyObject* owner, uint32_t version, bool store) {
  PyTypeObject* tp = Py_TYPE(owner);
  if (!HasManagedDict(tp)) return;  // refused: no managed dict
  PyDictValues* values = *_PyObject_ValuesPointer(owner);
  if (values != nullptr) {
    auto* keys = reinterpret_cast<PyHeapTypeObject*>(tp)->ht_cached_keys;
    Py_ssize_t index = keys != nullptr ? FindStrKey(keys, name, false) : -1;
    if (index < 0) return;  // refused: not a shared key yet
    c->kind = AttrCacheKind::kInstanceValue;
    c->type_version = version;
    c->index = index;
    return;
  }
  // A materialized dict: its version must change on a store, which an extension cannot do on
  // 3.11 (_pydict_global_version is not exported), so stores stay generic.
  if (store) return;  // refused: materialized dict
  PyObject* dict = *_PyObject_ManagedDictPointer(owner);
  if (dict == nullptr || !PyDict_CheckExact(dict)) return;  // refused: no dict
  Py_ssize_t hint = FindStrKey(reinterpret_cast<PyDictObject*>(dict)->ma_keys, name, true);
  if (hint < 0) return;  // refused: absent or not str-keyed
  c->kind = AttrCacheKind::kInstanceDict;
  c->type_version = version;
  c->index = hint;
}

// LOAD_METHOD's unbound method: the instance cannot shadow `descr` if its type has no dict, or
// if its dict is not materialized and the shared keys lack the name.
bool FillMethod(AttrCacheEntry* c, PyObject* name, PyObject* owner, PyObject* descr, uint32_t version) {
  PyTypeObject* tp = Py_TYPE(owner);
  PyDictKeysObject* keys = nullptr;
  if (HasManagedDict(tp)) {
    if (*_PyObject_ManagedDictPointer(owner) != nullptr) return false;  // refused: a real dict
    keys = reinterpret_cast<PyHeapTypeObject*>(tp)->ht_cached_keys;
    if (keys == nullptr || !DK_IS_UNICODE(keys)) return false;  // refused: no shared keys
    if (FindStrKey(keys, name, false) >= 0) return false;  // refused: may be shadowed
  } else if (tp->tp_dictoffset != 0) {
    return false;  // refused: a dict at an offset (subclass of a variable-size builtin)
  }
  c->kind = AttrCacheKind::kMethod;
  c->type_version = version;
  c->value = descr;
  c->shared_keys = keys;
  c->shared_keys_entries = keys != nullptr ? keys->dk_nentries : 0;
  return true;
}

// Fills `c` for owner.name (LOAD_ATTR; LOAD_METHOD if `method`), or leaves it empty.
void FillLoad(AttrCacheEntry* c, PyObject* name, PyObject* owner, bool method) {
  PyTypeObject* tp = Py_TYPE(owner);
  if (tp == &PyModule_Type) return FillModule(c, name, owner);
  if (tp == &PyType_Type) return FillClass(c, name, owner);
  if (tp->tp_getattro != PyObject_GenericGetAttr) return;  // refused: __getattr(ibute)__ & co.
  if (tp->tp_dict == nullptr) return;  // refused: type not ready
  PyObject* descr = _PyType_Lookup(tp, name);
  const uint32_t version = ValidVersion(tp);
  if (version == 0) return;  // refused: out of versions
  if (descr != nullptr) {
    PyTypeObject* descr_type = Py_TYPE(descr);
    // A mutable descriptor class could gain __get__/__set__ without changing tp's version.
    if (!IsImmutableType(descr_type)) return;  // refused: mutable descriptor class
    if (descr_type == &PyMemberDescr_Type) {
      FillSlot(c, owner, descr, version, false);
      return;
    }
    if (descr_type == &PyProperty_Type && !method && owner != Py_None &&
        PyProperty_Type.tp_basicsize == static_cast<Py_ssize_t>(sizeof(PropertyLayout))) {
      c->kind = AttrCacheKind::kProperty;
      c->type_version = version;
      c->value = descr;
      return;
    }
    if (descr_type->tp_descr_set != nullptr) return;  // refused: another data descriptor
    if (method && (descr_type->tp_flags & Py_TPFLAGS_METHOD_DESCRIPTOR) != 0 &&
        FillMethod(c, name, owner, descr, version)) {
      return;
    }
  }
  FillInstance(c, name, owner, version, false);
}

// Fills `c` for owner.name = v, or leaves it empty.
void FillStore(AttrCacheEntry* c, PyObject* name, PyObject* owner) {
  PyTypeObject* tp = Py_TYPE(owner);
  if (tp->tp_setattro != PyObject_GenericSetAttr) return;  // refused: __setattr__, module, type
  if (tp->tp_dict == nullptr) return;  // refused: type not ready
  PyObject* descr = _PyType_Lookup(tp, name);
  const uint32_t version = ValidVersion(tp);
  if (version == 0) return;  // refused: out of versions
  if (descr != nullptr) {
    PyTypeObject* descr_type = Py_TYPE(descr);
    if (!IsImmutableType(descr_type)) return;  // refused: mutable descriptor class
    if (descr_type == &PyMemberDescr_Type) {
      FillSlot(c, owner, descr, version, true);
      return;
    }
    if (descr_type->tp_descr_set != nullptr) return;  // refused: a data descriptor
  }
  FillInstance(c, name, owner, version, true);
}

// --- probing -------------------------------------------------------------------------------

// The value owner.name has (borrowed) if the cache answers for this owner, else null.
PyObject* ProbeLoad(const AttrCacheEntry* c, PyObject* name, PyObject* owner) {
  switch (c->kind) {
    case AttrCacheKind::kInstanceValue: {
      if (Py_TYPE(owner)->tp_version_tag != c->type_version) return nullptr;
      PyDictValues* values = *_PyObject_ValuesPointer(owner);
      return values != nullptr ? values->values[c->index] : nullptr;
    }
    case AttrCacheKind::kInstanceDict: {
      if (Py_TYPE(owner)->tp_version_tag != c->type_version) return nullptr;
      PyObject* dict = *_PyObject_ManagedDictPointer(owner);
      return dict != nullptr ? ReadHint(dict, c->index, name) : nullptr;
    }
    case AttrCacheKind::kSlot:
      if (Py_TYPE(owner)->tp_version_tag != c->type_version) return nullptr;
      return *reinterpret_cast<PyObject**>(reinterpret_cast<char*>(owner) + c->index);
    case AttrCacheKind::kModuleDict: {
      if (!Py_IS_TYPE(owner, &PyModule_Type)) return nullptr;
      PyObject* dict = reinterpret_cast<PyModuleObject*>(owner)->md_dict;
      return dict != nullptr ? ReadHint(dict, c->index, name) : nullptr;
    }
    case AttrCacheKind::kClassValue:
      if (!Py_IS_TYPE(owner, &PyType_Type) ||
          reinterpret_cast<PyTypeObject*>(owner)->tp_version_tag != c->type_version) {
        return nullptr;
      }
      return c->value;
    case AttrCacheKind::kEmpty:
    case AttrCacheKind::kMethod:
    case AttrCacheKind::kProperty:
      break;
  }
  return nullptr;
}

// The getter (borrowed) that owner.name calls if the cache answers for this owner, else null.
PyObject* ProbeGetter(const AttrCacheEntry* c, PyObject* owner) {
  if (c->kind != AttrCacheKind::kProperty) return nullptr;
  if (Py_TYPE(owner)->tp_version_tag != c->type_version) return nullptr;
  return reinterpret_cast<const PropertyLayout*>(c->value)->prop_get;
}

// getter(owner), as property_descr_get calls it: a Python function through a direct call.
PyObject* CallGetter(PyThreadState* tstate, PyObject* getter, PyObject* owner) {
  // The call may drop the property and its getter (a class attribute rebound): both the getter
  // and the owner are held for it.
  PyObject* slots[2] = {Py_NewRef(getter), Py_NewRef(owner)};
  PyObject* res;
  if (TryDirectCall(tstate, slots, 1, nullptr, &res)) return res;
  res = PyObject_CallOneArg(slots[0], slots[1]);
  Py_DECREF(slots[1]);
  Py_DECREF(slots[0]);
  return res;
}

// True if LOAD_METHOD's cached unbound method is what owner.name finds.
bool ProbeMethod(const AttrCacheEntry* c, PyObject* owner) {
  if (c->kind != AttrCacheKind::kMethod) return false;
  PyTypeObject* tp = Py_TYPE(owner);
  if (tp->tp_version_tag != c->type_version) return false;
  if (c->shared_keys == nullptr) return true;
  if (*_PyObject_ManagedDictPointer(owner) != nullptr) return false;
  PyDictKeysObject* keys = reinterpret_cast<PyHeapTypeObject*>(tp)->ht_cached_keys;
  return keys == c->shared_keys && keys->dk_nentries == c->shared_keys_entries;
}

// Where owner.name = v stores v if the cache answers for this owner, else null.
PyObject** ProbeStore(const AttrCacheEntry* c, PyObject* owner) {
  switch (c->kind) {
    case AttrCacheKind::kInstanceValue: {
      if (Py_TYPE(owner)->tp_version_tag != c->type_version) return nullptr;
      PyDictValues* values = *_PyObject_ValuesPointer(owner);
      return values != nullptr ? &values->values[c->index] : nullptr;
    }
    case AttrCacheKind::kSlot:
      if (Py_TYPE(owner)->tp_version_tag != c->type_version) return nullptr;
      return reinterpret_cast<PyObject**>(reinterpret_cast<char*>(owner) + c->index);
    default:
      return nullptr;
  }
}

}  // namespace

bool AttrCachesEnabled() {
  static const bool enabled = [] {
    const char* setting = std::getenv("FATJIT_JIT_ATTR_CACHE");
    return setting == nullptr || std::string_view(setting) != "0";
  }();
  return enabled;
}

}  // namespace fatjit::jit

using fatjit::jit::AttrCache;
using fatjit::jit::AttrCacheKind;

// owner -> owner.name, as fatjit_rt_LOAD_ATTR.
extern "C" int64_t fatjit_rt_LOAD_ATTR_CACHED(PyThreadState* tstate, _PyInterpreterFrame* frame,
                                              PyObject** sp, int64_t oparg, PyObject* aux) {
  using namespace fatjit::jit;
  auto* c = reinterpret_cast<AttrCache*>(aux);
  PyObject* owner = sp[-1];
  PyObject* res = nullptr;
  PyObject* getter = nullptr;
  auto probe = [&](const AttrCacheEntry* e) {
    return (res = ProbeLoad(e, c->name, owner)) != nullptr ||
           (getter = ProbeGetter(e, owner)) != nullptr;
  };
  bool found = false;
  for (const AttrCacheEntry& e : c->entries) {
    if ((found = probe(&e))) break;
  }
  if (found) {
    ++counters.attr_cache_hits;
  } else {
    ++counters.attr_cache_misses;
    if (AttrCacheEntry* e = Refill(c, [&](AttrCacheEntry* e) {
          FillLoad(e, c->name, owner, false);
        })) {
      found = probe(e);
    }
    if (!found) return fatjit_rt_LOAD_ATTR(tstate, frame, sp, oparg, c->name);
  }
  if (getter != nullptr) {
    res = CallGetter(tstate, getter, owner);
    if (res == nullptr) return -1;  // the owner stays in its slot, as fatjit_rt_LOAD_ATTR leaves it
    sp[-1] = res;
  } else {
    sp[-1] = Py_NewRef(res);
  }
  Py_DECREF(owner);  // may run __del__, as in ceval
  return 0;
}

// [v, owner] -> [], as fatjit_rt_STORE_ATTR: both slots released, even on error.
extern "C" int64_t fatjit_rt_STORE_ATTR_CACHED(PyThreadState* tstate, _PyInterpreterFrame* frame,
                                               PyObject** sp, int64_t oparg, PyObject* aux) {
  using namespace fatjit::jit;
  auto* c = reinterpret_cast<AttrCache*>(aux);
  PyObject* owner = sp[-1];
  PyObject** target = nullptr;
  const AttrCacheEntry* hit = nullptr;
  for (const AttrCacheEntry& e : c->entries) {
    if ((target = ProbeStore(&e, owner)) != nullptr) {
      hit = &e;
      break;
    }
  }
  if (target != nullptr) {
    ++counters.attr_cache_hits;
  } else {
    ++counters.attr_cache_misses;
    if (AttrCacheEntry* e = Refill(c, [&](AttrCacheEntry* e) { FillStore(e, c->name, owner); })) {
      target = ProbeStore(e, owner);
      hit = e;
    }
    if (target == nullptr) return fatjit_rt_STORE_ATTR(tstate, frame, sp, oparg, c->name);
  }
  PyObject* value = std::exchange(sp[-2], nullptr);
  sp[-1] = nullptr;
  PyObject* old = *target;
  *target = value;
  if (old == nullptr && hit->kind == AttrCacheKind::kInstanceValue) {
    // A new instance attribute: record its place in the values' insertion order, as
    // _PyObject_StoreInstanceAttribute does.
    _PyDictValues_AddToInsertionOrder(*_PyObject_ValuesPointer(owner), hit->index);
  }
  Py_XDECREF(old);
  Py_DECREF(owner);
  return 0;
}

// [obj] -> [meth, obj] or [NULL, attr], as fatjit_rt_LOAD_METHOD.
extern "C" int64_t fatjit_rt_LOAD_METHOD_CACHED(PyThreadState* tstate, _PyInterpreterFrame* frame,
                                                PyObject** sp, int64_t oparg, PyObject* aux) {
  using namespace fatjit::jit;
  auto* c = reinterpret_cast<AttrCache*>(aux);
  PyObject* owner = sp[-1];
  PyObject* method = nullptr;
  PyObject* res = nullptr;
  auto probe = [&](const AttrCacheEntry* e) {
    if (ProbeMethod(e, owner)) {
      method = e->value;
      return true;
    }
    return (res = ProbeLoad(e, c->name, owner)) != nullptr;
  };
  bool found = false;
  for (const AttrCacheEntry& e : c->entries) {
    if ((found = probe(&e))) break;
  }
  if (found) {
    ++counters.attr_cache_hits;
  } else {
    ++counters.attr_cache_misses;
    if (AttrCacheEntry* e = Refill(c, [&](AttrCacheEntry* e) {
          FillLoad(e, c->name, owner, true);
        })) {
      found = probe(e);
    }
    if (!found) return fatjit_rt_LOAD_METHOD(tstate, frame, sp, oparg, c->name);
  }
  if (method != nullptr) {
    sp[-1] = Py_NewRef(method);
    sp[0] = owner;  // the slot's reference moves up
    return 0;
  }
  sp[-1] = nullptr;
  sp[0] = Py_NewRef(res);
  Py_DECREF(owner);
  return 0;
}
