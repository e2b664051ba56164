// The PEP 510 API: attach caller-supplied specialized code with its guards to a function.
//
// Validation follows FAT Python's fat.specialize(): `func` is a plain Python function; `code` is
// a code object with the same calling convention (argument counts and kinds, cell and free
// variables, the flags that change how a frame runs) or a callable standing in for the function
// (a Python function must have equal defaults and cannot be func itself); `guards` is a
// non-empty sequence of fatjit guards, each bound to func here.
#include "ext/specialize_api.h"

#include <string>

#include "absl/strings/str_format.h"
#include "base/cpython_compat.h"
#include "ext/auto_mode.h"
#include "ext/code_state.h"
#include "ext/guard_objects.h"
#include "ext/status_to_python.h"
#include "jit/compile_function.h"

namespace fatjit {
namespace {

// CO_OPTIMIZED | CO_NEWLOCALS: module, class-body and eval code keep names in f_locals
// (LOAD_NAME/STORE_NAME), which a function's frame does not have.
constexpr int kFlagsThatMustMatch = CO_OPTIMIZED | CO_NEWLOCALS | CO_VARARGS | CO_VARKEYWORDS |
                                    CO_GENERATOR | CO_COROUTINE | CO_ASYNC_GENERATOR |
                                    CO_ITERABLE_COROUTINE | CO_NESTED;

}  // namespace

PyFunctionObject* FunctionArgument(PyObject* func, const char* api) {
  if (PyFunction_Check(func)) return reinterpret_cast<PyFunctionObject*>(func);
  const char* hint = "";
  if (PyMethod_Check(func)) hint = " (a bound method: pass its __func__)";
  else if (PyType_Check(func)) hint = " (a class: pass one of its functions)";
  else if (PyCFunction_Check(func)) hint = " (builtins cannot be specialized)";
  PyErr_Format(PyExc_TypeError, "%s: expected a Python function, got %s%s", api,
               Py_TYPE(func)->tp_name, hint);
  return nullptr;
}

namespace {

// ValueError naming the first difference that prevents `code` from standing in for `func`.
bool CheckCompatibleCode(PyFunctionObject* func, PyCodeObject* code) {
  auto* orig = reinterpret_cast<PyCodeObject*>(func->func_code);
  const char* what = nullptr;
  if (code == orig) {
    what = "it is the function's own code object";
  } else if (code->co_argcount != orig->co_argcount) {
    what = "different number of positional parameters (co_argcount)";
  } else if (code->co_posonlyargcount != orig->co_posonlyargcount) {
    what = "different number of positional-only parameters (co_posonlyargcount)";
  } else if (code->co_kwonlyargcount != orig->co_kwonlyargcount) {
    what = "different number of keyword-only parameters (co_kwonlyargcount)";
  } else if ((code->co_flags & kFlagsThatMustMatch) != (orig->co_flags & kFlagsThatMustMatch)) {
    what = "different flags (*args, **kwargs, generator, coroutine or nested differ)";
  } else if (code->co_nfreevars != orig->co_nfreevars ||
             code->co_ncellvars != orig->co_ncellvars) {
    what = "different cell or free variables";
  } else {
    // Free variable names must match: the closure's cells are bound by position.
    for (int i = 0; i < code->co_nfreevars; ++i) {
      PyObject* a = PyTuple_GET_ITEM(code->co_localsplusnames, code->co_nlocalsplus - 1 - i);
      PyObject* b = PyTuple_GET_ITEM(orig->co_localsplusnames, orig->co_nlocalsplus - 1 - i);
      if (PyUnicode_Compare(a, b) != 0) {
        what = "different free variable names";
        break;
      }
    }
    // Parameter names must match: keyword arguments are bound by name.
    int nparams = code->co_argcount + code->co_kwonlyargcount;
    for (int i = 0; what == nullptr && i < nparams; ++i) {
      if (PyUnicode_Compare(PyTuple_GET_ITEM(code->co_localsplusnames, i),
                            PyTuple_GET_ITEM(orig->co_localsplusnames, i)) != 0) {
        what = "different parameter names";
      }
    }
  }
  if (what == nullptr) return true;
  PyErr_Format(PyExc_ValueError, "fatjit.specialize: code %R is not compatible with %U(): %s",
               code, func->func_qualname, what);
  return false;
}

bool SameOrBothMissing(PyObject* a, PyObject* b) {
  if (a == nullptr || b == nullptr) return a == b;
  int eq = PyObject_RichCompareBool(a, b, Py_EQ);
  if (eq < 0) PyErr_Clear();
  return eq == 1;
}

}  // namespace

// The frame of `func` can run `code` in place of its own: same locals layout, and the frame
// the caller allocated for the original is big enough.
bool FitsFrame(PyFunctionObject* func, PyCodeObject* code) {
  auto* orig = reinterpret_cast<PyCodeObject*>(func->func_code);
  if (code->co_nlocalsplus != orig->co_nlocalsplus) return false;
  if (compat::FrameSizeOf(code) > compat::FrameSizeOf(orig)) return false;
  int same = PyObject_RichCompareBool(code->co_localspluskinds, orig->co_localspluskinds, Py_EQ);
  if (same < 0) PyErr_Clear();
  return same == 1;
}

// A function that runs `code` with func's globals, builtins and closure. Defaults are not
// needed: the dispatcher passes every parameter explicitly.
Ref<> WrapCode(PyFunctionObject* func, PyCodeObject* code) {
  Ref<> wrapper = Ref<>::Steal(PyFunction_NewWithQualName(
      reinterpret_cast<PyObject*>(code), func->func_globals, func->func_qualname));
  if (!wrapper) return nullptr;
  if (func->func_closure != nullptr &&
      PyFunction_SetClosure(wrapper.obj(), func->func_closure) < 0) {
    return nullptr;
  }
  return wrapper;
}

PyObject* Specialize(PyObject*, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"func", "code", "guards", nullptr};
  PyObject* func_obj;
  PyObject* given = nullptr;
  PyObject* guards_obj = nullptr;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|OO:specialize", const_cast<char**>(kwlist),
                                   &func_obj, &given, &guards_obj)) {
    return nullptr;
  }
  PyFunctionObject* func = FunctionArgument(func_obj, "fatjit.specialize");
  if (func == nullptr) return nullptr;
  if (given == nullptr || guards_obj == nullptr) {
    PyErr_SetString(PyExc_TypeError,
                    "fatjit.specialize(func, code, guards): code and guards go together");
    return nullptr;
  }

  auto spec = std::make_unique<Specialization>();
  spec->given = Ref<>::Create(given);
  PyCodeObject* code = nullptr;
  if (PyCode_Check(given)) {
    code = reinterpret_cast<PyCodeObject*>(given);
  } else if (PyFunction_Check(given)) {
    auto* other = reinterpret_cast<PyFunctionObject*>(given);
    if (other == func) {
      PyErr_SetString(PyExc_ValueError,
                      "fatjit.specialize: a function cannot be its own specialization");
      return nullptr;
    }
    if (!SameOrBothMissing(other->func_defaults, func->func_defaults) ||
        !SameOrBothMissing(other->func_kwdefaults, func->func_kwdefaults)) {
      PyErr_Format(PyExc_ValueError,
                   "fatjit.specialize: %U() has other default values than %U()",
                   other->func_qualname, func->func_qualname);
      return nullptr;
    }
    code = reinterpret_cast<PyCodeObject*>(other->func_code);
    spec->given = Ref<>::Create(other->func_code);  // PEP 510 lists the code object
  } else if (!PyCallable_Check(given)) {
    PyErr_Format(PyExc_TypeError,
                 "fatjit.specialize: code must be a code object or a callable, not %s",
                 Py_TYPE(given)->tp_name);
    return nullptr;
  }
  if (code != nullptr) {
    if (!CheckCompatibleCode(func, code)) return nullptr;
    if (FitsFrame(func, code)) {
      spec->code = Ref<PyCodeObject>::Create(code);
    } else {
      spec->callable = WrapCode(func, code);
      if (!spec->callable) return nullptr;
    }
  } else {
    spec->callable = Ref<>::Create(given);
  }

  if (!PyList_Check(guards_obj) && !PyTuple_Check(guards_obj)) {
    PyErr_Format(PyExc_TypeError,
                 "fatjit.specialize: guards must be a list or tuple of fatjit guards, not %s",
                 Py_TYPE(guards_obj)->tp_name);
    return nullptr;
  }
  Ref<> guards = Ref<>::Steal(PySequence_Tuple(guards_obj));
  if (!guards) return nullptr;
  if (PyTuple_GET_SIZE(guards.obj()) == 0) {
    PyErr_SetString(PyExc_ValueError,
                    "fatjit.specialize: guards is empty; a specialization needs at least one "
                    "guard");
    return nullptr;
  }
  // Every item must be a guard before any is bound: a refused call binds nothing new.
  for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(guards.obj()); ++i) {
    PyObject* item = PyTuple_GET_ITEM(guards.obj(), i);
    if (GuardOf(item) == nullptr) {
      PyErr_Format(PyExc_TypeError,
                   "fatjit.specialize: guards[%zd] is %s, not a fatjit guard (GuardDict, "
                   "GuardGlobals, GuardBuiltins, GuardFunc, GuardArgType, GuardType)",
                   i, Py_TYPE(item)->tp_name);
      return nullptr;
    }
  }
  for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(guards.obj()); ++i) {
    PyObject* item = PyTuple_GET_ITEM(guards.obj(), i);
    absl::Status bound = GuardOf(item)->Bind(func);
    if (!bound.ok()) return RaiseStatus(bound);
    spec->guard_objects.push_back(Ref<>::Create(item));
  }
  for (const Ref<>& item : spec->guard_objects) spec->guards.Add(GuardOf(item.obj()));

  spec->owner = Ref<>::Steal(PyWeakref_NewRef(func_obj, nullptr));
  if (!spec->owner) return nullptr;
  CodeState* state = GetOrCreateCodeState(reinterpret_cast<PyCodeObject*>(func->func_code));
  if (state == nullptr) return nullptr;
  AddSpecialization(state, std::move(spec));
  return Py_NewRef(func_obj);
}

