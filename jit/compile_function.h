// CompileFunction: the baseline translation of one function's bytecode to native code.
//
// Assumes a CPython 3.11 function code object (CO_OPTIMIZED | CO_NEWLOCALS, not a generator or
// coroutine) and, when `compiled` differs from `original`, a specialization of it that keeps the
// locals layout and every instruction offset and value-stack layout at the instructions native
// code can leave from (the specializer's invariant 4: rewritten regions are padded in place).
//
// Produces NativeCode whose control flow is the bytecode's: one native block per instruction
// reachable from the entry along normal edges, with branches on bool inline, local and constant
// loads, stores and reference counting inline, and every other instruction a call of its runtime
// helper (jit/runtime/runtime.h). The value stack stays in the frame at depths known at compile
// time, so leaving native code needs no state reconstruction: an error hands the frame to the
// interpreter's unwinder at the faulting instruction, a deopt resumes the interpreter at an
// instruction boundary, both at offsets that mean the same in the original code.
//
// Sound because: native code does per instruction what ceval does (the helpers are ceval's
// semantics; the inline cases are the simple ones), keeps prev_instr at the running instruction
// before anything can observe the frame, polls the eval breaker where ceval does (back-edges,
// RESUME, the end of CALL and CALL_FUNCTION_EX), and after every instruction that may run
// arbitrary code deopts if tracing was switched on or (when `recheck` is given) a guard of the
// specialization no longer holds. Exception handlers are not compiled:
// they are reached only through an error, and errors run in the interpreter.
#ifndef FATJIT_JIT_COMPILE_FUNCTION_H_
#define FATJIT_JIT_COMPILE_FUNCTION_H_

#include <memory>
#include <string>
#include <vector>

#include "base/ref.h"
#include "guards/guard_set.h"

#include "base/python.h"
#include "jit/emitter.h"
#include "jit/kind_feedback.h"
#include "jit/native_code.h"

