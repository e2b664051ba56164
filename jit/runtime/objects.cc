// Runtime helpers, second group: names, cells, attributes, calls, functions, imports, `with`
// and `raise` (the objects.cc part of FATJIT_RUNTIME_OPS in runtime.h).
//
// Assumes: the contract of runtime.h (sp is the first free slot; inputs at sp[-1], sp[-2], ...;
// outputs are owned; on error each input slot is untouched or null), a CPython 3.11 frame whose
// f_code is the original code object, and `aux` as runtime.h documents it per opcode.
// Produces: exactly the stack, refcounts and exceptions of the opcode's TARGET in 3.11's
// Python/ceval.c. Each helper below is a reimplementation of that TARGET and of the static ceval
// functions it calls (format_exc_check_arg, format_exc_unbound, import_name, import_from,
// check_args_iterable, format_kwargs_error, do_raise), with the same C API calls in the same
// order, so the same Python code runs and the same messages come out. Where ceval uses a
// function libpython does not export (_PyDict_LoadGlobal), the helper uses the exported lookup
// it is built on (_PyDict_GetItem_KnownHash, same order and same errors).
//
// Deviations (none visible to Python code):
//   CALL and CALL_FUNCTION_EX never emit the profiler's c_call events (ceval's C_TRACE and
//   trace_call_function act only with tracing on, and native code never runs then), and CALL
//   never inlines a Python callee into the caller's C activation: a plain Python function gets
//   the frame _PyEval_Vector would push and runs natively when it can (native_call.h), anything
//   else goes through PyObject_Vectorcall, as ceval does with a PEP 523 hook installed.
//   CALL_FUNCTION_EX releases kwargs when *args or the kwargs copy fails; 3.11's ceval leaks it.
//   CALL's stack: PRECALL leaves the depth unchanged and CALL takes it from d to d - oparg - 1,
//   as the interpreter does at run time (the compiler's bookkeeping charges -oparg to PRECALL
//   and -1 to CALL instead).
//   BEFORE_WITH: when __enter__ raises, ceval has already replaced the manager by __exit__ on
//   the stack; here that slot is nulled (__exit__ released) to keep runtime.h's error rule.
#include <cstdint>
#include <utility>

#include "base/python.h"
#include "base/ref.h"
#include "jit/runtime/builtin_call.h"
#include "jit/runtime/native_call.h"
#include "jit/runtime/runtime.h"

// What ceval uses and base/python.h does not declare: tstate->interp->import_func (IMPORT_NAME's
// fast path), _PyObject_LookupSpecial (BEFORE_WITH) and the statically allocated identifier
// strings (_Py_ID). These headers are identical in 3.11.2 and 3.11.7.
#include <internal/pycore_interp.h>
#include <internal/pycore_object.h>
#include <internal/pycore_runtime.h>

