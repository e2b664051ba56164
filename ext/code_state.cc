// CodeState storage in co_extra, and the live-specialization count that drives the hook.
#include "ext/code_state.h"

#include "base/cpython_compat.h"
#include "ext/dispatch.h"
#include "ext/stats.h"

namespace fatjit {
namespace {

Py_ssize_t g_extra_index = -1;
int64_t g_live = 0;
uint64_t g_next_id = 1;

void FreeCodeState(void* state) { delete static_cast<CodeState*>(state); }

}  // namespace

PyObject* Specialization::owner_function() const {
  PyObject* func = PyWeakref_GET_OBJECT(owner.obj());
  return func == Py_None ? nullptr : func;
}

CodeState::~CodeState() {
  if (specializations.empty()) return;
  // Releasing references can run arbitrary code (__del__): take them out of the state first.
  std::vector<std::unique_ptr<Specialization>> doomed;
  doomed.swap(specializations);
  g_live -= static_cast<int64_t>(doomed.size());
  GlobalStats().specializations_dropped += doomed.size();
  InstallOrRemoveHook();
}

bool InitCodeStateSlot() {
  if (g_extra_index >= 0) return true;
  g_extra_index = _PyEval_RequestCodeExtraIndex(FreeCodeState);
  if (g_extra_index < 0) {
    PyErr_SetString(PyExc_RuntimeError, "fatjit: no free co_extra slot");
    return false;
  }
  return true;
}

CodeState* CodeStateOf(PyCodeObject* code) {
  return static_cast<CodeState*>(compat::CodeExtra(code, g_extra_index));
}

CodeState* GetOrCreateCodeState(PyCodeObject* code) {
  if (CodeState* state = CodeStateOf(code)) return state;
  auto* state = new CodeState();
  // _PyCode_SetExtra frees a previous value itself; there is none here.
  if (_PyCode_SetExtra(reinterpret_cast<PyObject*>(code), g_extra_index, state) < 0) {
    delete state;
    return nullptr;
  }
  return state;
}

int64_t LiveSpecializations() { return g_live; }

void AddSpecialization(CodeState* state, std::unique_ptr<Specialization> spec) {
  spec->id = g_next_id++;
  state->specializations.insert(state->specializations.begin(), std::move(spec));
  ++g_live;
  ++GlobalStats().specializations_added;
  InstallOrRemoveHook();
}

Specialization* FindSpecialization(CodeState* state, uint64_t id, size_t* index) {
  for (size_t i = 0; i < state->specializations.size(); ++i) {
    if (state->specializations[i]->id == id) {
      *index = i;
      return state->specializations[i].get();
    }
  }
  return nullptr;
}

void DropSpecialization(CodeState* state, size_t index) {
  // Released last: its destructor can run arbitrary code (__del__) that may touch `state`.
  std::unique_ptr<Specialization> doomed = std::move(state->specializations[index]);
  state->specializations.erase(state->specializations.begin() + index);
  --g_live;
  ++GlobalStats().specializations_dropped;
  InstallOrRemoveHook();
}

}  // namespace fatjit
