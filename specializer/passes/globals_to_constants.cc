// globals_to_constants: LOAD_GLOBAL name -> LOAD_CONST <the object name is bound to>.
//
// Assumes: the function's globals and builtins are exact dicts (SpecializeFunction refuses
// others), so LOAD_GLOBAL reads globals[name], else builtins[name], with no user code involved.
// Produces: for a name bound in the globals, LOAD_CONST of its value under the assumption
// "global name is that object"; for a name found only in the builtins, LOAD_CONST under "builtin
// name is that object and no global shadows it". LOAD_GLOBAL's NULL bit (oparg & 1) becomes a
// PUSH_NULL first. Names the function itself stores or deletes (STORE_GLOBAL, DELETE_GLOBAL)
// and names bound nowhere (which raise NameError) are left alone.
// Why sound: while the assumption holds, LOAD_GLOBAL would push exactly that object; the guard
// built from the assumption (GuardGlobals / GuardBuiltins) checks it by identity.
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "specializer/bytecode/opcode_tables.h"
#include "specializer/passes/lookup.h"
#include "specializer/passes/passes.h"

namespace fatjit::specializer {
namespace {

// Names of STORE_GLOBAL/DELETE_GLOBAL in the function's own code.
absl::flat_hash_set<std::string> NamesWritten(const SpecializationBuilder& builder) {
  absl::flat_hash_set<std::string> written;
  for (const bytecode::Instruction& inst : builder.instructions()) {
    if (inst.base_opcode != STORE_GLOBAL && inst.base_opcode != DELETE_GLOBAL) continue;
    if (PyObject* name = builder.Name(inst.oparg)) written.insert(PyUnicode_AsUTF8(name));
  }
  return written;
}

}  // namespace

absl::StatusOr<bool> GlobalsToConstants(SpecializationBuilder& builder) {
  const absl::flat_hash_set<std::string> written = NamesWritten(builder);
  std::vector<bytecode::Instruction> loads;
  for (const bytecode::Instruction& inst : builder.instructions()) {
    if (inst.base_opcode == LOAD_GLOBAL) loads.push_back(inst);
  }
  bool changed = false;
  for (const bytecode::Instruction& load : loads) {
    PyObject* name = builder.Name(load.oparg >> 1);
    if (name == nullptr || !PyUnicode_CheckExact(name)) continue;
    if (written.contains(PyUnicode_AsUTF8(name))) continue;
    Found global = LookUpName(builder.globals(), name);
    if (!global.known) continue;
    Assumption::Kind kind = Assumption::Kind::kGlobal;
    PyObject* value = global.value;
    PyObject* dict = builder.globals();
    if (value == nullptr) {
      Found builtin = LookUpName(builder.builtins(), name);
      if (!builtin.known || builtin.value == nullptr) continue;  // NameError: leave it
      kind = Assumption::Kind::kBuiltin;
      value = builtin.value;
      dict = builder.builtins();
    }
    Rewrite rewrite;
    rewrite.pass = "globals_to_constants";
    rewrite.line = load.line;
    rewrite.before = absl::StrCat("LOAD_GLOBAL ", PyUnicode_AsUTF8(name));
    rewrite.after = absl::StrCat("LOAD_CONST ", DescribeValue(value));
    rewrite.assumptions.push_back(builder.Assume(kind, dict, name, value));
    SlotEdit edit;
    edit.offset = load.offset;
    if (load.oparg & 1) edit.code.push_back({PUSH_NULL, 0});
    edit.code.push_back({LOAD_CONST, 0});
    edit.consts.push_back(Ref<>::Create(value));
    rewrite.edits.push_back(std::move(edit));
    absl::Status proposed = builder.Propose(std::move(rewrite));
    if (!proposed.ok()) return proposed;
    changed = true;
  }
  return changed;
}

}  // namespace fatjit::specializer