namespace fatjit::jit {
namespace {

constexpr const char kNameErrorMsg[] = "name '%.200s' is not defined";
constexpr const char kUnboundLocalMsg[] =
    "cannot access local variable '%s' where it is not associated with a value";
constexpr const char kUnboundFreeMsg[] =
    "cannot access free variable '%s' where it is not associated with a value in enclosing "
    "scope";

// ceval's format_exc_check_arg: raises `exc_type` with `format` applied to `name`; a NameError
// also gets its `name` attribute (used for "Did you mean" suggestions).
void FormatExcCheckArg(PyObject* exc_type, const char* format, PyObject* name) {
  if (name == nullptr) return;
  const char* name_utf8 = PyUnicode_AsUTF8(name);
  if (name_utf8 == nullptr) return;
  PyErr_Format(exc_type, format, name_utf8);
  if (exc_type != PyExc_NameError) return;
  PyObject *type, *value, *traceback;
  PyErr_Fetch(&type, &value, &traceback);
  PyErr_NormalizeException(&type, &value, &traceback);
  if (PyErr_GivenExceptionMatches(value, PyExc_NameError) &&
      reinterpret_cast<PyNameErrorObject*>(value)->name == nullptr) {
    // Failure is ignored, as in ceval: the NameError is restored either way.
    (void)PyObject_SetAttr(value, &_Py_ID(name), name);
  }
  PyErr_Restore(type, value, traceback);
}

// ceval's format_exc_unbound: an empty cell or local at localsplus index `index`.
void FormatExcUnbound(PyCodeObject* code, int64_t index) {
  if (PyErr_Occurred()) return;  // don't stomp an existing exception
  PyObject* name = PyTuple_GET_ITEM(code->co_localsplusnames, index);
  if (index < code->co_nplaincellvars + code->co_nlocals) {
    FormatExcCheckArg(PyExc_UnboundLocalError, kUnboundLocalMsg, name);
  } else {
    FormatExcCheckArg(PyExc_NameError, kUnboundFreeMsg, name);
  }
}

// A builtin the compiler relies on (__build_class__), looked up as ceval does: an exact dict
// directly, anything else through __getitem__, "not found" reported as NameError.
PyObject* LoadBuiltin(PyObject* builtins, PyObject* name, const char* not_found) {
  if (PyDict_CheckExact(builtins)) {
    PyObject* value = PyDict_GetItemWithError(builtins, name);
    if (value == nullptr) {
      if (!PyErr_Occurred()) PyErr_SetString(PyExc_NameError, not_found);
      return nullptr;
    }
    return Py_NewRef(value);
  }
  PyObject* value = PyObject_GetItem(builtins, name);
  if (value == nullptr && PyErr_ExceptionMatches(PyExc_KeyError)) {
    PyErr_SetString(PyExc_NameError, not_found);
  }
  return value;
}

// _PyDict_LoadGlobal (not exported) for exact dicts: globals, then builtins; null without an
// exception if neither has the name.
PyObject* LoadGlobalFromDicts(PyObject* globals, PyObject* builtins, PyObject* name) {
  Py_hash_t hash = -1;
  if (PyUnicode_CheckExact(name)) hash = reinterpret_cast<PyASCIIObject*>(name)->hash;
  if (hash == -1) {
    hash = PyObject_Hash(name);
    if (hash == -1) return nullptr;
  }
  PyObject* value = _PyDict_GetItem_KnownHash(globals, name, hash);
  if (value != nullptr || PyErr_Occurred()) return value;
  return _PyDict_GetItem_KnownHash(builtins, name, hash);
}

// ceval's import_name: builtins.__import__(name, globals, locals, fromlist, level), calling the
// import machinery directly when __import__ is the interpreter's own.
PyObject* ImportName(PyThreadState* tstate, _PyInterpreterFrame* frame, PyObject* name,
                     PyObject* fromlist, PyObject* level) {
  PyObject* import_func = PyDict_GetItemWithError(frame->f_builtins, &_Py_ID(__import__));
  if (import_func == nullptr) {
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_ImportError, "__import__ not found");
    return nullptr;
  }
  PyObject* locals = frame->f_locals == nullptr ? Py_None : frame->f_locals;
  if (import_func == tstate->interp->import_func) {
    int ilevel = _PyLong_AsInt(level);
    if (ilevel == -1 && PyErr_Occurred()) return nullptr;
    return PyImport_ImportModuleLevelObject(name, frame->f_globals, locals, fromlist, ilevel);
  }
  Ref<> func = Ref<>::Create(import_func);  // the call may rebind builtins.__import__
  PyObject* args[] = {name, frame->f_globals, locals, fromlist, level};
  return PyObject_Vectorcall(func.get(), args, 5, nullptr);
}

// ceval's import_from: getattr(module, name), falling back to sys.modules["pkg.name"] for
// circular relative imports, else ImportError naming the module and its file.
PyObject* ImportFrom(PyObject* module, PyObject* name) {
  PyObject* attr;
  if (_PyObject_LookupAttr(module, name, &attr) != 0) return attr;  // found, or an error
  Ref<> pkgname = Ref<>::Steal(PyObject_GetAttr(module, &_Py_ID(__name__)));
  if (pkgname && PyUnicode_Check(pkgname.get())) {
    Ref<> fullname = Ref<>::Steal(PyUnicode_FromFormat("%U.%U", pkgname.get(), name));
    if (!fullname) return nullptr;
    PyObject* submodule = PyImport_GetModule(fullname.get());
    if (submodule != nullptr || PyErr_Occurred()) return submodule;
  } else {
    pkgname.Reset();  // not a str: reported as unknown, like a missing __name__
  }

  Ref<> pkgpath = Ref<>::Steal(PyModule_GetFilenameObject(module));
  Ref<> shown_name = pkgname;
  if (!shown_name) {
    shown_name = Ref<>::Steal(PyUnicode_FromString("<unknown module name>"));
    if (!shown_name) return nullptr;
  }
  if (!pkgpath || !PyUnicode_Check(pkgpath.get())) {
    PyErr_Clear();
    Ref<> message = Ref<>::Steal(PyUnicode_FromFormat(
        "cannot import name %R from %R (unknown location)", name, shown_name.get()));
    PyErr_SetImportError(message.get(), pkgname.get(), nullptr);
    return nullptr;
  }
  Ref<> spec = Ref<>::Steal(PyObject_GetAttr(module, &_Py_ID(__spec__)));
  const char* format = _PyModuleSpec_IsInitializing(spec.get())
                           ? "cannot import name %R from partially initialized module %R "
                             "(most likely due to a circular import) (%S)"
                           : "cannot import name %R from %R (%S)";
  Ref<> message =
      Ref<>::Steal(PyUnicode_FromFormat(format, name, shown_name.get(), pkgpath.get()));
  PyErr_SetImportError(message.get(), pkgname.get(), pkgpath.get());
  return nullptr;
}

// ceval's check_args_iterable: f(*args) needs an iterable.
int CheckArgsIterable(PyObject* func, PyObject* args) {
  if (Py_TYPE(args)->tp_iter != nullptr || PySequence_Check(args)) return 0;
  PyErr_Clear();
  Ref<> funcstr = Ref<>::Steal(_PyObject_FunctionStr(func));
  if (funcstr) {
    PyErr_Format(PyExc_TypeError, "%U argument after * must be an iterable, not %.200s",
                 funcstr.get(), Py_TYPE(args)->tp_name);
  }
  return -1;
}

// ceval's format_kwargs_error: rewrites the error of merging f(**kwargs) into a dict.
void FormatKwargsError(PyObject* func, PyObject* kwargs) {
  if (PyErr_ExceptionMatches(PyExc_AttributeError)) {
    // _PyDict_MergeEx found no keys(): not a mapping.
    PyErr_Clear();
    Ref<> funcstr = Ref<>::Steal(_PyObject_FunctionStr(func));
    if (funcstr) {
      PyErr_Format(PyExc_TypeError, "%U argument after ** must be a mapping, not %.200s",
                   funcstr.get(), Py_TYPE(kwargs)->tp_name);
    }
  } else if (PyErr_ExceptionMatches(PyExc_KeyError)) {
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    if (value != nullptr && PyTuple_Check(value) && PyTuple_GET_SIZE(value) == 1) {
      // A duplicate key: _PyDict_MergeEx raised KeyError((key,)) unnormalized.
      Ref<> funcstr = Ref<>::Steal(_PyObject_FunctionStr(func));
      if (funcstr) {
        PyErr_Format(PyExc_TypeError, "%U got multiple values for keyword argument '%S'",
                     funcstr.get(), PyTuple_GET_ITEM(value, 0));
      }
      Py_XDECREF(type);
      Py_XDECREF(value);
      Py_XDECREF(traceback);
    } else {
      PyErr_Restore(type, value, traceback);
    }
  }
}

// ceval's do_raise for `raise exc` and `raise exc from cause` (never the bare re-raise).
// Consumes both references; always leaves an exception set.
void DoRaise(Ref<> exc, Ref<> cause) {
  Ref<> type;
  Ref<> value;
  if (PyExceptionClass_Check(exc.get())) {
    type = std::move(exc);
    value = Ref<>::Steal(PyObject_CallNoArgs(type.get()));
    if (!value) return;
    if (!PyExceptionInstance_Check(value.get())) {
      PyErr_Format(PyExc_TypeError,
                   "calling %R should have returned an instance of BaseException, not %R",
                   type.get(), Py_TYPE(value.get()));
      return;
    }
  } else if (PyExceptionInstance_Check(exc.get())) {
    value = std::move(exc);
    type = Ref<>::Create(PyExceptionInstance_Class(value.get()));
  } else {
    exc.Reset();  // released before the TypeError is set, as in ceval
    PyErr_SetString(PyExc_TypeError, "exceptions must derive from BaseException");
    return;
  }

  if (cause) {
    Ref<> fixed_cause;
    if (PyExceptionClass_Check(cause.get())) {
      fixed_cause = Ref<>::Steal(PyObject_CallNoArgs(cause.get()));
      if (!fixed_cause) return;
    } else if (PyExceptionInstance_Check(cause.get())) {
      fixed_cause = cause;
    } else if (!Py_IsNone(cause.get())) {
      PyErr_SetString(PyExc_TypeError, "exception causes must derive from BaseException");
      return;
    }
    cause.Reset();
    PyException_SetCause(value.get(), fixed_cause.Release());  // steals; null clears it
  }
  PyErr_SetObject(type.get(), value.get());
}

}  // namespace

