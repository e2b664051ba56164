// class_attributes: LOAD_CONST <class>; LOAD_ATTR name
//                -> LOAD_CONST <class>; POP_TOP; LOAD_CONST <class.name>
// (LOAD_METHOD name -> POP_TOP; PUSH_NULL; LOAD_CONST <class.name>), as module_attributes does
// for modules, and for the same reason (the class stays on the stack at the access's offset).
//
// Assumes: the class's metaclass is exactly `type` and `type` itself has no attribute of that
// name (so type_getattro does not call a metaclass descriptor); the attribute is found along
// the MRO (_PyType_Lookup, as the interpreter's own specializer does) and is either a plain
// value (its type has no __get__) or a Python function (whose __get__(None, cls) returns the
// function itself). classmethod, property and other descriptors are left alone: they compute.
// 3.11's LOAD_METHOD on a class pushes NULL then the attribute (type_getattro is not generic).
// Produces the attribute's object as a constant under "the class's type version did not
// change" (GuardType). Why sound: CPython invalidates the version of a class and of all its
// subclasses on any attribute change of it or of a base, including __bases__ assignment, so
// while the version holds, the MRO lookup returns the same object.
#include "absl/strings/str_cat.h"
#include "base/cpython_compat.h"
#include "specializer/bytecode/opcode_tables.h"
#include "specializer/passes/lookup.h"
#include "specializer/passes/passes.h"

namespace fatjit::specializer {
namespace {

// class.name as a constant, or null if it may compute (see the file comment).
PyObject* FoldableClassAttribute(PyTypeObject* type, PyObject* name) {
  if (Py_TYPE(type) != &PyType_Type) return nullptr;
  if (_PyType_Lookup(&PyType_Type, name) != nullptr) return nullptr;
  if (compat::EnsureTypeVersion(type) == 0) return nullptr;
  PyObject* value = _PyType_Lookup(type, name);  // borrowed
  if (value == nullptr) return nullptr;
  if (Py_TYPE(value)->tp_descr_get != nullptr && !PyFunction_Check(value)) return nullptr;
  return value;
}

absl::StatusOr<bool> RewriteOne(SpecializationBuilder& builder, size_t& resume_from) {
  absl::Span<const bytecode::Instruction> insts = builder.instructions();
  for (size_t i = resume_from; i < insts.size(); ++i) {
    const bytecode::Instruction& load = insts[i];
    if (load.base_opcode != LOAD_CONST) continue;
    PyObject* cls = builder.ConstOf(load);
    if (cls == nullptr || !PyType_Check(cls)) continue;
    size_t j = i + 1;
    while (j < insts.size() && insts[j].base_opcode == NOP) ++j;
    if (j >= insts.size()) break;
    const bytecode::Instruction& access = insts[j];
    if (access.base_opcode != LOAD_ATTR && access.base_opcode != LOAD_METHOD) continue;
    PyObject* name = builder.Name(access.oparg);
    if (name == nullptr || !PyUnicode_CheckExact(name)) continue;
    auto* type = reinterpret_cast<PyTypeObject*>(cls);
    PyObject* value = FoldableClassAttribute(type, name);
    if (value == nullptr) continue;

    Rewrite rewrite;
    rewrite.pass = "class_attributes";
    rewrite.line = access.line;
    rewrite.before = absl::StrCat(type->tp_name, ".", PyUnicode_AsUTF8(name), " (",
                                  bytecode::OpcodeName(access.base_opcode), ")");
    rewrite.after = absl::StrCat("LOAD_CONST ", DescribeValue(value));
    rewrite.assumptions.push_back(
        builder.Assume(Assumption::Kind::kTypeAttribute, cls, name, value));
    SlotEdit edit;
    edit.offset = access.offset;
    edit.code.push_back({POP_TOP, 0});
    if (access.base_opcode == LOAD_METHOD) edit.code.push_back({PUSH_NULL, 0});
    edit.code.push_back({LOAD_CONST, 0});
    edit.consts.push_back(Ref<>::Create(value));
    rewrite.edits.push_back(std::move(edit));
    absl::Status proposed = builder.Propose(std::move(rewrite));
    if (!proposed.ok()) return proposed;
    resume_from = j;
    return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<bool> ClassAttributes(SpecializationBuilder& builder) {
  bool changed = false;
  size_t resume_from = 0;
  for (;;) {
    absl::StatusOr<bool> one = RewriteOne(builder, resume_from);
    if (!one.ok()) return one.status();
    if (!*one) return changed;
    changed = true;
  }
}

}  // namespace fatjit::specializer
