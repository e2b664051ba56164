// LOAD_GLOBAL through a per-site cache: see global_cache.h.
#include "jit/runtime/global_cache.h"

#include "base/cpython_compat.h"
#include "jit/runtime/runtime.h"

extern "C" int64_t fatjit_rt_LOAD_GLOBAL_CACHED(PyThreadState* tstate, _PyInterpreterFrame* frame,
                                                PyObject** sp, int64_t oparg, PyObject* aux) {
  auto* cache = reinterpret_cast<fatjit::jit::GlobalCache*>(aux);
  PyObject* globals = frame->f_globals;
  PyObject* builtins = frame->f_builtins;
  if (cache->value != nullptr && cache->globals == globals && cache->builtins == builtins &&
      fatjit::compat::DictVersionTag(globals) == cache->globals_version &&
      fatjit::compat::DictVersionTag(builtins) == cache->builtins_version) {
    if (oparg & 1) *sp++ = nullptr;
    *sp = Py_NewRef(cache->value);
    return 0;
  }
  if (fatjit::jit::fatjit_rt_LOAD_GLOBAL(tstate, frame, sp, oparg, cache->name) != 0) return -1;
  cache->value = nullptr;
  if (PyDict_CheckExact(globals) && PyDict_CheckExact(builtins) &&
      fatjit::compat::DictHasOnlyStrKeys(globals) && fatjit::compat::DictHasOnlyStrKeys(builtins)) {
    cache->globals = globals;
    cache->builtins = builtins;
    cache->globals_version = fatjit::compat::DictVersionTag(globals);
    cache->builtins_version = fatjit::compat::DictVersionTag(builtins);
    cache->value = sp[oparg & 1];
  }
  return 0;
}

extern "C" PyObject* fatjit_rt_peek_module_attribute(PyObject* module, PyObject* name) {
  if (!PyModule_CheckExact(module)) return nullptr;
  PyObject* dict = PyModule_GetDict(module);
  if (dict == nullptr || !PyDict_CheckExact(dict) || !fatjit::compat::DictHasOnlyStrKeys(dict)) {
    return nullptr;
  }
  PyObject* value = PyDict_GetItemWithError(dict, name);
  PyErr_Clear();  // none can be set by str-keyed lookups; never leave one behind
  return value;
}

extern "C" PyObject* fatjit_rt_peek_global(_PyInterpreterFrame* frame, PyObject* name) {
  PyObject* globals = frame->f_globals;
  PyObject* builtins = frame->f_builtins;
  if (!PyDict_CheckExact(globals) || !PyDict_CheckExact(builtins) ||
      !fatjit::compat::DictHasOnlyStrKeys(globals) ||
      !fatjit::compat::DictHasOnlyStrKeys(builtins)) {
    return nullptr;
  }
  PyObject* value = PyDict_GetItemWithError(globals, name);
  if (value == nullptr && !PyErr_Occurred()) value = PyDict_GetItemWithError(builtins, name);
  PyErr_Clear();  // none can be set by str-keyed lookups; never leave one behind
  return value;
}
