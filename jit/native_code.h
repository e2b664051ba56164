// NativeCode: one compiled function — its native entry, the backend that owns the machine code,
// and the deopt sites the code exits through (counted per site and reason for explain()).
//
// The native entry has the frame-eval shape and runs on a frame of the ORIGINAL code object
// that the caller pushed (arguments in localsplus, prologue not yet run, prev_instr before the
// first instruction). It leaves the frame as the interpreter would: on return with an empty
// value stack; on an error or a deopt by handing the frame to _PyEval_EvalFrameDefault at the
// same offset (jit/runtime/frame_exits.h). One exception: code compiled for frames of another
// code object (CompileRequest::entered_with, a caller-supplied PEP 510 code object) swaps the
// frame's code for itself at entry, and its exits resume that code, as running it interpreted
// would.
#ifndef FATJIT_JIT_NATIVE_CODE_H_
#define FATJIT_JIT_NATIVE_CODE_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "base/python.h"
#include "base/ref.h"
#include "guards/guard_set.h"
#include "jit/emitter.h"
#include "jit/runtime/attr_cache.h"
#include "jit/runtime/call_cache.h"
#include "jit/runtime/global_cache.h"

namespace fatjit::jit {

// What a local held when it was looked at (a call's parameters, or the locals at a numeric
// loop's failed entry: kind_feedback.h), as a hint to the compiler (CompileRequest): an exact
// int, an exact float, an exact list whose first item is an exact float or int (numeric loops
// read its items unboxed), or anything else.
enum class LocalKind : uint8_t { kUnknown, kInt, kFloat, kFloatList, kIntList };

// Why native code hands a frame to the interpreter mid-function. Errors (an exception raised in
// native code) are not deopts: they are counted apart (JitCounters::raises).
#define FATJIT_DEOPT_REASONS(V)                                                                 \
  V(kTracing, "tracing", "sys.settrace/setprofile became active")                              \
  V(kGuardFailed, "guard_failed", "a guard of the specialization failed after arbitrary code") \
  V(kEvalBreaker, "eval_breaker", "an asynchronous exception or request the interpreter handles") \
  V(kReraise, "reraise", "a bare raise or RERAISE: the interpreter unwinds without a traceback entry") \
  V(kHandlerCode, "handler_code", "exception-handler code reached on a normal path")

enum class DeoptReason : int32_t {
#define FATJIT_DEOPT_ENUM(name, id, text) name,
  FATJIT_DEOPT_REASONS(FATJIT_DEOPT_ENUM)
#undef FATJIT_DEOPT_ENUM
      kCount
};
inline constexpr int kDeoptReasonCount = static_cast<int>(DeoptReason::kCount);
const char* DeoptReasonName(DeoptReason reason);

// Where a deopt exit resumes the interpreter. Native code passes the site's address to
// fatjit_rt_deopt; the site lives as long as the NativeCode (a deque keeps addresses stable).
// A site can also be an instruction's exit for errors: fatjit_rt_exit takes an exception that is
// set as raised by the instruction at `opcode_offset` with `error_depth` values on the stack.
struct DeoptSite {
  int32_t target = 0;  // offset (code units) of the instruction the interpreter runs next
  int32_t depth = 0;   // value-stack depth there
  DeoptReason reason = DeoptReason::kTracing;
  int32_t opcode_offset = -1;  // the instruction whose errors leave through this site
  int32_t error_depth = 0;
  uint64_t count = 0;  // how often it was taken as a deopt (under the GIL)
};

// Process-wide JIT counters (under the GIL), read by fatjit.stats().
struct JitCounters {
  uint64_t compiles = 0;
  uint64_t compile_failures = 0;
  uint64_t compile_ns = 0;
  uint64_t compile_ns_max = 0;
  uint64_t backend_load_ns = 0;  // loading libfatjit_llvm.so and libLLVM, once
  uint64_t code_bytes = 0;  // native code of live compiled functions
  // Native calls made through the hook; fatjit.stats() reports these plus direct_calls (a
  // direct call counts one increment fewer).
  uint64_t native_calls = 0;
  uint64_t direct_calls = 0;  // native calls made by CALL without the hook (native_call.h)
  uint64_t builtin_calls = 0;  // C functions and methods called directly (builtin_call.h)
  uint64_t deopts[kDeoptReasonCount] = {};
  uint64_t raises = 0;  // exceptions handed to the interpreter's unwinder
  uint64_t attr_cache_hits = 0;  // attribute sites answered by their cache (attr_cache.h)
  uint64_t attr_cache_misses = 0;  // ... and those that probed it in vain
  uint64_t background_compiles = 0;  // codegen done on the compiler thread (compile_queue.h)
  uint64_t background_dropped = 0;   // queued compiles dropped at exit or fork
  uint64_t tier_ups = 0;  // baseline code replaced by the optimizing tier's (ext tier-up)
  uint64_t kind_recompiles = 0;  // compiles queued for kinds loops met (kind_feedback.h)
  uint64_t numeric_loops = 0;    // numeric loops and regions in the functions compiled
  uint64_t numeric_regions = 0;
  // Called at every deopt when set (FATJIT_LOG=deopt); runs no Python code.
  void (*on_deopt)(const DeoptSite& site, _PyInterpreterFrame* frame) = nullptr;
};
JitCounters& GlobalJitCounters();
// The same, fetched once for the runtime helpers' hot paths (a call of GlobalJitCounters() tests
// its function-local static's guard). Used only once the module is initialized.
inline JitCounters& g_jit_counters = GlobalJitCounters();

//
// Lifetime: owners share it (std::shared_ptr, made only by Share), and each call running it pins
// it (Enter/Leave). It is freed when the last owner lets go and no call runs it: a specialization
// dropped by its own callee mid-call leaves the machine code in place until that call returns.
// The pin count is a plain integer, not an atomic: calls and owner changes (compiles finishing,
// specializations dropped) all happen with the GIL held, and a pin per call costs an increment,
// where a shared_ptr copy per call cost two locked instructions (a fifth of fib's time).
class NativeCode {
 public:
  explicit NativeCode(Backend* backend) : backend_(backend) {}
  ~NativeCode();
  NativeCode(const NativeCode&) = delete;
  NativeCode& operator=(const NativeCode&) = delete;

