// Native-to-native calls: see native_call.h for what it assumes and why it is sound. Each piece
// below mirrors the CPython 3.11 function named in its comment; pyenv's libpython does not export
// those (_PyEvalFramePushAndInit, _PyFrame_Clear, _PyThreadState_PopFrame,
// _PyThreadState_BumpFramePointerSlow), so they are rewritten here for the one case handled.
#include "jit/runtime/native_call.h"

#include <cstring>

#include <internal/pycore_interp.h>

namespace fatjit::jit {
namespace {

DirectCallResolver g_resolver = nullptr;

constexpr int kRefusedFlags = CO_VARARGS | CO_VARKEYWORDS | CO_GENERATOR | CO_COROUTINE |
                              CO_ASYNC_GENERATOR | CO_ITERABLE_COROUTINE;

// True if initialize_locals would bind this call as nargs positional arguments plus trailing
// defaults and nothing else (no *args tuple, **kwargs dict, keyword-only parameter, missing or
// surplus argument: those, and generators, take the ordinary path).
bool BindsPositionally(PyFunctionObject* func, PyCodeObject* code, int64_t nargs) {
  if ((code->co_flags & kRefusedFlags) != 0 || (code->co_flags & CO_OPTIMIZED) == 0 ||
      code->co_kwonlyargcount != 0 || nargs > code->co_argcount) {
    return false;
  }
  if (nargs == code->co_argcount) return true;
  PyObject* defaults = func->func_defaults;
  const Py_ssize_t ndefaults = defaults == nullptr ? 0 : PyTuple_GET_SIZE(defaults);
  return nargs >= code->co_argcount - ndefaults;
}

// _PyThreadState_BumpFramePointer's fast path (pycore_frame.h: _PyThreadState_HasStackSpace),
// refusing instead of calling the slow path. It also refuses the first slot of a chunk, which
// _PyThreadState_PopFrame would treat as the chunk's own frame (never the case below a live
// caller frame: kept for safety).
_PyInterpreterFrame* BumpFramePointer(PyThreadState* tstate, size_t size) {
  PyObject** top = tstate->datastack_top;
  if (top == nullptr || size >= static_cast<size_t>(tstate->datastack_limit - top) ||
      top == &tstate->datastack_chunk->data[0]) {
    return nullptr;
  }
  tstate->datastack_top = top + size;
  return reinterpret_cast<_PyInterpreterFrame*>(top);
}

// _PyEvalFramePushAndInit with locals = NULL (CO_OPTIMIZED) after the frame was allocated:
// _PyFrame_InitializeSpecials, then initialize_locals for positional arguments and trailing
// defaults. Steals `func` and the arguments.
void InitializeFrame(_PyInterpreterFrame* frame, PyFunctionObject* func, PyCodeObject* code,
                     PyObject** args, int64_t nargs) {
  _PyFrame_InitializeSpecials(frame, func, nullptr, code->co_nlocalsplus);
  PyObject** locals = frame->localsplus;
  for (int64_t i = 0; i < nargs; ++i) locals[i] = args[i];
  const int argcount = code->co_argcount;
  if (nargs < argcount) {
    // initialize_locals: "Add missing positional arguments (copy default values from defs)".
    PyObject* defaults = func->func_defaults;
    const Py_ssize_t first_default = argcount - PyTuple_GET_SIZE(defaults);
    for (int64_t i = nargs; i < argcount; ++i) {
      locals[i] = Py_NewRef(PyTuple_GET_ITEM(defaults, i - first_default));
    }
  }
  for (int i = argcount; i < code->co_nlocalsplus; ++i) locals[i] = nullptr;
}

// Objects/frame.c's take_ownership: the frame object outlives the call, so it gets a copy of
// the frame, its f_back (the caller's frame object; _PyFrame_GetFrameObject is not exported,
// PyFrame_GetBack reaches it by the same walk over incomplete frames), and is GC-tracked.
void TakeOwnership(PyFrameObject* f, _PyInterpreterFrame* frame) {
  const size_t size = reinterpret_cast<char*>(&frame->localsplus[frame->stacktop]) -
                      reinterpret_cast<char*>(frame);
  std::memcpy(f->_f_frame_data, frame, size);
  frame = reinterpret_cast<_PyInterpreterFrame*>(f->_f_frame_data);
  f->f_frame = frame;
  frame->owner = FRAME_OWNED_BY_FRAME_OBJECT;
  if (_PyFrame_IsIncomplete(frame)) {
    PyCodeObject* code = frame->f_code;
    frame->prev_instr = _PyCode_CODE(code) + code->_co_firsttraceable;
  }
  _PyInterpreterFrame* prev = frame->previous;
  while (prev != nullptr && _PyFrame_IsIncomplete(prev)) prev = prev->previous;
  if (prev != nullptr) {
    PyFrameObject* back = PyFrame_GetBack(f);  // a new reference, or null on MemoryError
    if (back == nullptr) {
      PyErr_Clear();  // "Nothing we can do about it"
    } else {
      f->f_back = back;
    }
    frame->previous = nullptr;
  }
  if (!PyObject_GC_IsTracked(reinterpret_cast<PyObject*>(f))) {
    PyObject_GC_Track(f);
  }
}

// Python/frame.c's _PyFrame_Clear for a frame owned by the thread.
void ClearFrame(_PyInterpreterFrame* frame) {
  if (frame->frame_obj != nullptr) {
    PyFrameObject* f = frame->frame_obj;
    frame->frame_obj = nullptr;
    if (Py_REFCNT(f) > 1) {
      TakeOwnership(f, frame);
      Py_DECREF(f);
      return;
    }
    Py_DECREF(f);
  }
  for (int i = 0; i < frame->stacktop; ++i) Py_XDECREF(frame->localsplus[i]);
  Py_XDECREF(frame->frame_obj);
  Py_XDECREF(frame->f_locals);
  Py_DECREF(frame->f_func);
  Py_DECREF(frame->f_code);
}

// ceval.c's _PyEvalFrameClearAndPop, with pystate.c's _PyThreadState_PopFrame for a frame that
// is not the first of its chunk (BumpFramePointer never hands one out).
void ClearAndPopFrame(PyThreadState* tstate, _PyInterpreterFrame* frame) {
  --tstate->recursion_remaining;
  ClearFrame(frame);
  ++tstate->recursion_remaining;
  tstate->datastack_top = reinterpret_cast<PyObject**>(frame);
}

// _PyEval_EvalFrame (pycore_ceval.h): the PEP 523 hook if one is set, else the interpreter.
PyObject* EvalFrame(PyThreadState* tstate, _PyInterpreterFrame* frame) {
  _PyFrameEvalFunction eval = tstate->interp->eval_frame;
  return eval == nullptr ? _PyEval_EvalFrameDefault(tstate, frame, 0) : eval(tstate, frame, 0);
}

}  // namespace

void SetDirectCallResolver(DirectCallResolver resolver) { g_resolver = resolver; }

bool TryDirectCall(PyThreadState* tstate, PyObject** slots, int64_t nargs, PyObject** result) {
  if (g_resolver == nullptr || !Py_IS_TYPE(slots[0], &PyFunction_Type)) return false;
  auto* func = reinterpret_cast<PyFunctionObject*>(slots[0]);
  auto* code = reinterpret_cast<PyCodeObject*>(func->func_code);
  if (!BindsPositionally(func, code, nargs)) return false;
  const size_t size =
      static_cast<size_t>(code->co_nlocalsplus + code->co_stacksize) + FRAME_SPECIALS_SIZE;
  _PyInterpreterFrame* frame = BumpFramePointer(tstate, size);
  if (frame == nullptr) return false;  // the chunk is full: the ordinary path grows the stack

  // The frame takes over the callable's and the arguments' references (CALL consumes them).
  InitializeFrame(frame, func, code, slots + 1, nargs);
  for (int64_t i = 0; i <= nargs; ++i) slots[i] = nullptr;

  NativeCode* native = g_resolver(tstate, frame);
  PyObject* res;
  if (native != nullptr) {
    static JitCounters& counters = GlobalJitCounters();
    ++counters.direct_calls;
    native->Enter();
    res = native->entry()(tstate, frame, 0);
    native->Leave();
  } else {
    res = EvalFrame(tstate, frame);
  }
  ClearAndPopFrame(tstate, frame);
  *result = res;
  return true;
}

}  // namespace fatjit::jit
