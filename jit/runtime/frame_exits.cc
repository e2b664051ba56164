// Frame-level helpers: see frame_exits.h. Each mirrors the part of _PyEval_EvalFrameDefault
// (3.11) named in its comment.
#include "jit/runtime/frame_exits.h"

#include <internal/pycore_ceval.h>
#include <internal/pycore_interp.h>
#include <internal/pycore_runtime.h>

#include "base/cpython_compat.h"
#include "guards/guard_set.h"

namespace fatjit::jit {
namespace {

// Entered with throwflag = 1 while tracing or profiling is on, _PyEval_EvalFrameDefault reports
// a 'call' event first (TRACE_FUNCTION_THROW_ENTRY, meant for generator.throw()), but the frame
// has been running all along: the interpreter would report only the 'exception' event. Tracing
// can be on there when a callee switched it on and then raised. For that one entry the handover
// puts in trace and profile functions that swallow the 'call' event and put the real ones back;
// nothing else runs in between (the real objects stay in c_traceobj/c_profileobj).
thread_local Py_tracefunc t_real_trace = nullptr;
thread_local Py_tracefunc t_real_profile = nullptr;

int SwallowCallTrace(PyObject*, PyFrameObject*, int, PyObject*) {
  PyThreadState_Get()->c_tracefunc = t_real_trace;
  return 0;
}

int SwallowCallProfile(PyObject*, PyFrameObject*, int, PyObject*) {
  PyThreadState_Get()->c_profilefunc = t_real_profile;
  return 0;
}

// The interpreter's handover point: what the frame looks like after `depth` stack values, with
// the next instruction to run at prev_instr + 1.
PyObject* HandOver(PyThreadState* tstate, _PyInterpreterFrame* frame, int64_t depth,
                   _Py_CODEUNIT* prev_instr, int throwflag) {
  // Undo fatjit_rt_enter: the interpreter links the frame and counts the level itself.
  tstate->cframe->current_frame = frame->previous;
  ++tstate->recursion_remaining;
  frame->stacktop = frame->f_code->co_nlocalsplus + static_cast<int>(depth);
  frame->prev_instr = prev_instr;
  const bool swallow_call = throwflag && tstate->cframe->use_tracing;
  if (swallow_call) {
    if (tstate->c_tracefunc != nullptr) {
      t_real_trace = tstate->c_tracefunc;
      tstate->c_tracefunc = SwallowCallTrace;
    }
    if (tstate->c_profilefunc != nullptr) {
      t_real_profile = tstate->c_profilefunc;
      tstate->c_profilefunc = SwallowCallProfile;
    }
  }
  PyObject* result = _PyEval_EvalFrameDefault(tstate, frame, throwflag);
  if (swallow_call) {  // not reached (RecursionError at entry): put them back here
    if (tstate->c_tracefunc == SwallowCallTrace) tstate->c_tracefunc = t_real_trace;
    if (tstate->c_profilefunc == SwallowCallProfile) tstate->c_profilefunc = t_real_profile;
  }
  return result;
}

}  // namespace

const char* DeoptReasonName(DeoptReason reason) {
  switch (reason) {
#define FATJIT_DEOPT_NAME(name, id, text) \
  case DeoptReason::name:                 \
    return id;
    FATJIT_DEOPT_REASONS(FATJIT_DEOPT_NAME)
#undef FATJIT_DEOPT_NAME
    case DeoptReason::kCount:
      break;
  }
  return "?";
}

JitCounters& GlobalJitCounters() {
  static JitCounters counters;
  return counters;
}

}  // namespace fatjit::jit

using fatjit::jit::GlobalJitCounters;

