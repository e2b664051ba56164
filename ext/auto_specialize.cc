// fatjit.specialize(func, assume=...) and the first-call materialization: see auto_specialize.h.
#include "ext/auto_specialize.h"

#include <chrono>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_format.h"
#include "ext/auto_mode.h"
#include "ext/event_log.h"
#include "ext/guard_objects.h"
#include "ext/specialize_api.h"
#include "ext/stats.h"
#include "ext/tuning.h"
#include "jit/runtime/native_call.h"
#include "jit/compile_function.h"
#include "jit/compile_queue.h"

namespace fatjit {

PyObject* SpecializeAuto(PyObject*, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"func", "assume", "jit", nullptr};
  PyObject* func_obj;
  const char* assume_name = "stable";
  int jit = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|$sp:specialize", const_cast<char**>(kwlist),
                                   &func_obj, &assume_name, &jit)) {
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
  CodeState* state = GetOrCreateCodeState(reinterpret_cast<PyCodeObject*>(func->func_code));
  if (state == nullptr || !AddPendingAutomatic(state, func_obj, assume, jit != 0)) return nullptr;
  return Py_NewRef(func_obj);
}

bool AddPendingAutomatic(CodeState* state, PyObject* func, specializer::Assume assume,
                         bool jit, bool jit_background, bool code_level_if_unchanged) {
  // A new request replaces the function's earlier automatic specialization.
  for (size_t i = 0; i < state->specializations.size();) {
    const auto& spec = state->specializations[i];
    if (spec->automatic && spec->owner_function() == func) {
      DropSpecialization(state, i);
    } else {
      ++i;
    }
  }
  auto spec = std::make_unique<Specialization>();
  spec->owner = Ref<>::Steal(PyWeakref_NewRef(func, nullptr));
  if (!spec->owner) return false;
  spec->automatic = true;
  spec->pending = true;
  spec->assume = assume;
  spec->jit = jit;
  spec->jit_background = jit && jit_background;
  spec->code_level_if_unchanged = jit && code_level_if_unchanged;
  state->last_refusal.clear();
  AddSpecialization(state, std::move(spec));
  return true;
}

