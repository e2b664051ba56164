// module_attributes: LOAD_CONST <module>; LOAD_ATTR name
//                 -> LOAD_CONST <module>; POP_TOP; LOAD_CONST <module.name>
// (LOAD_METHOD name -> POP_TOP; PUSH_NULL; LOAD_CONST <module.name>).
// The module stays loaded so the stack at the LOAD_ATTR's offset is what the original has there
// (invariant 4: a deopt to that offset finds the module on the stack); popping a constant runs
// no code (entry_stability.h), and the access itself, which may, is gone.
//
// Assumes: the module is exactly types.ModuleType (a subclass may compute attributes), so
// attribute access reads module.__dict__ first and only calls a module __getattr__ (PEP 562) for
// names the dict lacks; 3.11's LOAD_METHOD on a module pushes NULL then the attribute, since a
// module's getattro is not the generic one. NOPs between the two instructions (left by earlier
// rewrites) are skipped. Produces the attribute's object as a constant under the assumption
// "key name of the module's __dict__ is that object"; names missing from the dict are left alone.
// Why sound: with the module pinned (an original constant or a guarded one) and the key bound to
// the same object, the attribute access would push exactly that object. Known gap, shared with
// FAT Python: reassigning module.__class__ to a subclass with __getattribute__ is not guarded.
#include "absl/strings/str_cat.h"
#include "specializer/passes/constant_attribute.h"
#include "specializer/passes/lookup.h"
#include "specializer/passes/passes.h"

namespace fatjit::specializer {
namespace {

bool IsPlainModule(PyObject* object) { return PyModule_CheckExact(object); }

}  // namespace

absl::StatusOr<bool> ModuleAttributes(SpecializationBuilder& builder) {
  bool changed = false;
  // One at a time: a rewrite turns `os.path` into a module constant that `.join` then matches.
  for (size_t from = 0;;) {
    std::optional<AttributeSite> site = NextConstantAttribute(builder, from, IsPlainModule);
    if (!site) return changed;
    from = site->access_index;
    PyObject* dict = PyModule_GetDict(site->object);  // borrowed
    if (dict == nullptr || !PyDict_CheckExact(dict)) continue;
    Found found = LookUpName(dict, site->name);
    if (!found.known || found.value == nullptr) continue;
    int assumption = builder.Assume(Assumption::Kind::kDictKey, dict, site->name, found.value);
    absl::Status proposed = ProposeAttributeConstant(
        builder, *site, "module_attributes",
        absl::StrCat(DescribeValue(site->object), ".", PyUnicode_AsUTF8(site->name)),
        found.value, assumption);
    if (!proposed.ok()) return proposed;
    changed = true;
  }
}

}  // namespace fatjit::specializer
