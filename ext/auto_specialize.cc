// fatjit.specialize(func, assume=...) and the first-call materialization: see auto_specialize.h.
#include "ext/auto_specialize.h"

#include <cstring>

#include "ext/guard_objects.h"
#include "ext/specialize_api.h"
#include "ext/stats.h"

namespace fatjit {

PyObject* SpecializeAuto(PyObject*, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"func", "assume", nullptr};
  PyObject* func_obj;
  const char* assume_name = "stable";
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|$s:specialize", const_cast<char**>(kwlist),
                                   &func_obj, &assume_name)) {
    return nullptr;
  }
  PyFunctionObject* func = FunctionArgument(func_obj, "fatjit.specialize");
  if (func == nullptr) return nullptr;
  specializer::Assume assume;
  if (std::strcmp(assume_name, "stable") == 0) {
    assume = specializer::Assume::kStable;
  } else if (std::strcmp(assume_name, "entry") == 0) {
    assume = specializer::Assume::kEntry;
  } else {
    PyErr_Format(PyExc_ValueError,
                 "fatjit.specialize: assume must be 'stable' (guards hold wherever a "
                 "specialized instruction runs; the default) or 'entry' (FAT Python's: guards "
                 "checked at call entry only), not %R",
                 PyTuple_GET_SIZE(args) > 1 ? PyTuple_GET_ITEM(args, 1)
                                             : PyDict_GetItemString(kwargs, "assume"));
    return nullptr;
  }
  auto* code = reinterpret_cast<PyCodeObject*>(func->func_code);
  CodeState* state = GetOrCreateCodeState(code);
  if (state == nullptr) return nullptr;
  // A new request replaces the function's earlier automatic specialization.
  for (size_t i = 0; i < state->specializations.size();) {
    const auto& spec = state->specializations[i];
    if (spec->automatic && spec->owner_function() == func_obj) {
      DropSpecialization(state, i);
    } else {
      ++i;
    }
  }
  auto spec = std::make_unique<Specialization>();
  spec->owner = Ref<>::Steal(PyWeakref_NewRef(func_obj, nullptr));
  if (!spec->owner) return nullptr;
  spec->automatic = true;
  spec->pending = true;
  spec->assume = assume;
  state->last_refusal.clear();
  AddSpecialization(state, std::move(spec));
  return Py_NewRef(func_obj);
}

bool MaterializePending(CodeState* state, size_t index, PyFunctionObject* func) {
  Specialization* spec = state->specializations[index].get();
  specializer::SpecializeResult result = specializer::SpecializeFunction(func, spec->assume);
  Stats& stats = GlobalStats();
  for (const auto& [pass, count] : result.proposals_by_pass) stats.rewrites_by_pass[pass] += count;
  if (!result.refused) {
    auto* code = reinterpret_cast<PyCodeObject*>(result.code.obj());
    if (FitsFrame(func, code)) {
      spec->code = Ref<PyCodeObject>::Create(code);
    } else {
      spec->callable = WrapCode(func, code);
    }
    for (std::unique_ptr<Guard>& guard : result.guards) {
      Ref<> object = Ref<>::Steal(WrapGuard(std::move(guard)));
      if (!object) break;
      spec->guard_objects.push_back(std::move(object));
    }
    if (PyErr_Occurred() || (!spec->code && !spec->callable) ||
        spec->guard_objects.size() != result.guards.size()) {
      PyErr_Clear();
      result.refused = true;
      result.refusal = specializer::Refusal::kInternalError;
      result.detail = "out of memory while attaching the specialization";
    }
  }
  if (result.refused) {
    ++stats.auto_refused[static_cast<int>(result.refusal)];
    state->last_refusal = specializer::RefusalMessage(result.refusal);
    if (!result.detail.empty()) state->last_refusal += " (" + result.detail + ")";
    DropSpecialization(state, index);
    return false;
  }
  ++stats.auto_specialized;
  for (const Ref<>& object : spec->guard_objects) spec->guards.Add(GuardOf(object.obj()));
  spec->given = Ref<>::Create(result.code.obj());
  for (const specializer::Assumption& a : result.assumptions) {
    spec->assumptions.push_back(a.Describe());
  }
  spec->rewrites = std::move(result.rewrites);
  spec->attribute_feedback = std::move(result.attribute_feedback);
  spec->pending = false;
  return true;
}

}  // namespace fatjit

namespace fatjit {

PyObject* SpecializeReport(PyObject*, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"func", "assume", nullptr};
  PyObject* func_obj;
  const char* assume_name = "stable";
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|$s:_specialize_report",
                                   const_cast<char**>(kwlist), &func_obj, &assume_name)) {
    return nullptr;
  }
  PyFunctionObject* func = FunctionArgument(func_obj, "fatjit._specialize_report");
  if (func == nullptr) return nullptr;
  specializer::Assume assume = std::strcmp(assume_name, "entry") == 0
                                   ? specializer::Assume::kEntry
                                   : specializer::Assume::kStable;
  specializer::SpecializeResult result = specializer::SpecializeFunction(func, assume);
  int active = 0;
  for (const specializer::Rewrite& r : result.rewrites) active += r.active ? 1 : 0;
  Ref<> passes = Ref<>::Steal(PyDict_New());
  if (!passes) return nullptr;
  for (const auto& [pass, count] : result.proposals_by_pass) {
    Ref<> n = Ref<>::Steal(PyLong_FromLong(count));
    if (!n || PyDict_SetItemString(passes.obj(), pass.c_str(), n.obj()) < 0) return nullptr;
  }
  return Py_BuildValue("{s:O,s:s,s:s,s:n,s:i,s:n,s:O,s:O}", "refused",
                       result.refused ? Py_True : Py_False, "reason",
                       result.refused ? specializer::RefusalName(result.refusal) : "",
                       "detail", result.detail.c_str(), "rewrites",
                       static_cast<Py_ssize_t>(result.rewrites.size()), "active", active,
                       "guards", static_cast<Py_ssize_t>(result.guards.size()), "by_pass",
                       passes.obj(), "code", result.code ? result.code.obj() : Py_None);
}

}  // namespace fatjit