// --- names --------------------------------------------------------------------------------

// Pushes [NULL,] globals-or-builtins[aux]. No inputs.
extern "C" int64_t fatjit_rt_LOAD_GLOBAL(PyThreadState* tstate, _PyInterpreterFrame* frame,
                                         PyObject** sp, int64_t oparg, PyObject* aux) {
  PyObject* globals = frame->f_globals;
  PyObject* builtins = frame->f_builtins;
  PyObject* value;
  if (PyDict_CheckExact(globals) && PyDict_CheckExact(builtins)) {
    value = LoadGlobalFromDicts(globals, builtins, aux);
    if (value == nullptr) {
      if (!PyErr_Occurred()) FormatExcCheckArg(PyExc_NameError, kNameErrorMsg, aux);
      return -1;
    }
    Py_INCREF(value);
  } else {
    value = PyObject_GetItem(globals, aux);
    if (value == nullptr) {
      if (!PyErr_ExceptionMatches(PyExc_KeyError)) return -1;
      PyErr_Clear();
      value = PyObject_GetItem(builtins, aux);
      if (value == nullptr) {
        if (PyErr_ExceptionMatches(PyExc_KeyError)) {
          FormatExcCheckArg(PyExc_NameError, kNameErrorMsg, aux);
        }
        return -1;
      }
    }
  }
  if (oparg & 1) *sp++ = nullptr;
  *sp = value;
  return 0;
}