namespace {

// What MaterializePending attaches, built before it touches the specialization again.
struct Made {
  Ref<PyCodeObject> code;
  Ref<> callable;
  std::vector<Ref<>> guard_objects;
  std::vector<std::string> assumptions;
};

// Wraps the specializer's result for attaching. False (no exception) if out of memory.
bool Make(specializer::SpecializeResult& result, PyFunctionObject* func, Made& made) {
  auto* code = reinterpret_cast<PyCodeObject*>(result.code.obj());
  if (FitsFrame(func, code)) {
    made.code = Ref<PyCodeObject>::Create(code);
  } else {
    made.callable = WrapCode(func, code);
  }
  for (std::unique_ptr<Guard>& guard : result.guards) {
    Ref<> object = Ref<>::Steal(WrapGuard(std::move(guard)));
    if (!object) break;
    made.guard_objects.push_back(std::move(object));
  }
  for (const specializer::Assumption& a : result.assumptions) {
    made.assumptions.push_back(a.Describe());
  }
  if (PyErr_Occurred() || (!made.code && !made.callable) ||
      made.guard_objects.size() != result.guards.size()) {
    PyErr_Clear();
    return false;
  }
  return true;
}

// The compile of `code` (the specialization, or the function's own code) for frames of `func`.
// Native code re-checks the guards after arbitrary code when a rewrite relies on them beyond the
// entry (assume="entry"); automatic specializations under "stable" use none past the entry.
jit::CompileRequest RequestForSpecialization(PyFunctionObject* func, PyCodeObject* code,
                                             const std::vector<specializer::Rewrite>& rewrites,
                                             const std::vector<Ref<>>& guard_objects,
                                             specializer::Assume assume) {
  jit::CompileRequest request;
  request.original = reinterpret_cast<PyCodeObject*>(func->func_code);
  request.compiled = code;
  request.globals = func->func_globals;
  bool beyond_entry = false;
  for (const specializer::Rewrite& r : rewrites) beyond_entry |= r.active && !r.entry_stable;
  if (assume == specializer::Assume::kEntry && beyond_entry && !guard_objects.empty()) {
    request.recheck = std::make_unique<GuardSet>();
    for (const Ref<>& object : guard_objects) {
      request.recheck->Add(GuardOf(object.obj()));
      request.keep_alive.push_back(object);
    }
  }
  return request;
}

// The compile of a specialization's code for frames of `func`: the specializer's code keeps the
// original's offsets and deopts into the original (above); a caller-supplied code object has
// offsets of its own, so its native code runs it in the frame's place (CompileGivenCode).
jit::CompileRequest RequestForCode(PyFunctionObject* func, const Specialization& spec) {
  if (spec.automatic) {
    return RequestForSpecialization(func, spec.code.get(), spec.rewrites, spec.guard_objects,
                                    spec.assume);
  }
  jit::CompileRequest request;
  request.original = spec.code.get();
  request.compiled = spec.code.get();
  request.globals = func->func_globals;
  request.entered_with = reinterpret_cast<PyCodeObject*>(func->func_code);
  return request;
}

std::string RefusalText(const jit::CompileResult& compiled) {
  if (compiled.code) return "";
  return absl::StrFormat("%s%s%s", jit::JitRefusalName(compiled.refusal),
                         compiled.detail.empty() ? "" : ": ", compiled.detail);
}

// Logged for `func`, else (code-level native code) for `code`; with neither (the function died
// while a background compile ran) counted, not logged.
void RecordCompile(PyFunctionObject* func, const jit::CompileResult& compiled,
                   PyCodeObject* code = nullptr) {
  Stats& stats = GlobalStats();
  std::string message;
  if (compiled.code) {
    ++stats.jit_compiled;
    message = absl::StrFormat("compiled: %u bytes of native code, %u deopt sites, %.2f ms",
                              compiled.code->code_size(), compiled.code->deopt_sites().size(),
                              compiled.code->compile_ns * 1e-6);
  } else {
    ++stats.jit_refused[static_cast<int>(compiled.refusal)];
    message = absl::StrFormat("refused: %s%s%s", jit::JitRefusalName(compiled.refusal),
                              compiled.detail.empty() ? "" : ": ", compiled.detail);
  }
  if (!LogEnabled(LogEvent::kCompile)) return;
  if (func != nullptr) {
    LogFunctionEvent(LogEvent::kCompile, func, message);
  } else if (code != nullptr) {
    LogCodeEvent(LogEvent::kCompile, code, message);
  }
}

// Tier-up: once a specialization runs baseline code (opt level 0), its code is compiled again
// with the optimizing codegen (tuning::kOptimizingTier) on the background thread and swapped in
// when done; calls already running keep the baseline code (pinned). The function is hot by
// then: @fatjit.jit marks it so, automatic mode compiles only past its JIT threshold. Off with
// FATJIT_JIT_TIER_UP=0, and when FATJIT_JIT_OPT fixes the opt level.
bool TierUpEnabled() {
  static const bool enabled = [] {
    const char* tier_up = std::getenv("FATJIT_JIT_TIER_UP");
    return (tier_up == nullptr || std::strcmp(tier_up, "0") != 0) &&
           std::getenv("FATJIT_JIT_OPT") == nullptr;
  }();
  return enabled;
}

// What an optimizing compile queued by QueueOptimizingCompile is for (logs and stats()).
enum class Recompile { kTierUp, kKinds };

const char* RecompileText(Recompile why) {
  return why == Recompile::kTierUp ? "optimized" : "recompiled for the kinds its loops met";
}

// On the compiler thread with the GIL: the optimized code replaces the code running so far.
void FinishTierUp(const Ref<>& code_ref, uint64_t id, std::unique_ptr<jit::LoweredFunction> lowered,
                  bool dropped, Recompile why) {
  if (dropped) {
    ++jit::GlobalJitCounters().background_dropped;
    return;
  }
  jit::CompileResult compiled = jit::FinishCompile(std::move(lowered));
  CodeState* state = CodeStateOf(reinterpret_cast<PyCodeObject*>(code_ref.obj()));
  size_t index = 0;
  Specialization* spec = state == nullptr ? nullptr : FindSpecialization(state, id, &index);
  if (spec == nullptr || !spec->native || !compiled.code) return;  // freed with `compiled`
  if (why == Recompile::kTierUp) ++jit::GlobalJitCounters().tier_ups;
  if (LogEnabled(LogEvent::kCompile)) {
    if (PyObject* func = spec->owner_function()) {
      LogFunctionEvent(LogEvent::kCompile, reinterpret_cast<PyFunctionObject*>(func),
                       absl::StrFormat("%s: %u bytes of native code, %.2f ms", RecompileText(why),
                                       compiled.code->code_size(),
                                       compiled.code->compile_ns * 1e-6));
    }
  }
  // Counts carry over: explain() reports the function's native calls and deopts.
  compiled.code->calls = spec->native->calls;
  spec->native = std::move(compiled.code);
  jit::InvalidateDirectCalls();  // call sites may hold the code it replaces
}

// Hands a compile of `spec`'s code (which has native code) with the hints `kinds` at
// `opt_level` to the background thread; FinishTierUp swaps it in. Lowering allocates, so the
// garbage collector may run and drop `spec`: it reads everything it needs from `spec` first and
// finds it again by id when the code is done.
void QueueOptimizingCompile(PyFunctionObject* func, Specialization* spec,
                            std::vector<jit::LocalKind> kinds, int opt_level, Recompile why) {
  const uint64_t id = spec->id;
  jit::CompileRequest request = RequestForCode(func, *spec);
  request.keep_alive.push_back(Ref<>::Create(reinterpret_cast<PyObject*>(spec->code.get())));
  request.options.opt_level = opt_level;
  request.local_kinds = std::move(kinds);
  // The job holds the code object itself, not a weakref: a weakref is an object the garbage
  // collector sees, and freeing it when the job ends would change gc.get_objects() at a moment
  // the program cannot predict (test_descr's leak checks count them). Code objects are not
  // tracked by the collector; holding one only delays its release until the job is done.
  Ref<> code_ref = Ref<>::Create(func->func_code);
  jit::LowerResult lowered = jit::LowerFunction(std::move(request));
  if (!lowered.lowered) return;
  auto finish = [code_ref, id, why](std::unique_ptr<jit::LoweredFunction> done, bool dropped) {
    FinishTierUp(code_ref, id, std::move(done), dropped, why);
  };
  // Optional: a full queue skips it, or drops it later for a newer job; the code running so far
  // goes on running then.
  jit::CompileQueue::Get().Submit(lowered.lowered, finish, /*optional=*/true);
}

// Tier-up: hands the optimizing compile of `spec` (which has baseline code) to the background
// thread, with the hints its baseline code was compiled with.
void QueueTierUp(PyFunctionObject* func, Specialization* spec) {
  if (!TierUpEnabled() || !spec->native || spec->native->opt_level != 0 || spec->tier_up_queued ||
      !spec->code || !spec->native->optimizable) {
    return;
  }
  spec->tier_up_queued = true;
  QueueOptimizingCompile(func, spec, spec->native->local_kinds, tuning::kOptimizingTier,
                         Recompile::kTierUp);
}

// The opt level of a recompile for kinds: the optimizing tier's, unless tier-up is off (then
// the level the code runs at now).
int KindRecompileLevel(const jit::NativeCode& native) {
  return TierUpEnabled() && native.optimizable ? tuning::kOptimizingTier : native.opt_level;
}

// Runs on the compiler thread with the GIL (compile_queue.h): attaches the machine code to the
// specialization `id` of `code_ref`'s code object if both are still there.
// `on_worker` is false when the queue could not take the job and codegen ran in the caller.
void FinishBackgroundCompile(const Ref<>& code_ref, uint64_t id,
                             std::unique_ptr<jit::LoweredFunction> lowered, bool dropped,
                             bool on_worker) {
  CodeState* state = CodeStateOf(reinterpret_cast<PyCodeObject*>(code_ref.obj()));
  size_t index = 0;
  Specialization* spec = state == nullptr ? nullptr : FindSpecialization(state, id, &index);
  jit::JitCounters& counters = jit::GlobalJitCounters();
  if (dropped) {
    ++counters.background_dropped;
    if (spec != nullptr) {
      spec->jit_in_flight = false;
      spec->jit_refusal = "background compile dropped (interpreter exit, fork, or a full queue)";
    }
    return;
  }
  jit::CompileResult compiled = jit::FinishCompile(std::move(lowered));
  if (on_worker) ++counters.background_compiles;
  PyObject* func = spec == nullptr ? nullptr : spec->owner_function();
  RecordCompile(reinterpret_cast<PyFunctionObject*>(func), compiled);
  if (spec == nullptr) return;  // dropped meanwhile: the code is freed with `compiled`
  spec->jit_in_flight = false;
  state->last_jit_refusal = RefusalText(compiled);
  spec->jit_refusal = state->last_jit_refusal;
  if (!compiled.code) return;
  spec->native = std::move(compiled.code);
  jit::InvalidateDirectCalls();  // call sites may hold the code it replaces
  if (func != nullptr) QueueTierUp(reinterpret_cast<PyFunctionObject*>(func), spec);
}

// --- code-level native code (code_state.h) ------------------------------------------------

// A copy of `code` (same bytecode, constants, names, tables) for the JIT to compile from: the
// compiled code keeps what it compiled alive, and the code object itself would be a cycle
// through its own co_extra. Built as the specializer builds its code (compat::CodeWith: what
// code.replace() does, without its audit event).
// Null (no exception) if out of memory.
Ref<PyCodeObject> CopyOfCode(PyCodeObject* code) {
  PyObject* copy = compat::CodeWith(code, nullptr, nullptr);
  if (copy == nullptr || !PyCode_Check(copy)) {
    Py_XDECREF(copy);
    PyErr_Clear();
    return Ref<PyCodeObject>();
  }
  // The copy's one new container is its tuple of local names, all str: untracked, as the
  // collector itself would at its next pass (tuples of atomic objects cannot be in a cycle), so
  // that compiling adds nothing to what gc.get_objects() sees (test_descr's leak checks).
  PyObject* names = reinterpret_cast<PyCodeObject*>(copy)->co_localsplusnames;
  bool atomic = PyTuple_CheckExact(names) && PyObject_GC_IsTracked(names);
  for (Py_ssize_t i = 0; atomic && i < PyTuple_GET_SIZE(names); ++i) {
    atomic = PyUnicode_CheckExact(PyTuple_GET_ITEM(names, i));
  }
  if (atomic) PyObject_GC_UnTrack(names);
  return Ref<PyCodeObject>::Steal(reinterpret_cast<PyCodeObject*>(copy));
}

// On the compiler thread with the GIL: the optimized code replaces the code object's code so
// far (which is retired, not freed: calls running it go on). `code` is held by the job.
void FinishCodeLevelTierUp(const Ref<>& code, std::unique_ptr<jit::LoweredFunction> lowered,
                           bool dropped, Recompile why) {
  if (dropped) {
    ++jit::GlobalJitCounters().background_dropped;
    return;
  }
  jit::CompileResult compiled = jit::FinishCompile(std::move(lowered));
  CodeState* state = CodeStateOf(reinterpret_cast<PyCodeObject*>(code.obj()));
  if (state == nullptr || !state->native || !compiled.code) return;
  if (why == Recompile::kTierUp) ++jit::GlobalJitCounters().tier_ups;
  if (LogEnabled(LogEvent::kCompile)) {
    LogCodeEvent(LogEvent::kCompile, reinterpret_cast<PyCodeObject*>(code.obj()),
                 absl::StrFormat("%s: %u bytes of native code, %.2f ms", RecompileText(why),
                                 compiled.code->code_size(), compiled.code->compile_ns * 1e-6));
  }
  SetCodeLevelNative(state, std::move(compiled.code));
}

// Hands a compile of `code`'s code-level code (from state->native_source) with the hints
// `kinds` at `opt_level` to the background thread. The job holds a strong reference to the code
// object (no weakref: nothing new for the garbage collector to see) and finds its state again
// when done. `globals`: the globals of a function running the code, borrowed, or null (hints
// only: CompileRequest::globals; without them numeric loops inline no callee).
void QueueCodeLevelCompile(PyCodeObject* code, CodeState* state,
                           std::vector<jit::LocalKind> kinds, int opt_level, Recompile why,
                           PyObject* globals) {
  jit::CompileRequest request;
  request.original = code;
  request.compiled = state->native_source.get();
  request.globals = globals;
  request.options.opt_level = opt_level;
  request.local_kinds = std::move(kinds);
  Ref<> keep = Ref<>::Create(reinterpret_cast<PyObject*>(code));
  // Lowering allocates and may run the collector; `state` lives as long as `code`.
  jit::LowerResult lowered = jit::LowerFunction(std::move(request));
  if (!lowered.lowered) return;
  auto finish = [keep, why](std::unique_ptr<jit::LoweredFunction> done, bool dropped) {
    FinishCodeLevelTierUp(keep, std::move(done), dropped, why);
  };
  jit::CompileQueue::Get().Submit(lowered.lowered, finish, /*optional=*/true);
}

// Tier-up of `code`'s code-level baseline code, with the hints it was compiled with.
void QueueCodeLevelTierUp(PyCodeObject* code, CodeState* state, PyObject* globals) {
  if (!TierUpEnabled() || !state->native || state->native->opt_level != 0 ||
      state->native_tier_up_queued || !state->native_source ||
      !state->native->optimizable) {
    return;
  }
  state->native_tier_up_queued = true;
  QueueCodeLevelCompile(code, state, state->native->local_kinds, tuning::kOptimizingTier,
                        Recompile::kTierUp, globals);
}

// The first code-level compile, finished on the compiler thread with the GIL (or in the caller
// when the queue could not take it: `on_worker` false, and `globals` those of the function
// called, for its tier-up).
void FinishCodeLevelCompile(const Ref<>& code, std::unique_ptr<jit::LoweredFunction> lowered,
                            bool dropped, bool on_worker, PyObject* globals = nullptr) {
  auto* code_object = reinterpret_cast<PyCodeObject*>(code.obj());
  CodeState* state = CodeStateOf(code_object);
  jit::JitCounters& counters = jit::GlobalJitCounters();
  if (dropped) {
    ++counters.background_dropped;
    if (state != nullptr) {
      state->native_in_flight = false;  // automatic mode attempts again later
      state->last_jit_refusal =
          "background compile dropped (interpreter exit, fork, or a full queue)";
    }
    return;
  }
  jit::CompileResult compiled = jit::FinishCompile(std::move(lowered));
  if (on_worker) ++counters.background_compiles;
  RecordCompile(nullptr, compiled, code_object);
  if (state == nullptr) return;
  state->native_in_flight = false;
  state->last_jit_refusal = RefusalText(compiled);
  if (!compiled.code || state->native) return;  // another function's compile landed first
  SetCodeLevelNative(state, std::move(compiled.code));
  QueueCodeLevelTierUp(code_object, state, globals);
}

// MaterializePending's ending when automatic mode compiled (or is compiling) a function's code
// that the specializer left unchanged: the code goes to the code object, and the pending
// specialization `spec` (at *index, or null if dropped meanwhile) is dropped. Returns false:
// no specialization is left at *index.
// `globals`: the function's (borrowed: the frame holds the function).
bool AttachCodeLevel(CodeState* state, size_t* index, Specialization* spec,
                     PyCodeObject* original, Ref<PyCodeObject> source,
                     const specializer::SpecializeResult& result, jit::CompileResult compiled,
                     std::unique_ptr<jit::LoweredFunction> lowered, Ref<> code,
                     PyObject* globals) {
  state->native_note = specializer::RefusalMessage(result.refusal);
  if (!result.detail.empty()) state->native_note += " (" + result.detail + ")";
  if (compiled.code) {
    // Another function on this code may have attached code meanwhile (a nested call): keep it.
    if (!state->native) {
      state->native_source = std::move(source);
      SetCodeLevelNative(state, std::move(compiled.code));
    }
  } else {
    state->native_source = std::move(source);
    state->native_in_flight = true;
    auto finish = [code](std::unique_ptr<jit::LoweredFunction> done, bool dropped) {
      FinishCodeLevelCompile(code, std::move(done), dropped, true);
    };
    if (!jit::CompileQueue::Get().Submit(lowered, finish)) {
      if (TierUpEnabled()) jit::SetCodegenLevel(*lowered, 0);  // baseline here; tier-up later
      FinishCodeLevelCompile(code, std::move(lowered), false, false, globals);
    }
  }
  // Not counted as dropped: the pending specialization became the code-level native code.
  if (spec != nullptr) DropSpecialization(state, *index, /*counted=*/false);  // may run code
  QueueCodeLevelTierUp(original, state, globals);  // `state` lives as long as the frame's code
  return false;
}
// A compile for the background thread (`background`: lowered now, at the optimizing tier when
// tiering up, codegen left to the thread: *lowered, or the refusal in *compiled) or compiled now
// (*compiled).
void LowerOrCompile(jit::CompileRequest request, bool background, jit::CompileResult* compiled,
                    std::unique_ptr<jit::LoweredFunction>* lowered) {
  if (!background) {
    *compiled = jit::CompileFunction(std::move(request));
    return;
  }
  if (TierUpEnabled()) request.options.opt_level = tuning::kOptimizingTier;
  jit::LowerResult result = jit::LowerFunction(std::move(request));
  *lowered = std::move(result.lowered);
  compiled->refusal = result.refusal;
  compiled->detail = std::move(result.detail);
}

// Hands the codegen of `spec`'s lowered code to the compiler thread (the job holds `code_ref`, the
// code object whose state holds `spec`, and finds `spec` again by id). The queue takes the job
// unless it is full or shut down; then codegen runs here, at the baseline (tier-up later).
void SubmitBackgroundCompile(const Ref<>& code_ref, Specialization* spec,
                             std::unique_ptr<jit::LoweredFunction> lowered) {
  const uint64_t id = spec->id;
  spec->jit_in_flight = true;
  auto finish = [code_ref, id](std::unique_ptr<jit::LoweredFunction> done, bool dropped) {
    FinishBackgroundCompile(code_ref, id, std::move(done), dropped, true);
  };
  if (!jit::CompileQueue::Get().Submit(lowered, finish)) {
    if (TierUpEnabled()) jit::SetCodegenLevel(*lowered, 0);
    FinishBackgroundCompile(code_ref, id, std::move(lowered), false, false);
  }
}

}  // namespace