PyObject* SpecializeAtFirstCall(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 2) {
    PyErr_Format(PyExc_TypeError,
                 "specialize_at_first_call() takes 2 arguments (func, register), got %zd", nargs);
    return nullptr;
  }
  PyFunctionObject* func = FunctionArgument(args[0], "specialize_at_first_call");
  if (func == nullptr) return nullptr;
  if (!PyCallable_Check(args[1])) {
    PyErr_Format(PyExc_TypeError, "specialize_at_first_call: register must be callable, not %s",
                 Py_TYPE(args[1])->tp_name);
    return nullptr;
  }
  CodeState* state = GetOrCreateCodeState(reinterpret_cast<PyCodeObject*>(func->func_code));
  if (state == nullptr) return nullptr;
  for (size_t i = 0; i < state->specializations.size();) {
    const auto& spec = state->specializations[i];
    if (spec->register_at_first_call && spec->owner_function() == args[0]) {
      DropSpecialization(state, i, /*counted=*/false);  // may run code: re-read the vector
      i = 0;
    } else {
      ++i;
    }
  }
  auto spec = std::make_unique<Specialization>();
  spec->owner = Ref<>::Steal(PyWeakref_NewRef(args[0], nullptr));
  if (!spec->owner) return nullptr;
  spec->pending = true;
  spec->register_at_first_call = Ref<>::Create(args[1]);
  AddSpecialization(state, std::move(spec));
  Py_RETURN_NONE;
}