// Pops v into globals[aux]. The slot is released even on error.
extern "C" int64_t fatjit_rt_STORE_GLOBAL(PyThreadState* tstate, _PyInterpreterFrame* frame,
                                          PyObject** sp, int64_t oparg, PyObject* aux) {
  Ref<> v = Ref<>::Steal(std::exchange(sp[-1], nullptr));
  return PyDict_SetItem(frame->f_globals, aux, v.get()) == 0 ? 0 : -1;
}

// del globals[aux]; NameError if absent. No inputs.
extern "C" int64_t fatjit_rt_DELETE_GLOBAL(PyThreadState* tstate, _PyInterpreterFrame* frame,
                                           PyObject** sp, int64_t oparg, PyObject* aux) {
  if (PyDict_DelItem(frame->f_globals, aux) == 0) return 0;
  if (PyErr_ExceptionMatches(PyExc_KeyError)) {
    FormatExcCheckArg(PyExc_NameError, kNameErrorMsg, aux);
  }
  return -1;
}

// Clears local `oparg`; UnboundLocalError if it is already empty. Runs code: the old value's
// last reference may go.
extern "C" int64_t fatjit_rt_DELETE_FAST(PyThreadState* tstate, _PyInterpreterFrame* frame,
                                         PyObject** sp, int64_t oparg, PyObject* aux) {
  PyObject* old = std::exchange(frame->localsplus[oparg], nullptr);
  if (old != nullptr) {
    Py_DECREF(old);
    return 0;
  }
  FormatExcCheckArg(PyExc_UnboundLocalError, kUnboundLocalMsg,
                    PyTuple_GET_ITEM(frame->f_code->co_localsplusnames, oparg));
  return -1;
}