Specialization* CompileGivenCode(CodeState* state, size_t index, PyFunctionObject* func,
                                 PyObject* const* args) {
  Specialization* spec = state->specializations[index].get();
  const uint64_t id = spec->id;
  spec->jit = true;
  spec->runs_until_compile = 0;
  jit::CompileRequest request = RequestForCode(func, *spec);
  request.local_kinds = jit::ParameterKinds(spec->code.get(), args);
  jit::CompileResult compiled;
  std::unique_ptr<jit::LoweredFunction> lowered;
  // The job holds the code object whose state holds the specialization (see QueueTierUp).
  Ref<> code_ref;
  if (JitBackground()) code_ref = Ref<>::Create(func->func_code);
  LowerOrCompile(std::move(request), JitBackground(), &compiled, &lowered);
  if (!lowered) {
    RecordCompile(func, compiled);
    state->last_jit_refusal = RefusalText(compiled);
  }
  spec = FindSpecialization(state, id, &index);
  if (spec == nullptr) return nullptr;  // dropped meanwhile: `compiled` or `lowered` goes too
  if (lowered) {
    SubmitBackgroundCompile(code_ref, spec, std::move(lowered));
    return FindSpecialization(state, id, &index);
  }
  spec->jit_refusal = state->last_jit_refusal;
  if (!compiled.code) return spec;
  spec->native = std::move(compiled.code);
  jit::InvalidateDirectCalls();  // call sites may hold the code it replaces
  QueueTierUp(func, spec);  // may run the collector
  return FindSpecialization(state, id, &index);
}

