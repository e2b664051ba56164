// GuardFunc: see guard_func.h for the soundness argument.
#include "guards/guard_func.h"

#include "absl/strings/str_format.h"

namespace fatjit {
namespace {

PyObject* Referent(const Ref<>& weakref) {
  if (!weakref) return nullptr;
  PyObject* obj = PyWeakref_GET_OBJECT(weakref.obj());
  return obj == Py_None ? nullptr : obj;
}

}  // namespace

absl::StatusOr<std::unique_ptr<GuardFunc>> GuardFunc::Create(PyObject* func) {
  if (func == nullptr || !PyFunction_Check(func)) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "GuardFunc: expected a Python function, got %s", func ? Py_TYPE(func)->tp_name : "NULL"));
  }
  std::unique_ptr<GuardFunc> guard(new GuardFunc());
  guard->func_ref_ = Ref<>::Steal(PyWeakref_NewRef(func, nullptr));
  guard->code_ref_ = Ref<>::Steal(PyWeakref_NewRef(PyFunction_GET_CODE(func), nullptr));
  if (!guard->func_ref_ || !guard->code_ref_) {
    PyErr_Clear();
    return absl::InternalError("GuardFunc: cannot create weak references");
  }
  return guard;
}

PyObject* GuardFunc::func() const { return Referent(func_ref_); }

GuardResult GuardFunc::Check(const CallArgs&) {
  if (failed_) return GuardResult::kFailForever;
  PyObject* func = Referent(func_ref_);
  PyObject* code = Referent(code_ref_);
  if (func != nullptr && code != nullptr && PyFunction_GET_CODE(func) == code) {
    return GuardResult::kPass;
  }
  failed_ = true;
  return GuardResult::kFailForever;
}

// Weak references own nothing the GC needs to see.
int GuardFunc::Traverse(visitproc, void*) { return 0; }

void GuardFunc::Clear() {
  func_ref_.Reset();
  code_ref_.Reset();
}

std::string GuardFunc::Describe() const {
  PyObject* func = Referent(func_ref_);
  if (func == nullptr) return "GuardFunc(<dead function>)";
  PyObject* name = reinterpret_cast<PyFunctionObject*>(func)->func_qualname;
  return absl::StrFormat("GuardFunc(%s)", PyUnicode_AsUTF8(name));
}

}  // namespace fatjit
