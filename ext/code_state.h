// CodeState: what fatjit keeps for one code object, in its co_extra slot.
//
// A Specialization belongs to one function (held weakly: a specialization must not keep its
// function alive) and runs only for frames of that function, so a function built later on the
// same code object with other globals never runs it. Specializations are newest first.
// A specialization either swaps the frame's code object (same locals layout, fits the frame the
// caller pushed) or calls a stand-in callable with the frame's bound arguments.
//
// Code-level native code (CodeState::native) belongs to the code object, not to a function:
// automatic mode compiles the code object itself when the specializer leaves its bytecode
// unchanged. Native code of an unmodified code object depends on nothing of a function: globals
// and builtins are read from the frame (f_globals, f_builtins), cells from the frame's closure,
// and the per-site caches key on what they read (LOAD_GLOBAL on the dict objects and their
// versions, attribute sites on type versions). So every function built on the code object
// (closures of one `def`, FunctionType(code, other_globals)) runs it when no specialization of
// its own applies, with no owner, weakref or Specialization to keep.
#ifndef FATJIT_EXT_CODE_STATE_H_
#define FATJIT_EXT_CODE_STATE_H_

#include <memory>
#include <string>
#include <vector>

#include "base/cpython_compat.h"
#include "base/python.h"
#include "base/ref.h"
#include "guards/guard_set.h"
#include "jit/native_code.h"
#include "jit/runtime/native_call.h"
#include "specializer/specialize_function.h"

namespace fatjit {

struct Specialization {
  Ref<> owner;                 // weakref to the function it was made for
  Ref<> given;                 // what the user passed as `code` (code object or callable)
  Ref<PyCodeObject> code;      // set when the frame's code is swapped for this one
  Ref<> callable;              // set otherwise: called with the frame's bound arguments
  std::vector<Ref<>> guard_objects;  // the fatjit.Guard objects; keep `guards` alive
  GuardSet guards;
  uint64_t runs = 0;
  uint64_t id = 0;  // unique in the process (AddSpecialization): finds it again after Python ran

  // Automatic specializations (fatjit.specialize(func)): made at the function's first call, when
  // its module's globals are complete. Until then `pending` is set and nothing else is.
  bool automatic = false;
  bool pending = false;
  // Automatic mode's attempts: if the specializer leaves the code unchanged and the JIT is on,
  // the code object itself is compiled (CodeState::native) and this specialization dropped.
  bool code_level_if_unchanged = false;
  bool materializing = false;  // pending, and the specializer is working on it (auto_specialize.h)
  // Registered at the function's first call (fatjit._fatjit.specialize_at_first_call: the AST
  // import hook defers its registrations so that an import pays nothing for functions never
  // called): `pending` is set and this callable, called with the function at that call, makes
  // the real specialization (fatjit.specialize) or refuses. Nothing else is set.
  Ref<> register_at_first_call;
  specializer::Assume assume = specializer::Assume::kStable;
  std::vector<specializer::Rewrite> rewrites;  // the full table, for explain() and the JIT
  std::vector<std::string> assumptions;        // rewrites[i].assumptions index these
  std::vector<specializer::AttributeFeedback> attribute_feedback;  // for the JIT

  // The JIT (jit/): requested by fatjit.jit / specialize(jit=True) / automatic mode; `native`
  // is set once compiled. Shared so that a call running the code keeps it alive even if the
  // specialization is dropped meanwhile (by a guard failing for good in a callee).
  bool jit = false;
  std::shared_ptr<jit::NativeCode> native;
  std::string jit_refusal;  // why it was not compiled, if it was not
  // Automatic mode compiles on the background thread (jit/compile_queue.h): the specialization
  // runs its bytecode until `native` is set; `jit_in_flight` while the compile is under way.
  bool jit_background = false;
  bool jit_in_flight = false;
  bool tier_up_queued = false;  // the optimizing tier's compile was handed to the thread
  int32_t kind_recompiles = 0;  // compiles for the kinds its loops met (RecompileForKinds)
  // Automatic mode compiles a caller-supplied `code` too (auto_specialize.h, CompileGivenCode):
  // runs left until then, this one included (1: this run compiles); -1 not counted yet; 0 done.
  int32_t runs_until_compile = -1;
  int8_t has_loop = -1;  // whether `code` has a backward jump (loop time counts as runs)

