// Native-to-native calls: see native_call.h for what it assumes and why it is sound. Each piece
// below mirrors the CPython 3.11 function named in its comment; pyenv's libpython does not export
// those (_PyEvalFramePushAndInit, _PyFrame_Clear, _PyThreadState_PopFrame,
// _PyThreadState_BumpFramePointerSlow, push_chunk), so they are rewritten here for the one case
// handled.
#include "jit/runtime/native_call.h"

#include <cstring>

#include <internal/pycore_interp.h>

namespace fatjit::jit {
namespace {

DirectCallResolver g_resolver = nullptr;
_PyFrameEvalFunction g_hook = nullptr;  // the hook the resolver answers for

constexpr int kRefusedFlags = CO_VARARGS | CO_VARKEYWORDS | CO_GENERATOR | CO_COROUTINE |
                              CO_ASYNC_GENERATOR | CO_ITERABLE_COROUTINE;

// Where initialize_locals puts each argument of a call it binds without error, *args or
// **kwargs: `npositional` positional arguments into the first locals, and each keyword value into
// the parameter of the same name (found by identity: keyword names are interned), the missing
// parameters from func_defaults and func_kwdefaults.
constexpr int kMaxKeywords = 16;
struct Binding {
  int npositional = 0;
  int nkeywords = 0;
  int keyword_local[kMaxKeywords];  // local index of each keyword value: [0, nkeywords) set
};

// func_kwdefaults[name], matched by identity so that the lookup runs no code (a dict lookup may
// call a key's __eq__); null if absent or not found that way (the ordinary path then decides).
PyObject* KeywordDefault(PyFunctionObject* func, PyObject* name) {
  PyObject* kwdefaults = func->func_kwdefaults;
  if (kwdefaults == nullptr || !PyDict_CheckExact(kwdefaults)) return nullptr;
  Py_ssize_t pos = 0;
  PyObject* key;
  PyObject* value;
  while (PyDict_Next(kwdefaults, &pos, &key, &value)) {
    if (key == name) return value;
  }
  return nullptr;
}

// True if initialize_locals would bind the call (nargs values, the last ones named by kwnames)
// without an error and without *args, **kwargs or a generator, filling *binding; false (nothing
// touched) for every other call, which takes the ordinary path: errors are raised there, with
// CPython's messages.
bool BindsDirectly(PyFunctionObject* func, PyCodeObject* code, int64_t nargs, PyObject* kwnames,
                   Binding* binding) {
  if ((code->co_flags & kRefusedFlags) != 0 || (code->co_flags & CO_OPTIMIZED) == 0) {
    return false;
  }
  const int argcount = code->co_argcount;
  if (kwnames == nullptr && nargs == argcount && code->co_kwonlyargcount == 0) {
    // ceval's CALL_PY_EXACT_ARGS case: every parameter given by position, nothing to look up.
    binding->npositional = argcount;
    binding->nkeywords = 0;
    return true;
  }
  const int64_t nkeywords = kwnames == nullptr ? 0 : PyTuple_GET_SIZE(kwnames);
  const int64_t npositional = nargs - nkeywords;
  const int total = argcount + code->co_kwonlyargcount;
  if (npositional > argcount || nkeywords > kMaxKeywords || total > 64) return false;
  binding->npositional = static_cast<int>(npositional);
  binding->nkeywords = static_cast<int>(nkeywords);
  uint64_t bound = npositional == 64 ? ~uint64_t{0} : (uint64_t{1} << npositional) - 1;
  PyObject** names = &PyTuple_GET_ITEM(code->co_localsplusnames, 0);
  for (int64_t k = 0; k < nkeywords; ++k) {
    PyObject* keyword = PyTuple_GET_ITEM(kwnames, k);
    int j = code->co_posonlyargcount;
    while (j < total && names[j] != keyword) ++j;
    if (j == total || (bound >> j & 1) != 0) return false;  // unknown, or a second value
    bound |= uint64_t{1} << j;
    binding->keyword_local[k] = j;
  }
  PyObject* defaults = func->func_defaults;
  const int first_default = argcount - (defaults == nullptr ? 0 : PyTuple_GET_SIZE(defaults));
  for (int i = static_cast<int>(npositional); i < argcount; ++i) {
    if ((bound >> i & 1) == 0 && i < first_default) return false;  // missing
  }
  for (int i = argcount; i < total; ++i) {
    if ((bound >> i & 1) == 0 && KeywordDefault(func, names[i]) == nullptr) return false;
  }
  return true;
}

// The data stack's chunks (pystate.c's push_chunk and _PyThreadState_PopFrame, which pyenv's
// libpython does not export). When a frame does not fit in the current chunk, CPython allocates
// a new one for it and frees that chunk when the frame pops: a call made in a loop from a frame
// near a chunk's end pays an allocation and a release (mmap, munmap) per call, or not, depending
// on how deep the loop's frame happens to sit (globals_builtins ran 0.7x or 1.2x of CPython by
// process). Here the chunk a direct call pushed is kept, one per thread, for the next such push.
// Chunks come from the allocator CPython's own come from (PyObject_GetArenaAllocator), so that
// either side may free what the other allocated.
constexpr size_t kDataStackChunkSize = 16 * 1024;  // pystate.c's DATA_STACK_CHUNK_SIZE
constexpr size_t kMinimumOverhead = 1000;          // ... and MINIMUM_OVERHEAD, in slots

void FreeChunk(_PyStackChunk* chunk) {
  PyObjectArenaAllocator arena;
  PyObject_GetArenaAllocator(&arena);
  arena.free(arena.ctx, chunk, chunk->size);
}

struct SpareChunk {
  _PyStackChunk* chunk = nullptr;
  ~SpareChunk() {
    if (chunk != nullptr) FreeChunk(chunk);
  }
};
thread_local SpareChunk t_spare_chunk;

// push_chunk for a frame of `size` slots, below a live frame (the current chunk exists, so the
// new one is never the root chunk): the frame starts the new chunk. Null, nothing touched, if no
// memory could be had (the ordinary path then raises MemoryError where CPython would).
_PyInterpreterFrame* PushFrameInNewChunk(PyThreadState* tstate, size_t size) {
  _PyStackChunk* current = tstate->datastack_chunk;
  if (current == nullptr) return nullptr;
  size_t allocate = kDataStackChunkSize;
  while (allocate < sizeof(PyObject*) * (size + kMinimumOverhead)) allocate *= 2;
  _PyStackChunk* chunk = t_spare_chunk.chunk;
  if (chunk != nullptr && chunk->size >= allocate) {
    t_spare_chunk.chunk = nullptr;
  } else {
    PyObjectArenaAllocator arena;
    PyObject_GetArenaAllocator(&arena);
    chunk = static_cast<_PyStackChunk*>(arena.alloc(arena.ctx, allocate));
    if (chunk == nullptr) return nullptr;
    chunk->size = allocate;
  }
  chunk->previous = current;
  chunk->top = 0;
  current->top = static_cast<size_t>(tstate->datastack_top - &current->data[0]);
  tstate->datastack_chunk = chunk;
  tstate->datastack_limit =
      reinterpret_cast<PyObject**>(reinterpret_cast<char*>(chunk) + chunk->size);
  tstate->datastack_top = &chunk->data[0] + size;
  return reinterpret_cast<_PyInterpreterFrame*>(&chunk->data[0]);
}

// _PyThreadState_PopFrame: a frame that starts its chunk takes the chunk with it (kept as the
// thread's spare, or freed when there is one already).
void PopFrame(PyThreadState* tstate, _PyInterpreterFrame* frame) {
  PyObject** base = reinterpret_cast<PyObject**>(frame);
  _PyStackChunk* chunk = tstate->datastack_chunk;
  if (base != &chunk->data[0]) {
    tstate->datastack_top = base;
    return;
  }
  _PyStackChunk* previous = chunk->previous;
  tstate->datastack_top = &previous->data[previous->top];
  tstate->datastack_chunk = previous;
  tstate->datastack_limit =
      reinterpret_cast<PyObject**>(reinterpret_cast<char*>(previous) + previous->size);
  if (t_spare_chunk.chunk == nullptr) {
    t_spare_chunk.chunk = chunk;
  } else {
    FreeChunk(chunk);
  }
}

// _PyThreadState_BumpFramePointer (pycore_frame.h): the current chunk when the frame fits,
// else a new chunk. A top at the first slot of a chunk (pushed by CPython, its frames all
// popped: transient) takes a new chunk too, so that PopFrame's test stays exact.
_PyInterpreterFrame* BumpFramePointer(PyThreadState* tstate, size_t size) {
  PyObject** top = tstate->datastack_top;
  if (top == nullptr || size >= static_cast<size_t>(tstate->datastack_limit - top) ||
      top == &tstate->datastack_chunk->data[0]) {
    return PushFrameInNewChunk(tstate, size);
  }
  tstate->datastack_top = top + size;
  return reinterpret_cast<_PyInterpreterFrame*>(top);
}

// _PyEvalFramePushAndInit with locals = NULL (CO_OPTIMIZED) after the frame was allocated:
// _PyFrame_InitializeSpecials, then initialize_locals as `binding` says (BindsDirectly).
// Steals `func` and the arguments.
void InitializeFrame(_PyInterpreterFrame* frame, PyFunctionObject* func, PyCodeObject* code,
                     PyObject** args, const Binding& binding) {
  _PyFrame_InitializeSpecials(frame, func, nullptr, code->co_nlocalsplus);
  PyObject** locals = frame->localsplus;
  const int npositional = binding.npositional;
  for (int i = 0; i < npositional; ++i) locals[i] = args[i];
  for (int i = npositional; i < code->co_nlocalsplus; ++i) locals[i] = nullptr;
  for (int k = 0; k < binding.nkeywords; ++k) {
    locals[binding.keyword_local[k]] = args[npositional + k];
  }
  const int argcount = code->co_argcount;
  if (npositional < argcount) {
    // initialize_locals: "Add missing positional arguments (copy default values from defs)".
    PyObject* defaults = func->func_defaults;
    const int first_default = argcount - (defaults == nullptr ? 0 : PyTuple_GET_SIZE(defaults));
    for (int i = npositional; i < argcount; ++i) {
      if (locals[i] == nullptr) locals[i] = Py_NewRef(PyTuple_GET_ITEM(defaults, i - first_default));
    }
  }
  // "Add missing keyword arguments (copy default values from kwdefs)".
  PyObject** names = &PyTuple_GET_ITEM(code->co_localsplusnames, 0);
  for (int i = argcount; i < argcount + code->co_kwonlyargcount; ++i) {
    if (locals[i] == nullptr) locals[i] = Py_NewRef(KeywordDefault(func, names[i]));
  }
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

// ceval.c's _PyEvalFrameClearAndPop.
void ClearAndPopFrame(PyThreadState* tstate, _PyInterpreterFrame* frame) {
  --tstate->recursion_remaining;
  ClearFrame(frame);
  ++tstate->recursion_remaining;
  PopFrame(tstate, frame);
}

// _PyEval_EvalFrame (pycore_ceval.h): the PEP 523 hook if one is set, else the interpreter.
PyObject* EvalFrame(PyThreadState* tstate, _PyInterpreterFrame* frame) {
  _PyFrameEvalFunction eval = tstate->interp->eval_frame;
  return eval == nullptr ? _PyEval_EvalFrameDefault(tstate, frame, 0) : eval(tstate, frame, 0);
}

uint64_t g_count_sink = 0;  // where a cache's unused count pointers point

// The call on the pushed frame, then the frame's clear and pop.
PyObject* RunNative(PyThreadState* tstate, _PyInterpreterFrame* frame, NativeCode* native) {
  ++g_jit_counters.direct_calls;
  native->Enter();
  PyObject* res = native->entry()(tstate, frame, 0);
  native->Leave();
  ClearAndPopFrame(tstate, frame);
  return res;
}

}  // namespace


void SetDirectCallResolver(DirectCallResolver resolver, _PyFrameEvalFunction hook) {
  g_resolver = resolver;
  g_hook = hook;
  InvalidateDirectCalls();
}

bool TryDirectCall(PyThreadState* tstate, PyObject** slots, int64_t nargs, PyObject* kwnames,
                   PyObject** result, DirectCallCache* cache) {
  if (g_resolver == nullptr || !Py_IS_TYPE(slots[0], &PyFunction_Type)) return false;
  auto* func = reinterpret_cast<PyFunctionObject*>(slots[0]);
  auto* code = reinterpret_cast<PyCodeObject*>(func->func_code);
  Binding binding;
  if (!BindsDirectly(func, code, nargs, kwnames, &binding)) return false;
  const size_t size =
      static_cast<size_t>(code->co_nlocalsplus + code->co_stacksize) + FRAME_SPECIALS_SIZE;
  _PyInterpreterFrame* frame = BumpFramePointer(tstate, size);
  if (frame == nullptr) return false;  // out of memory: the ordinary path raises

  // The frame takes over the callable's and the arguments' references (CALL consumes them).
  InitializeFrame(frame, func, code, slots + 1, binding);
  for (int64_t i = 0; i <= nargs; ++i) slots[i] = nullptr;

  DirectCallTarget target;
  const uint64_t epoch = DirectCallEpoch();
  if (!g_resolver(tstate, frame, &target)) {
    *result = EvalFrame(tstate, frame);
    ClearAndPopFrame(tstate, frame);
    return true;
  }
  if (cache != nullptr && kwnames == nullptr && nargs == code->co_argcount &&
      code->co_kwonlyargcount == 0) {
    DirectCallCache::Entry entry{code,
                                 static_cast<int32_t>(nargs),
                                 code->co_nlocalsplus,
                                 size,
                                 target,
                                 reinterpret_cast<const void*>(target.native->entry()),
                                 &target.native->calls,
                                 target.native->pin_count()};
    for (uint64_t*& count : entry.target.counts) {
      if (count == nullptr) count = &g_count_sink;
    }
    cache->Fill(epoch, entry);
  }
  *result = RunNative(tstate, frame, target.native);
  return true;
}

const _PyFrameEvalFunction* DirectCallHookSlot() { return &g_hook; }

extern "C" int64_t fatjit_rt_direct_call_guards(GuardSet* guards, PyObject** args,
                                                int64_t nargs) {
  return guards->Check(CallArgs{args, static_cast<int>(nargs)}).result == GuardResult::kPass;
}

extern "C" void fatjit_rt_unpinned(NativeCode* native) { native->Unpinned(); }

extern "C" void fatjit_rt_clear_and_pop_frame(PyThreadState* tstate,
                                              _PyInterpreterFrame* frame) {
  ClearAndPopFrame(tstate, frame);
}

bool CallThroughCacheEntry(PyThreadState* tstate, const DirectCallCache::Entry& entry,
                           PyObject** slots, int64_t nargs, PyObject** result) {
  PyObject* callable = slots[0];
  auto* func = reinterpret_cast<PyFunctionObject*>(callable);
  if (nargs != entry.argcount || tstate->interp->eval_frame != g_hook ||
      tstate->cframe->use_tracing != 0) {
    return false;
  }
  const DirectCallTarget& target = entry.target;
  if (target.owner != nullptr && PyWeakref_GET_OBJECT(target.owner) != callable) return false;
  if (target.guards != nullptr &&
      target.guards->Check(CallArgs{slots + 1, static_cast<int>(nargs)}).result !=
          GuardResult::kPass) {
    return false;
  }
  _PyInterpreterFrame* frame = BumpFramePointer(tstate, entry.frame_size);
  if (frame == nullptr) return false;
  // InitializeFrame for positional arguments only, written out: calling InitializeFrame here
  // costs fib ~10% more instructions (its keyword and default loops, code-object loads). The
  // frame takes over the references.
  _PyFrame_InitializeSpecials(frame, func, nullptr, static_cast<int>(entry.nlocalsplus));
  PyObject** locals = frame->localsplus;
  for (int64_t i = 0; i < nargs; ++i) locals[i] = slots[i + 1];
  for (int64_t i = nargs; i < entry.nlocalsplus; ++i) locals[i] = nullptr;
  for (int64_t i = 0; i <= nargs; ++i) slots[i] = nullptr;
  ++*target.counts[0];
  ++*target.counts[1];
  ++target.native->calls;
  *result = RunNative(tstate, frame, target.native);
  return true;
}

}  // namespace fatjit::jit