PyObject* GetSpecialized(PyObject*, PyObject* func_obj) {
  PyFunctionObject* func = FunctionArgument(func_obj, "fatjit.get_specialized");
  if (func == nullptr) return nullptr;
  Ref<> result = Ref<>::Steal(PyList_New(0));
  if (!result) return nullptr;
  CodeState* state = CodeStateOf(reinterpret_cast<PyCodeObject*>(func->func_code));
  if (state == nullptr) return result.Release();
  for (const auto& spec : state->specializations) {
    if (spec->owner_function() != func_obj || spec->pending) continue;
    Ref<> guards = Ref<>::Steal(PyList_New(0));
    if (!guards) return nullptr;
    for (const Ref<>& g : spec->guard_objects) {
      if (PyList_Append(guards.obj(), g.obj()) < 0) return nullptr;
    }
    Ref<> entry = Ref<>::Steal(PyTuple_Pack(2, spec->given.obj(), guards.obj()));
    if (!entry || PyList_Append(result.obj(), entry.obj()) < 0) return nullptr;
  }
  return result.Release();
}

PyObject* Unspecialize(PyObject*, PyObject* func_obj) {
  PyFunctionObject* func = FunctionArgument(func_obj, "fatjit.unspecialize");
  if (func == nullptr) return nullptr;
  CodeState* state = CodeStateOf(reinterpret_cast<PyCodeObject*>(func->func_code));
  for (size_t i = 0; state != nullptr && i < state->specializations.size();) {
    if (state->specializations[i]->owner_function() == func_obj) {
      DropSpecialization(state, i);
    } else {
      ++i;
    }
  }
  // Code-level native code goes too (for every function on the code object: it is the code
  // object's), retired rather than freed: a frame of this code may be running it.
  state = CodeStateOf(reinterpret_cast<PyCodeObject*>(func->func_code));
  if (state != nullptr && state->native) RetireCodeLevelNative(state);
  Py_RETURN_NONE;
}

