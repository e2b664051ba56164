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
#include "specializer/passes/constant_attribute.h"
#include "specializer/passes/passes.h"

namespace fatjit::specializer {
namespace {

bool IsClass(PyObject* object) { return PyType_Check(object); }

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

}  // namespace

absl::StatusOr<bool> ClassAttributes(SpecializationBuilder& builder) {
  bool changed = false;
  for (size_t from = 0;;) {
    std::optional<AttributeSite> site = NextConstantAttribute(builder, from, IsClass);
    if (!site) return changed;
    from = site->access_index;
    auto* type = reinterpret_cast<PyTypeObject*>(site->object);
    PyObject* value = FoldableClassAttribute(type, site->name);
    if (value == nullptr) continue;
    int assumption =
        builder.Assume(Assumption::Kind::kTypeAttribute, site->object, site->name, value);
    absl::Status proposed = ProposeAttributeConstant(
        builder, *site, "class_attributes",
        absl::StrCat(type->tp_name, ".", PyUnicode_AsUTF8(site->name)), value, assumption);
    if (!proposed.ok()) return proposed;
    changed = true;
  }
}

}  // namespace fatjit::specializer