  // The owning function, or null once it died.
  PyObject* owner_function() const;
};

// CodeState::calls_until_attempt before automatic mode first counted the code object.
inline constexpr int32_t kNotCounted = -1;

struct CodeState {
  std::vector<std::unique_ptr<Specialization>> specializations;  // newest first
  std::string last_refusal;  // why the last automatic specialization was refused, if it was
  std::string last_jit_refusal;  // why the JIT last refused to compile the code, if it did
  // Automatic mode (auto_mode.h): fresh calls left until the next attempt to specialize,
  // this one included (1: this call attempts); kNotCounted; 0 once it gave up on the code.
  int32_t calls_until_attempt = kNotCounted;
  int32_t attempts = 0;  // automatic-mode attempts made, refused or not
  // Automatic mode: whether the bytecode has a backward jump (auto_mode.h, CreditLoopTime):
  // -1 not looked at yet, 0 no, 1 yes.
  int8_t has_loop = -1;

  // Code-level native code (see the top of this file), run for any frame of this code object
  // when no specialization applies; the optimizing tier's code replaces the baseline code, and
  // fatjit.unspecialize drops it (calls running it pin it: jit/native_code.h). The code is
  // compiled from `native_source`, a copy of this code object (same
  // bytecode, constants and names): NativeCode keeps what it compiled alive, and holding this
  // code object itself would make a cycle through co_extra that nothing could collect.
  std::shared_ptr<jit::NativeCode> native;
  Ref<PyCodeObject> native_source;
  std::string native_note;        // why the specializer left the code unchanged
  bool native_in_flight = false;  // its compile is on the background thread
  bool native_tier_up_queued = false;
  int32_t native_kind_recompiles = 0;  // as Specialization::kind_recompiles

  // The direct-call resolver's memo (dispatch.cc): the last function it resolved on this code
  // object, the weakref it was owned through, and its first specialization. Valid while
  // `direct_generation` equals jit::DirectCallEpoch() (no specialization of any code object
  // added or dropped since, so `direct_spec` still exists) and the weakref still points to the
  // calling function (a dead owner's weakref points to None, so a new function at the dead one's
  // address never matches).
  PyObject* direct_func = nullptr;
  PyObject* direct_owner = nullptr;  // borrowed from direct_spec->owner
  Specialization* direct_spec = nullptr;
  uint64_t direct_generation = 0;
  ~CodeState();
};

namespace internal {
inline Py_ssize_t g_code_extra_index = -1;
}  // namespace internal

// Registers the co_extra slot; call once at module init. False (with an exception) on failure.
bool InitCodeStateSlot();
// The state of `code`, or null if it has none. Never raises. Inline: it runs at every call.
inline CodeState* CodeStateOf(PyCodeObject* code) {
  return static_cast<CodeState*>(compat::CodeExtra(code, internal::g_code_extra_index));
}
// The state of `code`, created if missing. Null with an exception set on failure.
CodeState* GetOrCreateCodeState(PyCodeObject* code);

// Live specializations across all code objects: the dispatcher hook is installed while > 0.
int64_t LiveSpecializations();
void AddSpecialization(CodeState* state, std::unique_ptr<Specialization> spec);
// The specialization of `state` with this id, and its index in *index; null if it is gone.
Specialization* FindSpecialization(CodeState* state, uint64_t id, size_t* index);
// Removes state->specializations[index] and destroys it (which may run arbitrary code).
// `counted`: false for a pending automatic specialization that became code-level native code
// (nothing the program had was dropped), so stats' specializations_dropped stays as it was.
void DropSpecialization(CodeState* state, size_t index, bool counted = true);

// Code-level native code: attaches `native` to `state` (replacing baseline code), and the
// process-wide counts for stats().
void SetCodeLevelNative(CodeState* state, std::shared_ptr<jit::NativeCode> native);
// fatjit.unspecialize: the code object runs interpreted again (its native code is dropped);
// automatic mode may compile it again after its next wait.
void RetireCodeLevelNative(CodeState* state);
struct CodeLevelCounters {
  int64_t live = 0;       // code objects with code-level native code
  uint64_t compiled = 0;  // code-level compiles attached (baseline and optimized)
  uint64_t runs = 0;      // calls that ran code-level native code (hook and direct calls)
};
CodeLevelCounters& GlobalCodeLevelCounters();

}  // namespace fatjit

#endif  // FATJIT_EXT_CODE_STATE_H_
