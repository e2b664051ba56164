// CodeState storage in co_extra, and the live-specialization count that drives the hook.
#include "ext/code_state.h"

#include "base/cpython_compat.h"
#include "ext/dispatch.h"
#include "ext/stats.h"

namespace fatjit {
namespace {

int64_t g_live = 0;
uint64_t g_next_id = 1;

void FreeCodeState(void* state) { delete static_cast<CodeState*>(state); }

}  // namespace

PyObject* Specialization::owner_function() const {
  PyObject* func = PyWeakref_GET_OBJECT(owner.obj());
  return func == Py_None ? nullptr : func;
}

CodeState::~CodeState() {
  // Call sites may have cached this code object's native code, or its address.
  jit::InvalidateDirectCalls();
  if (native) --GlobalCodeLevelCounters().live;
  if (specializations.empty()) return;
  // Releasing references can run arbitrary code (__del__): take them out of the state first.
  std::vector<std::unique_ptr<Specialization>> doomed;
  doomed.swap(specializations);
  g_live -= static_cast<int64_t>(doomed.size());
  GlobalStats().specializations_dropped += doomed.size();
  InstallOrRemoveHook();
}

bool InitCodeStateSlot() {
  Py_ssize_t& index = internal::g_code_extra_index;
  if (index >= 0) return true;
  index = _PyEval_RequestCodeExtraIndex(FreeCodeState);
  if (index < 0) {
    PyErr_SetString(PyExc_RuntimeError, "fatjit: no free co_extra slot");
    return false;
  }
  return true;
}

CodeState* GetOrCreateCodeState(PyCodeObject* code) {
  if (CodeState* state = CodeStateOf(code)) return state;
  auto* state = new CodeState();
  // _PyCode_SetExtra frees a previous value itself; there is none here.
  if (_PyCode_SetExtra(reinterpret_cast<PyObject*>(code), internal::g_code_extra_index, state) < 0) {
    delete state;
    return nullptr;
  }
  return state;
}

int64_t LiveSpecializations() { return g_live; }

CodeLevelCounters& GlobalCodeLevelCounters() {
  static CodeLevelCounters counters;
  return counters;
}

void RetireCodeLevelNative(CodeState* state) {
  if (!state->native) return;
  jit::InvalidateDirectCalls();
  state->native = nullptr;  // freed now, or when the last call running it returns
  state->native_tier_up_queued = false;
  --GlobalCodeLevelCounters().live;
}

void SetCodeLevelNative(CodeState* state, std::shared_ptr<jit::NativeCode> native) {
  CodeLevelCounters& counters = GlobalCodeLevelCounters();
  ++counters.compiled;
  if (state->native) {
    native->calls = state->native->calls;  // explain() reports the code object's native calls
  } else {
    ++counters.live;
  }
  state->native = std::move(native);
  jit::InvalidateDirectCalls();
}

void AddSpecialization(CodeState* state, std::unique_ptr<Specialization> spec) {
  spec->id = g_next_id++;
  state->specializations.insert(state->specializations.begin(), std::move(spec));
  jit::InvalidateDirectCalls();
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

void DropSpecialization(CodeState* state, size_t index, bool counted) {
  // Released last: its destructor can run arbitrary code (__del__) that may touch `state`.
  std::unique_ptr<Specialization> doomed = std::move(state->specializations[index]);
  state->specializations.erase(state->specializations.begin() + index);
  jit::InvalidateDirectCalls();
  --g_live;
  if (counted) ++GlobalStats().specializations_dropped;
  InstallOrRemoveHook();
}

}  // namespace fatjit
