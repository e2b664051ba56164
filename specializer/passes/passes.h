// The specializer's passes, in the order they run: constants first (globals, module
// attributes), then what computes with them (operators, then builtin calls on their results),
// then the branches that test them. Each runs once, so an operator on a call's result
// (len(S) == 3) is not folded yet. Each is one file in this folder whose first lines say what
// it assumes, what it produces and why that is sound; each follows the contract in
// specialization_builder.h and returns whether it proposed anything (a refusal to rewrite an
// instruction is not an error; a non-OK status is a bug).
//
// To add a pass: write passes/<name>.cc with `absl::StatusOr<bool> <Function>(SpecializationBuilder&)`,
// add it here, and add its cases to tests/specializer/passes/<name>_test.txt.
#ifndef FATJIT_SPECIALIZER_PASSES_PASSES_H_
#define FATJIT_SPECIALIZER_PASSES_PASSES_H_

#include "absl/status/statusor.h"
#include "specializer/specialization_builder.h"

// X(function, name in stats and explain, what it does)
#define FATJIT_SPECIALIZER_PASSES(X)                                                  \
  X(GlobalsToConstants, "globals_to_constants",                                       \
    "LOAD_GLOBAL of a module global or a builtin becomes LOAD_CONST of its object")   \
  X(ModuleAttributes, "module_attributes",                                            \
    "LOAD_ATTR/LOAD_METHOD on a constant module becomes LOAD_CONST of the attribute")   \
  X(ClassAttributes, "class_attributes",                                              \
    "LOAD_ATTR/LOAD_METHOD on a constant class becomes LOAD_CONST (under GuardType)")  \
  X(FoldConstants, "fold_constants",                                                  \
    "unary, binary, comparison and subscript operations on constants become their result") \
  X(PureBuiltinCalls, "pure_builtin_calls",                                           \
    "a call of a pure builtin (len, abs, int, ...) on constants becomes its result")    \
  X(DeadBranches, "dead_branches",                                                    \
    "a conditional jump on a constant becomes a pop or an always-taken jump")

namespace fatjit::specializer {

#define FATJIT_DECLARE_PASS(function, name, doc) \
  absl::StatusOr<bool> function(SpecializationBuilder& builder);
FATJIT_SPECIALIZER_PASSES(FATJIT_DECLARE_PASS)
#undef FATJIT_DECLARE_PASS

}  // namespace fatjit::specializer

#endif  // FATJIT_SPECIALIZER_PASSES_PASSES_H_
