// The function type's tp_traverse, extended with what fatjit keeps for the function's code.
//
// Why the collector's accounting stays exact. The collector subtracts, from each tracked object's
// reference count, one for every visit from a tracked object it examines; what remains counts as
// references from outside. A visit is sound when it stands for one real reference that dies with
// the visiting object and that nothing else reaches except through it. The wrapper visits:
//  - nothing unless the function's code object has no reference but the function's (refcount 1):
//    then its co_extra state dies with the function, and no frame runs the code (a frame holds
//    its code);
//  - each Ref the state owns, once (a Ref is one reference): the specializations' owner weakref,
//    given code or callable, guard objects, rewritten constants;
//  - native code's references (NativeCode::Traverse) when its shared_ptr has no other owner;
//  - a code object met on the way is not tracked by the collector: it is counted instead, and
//    its constants are visited only when every reference to it was counted on the way, so that
//    it too dies with the function.
// Whatever falls outside these rules is not visited: the collector then sees an external
// reference and keeps the objects, as it did before this wrapper (kept too long, never freed
// early).
//
// Only the main interpreter's functions are looked at: fatjit's co_extra index means nothing in
// a sub-interpreter.
#include "ext/function_traverse.h"

#include <utility>

#include "absl/container/inlined_vector.h"
#include "base/python.h"
#include "ext/code_state.h"

namespace fatjit {
namespace {

traverseproc g_function_traverse = nullptr;  // the function type's own

class StateVisitor {
 public:
  StateVisitor(visitproc visit, void* arg) : visit_(visit), arg_(arg) {}

  // A visitproc that forwards to Add (NativeCode::Traverse calls it).
  static int Forward(PyObject* object, void* self) {
    return static_cast<StateVisitor*>(self)->Add(object);
  }

  int Add(PyObject* object) {
    if (object == nullptr) return 0;
    if (PyCode_Check(object)) {
      for (auto& [code, refs] : codes_) {
        if (code == object) {
          ++refs;
          return 0;
        }
      }
      codes_.emplace_back(object, 1);
      return 0;
    }
    return visit_(object, arg_);
  }

  int Native(const std::shared_ptr<jit::NativeCode>& native) {
    if (native == nullptr || native.use_count() != 1) return 0;
    return native->Traverse(&StateVisitor::Forward, this);
  }

  int Spec(const Specialization& spec) {
    const PyObject* refs[] = {spec.owner.obj(), spec.given.obj(), spec.code.obj(),
                              spec.callable.obj(), spec.register_at_first_call.obj()};
    for (const PyObject* object : refs) {
      if (int err = Add(const_cast<PyObject*>(object))) return err;
    }
    for (const Ref<>& object : spec.guard_objects) {
      if (int err = Add(object.obj())) return err;
    }
    for (const specializer::Rewrite& rewrite : spec.rewrites) {
      for (const specializer::SlotEdit& edit : rewrite.edits) {
        for (const Ref<>& object : edit.consts) {
          if (int err = Add(object.obj())) return err;
        }
      }
    }
    return Native(spec.native);
  }

  // The constants of the code objects all of whose references were counted.
  int CodesOwnedOutright() {
    for (auto [object, refs] : codes_) {
      if (Py_REFCNT(object) != refs) continue;
      if (int err = visit_(reinterpret_cast<PyCodeObject*>(object)->co_consts, arg_)) return err;
    }
    return 0;
  }

 private:
  visitproc visit_;
  void* arg_;
  absl::InlinedVector<std::pair<PyObject*, Py_ssize_t>, 4> codes_;
};

int TraverseFunction(PyObject* self, visitproc visit, void* arg) {
  if (int err = g_function_traverse(self, visit, arg)) return err;
  PyObject* code_object = reinterpret_cast<PyFunctionObject*>(self)->func_code;
  auto* code = reinterpret_cast<PyCodeObject*>(code_object);
  if (code == nullptr || code->co_extra == nullptr || Py_REFCNT(code) != 1) return 0;
  // Unchecked: a traversal needs no thread state of its own (PyInterpreterState_Get would abort).
  PyThreadState* tstate = _PyThreadState_UncheckedGet();
  if (tstate == nullptr || tstate->interp != PyInterpreterState_Main()) return 0;
  CodeState* state = CodeStateOf(code);
  if (state == nullptr) return 0;
  StateVisitor visitor(visit, arg);
  for (const auto& spec : state->specializations) {
    if (int err = visitor.Spec(*spec)) return err;
  }
  if (int err = visitor.Add(state->native_source.obj())) return err;
  if (int err = visitor.Native(state->native)) return err;
  return visitor.CodesOwnedOutright();
}

}  // namespace

void InstallFunctionTraverse() {
  if (g_function_traverse != nullptr) return;
  g_function_traverse = PyFunction_Type.tp_traverse;
  PyFunction_Type.tp_traverse = TraverseFunction;
}

}  // namespace fatjit
