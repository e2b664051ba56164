// fatjit._fatjit._jit_report: see jit_api.h.
#include "ext/jit_api.h"

#include "ext/specialize_api.h"
#include "jit/compile_function.h"
#include "jit/compile_queue.h"

namespace fatjit {

PyObject* JitReport(PyObject*, PyObject* func_obj) {
  PyFunctionObject* func = FunctionArgument(func_obj, "fatjit._jit_report");
  if (func == nullptr) return nullptr;
  auto* code = reinterpret_cast<PyCodeObject*>(func->func_code);
  Ref<PyCodeObject> keep = Ref<PyCodeObject>::Create(code);
  jit::CompileRequest request;
  request.original = code;
  request.compiled = code;
  request.globals = func->func_globals;
  jit::CompileResult result = jit::CompileFunction(std::move(request));
  const bool ok = result.code != nullptr;
  return Py_BuildValue("{s:O,s:s,s:s,s:n,s:d,s:n}", "compiled", ok ? Py_True : Py_False,
                       "reason", ok ? "" : jit::JitRefusalName(result.refusal), "detail",
                       result.detail.c_str(), "code_bytes",
                       static_cast<Py_ssize_t>(ok ? result.code->code_size() : 0), "compile_s",
                       ok ? result.code->compile_ns * 1e-9 : 0.0, "deopt_sites",
                       static_cast<Py_ssize_t>(ok ? result.code->deopt_sites().size() : 0));
}

PyObject* JitShutdown(PyObject*, PyObject*) {
  jit::CompileQueue::Get().Shutdown();
  Py_RETURN_NONE;
}

PyObject* JitBeforeFork(PyObject*, PyObject*) {
  jit::CompileQueue::Get().BeforeFork();
  Py_RETURN_NONE;
}

PyObject* JitAfterForkInParent(PyObject*, PyObject*) {
  jit::CompileQueue::Get().AfterForkInParent();
  Py_RETURN_NONE;
}

PyObject* JitAfterForkInChild(PyObject*, PyObject*) {
  jit::CompileQueue::Get().AfterForkInChild();
  Py_RETURN_NONE;
}

PyObject* WaitForCompiles(PyObject*, PyObject*) {
  jit::CompileQueue::Get().Drain();
  Py_RETURN_NONE;
}

}  // namespace fatjit