extern "C" {

// start_frame: _Py_EnterRecursiveCallTstate; on failure ceval's extra decrement and
// exit_unwind's increment cancel out. "Push frame": link it below the current frame.
int64_t fatjit_rt_enter(PyThreadState* tstate, _PyInterpreterFrame* frame) {
  if (_Py_EnterRecursiveCallTstate(tstate, "")) return -1;
  frame->previous = tstate->cframe->current_frame;
  tstate->cframe->current_frame = frame;
  return 0;
}

PyObject* fatjit_rt_raise(PyThreadState* tstate, _PyInterpreterFrame* frame, int64_t depth,
                          int64_t opcode_offset) {
  ++GlobalJitCounters().raises;
  return fatjit::jit::HandOver(tstate, frame, depth, _PyCode_CODE(frame->f_code) + opcode_offset,
                               1);
}

PyObject* fatjit_rt_deopt(PyThreadState* tstate, _PyInterpreterFrame* frame,
                          fatjit::jit::DeoptSite* site) {
  ++site->count;
  fatjit::jit::JitCounters& counters = GlobalJitCounters();
  ++counters.deopts[static_cast<int>(site->reason)];
  if (counters.on_deopt != nullptr) counters.on_deopt(*site, frame);
  return fatjit::jit::HandOver(tstate, frame, site->depth,
                               _PyCode_CODE(frame->f_code) + site->target - 1, 0);
}

PyObject* fatjit_rt_exit(PyThreadState* tstate, _PyInterpreterFrame* frame,
                         fatjit::jit::DeoptSite* site) {
  if (PyErr_Occurred()) return fatjit_rt_raise(tstate, frame, site->error_depth, site->opcode_offset);
  if (!tstate->cframe->use_tracing) {
    // Only a failed helper leaves here with tracing off, so it failed without an exception (a C
    // function that broke the API contract on a path that does not check): what ceval's error
    // label does then.
    PyErr_SetString(PyExc_SystemError, "error return without exception set");
    return fatjit_rt_raise(tstate, frame, site->error_depth, site->opcode_offset);
  }
  return fatjit_rt_deopt(tstate, frame, site);
}

// unbound_local_error: format_exc_check_arg(UnboundLocalError, UNBOUNDLOCAL_ERROR_MSG, name).
int64_t fatjit_rt_unbound_local(PyThreadState* tstate, _PyInterpreterFrame* frame,
                                int64_t index) {
  PyObject* name = PyTuple_GetItem(frame->f_code->co_localsplusnames, index);
  if (name != nullptr) {
    PyErr_Format(PyExc_UnboundLocalError,
                 "cannot access local variable '%U' where it is not associated with a value",
                 name);
  }
  return -1;
}

// eval_frame_handle_pending, through the exported API: Py_MakePendingCalls handles signals
// (main thread) and pending calls and clears their request bits; releasing and re-taking the GIL
// honours a drop request (drop_gil waits for the requester under FORCE_SWITCHING). An
// asynchronous exception (PyThreadState_SetAsyncExc) is left to the interpreter.
int64_t fatjit_rt_eval_breaker(PyThreadState* tstate) {
  PyInterpreterState* interp = tstate->interp;
  if (_Py_atomic_load_relaxed(&_PyRuntime.ceval.signals_pending) ||
      _Py_atomic_load_relaxed(&interp->ceval.pending.calls_to_do)) {
    if (Py_MakePendingCalls() < 0) return -1;
  }
  if (_Py_atomic_load_relaxed(&interp->ceval.gil_drop_request)) {
    PyThreadState* saved = PyEval_SaveThread();
    PyEval_RestoreThread(saved);
  }
  if (tstate->async_exc != nullptr) return 1;
  return 0;
}

int64_t fatjit_rt_guards_hold(fatjit::GuardSet* guards, _PyInterpreterFrame* frame,
                              int64_t nparams) {
  const fatjit::CallArgs args{frame->localsplus, static_cast<int>(nparams)};
  return guards->Check(args).result == fatjit::GuardResult::kPass ? 1 : 0;
}

}  // extern "C"

namespace fatjit::jit {
std::shared_ptr<NativeCode> NativeCode::Share(std::unique_ptr<NativeCode> code) {
  return std::shared_ptr<NativeCode>(code.release(), [](NativeCode* unowned) {
    if (unowned->running_ > 0) {
      unowned->orphaned_ = true;
    } else {
      delete unowned;
    }
  });
}

NativeCode::~NativeCode() {
  if (compiled_.entry != nullptr) {
    GlobalJitCounters().code_bytes -= compiled_.code_size;
    backend_->Release(compiled_.handle);
  }
}
}  // namespace fatjit::jit
