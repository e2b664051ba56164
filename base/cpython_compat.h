// Every CPython-version-specific struct access fatjit makes, in one place.
//
// Assumes CPython 3.11 (base/python.h refuses anything else). Each accessor reads one internal
// field whose offset and width are pinned by a static_assert below, so a layout change in a
// patch release fails the build instead of reading garbage. 3.12+ gets its own section here
// (dict watchers, PEP 669) without touching the layers above.
#ifndef FATJIT_BASE_CPYTHON_COMPAT_H_
#define FATJIT_BASE_CPYTHON_COMPAT_H_

#include <cstddef>
#include <cstdint>

#include "base/python.h"

namespace fatjit::compat {

// --- dicts: PEP 509 version tag --------------------------------------------------------------
static_assert(offsetof(PyDictObject, ma_version_tag) == 24, "ma_version_tag moved");
static_assert(sizeof(((PyDictObject*)nullptr)->ma_version_tag) == 8, "ma_version_tag width");

inline uint64_t DictVersionTag(const PyObject* dict) {
  return reinterpret_cast<const PyDictObject*>(dict)->ma_version_tag;
}

// True if every key of `dict` is an exact str, so a lookup with an exact str key compares str
// objects only and never calls a key's __eq__ (3.11's unicode-keys dict kinds).
inline bool DictHasOnlyStrKeys(const PyObject* dict) {
  return DK_IS_UNICODE(reinterpret_cast<const PyDictObject*>(dict)->ma_keys);
}

// --- types: tp_version_tag --------------------------------------------------------------------
inline bool TypeHasValidVersion(PyTypeObject* tp) {
  return (tp->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG) != 0;
}
// Assigns a version tag to tp if it has none (as the interpreter's attribute cache does) and
// returns it, or 0 if the type cannot have one (the version space ran out).
uint32_t EnsureTypeVersion(PyTypeObject* tp);

// --- code objects ------------------------------------------------------------------------------
// A new code object equal to `code` but for the fields given (null, or -1 for `stacksize`: kept),
// built as code.replace() builds it (PyCode_NewWithPosOnlyArgs, the same validation) but without
// code.replace()'s "code.__new__" audit event: fatjit's own copies are not the program's, and an
// audit hook must not see them (CPython's test_audit counts the events a hook sees). New
// reference, or null with an exception set.
PyObject* CodeWith(PyCodeObject* code, PyObject* co_code, PyObject* co_consts, int stacksize = -1);

// --- code objects: per-code data (co_extra) -------------------------------------------------
// Mirrors Objects/codeobject.c's private _PyCodeObjectExtra (stable through 3.11.x), so the
// dispatcher reads its slot with two loads instead of a call to _PyCode_GetExtra.
struct CodeExtraLayout {
  Py_ssize_t ce_size;
  void* ce_extras[1];
};
inline void* CodeExtra(PyCodeObject* code, Py_ssize_t index) {
  auto* extra = static_cast<CodeExtraLayout*>(code->co_extra);
  if (extra == nullptr || index >= extra->ce_size) return nullptr;
  return extra->ce_extras[index];
}

// --- threads and frames -----------------------------------------------------------------------
static_assert(sizeof(((_PyCFrame*)nullptr)->use_tracing) == 1, "use_tracing is a uint8_t");

inline bool TracingActive(PyThreadState* tstate) { return tstate->cframe->use_tracing != 0; }

inline PyCodeObject* FrameCode(_PyInterpreterFrame* frame) { return frame->f_code; }
inline PyFunctionObject* FrameFunction(_PyInterpreterFrame* frame) { return frame->f_func; }
inline PyObject** FrameLocals(_PyInterpreterFrame* frame) { return frame->localsplus; }
inline bool FrameOwnedByThread(_PyInterpreterFrame* frame) {
  return frame->owner == FRAME_OWNED_BY_THREAD;
}
// True for a frame that has not executed any instruction yet (a fresh call).
inline bool FrameAtStart(_PyInterpreterFrame* frame) {
  return frame->prev_instr == _PyCode_CODE(frame->f_code) - 1;
}
// Words of the data stack a frame of `code` occupies (what the caller allocated for it, as
// _PyEvalFramePushAndInit computes it). Only a pydebug build asserts the exact size at pop.
inline size_t FrameSizeOf(PyCodeObject* code) {
  return static_cast<size_t>(code->co_nlocalsplus + code->co_stacksize) + FRAME_SPECIALS_SIZE;
}

// Makes a fresh frame run `code` instead of its own code object. The frame must be at start,
// and `code` must have the same locals layout (co_nlocalsplus, cells, free variables) and fit
// in the frame (FrameSizeOf(code) <= FrameSizeOf(frame's code)). Steals `code`; returns the
// frame's previous code object (an owned reference the caller must release after the frame ran).
inline PyCodeObject* SwapFrameCode(_PyInterpreterFrame* frame, PyCodeObject* code) {
  PyCodeObject* old = frame->f_code;
  frame->f_code = code;
  frame->prev_instr = _PyCode_CODE(code) - 1;
  return old;
}

// 3.11's RETURN_GENERATOR takes gi_code (cr_code, ag_code) from the function, not from the
// frame: after a swap, point a generator made by `frame_code`'s frame at the code it runs.
// `result` is what the swapped frame returned; `original` the code the function has.
inline void RetargetGeneratorCode(PyObject* result, PyCodeObject* original,
                                  PyCodeObject* frame_code) {
  if (result == nullptr || !(frame_code->co_flags & (CO_GENERATOR | CO_COROUTINE |
                                                     CO_ASYNC_GENERATOR))) {
    return;
  }
  if (!PyGen_CheckExact(result) && !PyCoro_CheckExact(result) &&
      !PyAsyncGen_CheckExact(result)) {
    return;
  }
  auto* gen = reinterpret_cast<PyGenObject*>(result);  // the three share _PyGenObject_HEAD
  if (gen->gi_code != original) return;
  Py_INCREF(frame_code);
  Py_SETREF(gen->gi_code, frame_code);
}

using EvalFrameFunction = _PyFrameEvalFunction;
inline PyObject* EvalFrameDefault(PyThreadState* tstate, _PyInterpreterFrame* frame,
                                  int throwflag) {
  return _PyEval_EvalFrameDefault(tstate, frame, throwflag);
}
inline void SetEvalFrameHook(EvalFrameFunction hook) {
  _PyInterpreterState_SetEvalFrameFunc(PyInterpreterState_Get(),
                                       hook ? hook : _PyEval_EvalFrameDefault);
}
inline bool EvalFrameHookIs(EvalFrameFunction hook) {
  return _PyInterpreterState_GetEvalFrameFunc(PyInterpreterState_Get()) == hook;
}

}  // namespace fatjit::compat

#endif  // FATJIT_BASE_CPYTHON_COMPAT_H_