// --- cells --------------------------------------------------------------------------------

// Wraps local `oparg` (an argument, or null) in a new cell that takes over its reference.
extern "C" int64_t fatjit_rt_MAKE_CELL(PyThreadState* tstate, _PyInterpreterFrame* frame,
                                       PyObject** sp, int64_t oparg, PyObject* aux) {
  PyObject* initial = frame->localsplus[oparg];
  PyObject* cell = PyCell_New(initial);
  if (cell == nullptr) return -1;
  frame->localsplus[oparg] = cell;
  Py_XDECREF(initial);  // the cell holds it now: never the last reference
  return 0;
}

// Copies the function's closure cells into the last `oparg` localsplus slots.
extern "C" int64_t fatjit_rt_COPY_FREE_VARS(PyThreadState* tstate, _PyInterpreterFrame* frame,
                                            PyObject** sp, int64_t oparg, PyObject* aux) {
  PyObject* closure = frame->f_func->func_closure;
  const int64_t offset = frame->f_code->co_nlocalsplus - oparg;
  for (int64_t i = 0; i < oparg; ++i) {
    frame->localsplus[offset + i] = Py_NewRef(PyTuple_GET_ITEM(closure, i));
  }
  return 0;
}

// Pushes the contents of the cell at local `oparg`; UnboundLocalError/NameError if empty.
extern "C" int64_t fatjit_rt_LOAD_DEREF(PyThreadState* tstate, _PyInterpreterFrame* frame,
                                        PyObject** sp, int64_t oparg, PyObject* aux) {
  PyObject* value = PyCell_GET(frame->localsplus[oparg]);
  if (value == nullptr) {
    FormatExcUnbound(frame->f_code, oparg);
    return -1;
  }
  *sp = Py_NewRef(value);
  return 0;
}

// Pops v into the cell at local `oparg`. Never fails; the old contents may be released.
extern "C" int64_t fatjit_rt_STORE_DEREF(PyThreadState* tstate, _PyInterpreterFrame* frame,
                                         PyObject** sp, int64_t oparg, PyObject* aux) {
  PyObject* cell = frame->localsplus[oparg];
  PyObject* old = PyCell_GET(cell);
  PyCell_SET(cell, std::exchange(sp[-1], nullptr));
  Py_XDECREF(old);
  return 0;
}

// Empties the cell at local `oparg`; UnboundLocalError/NameError if already empty.
extern "C" int64_t fatjit_rt_DELETE_DEREF(PyThreadState* tstate, _PyInterpreterFrame* frame,
                                          PyObject** sp, int64_t oparg, PyObject* aux) {
  PyObject* cell = frame->localsplus[oparg];
  PyObject* old = PyCell_GET(cell);
  if (old != nullptr) {
    PyCell_SET(cell, nullptr);
    Py_DECREF(old);
    return 0;
  }
  FormatExcUnbound(frame->f_code, oparg);
  return -1;
}

// --- attributes ---------------------------------------------------------------------------

// owner -> owner.aux. On error the owner stays.
extern "C" int64_t fatjit_rt_LOAD_ATTR(PyThreadState* tstate, _PyInterpreterFrame* frame,
                                       PyObject** sp, int64_t oparg, PyObject* aux) {
  PyObject* res = PyObject_GetAttr(sp[-1], aux);
  if (res == nullptr) return -1;
  Py_DECREF(std::exchange(sp[-1], res));
  return 0;
}

// [v, owner] -> []: owner.aux = v. Both slots are released, even on error.
extern "C" int64_t fatjit_rt_STORE_ATTR(PyThreadState* tstate, _PyInterpreterFrame* frame,
                                        PyObject** sp, int64_t oparg, PyObject* aux) {
  Ref<> owner = Ref<>::Steal(std::exchange(sp[-1], nullptr));
  Ref<> v = Ref<>::Steal(std::exchange(sp[-2], nullptr));
  int err = PyObject_SetAttr(owner.get(), aux, v.get());
  v.Reset();  // released before the owner, as ceval does
  return err == 0 ? 0 : -1;
}

