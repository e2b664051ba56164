// LOAD_ATTR, STORE_ATTR and LOAD_METHOD through per-site caches: the JIT's form of the
// interpreter's specialized attribute instructions (Python/specialize.c 3.11).
//
// Assumes CPython 3.11's object layout (managed dicts: the values pointer at obj[-4] and the dict
// at obj[-3]; shared keys in ht_cached_keys, append-only while the type lives) and that
// tp_version_tag is set to 0 by PyType_Modified on any change to a type or one of its bases
// (attribute set or deleted, __bases__ assigned, a slot wrapper updated), while a valid tag is
// never given to two types.
//
// Produces, per site, up to kAttrCacheWays cached answers, one per owner type: an instance value
// at a shared-keys index, an entry of a materialized instance dict or module dict (a hint: the
// entry's key is checked on every use), a __slots__ member's offset, a class attribute, an
// unbound method, or a property whose getter is called.
// Each hit re-checks what the answer depends on (the type's version tag, the values pointer,
// the entry's key, the slot non-null, the shared keys' size) and otherwise the helper looks the
// attribute up exactly as fatjit_rt_LOAD_ATTR & co. do, after refilling the cache from the
// owner it sees (at most kAttrCacheMaxRefills times per site: a site that keeps changing type
// stays generic).
//
// Sound because a cache is filled only when the generic lookup provably reaches the cached
// location without running Python code: tp_getattro/tp_setattro is the generic one (or the
// owner is an exact module or a class whose metatype is exactly `type`), the name found on the
// type is absent, a member descriptor, or an object of an immutable type that is not a data
// descriptor, and dicts read through hints have str keys only (a lookup in them never calls
// __eq__). The type's version covers everything found on the type (the borrowed descriptors
// and class values stay alive while the version holds); what lives in the instance is read
// afresh on every hit, and a hole (deleted slot, missing value, materialized __dict__, another
// type after __class__ assignment) is a miss, so the generic path raises or runs the descriptor.
// An exact `property` is a data descriptor, which the generic lookup calls before it looks at the
// instance: property_descr_get(descr, owner, type) calls the getter with the owner (never None
// here: NoneType gets no properties); the version covers which property it is, and its getter
// (null: a miss, so the generic path raises) is read on every hit.
#ifndef FATJIT_JIT_RUNTIME_ATTR_CACHE_H_
#define FATJIT_JIT_RUNTIME_ATTR_CACHE_H_

#include <cstdint>

#include "base/python.h"

namespace fatjit::jit {

// False when FATJIT_JIT_ATTR_CACHE=0: compiled code then calls the generic helpers of
// objects.cc (the switch to bisect a miscompile or measure the caches). Read once.
bool AttrCachesEnabled();

// How often a site's cache may be refilled after a miss before the site stays generic.
inline constexpr uint32_t kAttrCacheMaxRefills = 64;

enum class AttrCacheKind : uint8_t {
  kEmpty,
  kInstanceValue,  // managed dict not materialized: values->values[index]
  kInstanceDict,   // materialized managed dict with str keys: the entry at `index` (a hint)
  kSlot,           // a __slots__ member (T_OBJECT_EX): *(owner + index)
  kModuleDict,     // an exact module: the entry at `index` of md_dict (a hint)
  kClassValue,     // owner is the class with the cached version: `value` (a function or a
                   // non-descriptor found in its MRO; metatype exactly `type`)
  kMethod,         // LOAD_METHOD: `value` is a method descriptor found on the type, and the
                   // instance cannot shadow it (no dict, or shared keys without the name)
  kProperty,       // LOAD_ATTR: `value` is an exact `property` found on the type (a data
                   // descriptor: the instance cannot shadow it); a hit calls its getter, read
                   // afresh each time (property.__init__ can run again), directly when it is a
                   // Python function (native_call.h)
};

// One answer for one owner type. Every entry checks all it relies on when probed, so entries
// never need to be invalidated: a stale one just stops answering.
struct AttrCacheEntry {
  AttrCacheKind kind = AttrCacheKind::kEmpty;
  uint32_t type_version = 0;  // the owner's type (the owner itself for kClassValue); 0: none
  Py_ssize_t index = 0;
  PyObject* value = nullptr;  // borrowed from the type's MRO dicts (kClassValue, kMethod)
  // kMethod on a managed-dict type: the type's shared keys and their size when filled. Shared
  // keys only grow, so the same size means the name is still not an instance attribute.
  PyDictKeysObject* shared_keys = nullptr;
  Py_ssize_t shared_keys_entries = 0;
};

// Entries per site: a site that sees a few types (a method of a base class called on the
// instances of several subclasses) keeps one answer per type; a new one replaces the oldest.
inline constexpr int kAttrCacheWays = 4;

struct AttrCache {
  PyObject* name = nullptr;  // borrowed: the compiled code object holds it in co_names
  AttrCacheEntry entries[kAttrCacheWays];
  uint32_t refills = 0;
  uint32_t next_way = 0;  // the entry the next fill replaces when all are in use
};

}  // namespace fatjit::jit

// OpHelpers (runtime.h) with the same stack effects as fatjit_rt_LOAD_ATTR, STORE_ATTR and
// LOAD_METHOD; aux is the site's AttrCache.
extern "C" int64_t fatjit_rt_LOAD_ATTR_CACHED(PyThreadState* tstate, _PyInterpreterFrame* frame,
                                              PyObject** sp, int64_t oparg, PyObject* aux);
extern "C" int64_t fatjit_rt_STORE_ATTR_CACHED(PyThreadState* tstate, _PyInterpreterFrame* frame,
                                               PyObject** sp, int64_t oparg, PyObject* aux);
extern "C" int64_t fatjit_rt_LOAD_METHOD_CACHED(PyThreadState* tstate, _PyInterpreterFrame* frame,
                                                PyObject** sp, int64_t oparg, PyObject* aux);

#endif  // FATJIT_JIT_RUNTIME_ATTR_CACHE_H_