void RecompileForKinds(PyFunctionObject* func, Specialization* spec) {
  jit::NativeCode& native = *spec->native;
  native.recompile_wanted = false;
  if (spec->kind_recompiles >= kMaxKindRecompiles || !spec->code) return;
  ++spec->kind_recompiles;
  ++jit::GlobalJitCounters().kind_recompiles;
  QueueOptimizingCompile(func, spec, native.kinds_seen, KindRecompileLevel(native),
                         Recompile::kKinds);
}

void RecompileCodeLevelForKinds(PyCodeObject* code, CodeState* state, PyObject* globals) {
  jit::NativeCode& native = *state->native;
  native.recompile_wanted = false;
  if (state->native_kind_recompiles >= kMaxKindRecompiles || !state->native_source) return;
  ++state->native_kind_recompiles;
  ++jit::GlobalJitCounters().kind_recompiles;
  QueueCodeLevelCompile(code, state, native.kinds_seen, KindRecompileLevel(native),
                        Recompile::kKinds, globals);
}

bool MaterializePending(CodeState* state, size_t* index, PyFunctionObject* func,
                        PyObject* const* args) {
  Specialization* pending = state->specializations[*index].get();
  const uint64_t id = pending->id;
  const specializer::Assume assume = pending->assume;
  const bool jit = pending->jit;
  const bool background = pending->jit_background;
  const bool code_level = pending->code_level_if_unchanged;
  pending->materializing = true;
  // Until FindSpecialization below, allocating Python objects can run the garbage collector,
  // hence finalizers, hence other threads: nothing here may hold `pending` or an index.
  const auto start = std::chrono::steady_clock::now();
  specializer::SpecializeResult result = specializer::SpecializeFunction(func, assume);
  const auto elapsed = std::chrono::steady_clock::now() - start;
  Made made;
  if (!result.refused && !Make(result, func, made)) {
    result.refused = true;
    result.refusal = specializer::Refusal::kInternalError;
    result.detail = "out of memory while attaching the specialization";
  }
  // The JIT compiles the specialized code, or the function's own code when the specializer
  // found nothing to do: native code pays without any guard.
  // For automatic mode (code_level), the function's own code is compiled at code level, from a
  // copy of the code object, and the code object holds the result (code_state.h).
  auto* original = reinterpret_cast<PyCodeObject*>(func->func_code);
  const bool compile_original = jit && result.refused;
  std::vector<jit::LocalKind> local_kinds = jit::ParameterKinds(original, args);
  // Compiled from a copy either way: the specialization lives in the original's co_extra, so
  // holding the original there (as its code, and through its native code) would be a cycle no
  // collector sees, and the code object would outlive its function.
  Ref<PyCodeObject> original_copy =
      compile_original ? CopyOfCode(original) : Ref<PyCodeObject>();
  Ref<PyCodeObject> code_level_source = code_level ? original_copy : Ref<PyCodeObject>();
  jit::CompileResult compiled;
  std::unique_ptr<jit::LoweredFunction> lowered;  // background: codegen still to run
  Ref<> code_ref;  // background: the code object, to find its state again
  if (jit) {
    if (compile_original) {
      made.code = original_copy ? original_copy : Ref<PyCodeObject>::Create(original);
    }
    if (made.code) {
      jit::CompileRequest request = RequestForSpecialization(
          func, made.code.get(), result.rewrites, made.guard_objects, assume);
      request.local_kinds = std::move(local_kinds);
      // The job holds the code object (see QueueTierUp for why not a weakref).
      if (background) code_ref = Ref<>::Create(reinterpret_cast<PyObject*>(original));
      // A background compile goes straight to the optimizing tier: its codegen time is the
      // compiler thread's, and meanwhile the function runs its bytecode, which is faster than
      // baseline native code on call-heavy functions (README "Background compilation").
      LowerOrCompile(std::move(request), static_cast<bool>(code_ref), &compiled, &lowered);
    } else {
      compiled.refusal = jit::JitRefusal::kLayoutMismatch;
      compiled.detail = "the specialized code does not fit the frame";
    }
  }
  // No Python allocation from here on.
  Stats& stats = GlobalStats();
  stats.specialize_ns += std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count();
  for (const auto& [pass, count] : result.proposals_by_pass) stats.rewrites_by_pass[pass] += count;
  Specialization* spec = FindSpecialization(state, id, index);
  if (jit && !lowered) {
    RecordCompile(func, compiled);
    state->last_jit_refusal = RefusalText(compiled);
  }
  if (code_level_source && (compiled.code || lowered)) {
    return AttachCodeLevel(state, index, spec, original, std::move(code_level_source), result,
                           std::move(compiled), std::move(lowered), std::move(code_ref),
                           func->func_globals);
  }
  if (result.refused && !compiled.code && !lowered) {
    ++stats.auto_refused[static_cast<int>(result.refusal)];
    state->last_refusal = specializer::RefusalMessage(result.refusal);
    if (!result.detail.empty()) state->last_refusal += " (" + result.detail + ")";
    if (LogEnabled(LogEvent::kRefuse)) {
      LogFunctionEvent(LogEvent::kRefuse, func,
                       absl::StrFormat("%s: %s", specializer::RefusalName(result.refusal),
                                       state->last_refusal));
    }
    if (spec != nullptr) DropSpecialization(state, *index);
    return false;
  }
  if (!result.refused) ++stats.auto_specialized;
  if (LogEnabled(LogEvent::kSpecialize)) {
    int active = 0;
    for (const specializer::Rewrite& r : result.rewrites) active += r.active ? 1 : 0;
    LogFunctionEvent(
        LogEvent::kSpecialize, func,
        absl::StrFormat("%d rewrites, %d active, %d guards, %s, %.1f us", result.rewrites.size(),
                        active, made.guard_objects.size(),
                        made.code ? "frame code swapped" : "called with bound arguments",
                        std::chrono::duration<double, std::micro>(elapsed).count()));
  }
  if (spec == nullptr) return false;  // dropped meanwhile (unspecialize, a newer request)
  spec->native = std::move(compiled.code);
  jit::InvalidateDirectCalls();  // call sites may hold the code it replaces
  spec->jit_refusal = state->last_jit_refusal;
  spec->code = std::move(made.code);
  spec->callable = std::move(made.callable);
  spec->guard_objects = std::move(made.guard_objects);
  for (const Ref<>& object : spec->guard_objects) spec->guards.Add(GuardOf(object.obj()));
  spec->given = Ref<>::Create(compile_original ? spec->code.obj() : result.code.obj());
  spec->assumptions = std::move(made.assumptions);
  // A refused specialization's rewrites describe code that is not running: keep none.
  if (!compile_original) spec->rewrites = std::move(result.rewrites);
  spec->attribute_feedback = std::move(result.attribute_feedback);
  spec->materializing = false;
  spec->pending = false;
  if (lowered) {
    SubmitBackgroundCompile(code_ref, spec, std::move(lowered));
    return true;
  }
  QueueTierUp(func, spec);  // may run the collector: `spec` is not used after it
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