// [owner] -> []: del owner.aux. The slot is released, even on error.
extern "C" int64_t fatjit_rt_DELETE_ATTR(PyThreadState* tstate, _PyInterpreterFrame* frame,
                                         PyObject** sp, int64_t oparg, PyObject* aux) {
  Ref<> owner = Ref<>::Steal(std::exchange(sp[-1], nullptr));
  return PyObject_SetAttr(owner.get(), aux, nullptr) == 0 ? 0 : -1;
}

// [obj] -> [meth, obj] when aux is a method found on the type (unbound), else [NULL, attr].
// On error obj stays.
extern "C" int64_t fatjit_rt_LOAD_METHOD(PyThreadState* tstate, _PyInterpreterFrame* frame,
                                         PyObject** sp, int64_t oparg, PyObject* aux) {
  PyObject* obj = sp[-1];
  PyObject* meth = nullptr;
  int meth_found = _PyObject_GetMethod(obj, aux, &meth);
  if (meth == nullptr) return -1;
  if (meth_found) {
    sp[-1] = meth;
    sp[0] = obj;  // the slot's reference moves up
  } else {
    sp[-1] = nullptr;
    sp[0] = meth;
    Py_DECREF(obj);
  }
  return 0;
}

// --- calls --------------------------------------------------------------------------------

// [NULL, bound method, args...] -> [im_func, im_self, args...]; anything else is left alone.
extern "C" int64_t fatjit_rt_PRECALL(PyThreadState* tstate, _PyInterpreterFrame* frame,
                                     PyObject** sp, int64_t oparg, PyObject* aux) {
  const bool is_meth = sp[-oparg - 2] != nullptr;
  PyObject* function = sp[-oparg - 1];
  if (!is_meth && Py_IS_TYPE(function, &PyMethod_Type)) {
    sp[-oparg - 1] = Py_NewRef(PyMethod_GET_SELF(function));
    sp[-oparg - 2] = Py_NewRef(PyMethod_GET_FUNCTION(function));
    Py_DECREF(function);  // its func and self are still referenced: runs no code
  }
  return 0;
}

namespace {

// CALL: [NULL-or-method, callable-or-self, args...] -> [result]. Every input is released, on
// error too (all slots end up null). Inlined into both helpers, with CallBuiltinDirectly: a C
// method's call from native code then runs in one function.
[[gnu::always_inline]] inline int64_t Call(PyThreadState* tstate, PyObject** sp, int64_t oparg,
                                           PyObject* kwnames, DirectCallCache* cache) {
  const bool is_meth = sp[-oparg - 2] != nullptr;
  const int64_t total_args = oparg + is_meth;
  PyObject** args = sp - total_args;
  PyObject* function = args[-1];
  if (Py_IS_TYPE(function, &PyFunction_Type) &&
      TryDirectCall(tstate, args - 1, total_args, kwnames, &sp[-oparg - 2], cache)) {
    return sp[-oparg - 2] == nullptr ? -1 : 0;
  }
  PyObject* res;
  if (CallBuiltinDirectly(tstate, function, args, total_args, kwnames, &res)) {
    ++g_jit_counters.builtin_calls;
  } else {
    const int64_t kwcount = kwnames == nullptr ? 0 : PyTuple_GET_SIZE(kwnames);
    const size_t nargsf =
        static_cast<size_t>(total_args - kwcount) | PY_VECTORCALL_ARGUMENTS_OFFSET;
    res = PyObject_Vectorcall(function, args, nargsf, kwnames);
  }
  Py_DECREF(function);
  args[-1] = nullptr;
  for (int64_t i = 0; i < total_args; ++i) Py_DECREF(std::exchange(args[i], nullptr));
  sp[-oparg - 2] = res;
  return res == nullptr ? -1 : 0;
}

}  // namespace