namespace {

// The rewrite table of an automatic specialization, one line per rewrite.
void AppendRewrites(std::string& text, const Specialization& spec) {
  int active = 0;
  for (const specializer::Rewrite& r : spec.rewrites) active += r.active ? 1 : 0;
  absl::StrAppendFormat(&text, "\n    rewrites: %d, %d active in this code object (assume=%s)",
                        spec.rewrites.size(), active,
                        spec.assume == specializer::Assume::kEntry ? "entry" : "stable");
  for (const specializer::Rewrite& r : spec.rewrites) {
    std::string assumes;
    for (int a : r.assumptions) {
      if (!assumes.empty()) assumes += ", ";
      assumes += spec.assumptions[a];
    }
    const char* status = r.active            ? "active"
                         : !r.entry_stable   ? "inactive: runs after code that may change it"
                                             : "inactive: builds on an inactive rewrite";
    absl::StrAppendFormat(&text, "\n      offset %d line %d [%s] %s -> %s  (assumes %s; %s)",
                          r.offset * 2, r.line, r.pass, r.before, r.after, assumes, status);
  }
  if (!spec.attribute_feedback.empty()) {
    absl::StrAppendFormat(&text, "\n    attribute sites the interpreter specialized (for the JIT):");
    for (const specializer::AttributeFeedback& site : spec.attribute_feedback) {
      absl::StrAppendFormat(&text, "\n      %s", site.Describe());
    }
  }
}

}  // namespace

