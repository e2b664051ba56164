// The PEP 523 dispatcher: see dispatch.h for what it assumes and guarantees.
#include "ext/dispatch.h"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <vector>

#include <internal/pycore_interp.h>

#include "base/cpython_compat.h"
#include "ext/auto_mode.h"
#include "ext/auto_specialize.h"
#include "ext/code_state.h"
#include "ext/event_log.h"
#include "ext/stats.h"
#include "jit/runtime/native_call.h"

namespace fatjit {
namespace {

bool g_hook_installed = false;

int ParameterCount(PyCodeObject* code) {
  return code->co_argcount + code->co_kwonlyargcount + ((code->co_flags & CO_VARARGS) ? 1 : 0) +
         ((code->co_flags & CO_VARKEYWORDS) ? 1 : 0);
}

// Runs `code` in place of the frame's own code by swapping the frame's code object. The frame
// takes a reference to `code` (released when the caller clears the frame); the specialization
// may be dropped while the frame runs.
PyObject* RunSwapped(PyThreadState* tstate, _PyInterpreterFrame* frame, PyCodeObject* code) {
  Py_INCREF(code);
  // The frame owned a reference to its original code; we hold it until the frame has run.
  Ref<PyCodeObject> original = Ref<PyCodeObject>::Steal(compat::SwapFrameCode(frame, code));
  PyObject* result = compat::EvalFrameDefault(tstate, frame, 0);
  compat::RetargetGeneratorCode(result, original.get(), code);
  return result;
}

// Calls `spec.callable` with the arguments bound in the frame: positional parameters by
// position, then *args, keyword-only parameters and **kwargs by keyword. Defaults are already
// applied in the frame, so the callable sees exactly the values the original code would.
PyObject* RunCallable(_PyInterpreterFrame* frame, Ref<> callable) {
  PyCodeObject* code = compat::FrameCode(frame);
  PyObject** locals = compat::FrameLocals(frame);
  const int nargs = code->co_argcount;
  const int nkwonly = code->co_kwonlyargcount;
  int slot = nargs + nkwonly;
  PyObject* varargs = (code->co_flags & CO_VARARGS) ? locals[slot++] : nullptr;
  PyObject* varkw = (code->co_flags & CO_VARKEYWORDS) ? locals[slot++] : nullptr;

  std::vector<PyObject*> stack(locals, locals + nargs);
  if (varargs != nullptr) {
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(varargs); ++i) {
      stack.push_back(PyTuple_GET_ITEM(varargs, i));
    }
  }
  const size_t npositional = stack.size();
  Py_ssize_t nkw = nkwonly + (varkw ? PyDict_GET_SIZE(varkw) : 0);
  Ref<> kwnames;
  if (nkw > 0) {
    kwnames = Ref<>::Steal(PyTuple_New(nkw));
    if (!kwnames) return nullptr;
    Py_ssize_t k = 0;
    for (int i = 0; i < nkwonly; ++i, ++k) {
      PyObject* name = PyTuple_GET_ITEM(code->co_localsplusnames, nargs + i);
      Py_INCREF(name);
      PyTuple_SET_ITEM(kwnames.obj(), k, name);
      stack.push_back(locals[nargs + i]);
    }
    if (varkw != nullptr) {
      Py_ssize_t pos = 0;
      PyObject *key, *value;
      while (PyDict_Next(varkw, &pos, &key, &value)) {
        Py_INCREF(key);
        PyTuple_SET_ITEM(kwnames.obj(), k++, key);
        stack.push_back(value);
      }
    }
  }
  return PyObject_Vectorcall(callable.obj(), stack.data(), npositional, kwnames.obj());
}

// Runs compiled code on the frame as it is (the original code object, at its start), pinned
// for the call (jit/native_code.h): the specialization may be dropped while it runs.
PyObject* RunNative(PyThreadState* tstate, _PyInterpreterFrame* frame, jit::NativeCode* native) {
  ++native->calls;
  ++jit::GlobalJitCounters().native_calls;
  native->Enter();
  PyObject* result = native->entry()(tstate, frame, 0);
  native->Leave();
  return result;
}

// Runs the code object's code-level native code (code_state.h), pinned as RunNative does.
PyObject* RunCodeLevel(PyThreadState* tstate, _PyInterpreterFrame* frame, jit::NativeCode* native) {
  ++GlobalCodeLevelCounters().runs;
  return RunNative(tstate, frame, native);
}

void LogGuardFailure(_PyInterpreterFrame* frame, const Guard& guard, GuardResult result) {
  LogFunctionEvent(LogEvent::kGuard, compat::FrameFunction(frame),
                   guard.Describe() + (result == GuardResult::kFailForever
                                           ? " failed for good: specialization dropped"
                                           : " failed"));
}

// A pending specialization with a register callable (code_state.h): dropped, then the callable
// is called with the function, which is about to run its first call; whatever it registers
// (fatjit.specialize) Dispatch then finds. The call's pending exception state, if any, is kept
// aside; an exception from the callable is reported as unraisable (the AST hook's callable
// catches and counts its own refusals, so this is a bug), never raised into the frame that has
// not started; a KeyboardInterrupt is re-delivered instead of lost.
void RegisterAtFirstCall(CodeState* state, size_t index, PyObject* func) {
  Ref<> callback = state->specializations[index]->register_at_first_call;
  DropSpecialization(state, index, /*counted=*/false);  // may run code
  PyObject *type, *value, *traceback;
  PyErr_Fetch(&type, &value, &traceback);
  Ref<> result = Ref<>::Steal(PyObject_CallOneArg(callback.obj(), func));
  if (!result && PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) {
    // A SIGINT that arrived while registering belongs to the program: delivered again at the
    // next eval-breaker check, as if it had come a moment later.
    PyErr_Clear();
    PyErr_SetInterrupt();
  } else if (!result) {
    PyErr_WriteUnraisable(callback.obj());
  }
  PyErr_Restore(type, value, traceback);
}

// A run of a caller-supplied code object (spec = state->specializations[index], guards passed,
// no native code yet) while automatic mode compiles: counted, timed when its code loops, and
// compiled at the run that makes it hot (auto_specialize.h, CompileGivenCode).
[[gnu::noinline]] PyObject* RunGivenCode(PyThreadState* tstate, _PyInterpreterFrame* frame,
                                         CodeState* state, size_t index, PyFunctionObject* func) {
  Specialization* spec = state->specializations[index].get();
  if (spec->runs_until_compile < 0) {
    spec->runs_until_compile = RunsBeforeCompile(spec->code.get());
  }
  if (spec->runs_until_compile > 1) {
    --spec->runs_until_compile;
    if (!TimesItsRuns(spec)) return RunSwapped(tstate, frame, spec->code.get());
    const uint64_t id = spec->id;
    const auto start = std::chrono::steady_clock::now();
    PyObject* result = RunSwapped(tstate, frame, spec->code.get());
    const auto elapsed = std::chrono::steady_clock::now() - start;
    // The frame holds its code object, hence `state`; the run may have dropped `spec`.
    if (Specialization* ran = FindSpecialization(state, id, &index)) {
      CreditLoopTime(ran,
                     std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count());
    }
    return result;
  }
  Ref<PyCodeObject> code = spec->code;  // the specialization may go while compiling
  spec = CompileGivenCode(state, index, func, compat::FrameLocals(frame));
  if (spec != nullptr && spec->native) return RunNative(tstate, frame, spec->native.get());
  return RunSwapped(tstate, frame, code.get());  // its guards passed at this call's entry
}

// A call: a fresh frame of a thread (Dispatch below sends everything else to the interpreter).
// Kept out of line: its prologue, the price of its size, is paid per call, not per resume.
[[gnu::noinline]] PyObject* DispatchCall(PyThreadState* tstate, _PyInterpreterFrame* frame,
                                         int throwflag) {
  PyCodeObject* code = compat::FrameCode(frame);
  CodeState* state = CodeStateOf(code);
  if (state == nullptr || (state->specializations.empty() && !state->native)) {
    // Automatic mode stops counting a code object once its code-level compile is under way.
    if (!AutoModeOn() || (state != nullptr && state->native_in_flight) ||
        !CountCall(state, frame, throwflag)) {
      state = CodeStateOf(code);  // made by CountCall at the code object's first call
      if (state == nullptr || !AutoModeOn() || state->native_in_flight ||
          !TimesItsCalls(state, code)) {
        return compat::EvalFrameDefault(tstate, frame, throwflag);
      }
      const int32_t attempts = state->attempts;
      const auto start = std::chrono::steady_clock::now();
      PyObject* result = compat::EvalFrameDefault(tstate, frame, throwflag);
      const auto elapsed = std::chrono::steady_clock::now() - start;
      // The code object, hence its state, is alive: the frame (cleared by our caller) holds it.
      // A call nested in this one may have made the attempt meanwhile: then the counter is the
      // wait before the next attempt, which loop time does not shorten.
      if (state->attempts == attempts) {
        CreditLoopTime(state,
                       std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count());
      }
      return result;
    }
    state = CodeStateOf(code);  // this call made it hot: a pending specialization was added
  }
  if (compat::TracingActive(tstate)) {
    CountFallback(FallbackReason::kTracing);
    return compat::EvalFrameDefault(tstate, frame, throwflag);
  }

  PyObject* func = reinterpret_cast<PyObject*>(compat::FrameFunction(frame));
  const CallArgs args{compat::FrameLocals(frame), ParameterCount(code)};
  Stats& stats = GlobalStats();
  bool owned_any = false;
  bool being_specialized = false;
  bool registered_at_this_call = false;
  for (size_t i = 0; i < state->specializations.size();) {
    // Guard checks run no Python code (guard.h), so `spec` stays valid through the check.
    // Dropping a specialization can (a __del__), and so can making one (the collector may run
    // during the specializer's allocations), so the loop re-reads the vector after either.
    Specialization* spec = state->specializations[i].get();
    PyObject* owner = spec->owner_function();
    if (owner == nullptr) {
      CountFallback(FallbackReason::kOwnerDead);
      DropSpecialization(state, i);
      continue;
    }
    if (owner != func) {
      ++i;
      continue;
    }
    if (spec->pending && spec->register_at_first_call) {
      // At most once per call: a register callable that asks again waits for the next call.
      if (registered_at_this_call) {
        ++i;
        continue;
      }
      registered_at_this_call = true;
      RegisterAtFirstCall(state, i, func);
      i = 0;  // the specializations changed: look again (guard checks have no side effects)
      continue;
    }
    if (spec->pending) {
      if (spec->materializing) {  // made by an outer activation or another thread right now
        being_specialized = true;
        ++i;
        continue;
      }
      if (!MaterializePending(state, &i, compat::FrameFunction(frame), compat::FrameLocals(frame))) {
        continue;  // refused
      }
      spec = state->specializations[i].get();
    }
    owned_any = true;
    if (spec->native && spec->native->recompile_wanted) {
      // Kind feedback (auto_specialize.h). May run the collector: look at index i again.
      RecompileForKinds(reinterpret_cast<PyFunctionObject*>(func), spec);
      continue;
    }
    ++stats.guard_checks;
    GuardSet::Outcome outcome = spec->guards.Check(args);
    if (outcome.result == GuardResult::kPass) {
      ++stats.specialized_runs;
      ++spec->runs;
      if (spec->native) return RunNative(tstate, frame, spec->native.get());
      if (spec->code) {
        if (spec->runs_until_compile != 0 && !spec->automatic && !spec->jit_in_flight &&
            AutoModeOn() && JitRequested()) {
          return RunGivenCode(tstate, frame, state, i, compat::FrameFunction(frame));
        }
        return RunSwapped(tstate, frame, spec->code.get());
      }
      return RunCallable(frame, spec->callable);  // a reference of its own, held for the call
    }
    int kind = static_cast<int>(outcome.failed->kind());
    if (LogEnabled(LogEvent::kGuard)) LogGuardFailure(frame, *outcome.failed, outcome.result);
    if (outcome.result == GuardResult::kFailForever) {
      ++stats.guard_failures_forever[kind];
      DropSpecialization(state, i);
      continue;
    }
    ++stats.guard_failures[kind];
    ++i;
  }
  // No specialization applies: the code object's own native code, if it has some, runs the
  // frame (it is the original code compiled: what the interpreter would run).
  if (state->native && state->native->recompile_wanted) {
    // The frame holds `code`, hence `state`, and its function, hence the globals.
    RecompileCodeLevelForKinds(code, state, compat::FrameFunction(frame)->func_globals);
  }
  if (state->native) return RunCodeLevel(tstate, frame, state->native.get());
  // A refused automatic specialization leaves nothing to fall back from.
  if (owned_any) {
    CountFallback(FallbackReason::kNoGuardPassed);
  } else if (being_specialized) {
    CountFallback(FallbackReason::kBeingSpecialized);
  } else if (!state->specializations.empty()) {
    CountFallback(FallbackReason::kNotOwner);
  }
  return compat::EvalFrameDefault(tstate, frame, throwflag);
}

// The PEP 523 hook. A frame that does not start here (a generator or coroutine resumed, a
// throw() into one, a frame handed over mid-code) runs in the interpreter: counted as a fallback
// when something of fatjit's could have run it, never counted as a call. This test comes first
// and alone, so that each resume in a generator pipeline costs little more than the hook's call.
PyObject* Dispatch(PyThreadState* tstate, _PyInterpreterFrame* frame, int throwflag) {
  if (!throwflag && compat::FrameAtStart(frame) && compat::FrameOwnedByThread(frame)) {
    return DispatchCall(tstate, frame, throwflag);
  }
  CodeState* state = CodeStateOf(compat::FrameCode(frame));
  if (state != nullptr && (!state->specializations.empty() || state->native)) {
    CountFallback(throwflag ? FallbackReason::kThrow : FallbackReason::kResumed);
  }
  return compat::EvalFrameDefault(tstate, frame, throwflag);
}

// The first specialization of `state` owned by `func` (alive: a frame of it is being run), or
// null if there is none or a dead owner comes first (Dispatch then drops it). Memoized in the
// state (code_state.h: CodeState::direct_*): on a hit one compare of the generation and one
// load of the weakref's referent replace the walk over the owners' weakrefs. A hit skips
// dead owners of other functions ahead of it; Dispatch drops those at its next run.
bool g_direct_memo = true;  // FATJIT_JIT_DIRECT_MEMO=0: walk the owners at every call (A/B)

Specialization* FirstSpecializationOf(CodeState* state, PyObject* func) {
  const uint64_t generation = jit::DirectCallEpoch();
  if (g_direct_memo && state->direct_func == func && state->direct_generation == generation &&
      reinterpret_cast<PyWeakReference*>(state->direct_owner)->wr_object == func) {
    return state->direct_spec;
  }
  for (const std::unique_ptr<Specialization>& entry : state->specializations) {
    Specialization* spec = entry.get();
    // spec->owner_function(), inline: this runs at every call.
    PyObject* owner = PyWeakref_GET_OBJECT(spec->owner.obj());
    if (owner == Py_None) return nullptr;
    if (owner != func) continue;
    state->direct_func = func;
    state->direct_owner = spec->owner.obj();
    state->direct_spec = spec;
    state->direct_generation = generation;
    return spec;
  }
  return nullptr;
}

// The direct-call resolver (jit/runtime/native_call.h): the one outcome of Dispatch on a fresh
// frame pushed by native code's CALL that needs no side effect, namely "the code object has no
// specializations and runs its code-level native code" or "the first specialization of this
// function passes its guards and is native". Everything else returns false, and the caller runs
// the hook, which decides as always: a dead owner or a pending specialization (which Dispatch
// drops or materializes), native code asking to be recompiled (kind feedback), a guard failure
// (counted there, a later specialization may pass),
// swapped code or a stand-in callable, auto-mode counting, tracing, another hook. On success it
// counts what Dispatch would have counted for the same run, and says in *target what a call
// site must re-check to reuse the answer (the owner, the guards) and what to count then. The
// caller pins the code for the call (a callee may drop the specialization mid-call).
bool ResolveDirectCall(PyThreadState* tstate, _PyInterpreterFrame* frame,
                       jit::DirectCallTarget* target) {
  if (tstate->interp->eval_frame != Dispatch || compat::TracingActive(tstate)) return false;
  PyCodeObject* code = compat::FrameCode(frame);
  CodeState* state = CodeStateOf(code);
  if (state == nullptr) return false;
  if (state->specializations.empty()) {
    jit::NativeCode* native = state->native.get();
    if (native == nullptr || native->recompile_wanted) return false;
    static CodeLevelCounters& code_level = GlobalCodeLevelCounters();
    ++native->calls;
    ++code_level.runs;
    *target = jit::DirectCallTarget{native, nullptr, nullptr, {&code_level.runs}};
    return true;
  }
  PyObject* func = reinterpret_cast<PyObject*>(compat::FrameFunction(frame));
  Specialization* spec = FirstSpecializationOf(state, func);
  if (spec == nullptr || spec->pending || !spec->native || spec->native->recompile_wanted) {
    return false;
  }
  if (spec->guards.size() != 0) {  // (the parameter count costs as much as an empty check)
    const CallArgs args{compat::FrameLocals(frame), ParameterCount(code)};
    if (spec->guards.Check(args).result != GuardResult::kPass) return false;
  }
  static Stats& stats = GlobalStats();
  ++stats.direct_specialized_runs;
  ++spec->runs;
  ++spec->native->calls;
  *target = jit::DirectCallTarget{spec->native.get(), spec->owner.obj(),
                                  spec->guards.size() != 0 ? &spec->guards : nullptr,
                                  {&stats.direct_specialized_runs, &spec->runs}};
  return true;
}

// FATJIT_JIT_DIRECT_CALLS=0 keeps every call from native code on the ordinary path.
bool DirectCallsEnabled() {
  static const bool enabled = [] {
    const char* value = std::getenv("FATJIT_JIT_DIRECT_CALLS");
    return value == nullptr || std::strcmp(value, "0") != 0;
  }();
  return enabled;
}

}  // namespace

void InstallOrRemoveHook() {
  bool wanted = AutoModeOn() || LiveSpecializations() > 0;
  if (wanted == g_hook_installed) return;
  compat::SetEvalFrameHook(wanted ? Dispatch : nullptr);
  jit::SetDirectCallResolver(wanted && DirectCallsEnabled() ? ResolveDirectCall : nullptr,
                             Dispatch);
  const char* memo = std::getenv("FATJIT_JIT_DIRECT_MEMO");
  g_direct_memo = memo == nullptr || std::strcmp(memo, "0") != 0;
  g_hook_installed = wanted;
}

bool HookInstalled() { return g_hook_installed && compat::EvalFrameHookIs(Dispatch); }

}  // namespace fatjit
