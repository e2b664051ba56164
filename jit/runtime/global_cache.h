// LOAD_GLOBAL with a per-site cache: the interpreter's LOAD_GLOBAL_MODULE/BUILTIN idea, keyed on
// the dicts' PEP 509 versions instead of their keys versions (which an extension cannot assign
// on 3.11).
//
// Assumes globals and builtins are exact dicts with only str keys when the cache is filled, so
// the lookup that filled it ran no Python code. Produces the value of the last lookup while
// neither dict has changed since (same dict objects, same ma_version_tag); otherwise it looks the
// name up as fatjit_rt_LOAD_GLOBAL does and refills the cache. Sound because ma_version_tag
// changes on every mutation of a dict, so an unchanged version means the same lookup would find
// the same object, which the dict still holds (the cache borrows it).
#ifndef FATJIT_JIT_RUNTIME_GLOBAL_CACHE_H_
#define FATJIT_JIT_RUNTIME_GLOBAL_CACHE_H_

#include <cstdint>

#include "base/python.h"

namespace fatjit::jit {

struct GlobalCache {
  PyObject* name = nullptr;  // borrowed: the compiled code object holds it in co_names
  PyObject* globals = nullptr;
  PyObject* builtins = nullptr;
  uint64_t globals_version = 0;
  uint64_t builtins_version = 0;
  PyObject* value = nullptr;  // borrowed from one of the dicts; null: nothing cached
};

}  // namespace fatjit::jit

// An OpHelper (runtime.h) for LOAD_GLOBAL whose aux is the site's GlobalCache.
// The value LOAD_GLOBAL of `name` would push in `frame` (borrowed), found without running any
// code: only when the globals and builtins are exact dicts with only str keys (whose lookups
// compare nothing but str); null otherwise, and when the name is bound in neither.
extern "C" PyObject* fatjit_rt_peek_global(_PyInterpreterFrame* frame, PyObject* name);
// The attribute `name` of `module` as its dict holds it (borrowed), found without running any
// code: only for an exact module whose dict is an exact dict with only str keys; else null.
extern "C" PyObject* fatjit_rt_peek_module_attribute(PyObject* module, PyObject* name);

extern "C" int64_t fatjit_rt_LOAD_GLOBAL_CACHED(PyThreadState* tstate, _PyInterpreterFrame* frame,
                                                PyObject** sp, int64_t oparg, PyObject* aux);

#endif  // FATJIT_JIT_RUNTIME_GLOBAL_CACHE_H_