namespace {

const char* KindName(jit::LocalKind kind) {
  switch (kind) {
    case jit::LocalKind::kInt:
      return "int";
    case jit::LocalKind::kFloat:
      return "float";
    case jit::LocalKind::kFloatList:
      return "list of float";
    case jit::LocalKind::kIntList:
      return "list of int";
    default:
      return "other";
  }
}

// What of the native code runs on unboxed ints and floats (lower_numeric_loops.cc and
// lower_numeric_regions.cc), when any does; how often a loop's entry check failed (the loop then
// ran generically), and the recompiles for the kinds its loops met (jit/kind_feedback.h), with
// the kinds of the locals (of `code`) the code now runs for.
void AppendNumericStatus(std::string& text, const jit::NativeCode& native, int kind_recompiles,
                         PyCodeObject* code) {
  if (native.numeric_loops == 0 && native.numeric_regions == 0) return;
  absl::StrAppendFormat(&text, "; unboxed ints and floats in %d numeric loop%s, %d region%s",
                        native.numeric_loops, native.numeric_loops == 1 ? "" : "s",
                        native.numeric_regions, native.numeric_regions == 1 ? "" : "s");
  if (native.loop_entry_misses != 0) {
    absl::StrAppendFormat(&text, "; %u failed loop entries", native.loop_entry_misses);
  }
  if (kind_recompiles == 0) return;
  std::string kinds;
  for (size_t l = 0; l < native.local_kinds.size(); ++l) {
    if (native.local_kinds[l] == jit::LocalKind::kUnknown ||
        l >= static_cast<size_t>(code->co_nlocalsplus)) {
      continue;
    }
    const char* name = PyUnicode_AsUTF8(PyTuple_GET_ITEM(code->co_localsplusnames, l));
    if (name == nullptr) {  // a name that is no valid UTF-8 (code.replace can make one)
      PyErr_Clear();
      name = "?";
    }
    absl::StrAppend(&kinds, kinds.empty() ? "" : ", ", name, ": ",
                    KindName(native.local_kinds[l]));
  }
  absl::StrAppendFormat(&text, "; recompiled %d time%s for the kinds its loops met, now (%s)",
                        kind_recompiles, kind_recompiles == 1 ? "" : "s", kinds);
}

// The JIT's part of explain(): native code and its deopts, or why there is none.
void AppendJitStatus(std::string& text, const Specialization& spec, PyCodeObject* code) {
  if (spec.native) {
    const jit::NativeCode& native = *spec.native;
    absl::StrAppendFormat(&text,
                          "\n    JIT: native code (%s), %u bytes, compiled in %.2f ms, %u native "
                          "calls, %u deopt sites",
                          native.opt_level == 0 ? "baseline" : "optimized", native.code_size(),
                          native.compile_ns * 1e-6, native.calls,
                          native.deopt_sites().size());
    AppendNumericStatus(text, native, spec.kind_recompiles, code);
    for (const jit::DeoptSite& site : native.deopt_sites()) {
      if (site.count == 0) continue;
      absl::StrAppendFormat(&text, "\n      deopt to offset %d (%s): %u times", site.target * 2,
                            jit::DeoptReasonName(site.reason), site.count);
    }
  } else if (spec.jit_in_flight) {
    text += "\n    JIT: compiling on the background thread (the bytecode runs meanwhile)";
  } else if (spec.jit) {
    absl::StrAppendFormat(&text, "\n    JIT: not compiled (%s)", spec.jit_refusal);
  }
}

// explain(func, ir=True): the LLVM IR of func's code as the JIT translates it now (compiled
// again, then dropped: compiled functions do not keep their IR).
PyObject* ExplainIr(PyFunctionObject* func) {
  auto* original = reinterpret_cast<PyCodeObject*>(func->func_code);
  PyCodeObject* code = original;
  std::vector<jit::LocalKind> local_kinds;
  CodeState* state = CodeStateOf(original);
  for (size_t i = 0; state != nullptr && i < state->specializations.size(); ++i) {
    Specialization* spec = state->specializations[i].get();
    if (spec->owner_function() == reinterpret_cast<PyObject*>(func) && spec->native &&
        spec->code) {
      code = spec->code.get();
      local_kinds = spec->native->local_kinds;  // the hints it was compiled with
      break;
    }
  }
  Ref<PyCodeObject> keep = Ref<PyCodeObject>::Create(code);
  jit::CompileRequest request;
  request.original = original;
  request.compiled = code;
  request.globals = func->func_globals;
  request.options.keep_ir = true;
  request.local_kinds = std::move(local_kinds);
  jit::CompileResult result = jit::CompileFunction(std::move(request));
  if (!result.code) {
    PyErr_Format(PyExc_ValueError, "fatjit.explain: the JIT does not compile %U: %s%s%s",
                 func->func_qualname, jit::JitRefusalName(result.refusal),
                 result.detail.empty() ? "" : ": ", result.detail.c_str());
    return nullptr;
  }
  const std::string& ir = result.code->ir();
  return PyUnicode_FromStringAndSize(ir.data(), static_cast<Py_ssize_t>(ir.size()));
}

}  // namespace