// aux: the KW_NAMES tuple or null.
extern "C" int64_t fatjit_rt_CALL(PyThreadState* tstate, _PyInterpreterFrame* frame,
                                  PyObject** sp, int64_t oparg, PyObject* aux) {
  return Call(tstate, sp, oparg, aux, nullptr);
}

extern "C" int64_t fatjit_rt_CALL_CACHED(PyThreadState* tstate, _PyInterpreterFrame* frame,
                                         PyObject** sp, int64_t oparg, DirectCallCache* cache) {
  const int64_t nargs = oparg + (sp[-oparg - 2] != nullptr);
  if (CallThroughCache(tstate, *cache, sp - nargs - 1, nargs, &sp[-oparg - 2])) {
    return sp[-oparg - 2] == nullptr ? -1 : 0;
  }
  return Call(tstate, sp, oparg, nullptr, cache);
}

// [NULL, func, callargs(, kwargs)] -> [result], oparg & 1 says whether kwargs is there.
// On error: kwargs and callargs slots are released; func and the NULL slot are released only if
// the call itself was made.
extern "C" int64_t fatjit_rt_CALL_FUNCTION_EX(PyThreadState* tstate,
                                              _PyInterpreterFrame* frame, PyObject** sp,
                                              int64_t oparg, PyObject* aux) {
  const bool has_kwargs = (oparg & 1) != 0;
  PyObject** func_slot = sp - 2 - has_kwargs;
  PyObject* func = *func_slot;
  Ref<> kwargs;
  if (has_kwargs) {
    kwargs = Ref<>::Steal(std::exchange(sp[-1], nullptr));
    if (!PyDict_CheckExact(kwargs.get())) {
      Ref<> dict = Ref<>::Steal(PyDict_New());
      if (!dict) return -1;
      if (_PyDict_MergeEx(dict.get(), kwargs.get(), 2) < 0) {
        dict.Reset();
        FormatKwargsError(func, kwargs.get());
        return -1;
      }
      kwargs = std::move(dict);
    }
  }
  Ref<> callargs = Ref<>::Steal(std::exchange(func_slot[1], nullptr));
  if (!PyTuple_CheckExact(callargs.get())) {
    if (CheckArgsIterable(func, callargs.get()) < 0) return -1;
    callargs = Ref<>::Steal(PySequence_Tuple(callargs.get()));
    if (!callargs) return -1;
  }
  PyObject* result = PyObject_Call(func, callargs.get(), kwargs.get());
  *func_slot = nullptr;
  Py_DECREF(func);
  callargs.Reset();
  kwargs.Reset();
  func_slot[-1] = result;  // the NULL slot below func
  return result == nullptr ? -1 : 0;
}

// --- functions and classes ----------------------------------------------------------------

// [defaults?, kwdefaults?, annotations?, closure?, code] -> [function]; oparg's bits 0x01,
// 0x02, 0x04, 0x08 say which are present. The new function takes over their references.
// On error only the code slot is released.
extern "C" int64_t fatjit_rt_MAKE_FUNCTION(PyThreadState* tstate, _PyInterpreterFrame* frame,
                                           PyObject** sp, int64_t oparg, PyObject* aux) {
  PyObject* code = std::exchange(*--sp, nullptr);
  auto* func = reinterpret_cast<PyFunctionObject*>(PyFunction_New(code, frame->f_globals));
  Py_DECREF(code);
  if (func == nullptr) return -1;
  if (oparg & 0x08) func->func_closure = std::exchange(*--sp, nullptr);
  if (oparg & 0x04) func->func_annotations = std::exchange(*--sp, nullptr);
  if (oparg & 0x02) func->func_kwdefaults = std::exchange(*--sp, nullptr);
  if (oparg & 0x01) func->func_defaults = std::exchange(*--sp, nullptr);
  *sp = reinterpret_cast<PyObject*>(func);
  return 0;
}

// Pushes builtins.__build_class__ (NameError "__build_class__ not found").
extern "C" int64_t fatjit_rt_LOAD_BUILD_CLASS(PyThreadState* tstate, _PyInterpreterFrame* frame,
                                              PyObject** sp, int64_t oparg, PyObject* aux) {
  PyObject* build_class =
      LoadBuiltin(frame->f_builtins, &_Py_ID(__build_class__), "__build_class__ not found");
  if (build_class == nullptr) return -1;
  *sp = build_class;
  return 0;
}

