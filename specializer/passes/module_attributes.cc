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
#include "specializer/bytecode/opcode_tables.h"
#include "specializer/passes/lookup.h"
#include "specializer/passes/passes.h"

namespace fatjit::specializer {
namespace {

// Finds one LOAD_CONST <module> followed (past NOPs) by LOAD_ATTR/LOAD_METHOD and rewrites it.
// Returns whether it rewrote one.
absl::StatusOr<bool> RewriteOne(SpecializationBuilder& builder, int& resume_from) {
  absl::Span<const bytecode::Instruction> insts = builder.instructions();
  for (size_t i = static_cast<size_t>(resume_from); i < insts.size(); ++i) {
    const bytecode::Instruction& load = insts[i];
    if (load.base_opcode != LOAD_CONST) continue;
    PyObject* module = builder.ConstOf(load);
    if (module == nullptr || !PyModule_CheckExact(module)) continue;
    size_t j = i + 1;
    while (j < insts.size() && insts[j].base_opcode == NOP) ++j;
    if (j >= insts.size()) break;
    const bytecode::Instruction& access = insts[j];
    if (access.base_opcode != LOAD_ATTR && access.base_opcode != LOAD_METHOD) continue;
    PyObject* name = builder.Name(access.oparg);
    PyObject* dict = PyModule_GetDict(module);  // borrowed
    if (name == nullptr || !PyUnicode_CheckExact(name) || dict == nullptr ||
        !PyDict_CheckExact(dict)) {
      continue;
    }
    Found found = LookUpName(dict, name);
    if (!found.known || found.value == nullptr) continue;

    Rewrite rewrite;
    rewrite.pass = "module_attributes";
    rewrite.line = access.line;
    rewrite.before = absl::StrCat(DescribeValue(module), ".", PyUnicode_AsUTF8(name), " (",
                                  bytecode::OpcodeName(access.base_opcode), ")");
    rewrite.after = absl::StrCat("LOAD_CONST ", DescribeValue(found.value));
    rewrite.assumptions.push_back(
        builder.Assume(Assumption::Kind::kDictKey, dict, name, found.value));
    SlotEdit load_attribute;
    load_attribute.offset = access.offset;
    load_attribute.code.push_back({POP_TOP, 0});
    if (access.base_opcode == LOAD_METHOD) load_attribute.code.push_back({PUSH_NULL, 0});
    load_attribute.code.push_back({LOAD_CONST, 0});
    load_attribute.consts.push_back(Ref<>::Create(found.value));
    rewrite.edits.push_back(std::move(load_attribute));
    absl::Status proposed = builder.Propose(std::move(rewrite));
    if (!proposed.ok()) return proposed;
    resume_from = static_cast<int>(j);
    return true;
  }
  return false;
}

}  // namespace

absl::StatusOr<bool> ModuleAttributes(SpecializationBuilder& builder) {
  bool changed = false;
  int resume_from = 0;
  // One at a time: a rewrite turns `os.path` into a module constant that `.join` then matches.
  for (;;) {
    absl::StatusOr<bool> one = RewriteOne(builder, resume_from);
    if (!one.ok()) return one.status();
    if (!*one) return changed;
    changed = true;
  }
}

}  // namespace fatjit::specializer