PyObject* Explain(PyObject*, PyObject* args, PyObject* kwargs) {
  static const char* kwlist[] = {"func", "ir", nullptr};
  PyObject* func_obj;
  int ir = 0;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "O|$p:explain", const_cast<char**>(kwlist),
                                   &func_obj, &ir)) {
    return nullptr;
  }
  PyFunctionObject* func = FunctionArgument(func_obj, "fatjit.explain");
  if (func == nullptr) return nullptr;
  if (ir) return ExplainIr(func);
  CodeState* state = CodeStateOf(reinterpret_cast<PyCodeObject*>(func->func_code));
  std::string text = absl::StrFormat("%s():", PyUnicode_AsUTF8(func->func_qualname));
  int n = 0;
  for (size_t i = 0; state != nullptr && i < state->specializations.size(); ++i) {
    Specialization* spec = state->specializations[i].get();
    if (spec->owner_function() != func_obj) continue;
    if (spec->pending) {
      absl::StrAppendFormat(&text, "\n  specialization %d: %s, made at the next call", n++,
                            spec->register_at_first_call ? "from the AST import hook"
                                                         : "automatic");
      continue;
    }
    // repr() of a stand-in callable can run user code, which may unspecialize: keep the
    // object alive for the call, then make sure the specialization is still there.
    const Specialization* before = spec;
    Ref<> stand_in = spec->given;
    Ref<> given = Ref<>::Steal(PyObject_Repr(stand_in.obj()));
    if (!given) return nullptr;
    state = CodeStateOf(reinterpret_cast<PyCodeObject*>(func->func_code));
    if (state == nullptr || i >= state->specializations.size() ||
        state->specializations[i].get() != before) {
      text += "\n  (the specializations changed while describing them)";
      break;
    }
    absl::StrAppendFormat(&text, "\n  specialization %d: %s%s\n    runs as: %s\n    calls run: %u",
                          n++, spec->automatic ? "automatic, " : "",
                          PyUnicode_AsUTF8(given.obj()),
                          spec->code ? "the frame's code swapped in place"
                                     : "a call with the bound arguments",
                          spec->runs);
    for (const Ref<>& g : spec->guard_objects) {
      Guard* guard = GuardOf(g.obj());
      GuardResult now = guard->Check(CallArgs{});
      const char* status = guard->kind() == GuardKind::kArgType ? "checked per call"
                           : now == GuardResult::kPass          ? "passes now"
                           : now == GuardResult::kFail          ? "FAILS now"
                                                                : "FAILS for good";
      absl::StrAppendFormat(&text, "\n    guard %s: %s", guard->Describe(), status);
    }
    AppendJitStatus(text, *spec, reinterpret_cast<PyCodeObject*>(func->func_code));
    if (spec->automatic) AppendRewrites(text, *spec);
  }
  const bool code_level = state != nullptr && (state->native || state->native_in_flight);
  if (n == 0) text += code_level ? " no specializations" : " no specializations; runs as plain CPython";
  if (state != nullptr && state->native) {
    const jit::NativeCode& native = *state->native;
    absl::StrAppendFormat(&text,
                          "\n  %s native code shared by its code object (code level: %s), %s, %u "
                          "bytes, compiled in %.2f ms, %u native calls of this code object, %u "
                          "deopt sites",
                          n == 0 ? "runs" : "when no specialization applies, runs",
                          state->native_note.empty() ? "the code is compiled unchanged"
                                                     : "the specializer left it unchanged: " +
                                                           state->native_note,
                          native.opt_level == 0 ? "baseline" : "optimized", native.code_size(),
                          native.compile_ns * 1e-6, native.calls, native.deopt_sites().size());
    AppendNumericStatus(text, native, state->native_kind_recompiles,
                        reinterpret_cast<PyCodeObject*>(func->func_code));
    for (const jit::DeoptSite& site : native.deopt_sites()) {
      if (site.count == 0) continue;
      absl::StrAppendFormat(&text, "\n    deopt to offset %d (%s): %u times", site.target * 2,
                            jit::DeoptReasonName(site.reason), site.count);
    }
  } else if (state != nullptr && state->native_in_flight) {
    text += "\n  code-level native code compiling on the background thread (the bytecode runs "
            "meanwhile)";
  }
  if (state != nullptr && !state->last_jit_refusal.empty()) {
    absl::StrAppendFormat(&text, "\n  JIT: not compiled (%s)", state->last_jit_refusal);
  }
  if (state != nullptr && !state->last_refusal.empty()) {
    absl::StrAppendFormat(&text, "\n  automatic specialization refused: %s", state->last_refusal);
  }
  if (state != nullptr) {
    if (std::string hotness = DescribeHotness(*state); !hotness.empty()) {
      absl::StrAppendFormat(&text, "\n  %s", hotness);
    }
  }
  return PyUnicode_FromStringAndSize(text.data(), static_cast<Py_ssize_t>(text.size()));
}

}  // namespace fatjit