namespace fatjit::jit {

// Why a function was not compiled; counted by fatjit.stats() and shown by explain().
#define FATJIT_JIT_REFUSALS(V)                                                                  \
  V(kGenerator, "generator", "generator, coroutine and async generator functions run interpreted") \
  V(kNotFunction, "not_a_function", "module and class bodies run interpreted")                 \
  V(kUnsupportedOpcode, "unsupported_opcode", "an instruction the JIT does not translate")     \
  V(kMalformed, "malformed", "bytecode the JIT's model rejects")                               \
  V(kLayoutMismatch, "layout_mismatch", "the specialized code's layout differs from the frame's") \
  V(kBackendUnavailable, "backend_unavailable", "the LLVM backend could not be loaded")         \
  V(kBackendError, "backend_error", "the backend failed to compile the function")           \
  V(kCodeLimit, "code_limit", "FATJIT_CODE_LIMIT bytes of native code are live already")

enum class JitRefusal : int {
#define FATJIT_JIT_REFUSAL_ENUM(name, id, text) name,
  FATJIT_JIT_REFUSALS(FATJIT_JIT_REFUSAL_ENUM)
#undef FATJIT_JIT_REFUSAL_ENUM
      kCount
};
inline constexpr int kJitRefusalCount = static_cast<int>(JitRefusal::kCount);
const char* JitRefusalName(JitRefusal refusal);
const char* JitRefusalMessage(JitRefusal refusal);

struct CompileRequest {
  PyCodeObject* original = nullptr;  // the code object of the frames the entry will run on
  PyCodeObject* compiled = nullptr;  // what to translate: `original` or its specialization
  // Set when the entry is called on frames of another code object (a function whose
  // caller-supplied specialization `original` is: fatjit.specialize(func, code, guards)): the
  // entry first swaps the frame's code for `original`, as the dispatcher does to run such code
  // interpreted, so that exits and deopts resume `original`, whose offsets are its own. The
  // frames must fit `original` (same locals, stack no deeper): checked, else kLayoutMismatch.
  PyCodeObject* entered_with = nullptr;
  // Guards to re-check after arbitrary code, or null; the compiled function takes both the set
  // and the references that keep its guards alive (it may outlive the specialization's).
  std::unique_ptr<GuardSet> recheck;
  std::vector<Ref<>> keep_alive;
  CompileOptions options;
  // Hints, per local, of what it held: the parameters a call passed (ParameterKinds), or the
  // locals a numeric loop's failed entry met (kind_feedback.h). Numeric loops and regions guess
  // the kinds of locals from them. Never relied on: native code tests types itself.
  std::vector<LocalKind> local_kinds;
  // The globals of the function being compiled (borrowed; may be null), for hints only: a
  // numeric loop inlines a small function it calls through a global as the global is bound now
  // (lower_numeric_loops.cc), and checks at its entry that it still is.
  PyObject* globals = nullptr;
};

// Functions whose IR has more instructions than this are generated at the baseline even when the
// optimizing tier is asked for (CompileOptions::opt_level 1 or more), and never tiered up
// (NativeCode::optimizable): the optimizing codegen costs 25-100 us per IR instruction against
// ~4 at the baseline (measured: 21,000-68,000 instructions, the benchmarks' hot kernels, 0.25-0.85
// s; 108,000 of dense conditional expressions 2.9 s; re._parser._parse's 137,000 13.5 s, 0.54 s
// at the baseline), and the one compiler thread compiles nothing else meanwhile. Optimizing is
// worth it below (nbody's 68,000-instruction kernel runs 2-3.5x faster optimized).
inline constexpr int64_t kMaxOptimizedInstructions = 100000;

struct CompileResult {
  std::shared_ptr<NativeCode> code;  // set on success (NativeCode::Share)
  JitRefusal refusal = JitRefusal::kCount;
  std::string detail;  // for a refusal: what exactly
};

// A compile runs in three steps so that the LLVM part can run on another thread:
//   LowerFunction  (GIL)      bytecode -> the backend's IR; refusals are decided here
//   GenerateCode   (no GIL)   IR -> machine code; touches no Python object, only the backend
//                             (thread-safe across functions) and this function's own IR
//   FinishCompile  (GIL)      attaches the machine code, counts the compile, or the failure
// A LoweredFunction holds references (the code objects, guards, constants), so it is made and
// destroyed under the GIL; between the steps it may be handed to another thread.
struct LoweredFunction {
  // The steps' own state: nothing outside compile_function.cc reads it.
  Backend* backend = nullptr;
  std::unique_ptr<Emitter> emitter;
  std::unique_ptr<NativeCode> code;
  std::unique_ptr<GuardSet> recheck;
  std::vector<Ref<>> keep_alive;
  CompileOptions options;
  uint64_t lower_ns = 0;
  uint64_t codegen_ns = 0;
  bool generated = false;
  int64_t ir_instructions = 0;  // the IR's size (kMaxOptimizedInstructions)
  CompiledFunction compiled;
  std::string codegen_error;  // set when the backend failed
};

struct LowerResult {
  std::unique_ptr<LoweredFunction> lowered;  // set on success
  JitRefusal refusal = JitRefusal::kCount;
  std::string detail;
};

// Needs the GIL. Never raises (a Python error met while lowering becomes a refusal). Loads the
// backend on first use. Refuses with kCodeLimit while CodeLimit() bytes of code are live.
LowerResult LowerFunction(CompileRequest request);
// Any thread, GIL or not. Once per LoweredFunction.
void GenerateCode(LoweredFunction& lowered);
// Before GenerateCode: generate at `opt_level` instead of the request's (the IR does not depend
// on it; only the code generator does). For a job meant for the compiler thread whose codegen
// ends up in the caller (a full queue), where the optimizing codegen's time would be a stall.
void SetCodegenLevel(LoweredFunction& lowered, int opt_level);
// Needs the GIL. Generates the code first if GenerateCode has not run.
CompileResult FinishCompile(std::unique_ptr<LoweredFunction> lowered);
// The three steps in a row. Needs the GIL.
CompileResult CompileFunction(CompileRequest request);

// The most native code (bytes, of live compiled functions) before compiles are refused with
// kCodeLimit: FATJIT_CODE_LIMIT. Compiled functions stay; code freed (a specialization dropped)
// makes room again. 0 = no limit.
uint64_t CodeLimit();
void SetCodeLimit(uint64_t bytes);

}  // namespace fatjit::jit

#endif  // FATJIT_JIT_COMPILE_FUNCTION_H_