  // The owning pointer: its deleter frees the code now, or, while calls run it, at the last
  // Leave. The GIL must be held wherever the last owner lets go.
  static std::shared_ptr<NativeCode> Share(std::unique_ptr<NativeCode> code);
  // Around each call of entry(), with the GIL held.
  void Enter() { ++running_; }
  void Leave() {
    if (--running_ == 0 && orphaned_) delete this;
  }
  // The same for native code that pins the code it calls itself (InlineDirectCall): the count
  // Enter and Leave change, and what Leave does once the count it decremented is zero.
  int64_t* pin_count() { return &running_; }
  void Unpinned() {
    if (running_ == 0 && orphaned_) delete this;
  }

  using Entry = PyObject* (*)(PyThreadState*, _PyInterpreterFrame*, int);
  Entry entry() const { return reinterpret_cast<Entry>(compiled_.entry); }
  size_t code_size() const { return compiled_.code_size; }
  const std::string& ir() const { return compiled_.ir; }
  const std::deque<DeoptSite>& deopt_sites() const { return sites_; }

  uint64_t calls = 0;
  uint64_t compile_ns = 0;
  int opt_level = 0;  // CompileOptions::opt_level it was generated at (0: baseline tier)
  bool optimizable = true;  // false past kMaxOptimizedInstructions: never tiered up
  int numeric_loops = 0;    // loops whose locals run unboxed (lower_numeric_loops.cc)
  int numeric_regions = 0;  // straight stretches that do (lower_numeric_regions.cc)
  // Kind feedback (kind_feedback.h): the hints it was compiled with, per local; per numeric
  // loop, the locals whose kind a hint or a default guess decided; the failed entries of its
  // numeric loops (native code counts them), and, once they are worth a recompile, the hints
  // for the next compile (empty until then, set once) and the request to the owner, which
  // clears it. Under the GIL.
  std::vector<LocalKind> local_kinds;
  struct LoopGuesses {
    std::vector<std::pair<int, LocalKind>> locals;  // (local, the kind the loop unboxes it as)
    // Set when a local guessed a list holds something no hint can make a numeric loop of (a
    // tuple, a dict, a list of str): the entry then goes straight to the generic code.
    int64_t given_up = 0;
  };
  std::deque<LoopGuesses> loop_guesses;  // native code points at its loop's
  uint64_t loop_entry_misses = 0;
  std::vector<LocalKind> kinds_seen;
  bool recompile_wanted = false;

  // Visits each reference the code holds (embedded objects, scratch results), once per
  // reference, for an owner that shows them to the cycle collector (ext/function_traverse.h).
  int Traverse(visitproc visit, void* arg) const {
    for (const Ref<>& object : keep_alive_) Py_VISIT(object.obj());
    for (const Ref<>& object : scratch_) Py_VISIT(object.obj());
    return 0;
  }

  // Takes the machine code and what it relies on (CompileFunction, once the backend is done).
  void Attach(CompiledFunction compiled, std::vector<Ref<>> keep_alive,
              std::unique_ptr<GuardSet> recheck) {
    compiled_ = std::move(compiled);
    keep_alive_ = std::move(keep_alive);
    recheck_ = std::move(recheck);
  }

 private:
  friend class FunctionCompiler;
  Backend* backend_;
  CompiledFunction compiled_;
  std::deque<DeoptSite> sites_;
  std::deque<GlobalCache> global_caches_;  // one per LOAD_GLOBAL site
  std::deque<AttrCache> attr_caches_;  // one per LOAD_ATTR, STORE_ATTR, LOAD_METHOD site
  std::deque<DirectCallCache> call_caches_;  // one per CALL site without KW_NAMES
  std::vector<Ref<>> keep_alive_;  // objects the code embeds (constants, names, guards)
  std::vector<Ref<>> scratch_;     // result objects of numeric sites (FunctionCompiler::NewScratch)
  std::unique_ptr<GuardSet> recheck_;  // what the code re-checks after arbitrary code
  int64_t running_ = 0;    // calls running the code now (Enter/Leave)
  bool orphaned_ = false;  // no owner left: the last Leave frees it
};

}  // namespace fatjit::jit

#endif  // FATJIT_JIT_NATIVE_CODE_H_
