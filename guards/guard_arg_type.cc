// GuardArgType: see guard_arg_type.h for the soundness argument.
#include "guards/guard_arg_type.h"

#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace fatjit {

absl::StatusOr<std::unique_ptr<GuardArgType>> GuardArgType::Create(
    int arg_index, absl::Span<PyObject* const> types) {
  if (arg_index < 0) {
    return absl::InvalidArgumentError(
        absl::StrFormat("GuardArgType: arg_index must be >= 0, got %d", arg_index));
  }
  if (types.empty()) {
    return absl::InvalidArgumentError("GuardArgType: arg_types must name at least one type");
  }
  std::unique_ptr<GuardArgType> guard(new GuardArgType());
  guard->arg_index_ = arg_index;
  for (PyObject* tp : types) {
    if (!PyType_Check(tp)) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "GuardArgType: arg_types must be types, got %s", Py_TYPE(tp)->tp_name));
    }
    guard->types_.push_back(Ref<>::Create(tp));
  }
  return guard;
}

absl::Status GuardArgType::Bind(PyFunctionObject* func) {
  auto* code = reinterpret_cast<PyCodeObject*>(func->func_code);
  int nparams = code->co_argcount + code->co_kwonlyargcount +
                ((code->co_flags & CO_VARARGS) ? 1 : 0) +
                ((code->co_flags & CO_VARKEYWORDS) ? 1 : 0);
  if (arg_index_ >= nparams) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "GuardArgType: arg_index %d is out of range: %s() has %d parameters", arg_index_,
        PyUnicode_AsUTF8(func->func_qualname), nparams));
  }
  PyObject* name = PyTuple_GET_ITEM(code->co_localsplusnames, arg_index_);
  if (param_name_ && PyUnicode_Compare(param_name_.obj(), name) != 0) {
    return absl::FailedPreconditionError(
        "GuardArgType is already bound to a function whose parameter has another name");
  }
  param_name_ = Ref<>::Create(name);
  return absl::OkStatus();
}

GuardResult GuardArgType::CheckValue(PyObject* value) const {
  if (value == nullptr) return GuardResult::kFail;
  PyObject* tp = reinterpret_cast<PyObject*>(Py_TYPE(value));
  for (const Ref<>& expected : types_) {
    if (expected.obj() == tp) return GuardResult::kPass;
  }
  return GuardResult::kFail;
}

GuardResult GuardArgType::Check(const CallArgs& args) {
  if (arg_index_ >= args.nparams) return GuardResult::kFail;
  return CheckValue(args.params[arg_index_]);
}

int GuardArgType::Traverse(visitproc visit, void* arg) {
  for (const Ref<>& tp : types_) Py_VISIT(tp.obj());
  return 0;
}

void GuardArgType::Clear() { types_.clear(); }

std::string GuardArgType::Describe() const {
  return absl::StrFormat(
      "GuardArgType(%d, [%s])", arg_index_,
      absl::StrJoin(types_, ", ", [](std::string* out, const Ref<>& tp) {
        out->append(reinterpret_cast<PyTypeObject*>(tp.obj())->tp_name);
      }));
}

}  // namespace fatjit