// Pushes AssertionError (the class itself, whatever builtins say).
extern "C" int64_t fatjit_rt_LOAD_ASSERTION_ERROR(PyThreadState* tstate,
                                                  _PyInterpreterFrame* frame, PyObject** sp,
                                                  int64_t oparg, PyObject* aux) {
  *sp = Py_NewRef(PyExc_AssertionError);
  return 0;
}

// --- imports ------------------------------------------------------------------------------

// [level, fromlist] -> [module]: `import aux`. Both inputs are released, on error too.
extern "C" int64_t fatjit_rt_IMPORT_NAME(PyThreadState* tstate, _PyInterpreterFrame* frame,
                                         PyObject** sp, int64_t oparg, PyObject* aux) {
  Ref<> fromlist = Ref<>::Steal(std::exchange(sp[-1], nullptr));
  Ref<> level = Ref<>::Steal(std::exchange(sp[-2], nullptr));
  PyObject* res = ImportName(tstate, frame, aux, fromlist.get(), level.get());
  level.Reset();
  fromlist.Reset();
  sp[-2] = res;
  return res == nullptr ? -1 : 0;
}

// [module] -> [module, module.aux] (`from module import aux`). On error the module stays.
extern "C" int64_t fatjit_rt_IMPORT_FROM(PyThreadState* tstate, _PyInterpreterFrame* frame,
                                         PyObject** sp, int64_t oparg, PyObject* aux) {
  PyObject* res = ImportFrom(sp[-1], aux);
  if (res == nullptr) return -1;
  *sp = res;
  return 0;
}

// --- with and raise -----------------------------------------------------------------------

// [mgr] -> [mgr.__exit__, mgr.__enter__()], both looked up on the type. On a failed lookup the
// manager stays; if __enter__ raises, the slot is null (manager and __exit__ released).
extern "C" int64_t fatjit_rt_BEFORE_WITH(PyThreadState* tstate, _PyInterpreterFrame* frame,
                                         PyObject** sp, int64_t oparg, PyObject* aux) {
  PyObject* mgr = sp[-1];
  Ref<> enter = Ref<>::Steal(_PyObject_LookupSpecial(mgr, &_Py_ID(__enter__)));
  if (!enter) {
    if (!PyErr_Occurred()) {
      PyErr_Format(PyExc_TypeError,
                   "'%.200s' object does not support the context manager protocol",
                   Py_TYPE(mgr)->tp_name);
    }
    return -1;
  }
  PyObject* exit = _PyObject_LookupSpecial(mgr, &_Py_ID(__exit__));
  if (exit == nullptr) {
    if (!PyErr_Occurred()) {
      PyErr_Format(PyExc_TypeError,
                   "'%.200s' object does not support the context manager protocol "
                   "(missed __exit__ method)",
                   Py_TYPE(mgr)->tp_name);
    }
    return -1;
  }
  sp[-1] = exit;
  Py_DECREF(mgr);
  PyObject* res = PyObject_CallNoArgs(enter.get());
  enter.Reset();
  if (res == nullptr) {
    Py_CLEAR(sp[-1]);  // runtime.h's error rule; ceval would unwind __exit__ from the stack
    return -1;
  }
  sp[0] = res;
  return 0;
}

// [exc] (oparg 1) or [exc, cause] (oparg 2): raise exc [from cause]. Both slots are released;
// always returns -1 with the exception set.
extern "C" int64_t fatjit_rt_RAISE_VARARGS(PyThreadState* tstate, _PyInterpreterFrame* frame,
                                           PyObject** sp, int64_t oparg, PyObject* aux) {
  Ref<> cause;
  if (oparg == 2) cause = Ref<>::Steal(std::exchange(*--sp, nullptr));
  Ref<> exc = Ref<>::Steal(std::exchange(sp[-1], nullptr));
  DoRaise(std::move(exc), std::move(cause));
  return -1;
}

}  // namespace fatjit::jit
