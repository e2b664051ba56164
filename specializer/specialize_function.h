// SpecializeFunction: the automatic specializer's entry point. A live function in, a
// specialized code object and the guards it needs out (or a refusal with its reason).
//
// Assumes the GIL is held and runs no Python code of the user's (lookups are done as the guards
// do them; values are described without their __repr__).
// Produces: every pass's rewrites in a table (for explain() and, later, the JIT, which re-checks
// guards at each use), and a code object that uses only the *active* ones. Under the default
// Assume::kStable a rewrite is active only if it is entry-stable in the code actually built
// (entry_stability.h), and only if every rewrite it builds on is active; the choice is iterated
// to a fixpoint, since dropping a rewrite brings back original instructions that may be effects.
// Under Assume::kEntry (FAT Python's "guards are checked at entry only", an explicit opt-in)
// every rewrite is active.
// Why sound: the dispatcher checks all guards at entry; the entry RESUME of the specialized code
// does not service the eval breaker (oparg 2), so no signal handler or other thread runs between
// the check and the first effect; an active rewrite only runs before any effect, when every
// assumption still holds, and computes what the original computes under them.
#ifndef FATJIT_SPECIALIZER_SPECIALIZE_FUNCTION_H_
#define FATJIT_SPECIALIZER_SPECIALIZE_FUNCTION_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/python.h"
#include "base/ref.h"
#include "guards/guard.h"
#include "specializer/specialization_builder.h"
#include "specializer/type_feedback.h"

namespace fatjit::specializer {

enum class Assume { kStable, kEntry };

// X(enum, name in stats, message)
#define FATJIT_SPECIALIZER_REFUSALS(X)                                                     \
  X(kGlobalsNotDict, "globals_not_dict",                                                  \
    "the function's globals or builtins are not plain dicts (a mapping can compute lookups)") \
  X(kUndecodable, "undecodable", "the bytecode could not be analyzed")                     \
  X(kNothingToSpecialize, "nothing_to_specialize", "no instruction could be specialized")  \
  X(kNothingEntryStable, "nothing_entry_stable",                                           \
    "every rewrite would run after code that may invalidate its guard (assume='entry' "    \
    "would use them)")                                                                     \
  X(kRewriteRejected, "rewrite_rejected", "the rewritten bytecode failed verification")    \
  X(kInternalError, "internal_error", "a specializer pass failed (a bug; please report)")

enum class Refusal : uint8_t {
#define FATJIT_REFUSAL_ENUM(e, name, doc) e,
  FATJIT_SPECIALIZER_REFUSALS(FATJIT_REFUSAL_ENUM)
#undef FATJIT_REFUSAL_ENUM
      kCount
};
const char* RefusalName(Refusal refusal);
const char* RefusalMessage(Refusal refusal);

struct SpecializeResult {
  bool refused = false;
  Refusal refusal = Refusal::kCount;
  std::string detail;                         // for a refusal: what exactly
  Ref<> code;                                 // the specialized code object, unless refused
  std::vector<std::unique_ptr<Guard>> guards;  // bound to the function; cover active rewrites
  std::vector<Assumption> assumptions;
  std::vector<Rewrite> rewrites;              // the full table, active or not
  std::vector<std::pair<std::string, int>> proposals_by_pass;
  // Attribute sites the interpreter specialized (receiver type versions), recorded for the JIT.
  std::vector<AttributeFeedback> attribute_feedback;
};

SpecializeResult SpecializeFunction(PyFunctionObject* func, Assume assume);

}  // namespace fatjit::specializer

#endif  // FATJIT_SPECIALIZER_SPECIALIZE_FUNCTION_H_
